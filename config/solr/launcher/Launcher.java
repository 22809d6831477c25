/*
 * Serves a real Apache Solr 9 over HTTP on 127.0.0.1 from a Solr home folder,
 * using JettySolrRunner from solr-test-framework (the same CoreContainer,
 * request handlers and analyzers as a stock Solr server).
 *
 * Run as a Java 17 single-file program with the classpath Maven resolves
 * from pom.xml beside this file:
 *
 *   java -cp "$(cat classpath.txt)" Launcher.java SOLR_HOME PORT CONFIGSET_DIR
 *
 * It prints "SOLR READY <port>" once every core has loaded, exits with status 1
 * if any core fails to load, and stops cleanly on SIGTERM or SIGINT.
 */

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.solr.embedded.JettyConfig;
import org.apache.solr.embedded.JettySolrRunner;

public class Launcher {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: Launcher SOLR_HOME PORT CONFIGSET_DIR");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        int port = Integer.parseInt(args[1]);
        Path configsets = Path.of(args[2]).toAbsolutePath();
        if (!Files.isRegularFile(home.resolve("solr.xml"))) {
            System.err.println("no solr.xml in " + home);
            System.exit(2);
        }

        System.setProperty("configSetBaseDir", configsets.toString());
        // Data lives under the Solr home; allow nothing outside it and the configsets.
        System.setProperty("solr.allowPaths", home + "," + configsets);

        Properties nodeProperties = new Properties();
        JettyConfig config = JettyConfig.builder()
                .setPort(port)
                .setContext("/solr")
                .stopAtShutdown(true)
                .waitForLoadingCoresToFinish(120_000L)
                .build();
        JettySolrRunner solr = new JettySolrRunner(home.toString(), nodeProperties, config);

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                if (solr.isRunning()) {
                    solr.stop();
                }
            } catch (Exception e) {
                System.err.println("error while stopping Solr: " + e);
            } finally {
                stopped.countDown();
            }
        }));

        solr.start();
        var failures = solr.getCoreContainer().getCoreInitFailures();
        if (!failures.isEmpty()) {
            failures.forEach((core, failure) ->
                    System.err.println("core " + core + " failed to load: " + failure.exception));
            solr.stop();
            System.exit(1);
        }
        System.out.println("SOLR READY " + solr.getLocalPort());
        System.out.flush();
        stopped.await();
    }
}

"""SolrCloud on this machine (SOLR_MODE=cloud): one ZooKeeper, SOLR_NODES
Solr nodes (2 unless set), the configset uploaded to ZooKeeper, the
collection created with 2 shards and 2 replicas of each, and nginx on the
profile's Solr port spreading requests over the nodes, so that CKAN keeps
one URL and a node that dies is stepped around.

Ports, from the profile's Solr port P: the balancer on P (what CKAN uses),
node n on P + 10 n, ZooKeeper on P + 1000 (Solr's own convention). The
same jars as the single node (config/solr/launcher), the same configset.
"""
from __future__ import annotations

import io
import json
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from stack import nginx
from stack.install import ensure_debian_packages, ensure_solr_classpath
from stack.processes import Processes, require_free_port, wait_until
from stack.profiles import CONFIGSETS, Profile, SOLR_DIR, fail, say

CLOUD_SOLR_XML = SOLR_DIR / "solr-cloud.xml"
BALANCER_CONF = SOLR_DIR.parent / "deploy" / "solr-balancer.conf"
CONFIGSET = "ckan"


def nodes() -> int:
    return max(2, int(os.environ.get("SOLR_NODES") or 2))


def node_ports(profile: Profile) -> list[int]:
    return [profile.solr_port + 10 * n for n in range(1, nodes() + 1)]


def zookeeper_port(profile: Profile) -> int:
    return profile.solr_port + 1000


def start(profile: Profile, procs: Processes) -> str:
    """Start ZooKeeper, the nodes and the balancer; make sure the configset
    and the collection are there; return the collection's URL."""
    ensure_debian_packages({"nginx": "nginx"})
    solr_build = ensure_solr_classpath()
    classpath = f"{solr_build / 'classes'}:{(solr_build / 'classpath.txt').read_text().strip()}"
    zk = _start_zookeeper(profile, procs, classpath)
    ports = node_ports(profile)
    for number, port in enumerate(ports, start=1):
        _start_node(profile, procs, classpath, number, port, zk)
    base = f"http://127.0.0.1:{ports[0]}/solr"
    wait_until(lambda: len(_cluster(base)["live_nodes"]) == len(ports), "the SolrCloud nodes", 120)
    upload_configset(base)
    ensure_collection(base, profile.solr_core)
    _start_balancer(profile, procs, ports)
    url = f"http://127.0.0.1:{profile.solr_port}/solr/{profile.solr_core}"
    wait_until(lambda: _get(f"{url}/select?q=*:*&rows=0&wt=json"), "the Solr balancer", 30)
    return url


def _start_zookeeper(profile: Profile, procs: Processes, classpath: str) -> str:
    port = zookeeper_port(profile)
    data = profile.state / "zookeeper"
    data.mkdir(parents=True, exist_ok=True)
    require_free_port(port, "ZooKeeper", profile.port_variable("SOLR_PORT"))
    say(f"ZooKeeper 3.9: starting on 127.0.0.1:{port}")
    process = procs.start("zookeeper", [
        "java", "-Xms64m", "-Xmx256m", "-Dzookeeper.admin.enableServer=false",
        f"-Dzookeeper.log.dir={profile.logs}", "-cp", classpath,
        "org.apache.zookeeper.server.ZooKeeperServerMain", str(port), str(data),
    ], stop_timeout=20)

    def listening() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    wait_until(listening, "ZooKeeper", 60, process, profile.logs / "zookeeper.log")
    return f"127.0.0.1:{port}"


def _start_node(profile: Profile, procs: Processes, classpath: str, number: int, port: int, zk: str) -> None:
    home = profile.state / "solr-cloud" / f"node{number}"
    home.mkdir(parents=True, exist_ok=True)
    (home / "solr.xml").write_bytes(CLOUD_SOLR_XML.read_bytes())
    require_free_port(port, f"Solr node {number}", profile.port_variable("SOLR_PORT"))
    heap = os.environ.get("SOLR_HEAP", "1g")
    say(f"Solr 9.10.1 (cloud): node {number} starting on 127.0.0.1:{port}")
    process = procs.start(f"solr{number}", [
        "java", "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC", f"-DzkHost={zk}", f"-DhostPort={port}",
        f"-Dsolr.log.dir={profile.logs}", f"-Dsolr.log.name=solr{number}",
        f"-Dlog4j2.configurationFile={SOLR_DIR / 'log4j2.xml'}",
        "-cp", classpath, "Launcher", str(home), str(port), str(CONFIGSETS),
    ], stop_timeout=30, redundant=True)
    wait_until(lambda: _get(f"http://127.0.0.1:{port}/solr/admin/info/system?wt=json"),
               f"Solr node {number}", 120, process, profile.logs / f"solr{number}.log")


def upload_configset(base: str, name: str = CONFIGSET, directory: Path = CONFIGSETS / "ckan" / "conf") -> None:
    """Upload the configset to ZooKeeper through Solr (replacing an older
    upload, so a changed schema reaches the cluster on the next start)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    _post(f"{base}/admin/configs?action=UPLOAD&name={name}&overwrite=true&cleanup=true", buffer.getvalue())


def ensure_collection(base: str, collection: str, shards: int = 2, replicas: int = 2) -> None:
    """Create the collection (``shards`` × ``replicas``) unless it exists;
    an existing one is reloaded so it takes the uploaded configset."""
    if collection in _cluster(base)["collections"]:
        say(f"SolrCloud: collection {collection} exists; reloading it with the uploaded configset")
        _get(f"{base}/admin/collections?action=RELOAD&name={collection}&wt=json", check=True)
        return
    say(f"SolrCloud: creating collection {collection} ({shards} shards x {replicas} replicas)")
    _get(f"{base}/admin/collections?" + urllib.parse.urlencode({
        "action": "CREATE", "name": collection, "numShards": shards, "replicationFactor": replicas,
        "collection.configName": CONFIGSET, "waitForFinalState": "true", "wt": "json"}), check=True, timeout=180)


def _start_balancer(profile: Profile, procs: Processes, ports: list[int]) -> None:
    """nginx on the profile's Solr port with the production balancer's rules
    (config/deploy/solr-balancer.conf): each request to a live node; a node
    that refuses or drops the connection is skipped and the request goes to
    the next (searches and updates alike: an update is safe to send again,
    Solr replaces documents by id). Only the nodes, the port and where nginx
    keeps its files differ here."""
    state = profile.state / "solr-balancer"
    say(f"nginx: balancing Solr on 127.0.0.1:{profile.solr_port} over {len(ports)} nodes")
    nginx.start(profile, procs, "solr-balancer", balancer_conf(state, profile.logs, profile.solr_port, ports),
                profile.solr_port, "SOLR_PORT")


def balancer_conf(state: Path, logs: Path, port: int, ports: list[int]) -> str:
    """The production balancer made local (nginx.local_conf), trying each node once."""
    text = nginx.local_conf(BALANCER_CONF, "solr-balancer", state, logs, port, ports)
    text, tries = re.subn(r"proxy_next_upstream_tries \d+;", f"proxy_next_upstream_tries {len(ports)};", text)
    if tries != 1:
        fail(f"{BALANCER_CONF} no longer has one proxy_next_upstream_tries")
    return text


def _cluster(base: str) -> dict:
    status = json.loads(_get(f"{base}/admin/collections?action=CLUSTERSTATUS&wt=json", check=True))
    return status["cluster"]


def _get(url: str, check: bool = False, timeout: float = 10) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        if check:
            fail(f"Solr answered {error.code} to {url}:\n{error.read().decode(errors='replace')[-2000:]}")
    except (urllib.error.URLError, OSError):
        if check:
            raise
    return None


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
    except urllib.error.HTTPError as error:
        fail(f"Solr refused the configset upload ({error.code}):\n{error.read().decode(errors='replace')[-2000:]}")

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
import socket
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from stack.install import ensure_debian_packages, ensure_solr_classpath
from stack.processes import Processes, require_free_port, wait_until
from stack.profiles import CONFIGSETS, Profile, SOLR_DIR, fail, say

CLOUD_SOLR_XML = SOLR_DIR / "solr-cloud.xml"
CONFIGSET = "ckan"
# How long the balancer lets one node take over a search before asking the next.
SEARCH_SECONDS = 5


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
    """nginx on the profile's Solr port: each request to a live node; a node
    that refuses or drops the connection is skipped and the request goes to
    the next (searches and updates alike: an update is safe to send again,
    Solr replaces documents by id)."""
    state = profile.state / "solr-balancer"
    for child in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (state / child).mkdir(parents=True, exist_ok=True)
    conf = state / "nginx.conf"
    servers = "\n".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in ports)
    conf.write_text(f"""# Written by config/stack/solrcloud.py; rewritten at each start.
worker_processes 1;
daemon off;
pid {state / 'nginx.pid'};
error_log {profile.logs / 'solr-balancer.log'} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {state / 'body'};
  proxy_temp_path {state / 'proxy'};
  fastcgi_temp_path {state / 'fastcgi'};
  uwsgi_temp_path {state / 'uwsgi'};
  scgi_temp_path {state / 'scgi'};
  client_max_body_size 1g;
  upstream solr {{
{servers}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{profile.solr_port};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_connect_timeout 2s;
    proxy_send_timeout 600s;
    proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;
    proxy_next_upstream_tries {len(ports)};
    # A search answers in milliseconds; one that waits seconds is on a node
    # that is still loading its cores after a restart: ask the next node.
    location ~ /select/?$ {{
      proxy_pass http://solr;
      proxy_read_timeout {SEARCH_SECONDS}s;
    }}
    location / {{
      proxy_pass http://solr;
      proxy_read_timeout 600s;
    }}
  }}
}}
""", encoding="utf-8")
    require_free_port(profile.solr_port, "the Solr balancer", profile.port_variable("SOLR_PORT"))
    say(f"nginx: balancing Solr on 127.0.0.1:{profile.solr_port} over {len(ports)} nodes")
    procs.start("solr-balancer", ["nginx", "-c", str(conf), "-p", str(state), "-e",
                                  str(profile.logs / "solr-balancer.log")], stop_timeout=10)


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

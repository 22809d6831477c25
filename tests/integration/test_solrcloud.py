"""The portal on SolrCloud, started as `make serve SOLR_MODE=cloud` starts it
(config/stack/solrcloud.py: ZooKeeper, two Solr nodes, the collection with
2 shards x 2 replicas, nginx in front), only for these tests: one node is
killed while people search and while a harvest writes, and nobody notices.
"""
import json
import os
import shutil
import signal
import sys
import threading
import time
import urllib.request

import pytest

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.tests import helpers

from portal_testing import ROOT, create_source, load_catalog, run_job, write_export

sys.path.insert(0, str(ROOT / "config"))
from stack import solrcloud  # noqa: E402
from stack.processes import Processes, stop_leftovers  # noqa: E402
from stack.profiles import Profile  # noqa: E402

from ckanext.harvest.model import HarvestJob, HarvestObject  # noqa: E402
from ckanext.shanghai.harvesters import queue, scheduler  # noqa: E402
from ckanext.shanghai.harvesters import records as harvest_records  # noqa: E402
from ckanext.shanghai.harvesters.index import check  # noqa: E402

pytestmark = pytest.mark.usefixtures("clean_db")

BALANCER_LOG = ROOT / ".local" / "test-cloud" / "logs" / "solr-balancer.log"


@pytest.fixture(scope="module")
def cloud():
    """A fresh SolrCloud on its own ports; stopped after the module."""
    profile = Profile(name="test-cloud", web_port=0, solr_port=int(os.environ.get("TEST_CLOUD_SOLR_PORT", 8986)),
                      pg_port=0, redis_port=0, database="", solr_core="ckan_test_cloud",
                      ini=ROOT / ".local" / "test-cloud.ini", persistent=False, solr_mode="cloud")
    stop_leftovers(profile)
    shutil.rmtree(profile.state, ignore_errors=True)
    procs = Processes(profile)
    try:
        url = solrcloud.start(profile, procs)
        yield {"url": url, "procs": procs, "profile": profile}
    finally:
        procs.stop_all()


@pytest.fixture
def on_cloud(cloud, monkeypatch):
    """CKAN's search and indexing go to the cloud's balancer in this test."""
    monkeypatch.setitem(tk.config, "solr_url", cloud["url"])
    return cloud


def kill_node(cloud, number: int) -> None:
    pid = int((cloud["profile"].run / f"solr{number}.pid").read_text())
    os.killpg(pid, signal.SIGKILL)


def bring_back(cloud) -> None:
    """Start the killed node again, as `make serve` does, and wait until
    every replica of the collection is active again."""
    assert cloud["procs"].replace_lost()
    base = f"http://127.0.0.1:{solrcloud.node_ports(cloud['profile'])[0]}/solr"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/admin/collections?action=CLUSTERSTATUS&wt=json", timeout=5) as r:
                shards = json.load(r)["cluster"]["collections"][cloud["profile"].solr_core]["shards"]
            if all(replica["state"] == "active" for shard in shards.values()
                   for replica in shard["replicas"].values()):
                return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail("the node's replicas did not come back")


class Searching(threading.Thread):
    """Someone searching the catalog all the while, through package_search."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.answers = 0
        self.failures: list[str] = []

    def run(self):
        while not self.stop.is_set():
            try:
                helpers.call_action("package_search", q="数据", rows=5)
                self.answers += 1
            except Exception as error:  # a failed search is what this test counts
                self.failures.append(repr(error)[:300])
            finally:
                model.Session.remove()


def harvest(label: str, records: list[dict], tmp_path, while_running=None) -> dict:
    export = write_export(tmp_path / f"{label}.json", [
        dict(record, 数据集名称=f"{record['数据集名称']}（{label}）") for record in records])
    source = create_source(f"cloud-{label}", str(export), {"mapping": "shanghai"})
    if while_running:
        threading.Thread(target=while_running, args=(source["id"],), daemon=True).start()
    run_job(source["id"])
    finish_interrupted(source["id"])
    job = model.Session.query(HarvestJob).filter(HarvestJob.source_id == source["id"]).one()
    return {"report": harvest_records.report_for_job(job.id), "source": source}


def job_state(source_id: str) -> dict:
    """What an operator would look at when a job does not finish."""
    from ckanext.harvest.model import HarvestGatherError

    job = model.Session.query(HarvestJob).filter(HarvestJob.source_id == source_id).one()
    errors = [e.message[:300] for e in model.Session.query(HarvestGatherError).filter(
        HarvestGatherError.harvest_job_id == job.id)]
    redis = queue.harvest_queue.get_connection()
    return {"status": job.status, "gather_finished": str(job.gather_finished), "gather_errors": errors,
            "report": harvest_records.report_for_job(job.id),
            "fetch_queue": redis.llen(queue.harvest_queue.get_fetch_routing_key()),
            "in_hand": len(redis.keys(queue.harvest_queue.get_fetch_routing_key() + ":*")),
            # What the balancer refused (it logs only warnings and errors).
            "balancer_log": BALANCER_LOG.read_text(errors="replace").splitlines()[-3:]
            if BALANCER_LOG.exists() else []}


def finish_interrupted(source_id: str, timeout: float = 180) -> None:
    """Batches that failed while Solr was failing over were left unacknowledged;
    production's scheduler puts them back once they look stalled (here after
    a second rather than ckanext.shanghai.harvest.stalled_fetch_seconds) and
    the fetch consumer imports them: run those two until the job is done."""
    deadline = time.monotonic() + timeout
    while True:
        model.Session.remove()
        unfinished = model.Session.query(HarvestObject).filter(
            HarvestObject.harvest_source_id == source_id,
            HarvestObject.state.in_(["WAITING", "FETCH", "IMPORT"])).count()
        if not unfinished:
            break
        assert time.monotonic() < deadline, f"{unfinished} harvest objects never finished: {job_state(source_id)}"
        time.sleep(1.5)
        # The scheduler's two ways of putting work back (messages taken and
        # not finished; objects whose messages are gone).
        scheduler.requeue_stalled(fetch_seconds=1, gather_seconds=60)
        scheduler.requeue_lost(fetch_seconds=1, gather_seconds=60)
        queue.run_consumer("fetch", until_idle=True)
    scheduler.finish_jobs(source_id)
    scheduler.close_reports()
    model.Session.remove()


def test_searches_and_a_harvest_go_on_while_a_node_dies(on_cloud, tmp_path):
    records = load_catalog("shanghai.json")[:400]
    undisturbed = harvest("calm", records, tmp_path)["report"]
    assert undisturbed["added"] > 100

    searching = Searching()
    searching.start()
    killed = threading.Event()

    def kill_mid_import(source_id: str) -> None:
        # Once the fetch consumer has written some of this source's products.
        engine = model.meta.engine
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                done = connection.exec_driver_sql(
                    "select count(*) from harvest_object where harvest_source_id = %s and state = 'COMPLETE'",
                    (source_id,)).scalar()
            if done >= 50:
                kill_node(on_cloud, 1)
                killed.set()
                return
            time.sleep(0.05)

    disturbed = harvest("storm", records, tmp_path, while_running=kill_mid_import)
    assert killed.is_set(), "the node was not killed while the harvest ran"
    time.sleep(2)  # searches after the kill, with one node down
    searching.stop.set()
    searching.join(30)

    assert searching.failures == [], searching.failures[:3]
    assert searching.answers > 20
    report = disturbed["report"]
    assert (report["records_read"], report["added"], report["rejected"]) == (
        undisturbed["records_read"], undisturbed["added"], undisturbed["rejected"])
    # Searchable with one node down: every product of the disturbed run.
    found = helpers.call_action("package_search", fq=f'harvest_source_id:"{disturbed["source"]["id"]}"', rows=0)
    assert found["count"] == report["added"]

    bring_back(on_cloud)
    difference = check.compare()
    assert (difference.missing, difference.stale, difference.orphaned) == ([], [], [])

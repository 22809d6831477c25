"""Faults during a real harvest of 2,469 records (the Guiyang export, served
slowly over HTTP) through the queue consumers and the scheduler process, as
`make serve` runs them: SIGKILL of the gather consumer, a fetch consumer and
the scheduler; Redis, Solr and PostgreSQL stopped and started again. After
recovery the job is finished, no harvest object is left unfinished or in
error, and the catalog and its index are exactly those of an undisturbed run.
"""
from __future__ import annotations

import http.server
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy.exc

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckanext.harvest.model import HarvestJob, HarvestObject
from ckanext.shanghai.harvesters.index import check as index_check
from ckanext.shanghai.harvesters import records

from portal_testing import create_source, load_catalog, port_of, restart_service, site_context, start_ckan

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_db", "clean_index")]

UNDISTURBED: dict[str, dict] = {}


@pytest.fixture(scope="module")
def slow_export():
    """The Guiyang export over HTTP at about 600 KB/s, so a gather lasts
    long enough to be interrupted."""
    body = json.dumps(load_catalog("guizhou_guiyang.json"), ensure_ascii=False).encode("utf-8")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for start in range(0, len(body), 16384):
                self.wfile.write(body[start:start + 16384])
                time.sleep(0.025)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/guiyang.json"
    server.shutdown()


@pytest.fixture(scope="module")
def trial_ini(ckan_ini, tmp_path_factory) -> Path:
    """The test configuration, with the source's host allowed and the
    scheduler's stall limits short enough for a test."""
    options = {"ckanext.shanghai.harvest.allowed_hosts": "127.0.0.1",
               "ckanext.shanghai.harvest.scheduler_seconds": "1",
               "ckanext.shanghai.harvest.stalled_fetch_seconds": "4",
               "ckanext.shanghai.harvest.stalled_gather_seconds": "6",
               "ckanext.shanghai.harvest.heartbeat_seconds": "1",
               "ckanext.shanghai.harvest.queue_poll_seconds": "2"}
    lines = [line for line in Path(ckan_ini).read_text(encoding="utf-8").splitlines()
             if line.split("=", 1)[0].strip() not in options]
    at = lines.index("[app:main]") + 1
    lines[at:at] = [f"{key} = {value}" for key, value in options.items()]
    path = tmp_path_factory.mktemp("faults") / "trial.ini"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the harvest -----------------------------------------------------------------

class Harvest:
    """The consumers and the scheduler, started from the trial configuration."""

    def __init__(self, ini: Path, logs: Path):
        self.ini, self.logs = ini, logs
        self.processes: dict[str, subprocess.Popen] = {}
        for name, args in (("gather", ("harvest-consumer", "gather")), ("fetch", ("harvest-consumer", "fetch")),
                           ("fetch2", ("harvest-consumer", "fetch")), ("scheduler", ("harvest-scheduler",))):
            self.start(name, args)

    def start(self, name: str, args: tuple[str, ...]) -> None:
        self.processes[name] = start_ckan(self.ini, "shanghai", *args, log=self.logs / f"{name}.log")
        self.processes[name].args_ = args

    def kill_and_restart(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        self.start(name, process.args_)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in self.logs.glob("*.log"))


def _query(function, default=None):
    """Ask the database, riding out its restart."""
    try:
        return function()
    except sqlalchemy.exc.DBAPIError:
        model.Session.rollback()
        model.Session.remove()
        return default


def objects_in(job_id: str, *states: str) -> int:
    model.Session.remove()
    return model.Session.query(HarvestObject).filter(
        HarvestObject.harvest_job_id == job_id, HarvestObject.state.in_(states)).count()


def gather_running(job_id: str) -> bool:
    model.Session.remove()
    job = model.Session.get(HarvestJob, job_id)
    return job.gather_started is not None and job.gather_finished is None and objects_in(job_id, "WAITING") > 0


def catalog() -> dict[str, dict]:
    model.Session.remove()
    rows = model.Session.query(model.Package).filter(model.Package.type != "harvest",
                                                     model.Package.state == "active")
    return {pkg.name: {"title": pkg.title, "org": pkg.owner_org and model.Group.get(pkg.owner_org).name,
                       "extras": dict(pkg.extras or {})} for pkg in rows}


def inject(fault: str, harvest: Harvest, job_id: str) -> None:
    if fault == "none":
        return
    if fault == "gather-killed":
        _wait(lambda: gather_running(job_id), "the gather to be under way", harvest)
        harvest.kill_and_restart("gather")
        return
    _wait(lambda: objects_in(job_id, "COMPLETE") >= 300, "300 records imported", harvest)
    if fault in ("fetch-killed", "scheduler-killed"):
        harvest.kill_and_restart("fetch" if fault == "fetch-killed" else "scheduler")
    elif fault == "redis-restarted":
        restart_service("redis", signal.SIGTERM, port_of("ckan.redis.url"))
    elif fault == "solr-restarted":
        restart_service("solr", signal.SIGTERM, port_of("solr_url"))
    elif fault == "postgres-restarted":
        restart_service("postgres", signal.SIGINT, port_of("sqlalchemy.url"))
    else:
        raise AssertionError(fault)


def _wait(condition, what: str, harvest: Harvest, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not _query(condition, False):
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{harvest.tail()}"
        dead = [name for name, process in harvest.processes.items() if process.poll() is not None]
        assert not dead, f"{dead} exited while waiting for {what}\n{harvest.tail()}"
        time.sleep(0.1)


FAULTS = ["none", "gather-killed", "fetch-killed", "scheduler-killed", "redis-restarted", "solr-restarted",
          "postgres-restarted"]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_harvest_survives(fault, trial_ini, slow_export, tmp_path):
    source = create_source(f"faults-{fault}", slow_export, {"mapping": "guiyang"})
    harvest = Harvest(trial_ini, tmp_path)
    try:
        job_id = tk.get_action("harvest_job_create")(site_context(), {"source_id": source["id"], "run": True})["id"]
        inject(fault, harvest, job_id)

        def closed():
            report = records.report_for_job(job_id)
            return report is not None and report["outcome"] != "running"

        _wait(closed, "the job to finish", harvest, timeout=300)
    finally:
        harvest.stop()

    model.Session.remove()
    report = records.report_for_job(job_id)
    assert model.Session.get(HarvestJob, job_id).status == "Finished"
    assert report["outcome"] == "finished", report
    assert report["records_read"] == 2469
    assert objects_in(job_id, "WAITING", "FETCH", "IMPORT") == 0, "harvest objects left unfinished"
    assert objects_in(job_id, "ERROR") == 0, "records charged with the fault"
    found = catalog()
    assert len(found) == report["added"] + report["unchanged"] > 2000
    tags = model.Session.query(model.Tag.name).filter(model.Tag.vocabulary_id.is_(None))
    assert tags.count() == tags.distinct().count()
    assert index_check.compare().total == 0
    if fault == "none":
        UNDISTURBED.update(found)
    else:
        assert UNDISTURBED, "the undisturbed run did not complete"
        # Same names, titles, departments and field values as undisturbed.
        assert found == UNDISTURBED

"""Helpers the tests share: departments as the organization schema wants
them, real catalog exports, running a harvest job through the production
queue consumers, and stopping and starting the test stack's own services."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from data_files import catalog_file

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckanext.harvest import queue as harvest_queue

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("SHANGHAI_TEST_STATE", ".local/test"))

# Plugins whose tables come from their own migrations (CKAN's reset_db
# rebuilds only its core tables).
PLUGIN_MIGRATIONS = ("activity", "harvest", "shanghai", "shanghai_portal", "shanghai_access", "shanghai_desk", "shanghai_realtime",
                     "shanghai_keys")


def empty_database(reset_db, migrate_db_for, reset_index=None) -> None:
    """Every table of the portal, empty; the search index too if given."""
    reset_db()
    for plugin in PLUGIN_MIGRATIONS:
        migrate_db_for(plugin)
    if reset_index is not None:
        reset_index()


def load_catalog(name: str) -> list[dict]:
    return json.loads(catalog_file(name).read_text(encoding="utf-8"))


def write_export(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def site_context() -> dict:
    user = tk.get_action("get_site_user")({"ignore_auth": True}, {})
    return {"user": user["name"], "ignore_auth": True}


def create_source(name: str, url: str, config: dict, owner_org: str | None = None) -> dict:
    owner_org = owner_org or make_department(name=f"{name}-owner")["id"]
    return tk.get_action("harvest_source_create")(site_context(), {
        "name": name, "url": url, "source_type": "shanghai_agency_export",
        "title": name, "owner_org": owner_org, "config": json.dumps(config),
    })


def run_job(source_id: str) -> dict:
    """Run a harvest job as production does and return its report: the job
    goes on the real gather queue (as the source page's button sends it),
    then the production consumers drain the gather queue and the fetch
    queue in this process (``queue.run_consumer(kind, until_idle=True)``,
    the loop ``ckan shanghai harvest-consumer`` runs), then the scheduler's
    own steps mark the job finished and close its report."""
    from ckanext.shanghai.harvesters import queue, records
    from ckanext.shanghai.harvesters.scheduler import close_reports, finish_jobs

    # Messages another test left behind are not this job's.
    harvest_queue.purge_queues()
    job_dict = tk.get_action("harvest_job_create")(site_context(), {"source_id": source_id, "run": True})
    queue.run_consumer("gather", until_idle=True)
    queue.run_consumer("fetch", until_idle=True)
    finish_jobs(source_id)
    close_reports()
    model.Session.remove()
    return records.report_for_job(job_dict["id"])


def make_department(**fields) -> dict:
    """A department (CKAN organization) as the organization schema wants it."""
    from ckan.tests import factories

    fields.setdefault("department_type", "municipal-bureau")
    return factories.Organization(**fields)


def start_ckan(ckan_ini: Path, *args: str, log: Path) -> subprocess.Popen:
    """Start `ckan -c INI ARGS` in the background, as an operator would run a
    consumer, in its own process group, its output appended to ``log``."""
    ckan_command = str(Path(os.sys.executable).parent / "ckan")
    return subprocess.Popen([ckan_command, "-c", str(ckan_ini), *args], stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(os.environ, CKAN_INI=str(ckan_ini)))


def start_portal(ckan_ini: Path, port: int, log: Path) -> subprocess.Popen:
    """The portal under gunicorn on 127.0.0.1:``port``, one worker with
    threads as `make serve` runs it, in its own process group; returns once
    it answers (stop it with ``stop_portal``)."""
    venv_bin = Path(os.sys.executable).parent
    process = subprocess.Popen(
        [str(venv_bin / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
         # As make serve: an open event stream does not hold up the stop for long.
         "--graceful-timeout", "10", "ckanext.shanghai.wsgi:application"],
        env=dict(os.environ, CKAN_INI=str(ckan_ini)), stdout=log.open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            # Refused until gunicorn listens; once connected, wait for the
            # worker to load the app, so that no earlier probe is left queued
            # to reach the app later (the quota tests count requests).
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/3/action/status_show", timeout=60):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_portal(process)
                raise AssertionError(log.read_text(errors="replace"))
            time.sleep(0.3)


def stop_portal(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
    process.wait(timeout=30)


def start_streams(ckan_ini: Path, log: Path, wait: bool = True) -> subprocess.Popen:
    """The stream server (`ckan shanghai-realtime streams`) on the test
    profile's ``ckanext.shanghai.realtime.stream_bind``, as `make serve`
    runs it beside the web app; with ``wait``, returns once its /health
    says it listens for pushes (else call ``wait_for_streams``)."""
    process = start_ckan(ckan_ini, "shanghai-realtime", "streams", log=log)
    if wait:
        wait_for_streams(process, log)
    return process


def wait_for_streams(process: subprocess.Popen, log: Path) -> None:
    host, _colon, port = tk.config.get("ckanext.shanghai.realtime.stream_bind").rpartition(":")
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://{host or '127.0.0.1'}:{port}/health", timeout=5) as answer:
                if json.load(answer)["listening"]:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_portal(process)
            raise AssertionError(log.read_text(errors="replace"))
        time.sleep(0.3)


# -- services of the test stack ------------------------------------------------

def stack_services():
    """The test profile of config/stack and where its services answer (as
    this test run's ini names them), to start more of the stack's
    processes with the stack's own code (web hosts, the web proxy)."""
    if str(ROOT / "config") not in sys.path:
        sys.path.insert(0, str(ROOT / "config"))
    from stack.portal import Services
    from stack.profiles import profile_for

    return profile_for("test"), Services(tk.config["sqlalchemy.url"], tk.config["ckan.redis.url"],
                                         tk.config["solr_url"])


def port_of(url_key: str) -> int:
    """The port of the service a configuration URL names (``solr_url`` ...)."""
    return urlsplit(tk.config[url_key]).port


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def stop_service(name: str, stop_signal: int, port: int) -> None:
    """Stop one of the stack's services (config/stack recorded its process
    group) and wait until its port is closed."""
    os.killpg(int((STATE / "run" / f"{name}.pid").read_text()), stop_signal)
    deadline = time.monotonic() + 60
    while _port_open(port) and time.monotonic() < deadline:
        time.sleep(0.2)


def start_service(name: str, port: int) -> None:
    """Start a stopped service again as config/stack first started it, and
    wait for its port; the stack's stop finds it by the pid file."""
    run = STATE / "run"
    started = json.loads((run / f"{name}.json").read_text())
    log = (STATE / "logs" / f"{name}.log").open("ab")
    process = subprocess.Popen(started["argv"], cwd=started["cwd"], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    (run / f"{name}.pid").write_text(str(process.pid))
    deadline = time.monotonic() + 180
    while not _port_open(port):
        assert time.monotonic() < deadline and process.poll() is None, f"{name} did not come back"
        time.sleep(0.5)


def restart_service(name: str, stop_signal: int, port: int, down_seconds: float = 2) -> None:
    """Stop one of the stack's services, leave it down a moment, start it again."""
    stop_service(name, stop_signal, port)
    time.sleep(down_seconds)
    start_service(name, port)

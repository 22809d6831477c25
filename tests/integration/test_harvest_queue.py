"""A harvest through the real Redis queues and consumer processes, with two
fetch consumers as `make serve` runs them: killing one with SIGKILL mid-job,
then starting it again, ends with the same catalog as an undisturbed run,
the job finished, nothing orphaned or duplicated;
ckanext-harvest's own gather consumer runs the portal's gather stage;
and the scheduler starts jobs on a minutes schedule."""
import datetime as dt
import json
import logging
import signal
import subprocess
import time
from pathlib import Path

import pytest

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckanext.harvest import queue as harvest_queue
from ckanext.harvest.model import HarvestJob, HarvestObject
from ckanext.shanghai.harvesters import queue as portal_queue
from ckanext.shanghai.harvesters import scheduler as harvest_scheduler
from ckanext.shanghai.harvesters.index import check as index_check
from ckanext.shanghai.harvesters import records
from ckanext.shanghai.harvesters.mapping import MAPPINGS_DIR, load_mapping

from portal_testing import create_source, load_catalog, site_context, start_ckan, write_export

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")


def consumer(ckan_ini: Path, kind: str, log: Path) -> subprocess.Popen:
    return start_ckan(ckan_ini, "shanghai", "harvest-consumer", kind, log=log)


def objects_in_state(job_id: str, *states: str) -> int:
    model.Session.remove()
    return model.Session.query(HarvestObject).filter(
        HarvestObject.harvest_job_id == job_id, HarvestObject.state.in_(states)).count()


def expected_names(records_: list[dict]) -> set[str]:
    mapping = load_mapping(MAPPINGS_DIR / "shanghai.yaml")
    names = set()
    for record in records_:
        try:
            names.add(mapping.apply(record).package["name"])
        except Exception:
            continue
    return names


def catalog() -> dict[str, str]:
    model.Session.remove()
    rows = model.Session.query(model.Package.name, model.Package.title).filter(
        model.Package.type != "harvest", model.Package.state == "active")
    return dict(rows)


@pytest.mark.slow
def test_sigkill_of_a_fetch_consumer_mid_job_loses_and_duplicates_nothing(ckan_ini, tmp_path):
    source_records = load_catalog("shanghai.json")[:600]
    export = write_export(tmp_path / "sh.json", source_records)
    source = create_source("queue-run", str(export), {"mapping": "shanghai"})
    gather = consumer(ckan_ini, "gather", tmp_path / "gather.log")
    fetch = consumer(ckan_ini, "fetch", tmp_path / "fetch.log")
    other_fetch = consumer(ckan_ini, "fetch", tmp_path / "fetch-other.log")
    restarted = None
    try:
        job_id = tk.get_action("harvest_job_create")(site_context(), {"source_id": source["id"], "run": True})["id"]
        deadline = time.monotonic() + 180
        while objects_in_state(job_id, "COMPLETE") < 40:
            assert time.monotonic() < deadline, (tmp_path / "fetch.log").read_text()[-3000:]
            time.sleep(0.2)
        fetch.send_signal(signal.SIGKILL)
        fetch.wait(timeout=10)
        assert objects_in_state(job_id, "WAITING", "FETCH", "IMPORT") > 0, "killed too late to test anything"

        restarted = consumer(ckan_ini, "fetch", tmp_path / "fetch-2.log")
        deadline = time.monotonic() + 300
        while True:
            # What the scheduler process does each tick, with short "stalled"
            # limits so the killed consumer's messages come back soon: those
            # it had marked taken (requeue_stalled), and those the kill caught
            # between taking them off the queue and marking them (requeue_lost;
            # once in a full CI run on a slow machine). Each limit above what
            # a live consumer needs: the heartbeat marks its batch in hand
            # every heartbeat_seconds (a limit under that, 2 s here once, put
            # back a slow batch still being written, imported it twice and
            # counted it twice in the report), and a batch's objects look
            # unfinished for a moment after its messages are acknowledged.
            beat = tk.config.get("ckanext.shanghai.harvest.heartbeat_seconds")
            harvest_scheduler.requeue_stalled(fetch_seconds=3 * beat, gather_seconds=600)
            harvest_scheduler.requeue_lost(fetch_seconds=6 * beat, gather_seconds=600)
            harvest_scheduler.finish_jobs(source["id"])
            harvest_scheduler.close_reports()
            model.Session.remove()
            report = records.report_for_job(job_id)
            if report["outcome"] != "running":
                break
            assert time.monotonic() < deadline, (tmp_path / "fetch-2.log").read_text()[-3000:]
            time.sleep(1)
    finally:
        for process in (gather, fetch, other_fetch, restarted):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)

    assert HarvestJob.get(job_id).status == "Finished"
    assert objects_in_state(job_id, "WAITING", "FETCH", "IMPORT") == 0
    assert report["outcome"] == "finished"
    names = expected_names(source_records)
    assert set(catalog()) == names
    assert report["added"] == len(names)
    assert report["added"] + report["rejected"] == report["records_read"] == 600
    tags = model.Session.query(model.Tag.name).filter(model.Tag.vocabulary_id.is_(None))
    assert tags.count() == tags.distinct().count(), "two consumers created the same tag twice"
    assert index_check.compare().total == 0


def test_ckanext_harvest_s_own_gather_consumer_runs_the_portal_s_gather(tmp_path, caplog):
    """IHarvester's contract: gather_stage returns a list of object ids.
    ckanext-harvest's gather callback (what `ckan harvester gather-consumer`
    runs) takes the job from the real Redis gather queue, runs the agency
    export's gather and puts every object id on the fetch queue."""
    records_ = load_catalog("shanghai.json")[:60]
    source = create_source("stock-gather", str(write_export(tmp_path / "sh.json", records_)), {"mapping": "shanghai"})
    harvest_queue.purge_queues()
    job_id = tk.get_action("harvest_job_create")(site_context(), {"source_id": source["id"], "run": True})["id"]

    consumer = harvest_queue.get_gather_consumer()
    method, header, body = next(consumer.consume(queue=harvest_queue.get_gather_queue_name()))
    assert json.loads(body)["harvest_job_id"] == job_id
    with caplog.at_level(logging.INFO, logger="ckanext.harvest.queue"):
        harvest_queue.gather_callback(consumer, method, header, body)
    assert "Gather stage failed" not in caplog.text

    model.Session.remove()
    waiting = {object_id for (object_id,) in model.Session.query(HarvestObject.id).filter(
        HarvestObject.harvest_job_id == job_id, HarvestObject.state == "WAITING")}
    report = records.report_for_job(job_id)
    assert len(waiting) == report["records_read"] - report["rejected"] > 0
    queued = [json.loads(message)["harvest_object_id"]
              for message in consumer.redis.lrange(harvest_queue.get_fetch_routing_key(), 0, -1)]
    assert sorted(queued) == sorted(waiting)

    # And the portal's fetch consumer imports them all from there.
    portal_queue.run_consumer("fetch", until_idle=True)
    assert objects_in_state(job_id, "COMPLETE") == len(waiting)
    assert len(catalog()) == len(waiting)


def test_the_scheduler_starts_a_job_each_slot_and_never_two_at_once(tmp_path):
    export = write_export(tmp_path / "sh.json", load_catalog("shanghai.json")[:20])
    source = create_source("every-five", str(export), {"mapping": "shanghai", "schedule_minutes": 5})
    created = model.Session.query(model.Package).get(source["id"]).metadata_created
    first = harvest_scheduler.start_due_jobs(created + dt.timedelta(minutes=1))
    assert len(first) == 1
    # Same slot, job still waiting: nothing new.
    assert harvest_scheduler.start_due_jobs(created + dt.timedelta(minutes=4)) == []
    job = HarvestJob.get(first[0])
    job.status = "Finished"
    job.save()
    # Finished, but still within the slot it ran in: nothing new.
    assert harvest_scheduler.start_due_jobs(created + dt.timedelta(minutes=4, seconds=59)) == []
    # Next slot: one new job.
    assert len(harvest_scheduler.start_due_jobs(created + dt.timedelta(minutes=5, seconds=1))) == 1

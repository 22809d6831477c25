"""The harvest scheduler process (`ckan shanghai harvest-scheduler`), which
`make serve` starts in place of a cron: it starts jobs on each source's
schedule (down to minutes, on a fixed grid so runs do not drift), marks
finished jobs as finished within one tick, puts back on the queue the work of
consumers that died, and closes each job's report."""
from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import time

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckanext.harvest import queue as harvest_queue
from ckanext.harvest.model import HarvestJob, HarvestSource

from ckanext.shanghai import index_check
from ckanext.shanghai.harvesters import records

log = logging.getLogger(__name__)


def _context() -> dict:
    site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})
    return {"user": site_user["name"], "ignore_auth": True, "model": model, "session": model.Session}


def schedule_minutes(source: HarvestSource) -> int | None:
    try:
        minutes = json.loads(source.config or "{}").get("schedule_minutes")
    except (ValueError, AttributeError):
        return None
    return int(minutes) if isinstance(minutes, (int, float)) and minutes >= 1 else None


def start_due_jobs(now: dt.datetime) -> list[str]:
    """Create a job for every active source whose schedule slot has come and
    that has no job waiting or running. Slots are counted from the source's
    creation, so a late run never shifts the ones after it."""
    started = []
    for source in model.Session.query(HarvestSource).filter(HarvestSource.active.is_(True)):
        minutes = schedule_minutes(source)
        if minutes is None:
            continue
        interval = dt.timedelta(minutes=minutes)
        slot_start = source.created + ((now - source.created) // interval) * interval
        jobs = model.Session.query(HarvestJob).filter(HarvestJob.source_id == source.id)
        if jobs.filter(HarvestJob.status.in_(["New", "Running"])).count():
            continue
        if jobs.filter(HarvestJob.created >= slot_start).count():
            continue
        job = tk.get_action("harvest_job_create")(_context(), {"source_id": source.id, "run": True})
        started.append(job["id"])
        log.info("scheduled job %s for source %s (every %s min)", job["id"], source.id, minutes)
    return started


def requeue_stalled(fetch_seconds: float, gather_seconds: float) -> int:
    """Put back on their queue the messages a consumer took and never
    finished (its process died): their persistence keys have grown old."""
    connection = harvest_queue.get_connection()
    requeued = 0
    for routing_key, message_key, limit in (
        (harvest_queue.get_fetch_routing_key(), "harvest_object_id", fetch_seconds),
        (harvest_queue.get_gather_routing_key(), "harvest_job_id", gather_seconds),
    ):
        for key in connection.keys(routing_key + ":*"):
            taken = connection.get(key)
            if taken is None:
                continue
            age = dt.datetime.now() - dt.datetime.strptime(taken, "%Y-%m-%d %H:%M:%S.%f")
            if age.total_seconds() > limit:
                connection.rpush(routing_key, json.dumps({message_key: key.split(":")[-1]}))
                connection.delete(key)
                requeued += 1
                log.warning("requeued %s taken %ss ago by a consumer that did not finish", key, int(age.total_seconds()))
    return requeued


def close_reports() -> int:
    """Close the report of every job ckanext-harvest has marked finished."""
    closed = 0
    open_reports = model.Session.execute(
        records.harvest_report.select().where(records.harvest_report.c.outcome == "running")
    ).mappings().all()
    for report in open_reports:
        job = model.Session.get(HarvestJob, report["job_id"])
        if job is None or job.status != "Finished":
            continue
        records.finish_report(report["job_id"], "finished")
        closed += 1
    model.Session.commit()
    if closed:
        # After every job, the index must match the database.
        index_check.repair(index_check.compare())
    return closed


def tick(now: dt.datetime | None = None) -> None:
    """One round of the scheduler's duties."""
    now = now or dt.datetime.utcnow()
    config = tk.config
    try:
        start_due_jobs(now)
        tk.get_action("harvest_jobs_run")(_context(), {})
        requeue_stalled(config.get("ckanext.shanghai.harvest.stalled_fetch_seconds"),
                        config.get("ckanext.shanghai.harvest.stalled_gather_seconds"))
        close_reports()
    finally:
        model.Session.remove()


def run_scheduler() -> None:
    interval = tk.config.get("ckanext.shanghai.harvest.scheduler_seconds")
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("harvest scheduler running every %ss", interval)
    while not stopping:
        try:
            tick()
        except Exception:
            log.exception("harvest scheduler tick failed; trying again next tick")
        deadline = time.monotonic() + interval
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.2)

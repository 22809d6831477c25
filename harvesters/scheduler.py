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

import sqlalchemy as sa

import ckan.model as model
import ckan.plugins as plugins
import ckan.plugins.toolkit as tk
from ckanext.harvest import queue as harvest_queue
from ckanext.harvest.model import HarvestGatherError, HarvestJob, HarvestObject, HarvestSource

from ckanext.shanghai.harvesters.index import check as index_check
from ckanext.shanghai.harvesters import records

log = logging.getLogger(__name__)


def _context() -> dict:
    site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})
    return {"user": site_user["name"], "ignore_auth": True, "model": model, "session": model.Session}


# ckanext-harvest's own update frequencies (the source form's field), as
# schedule slots; a source's ``schedule_minutes`` config takes precedence.
FREQUENCY_MINUTES = {"ALWAYS": 1, "DAILY": 24 * 60, "WEEKLY": 7 * 24 * 60, "BIWEEKLY": 14 * 24 * 60,
                     "MONTHLY": 30 * 24 * 60}


def schedule_minutes(source: HarvestSource) -> int | None:
    try:
        minutes = json.loads(source.config or "{}").get("schedule_minutes")
    except (ValueError, AttributeError):
        minutes = None
    if isinstance(minutes, (int, float)) and minutes >= 1:
        return int(minutes)
    return FREQUENCY_MINUTES.get((source.frequency or "MANUAL").upper())


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


def requeue_lost(fetch_seconds: float, gather_seconds: float) -> int:
    """Put back work whose queue message is gone (Redis restarted without
    persistence, say): a running job waiting for its gather with no gather
    message anywhere, or whose unfinished objects have not moved for
    ``fetch_seconds`` while the fetch queue is empty and nothing is in hand.
    Importing is idempotent, so a message sent twice does no harm."""
    connection = harvest_queue.get_connection()
    fetch_key, gather_key = harvest_queue.get_fetch_routing_key(), harvest_queue.get_gather_routing_key()
    now = dt.datetime.utcnow()
    requeued = 0
    queued_gathers = set(connection.lrange(gather_key, 0, -1))
    for job in model.Session.query(HarvestJob).filter(HarvestJob.status == "Running"):
        message = json.dumps({"harvest_job_id": job.id})
        in_hand = connection.exists(f"{gather_key}:{job.id}")
        if job.gather_finished is None:
            waited = now - (job.gather_started or job.created)
            if not in_hand and message not in queued_gathers and waited.total_seconds() > (
                    gather_seconds if job.gather_started else fetch_seconds):
                connection.rpush(gather_key, message)
                requeued += 1
                log.warning("job %s lost its gather message; requeued", job.id)
            continue
        if connection.llen(fetch_key) or connection.keys(f"{fetch_key}:*"):
            continue
        unfinished = model.Session.query(HarvestObject).filter(
            HarvestObject.harvest_job_id == job.id, HarvestObject.state.in_(["WAITING", "FETCH", "IMPORT"]))
        last_move = model.Session.query(sa.func.max(sa.func.greatest(
            HarvestObject.gathered, HarvestObject.fetch_started, HarvestObject.import_finished))).filter(
            HarvestObject.harvest_job_id == job.id).scalar()
        if last_move is None or (now - last_move).total_seconds() <= fetch_seconds:
            continue
        lost = [obj.id for obj in unfinished]
        for object_id in lost:
            connection.rpush(fetch_key, json.dumps({"harvest_object_id": object_id}))
        if lost:
            requeued += len(lost)
            log.warning("job %s: %d harvest objects lost their fetch messages; requeued", job.id, len(lost))
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


def finish_jobs(source_id: str | None = None) -> list[str]:
    """Mark finished every running job whose gather is done and whose
    objects are all imported or failed, with the time of its last import,
    and reindex its source (its page shows the last job), as ckanext-harvest's
    harvest_jobs_run does; a job idle for longer than ``ckan.harvest.timeout``
    minutes (when set) is finished with a gather error saying so.

    The portal's own step, not harvest_jobs_run: that also calls
    resubmit_objects, which sends again every waiting object missing from
    the queue list, including objects a consumer holds or a gather is still
    writing, so they would be imported twice at once. requeue_stalled and
    requeue_lost put back lost work safely instead.

    :returns: the ids of the jobs marked finished
    """
    running = model.Session.query(HarvestJob).filter(HarvestJob.status == "Running")
    if source_id:
        running = running.filter(HarvestJob.source_id == source_id)
    timeout = tk.config.get("ckan.harvest.timeout")
    now = dt.datetime.utcnow()
    finished = []
    for job in running.all():
        if timeout and now - job.get_last_action_time() > dt.timedelta(minutes=int(timeout)):
            job.status, job.finished = "Finished", now
            HarvestGatherError(message=f"采集任务超过 {timeout} 分钟无进展，已结束 / "
                                       f"Job timed out: no progress for {timeout} minutes", job=job).save()
        elif job.gather_finished is None or model.Session.query(HarvestObject.id).filter(
                HarvestObject.harvest_job_id == job.id,
                HarvestObject.state.notin_(["COMPLETE", "ERROR"])).count():
            continue
        else:
            last_import = model.Session.query(sa.func.max(HarvestObject.import_finished)).filter(
                HarvestObject.harvest_job_id == job.id).scalar()
            job.status, job.finished = "Finished", last_import or job.gather_finished
        job.save()
        finished.append(job.id)
        log.info("job %s of source %s finished", job.id, job.source_id)
        tk.get_action("harvest_source_reindex")(_context(), {"id": job.source_id})
    return finished


def tick(now: dt.datetime | None = None) -> None:
    """One round of the scheduler's duties."""
    now = now or dt.datetime.utcnow()
    config = tk.config
    try:
        start_due_jobs(now)
        finish_jobs()
        stalled = (config.get("ckanext.shanghai.harvest.stalled_fetch_seconds"),
                   config.get("ckanext.shanghai.harvest.stalled_gather_seconds"))
        requeue_stalled(*stalled)
        requeue_lost(*stalled)
        close_reports()
        _queue_link_checks()
    finally:
        model.Session.remove()


def _queue_link_checks() -> None:
    """The link checker's rounds run on CKAN's job worker; this process,
    the portal's clock, queues one when it is due."""
    if not plugins.plugin_loaded("shanghai_portal"):
        return
    from ckanext.shanghai.assessment import links

    try:
        links.enqueue_round_if_due()
    except Exception:  # the harvest's duties go on without link checks
        log.exception("could not queue a link check round")


def run_scheduler() -> None:
    run_every(tk.config.get("ckanext.shanghai.harvest.scheduler_seconds"), tick, "harvest scheduler")


def run_every(interval: float, step, what: str) -> None:
    """Call ``step`` every ``interval`` seconds until SIGTERM or SIGINT; a
    step that fails is logged and the next one runs as planned."""
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("%s running every %ss", what, interval)
    while not stopping:
        try:
            step()
        except Exception:
            log.exception("%s: a round failed; trying again next round", what)
        deadline = time.monotonic() + interval
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.2)

"""Harvest queue consumers that survive being idle.

ckanext-harvest 1.6.3's Redis consumer blocks in ``BLPOP`` with no timeout on
a connection made with redis-py's default socket timeout, which redis-py 8
(pinned by CKAN 2.12) sets to 5 seconds: an idle gather or fetch consumer
dies with ``redis.exceptions.TimeoutError`` five seconds after its queue
empties. These consumers block for a bounded time instead, on a connection
whose socket timeout is longer than that block, and loop; they hand every
message to ckanext-harvest's own ``gather_callback`` / ``fetch_callback`` so
the harvest semantics (acks, retries, persistence keys) stay the same.
"""
from __future__ import annotations

import contextlib
import datetime
import importlib
import json
import logging
import signal
import threading
import time

import redis
from sqlalchemy.orm import selectinload

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.lib import search
from ckan.lib.search.common import SearchIndexError
from ckanext.harvest import queue as harvest_queue
from ckanext.harvest.model import HarvestJob, HarvestObject

from ckanext.shanghai.harvesters import pipeline

log = logging.getLogger(__name__)



def idle_safe_connection(poll_seconds: int) -> redis.Redis:
    """A Redis connection whose socket timeout outlasts a ``poll_seconds`` BLPOP."""
    return redis.Redis.from_url(
        tk.config["ckan.redis.url"],
        decode_responses=True,
        encoding="utf-8",
        socket_timeout=poll_seconds + 10,
        socket_connect_timeout=10,
        socket_keepalive=True,
        health_check_interval=poll_seconds,
        retry_on_timeout=True,
    )


class IdleSafeRedisConsumer(harvest_queue.RedisConsumer):
    """ckanext-harvest's Redis consumer with a bounded, repeated BLPOP."""

    def __init__(self, connection: redis.Redis, routing_key: str, poll_seconds: float,
                 on_idle=None, batch_size: int = 1, until_idle: bool = False):
        super().__init__(connection, routing_key)
        # Stop, rather than wait for more, once the queue is empty and the
        # work in hand is finished (a drain: ``harvest-consumer --until-idle``).
        self.until_idle = until_idle
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.in_hand: list[str] = []
        self.hand_lock = threading.Lock()
        self.stopping = False
        self.busy = False
        # Called when the queue is empty; returns True while it still has
        # work to finish soon (the next wait is then short).
        self.on_idle = on_idle or (lambda: False)
        self.work_pending = False
        # Set when on_idle could not finish its work (Solr away): the next
        # try waits a second rather than a tenth of one.
        self.idle_failed = False

    def consume(self, queue=None):
        while not self.stopping:
            self.busy = False
            try:
                # Work waiting to be finished (a Solr commit) is done as soon
                # as the queue stays empty for a moment: the last batch of a
                # harvest is searchable a tenth of a second after it is written.
                timeout = (1 if self.idle_failed else 0.1) if self.work_pending else self.poll_seconds
                popped = self.redis.blpop(self.routing_key, timeout=timeout)
                if popped is not None:
                    bodies = [popped[1]]
                    if self.batch_size > 1:
                        # Whatever else is already waiting, up to a batch, without blocking.
                        bodies += self.redis.lpop(self.routing_key, self.batch_size - 1) or []
                    self.in_hand = bodies
                    self.touch()
            except (redis.ConnectionError, redis.TimeoutError) as error:
                # Redis restarting: wait one poll and reconnect rather than die
                # (messages taken just before it went are sent again by the
                # scheduler's requeue_lost).
                log.warning("Redis unavailable for %s, retrying: %s", self.routing_key, error)
                self.in_hand = []
                self.redis.connection_pool.disconnect()
                time.sleep(min(self.poll_seconds, 5))
                continue
            if popped is None:
                self.busy = True
                self.work_pending = self.idle_failed = self.on_idle()
                if self.until_idle and not self.work_pending:
                    return
                continue
            self.busy = True
            self.idle_failed = False
            yield bodies
            self.in_hand = []

    def touch(self) -> None:
        """Mark the messages in hand as taken now. Same value format as
        ckanext-harvest, whose `harvester run` re-queues messages whose
        persistence key has grown old; the heartbeat refreshes it while a
        long gather or batch is still being worked on, so only the work of a
        consumer that died ever looks stalled."""
        now = str(datetime.datetime.now())
        with self.hand_lock:
            for body in self.in_hand:
                self.redis.set(self.persistance_key(body), now)

    def basic_ack(self, message):
        # Under the lock, so the heartbeat cannot mark it taken again after.
        with self.hand_lock:
            self.in_hand = [body for body in self.in_hand if body != message]
            super().basic_ack(message)

    def start_heartbeat(self, every: float) -> None:
        def beat():
            while not self.stopping:
                time.sleep(every)
                try:
                    self.touch()
                except (redis.ConnectionError, redis.TimeoutError):
                    pass

        threading.Thread(target=beat, daemon=True, name="harvest-heartbeat").start()


def fetch_batch(consumer: IdleSafeRedisConsumer, bodies: list[str]) -> None:
    """ckanext-harvest's fetch_callback for many messages at once: the same
    checks (unknown object, too many retries, job already finished), then
    one ``import_batch`` per harvester that has one (the portal's), and
    ckanext-harvest's own one-object stages for any other harvester."""
    wanted = {}
    for body in bodies:
        try:
            wanted[json.loads(body)["harvest_object_id"]] = body
        except (KeyError, ValueError, TypeError):
            log.error("fetch message without a harvest object id: %s", body[:200])
            consumer.basic_ack(body)
    # With their extras (the import reads each one's status): one query, not one per object.
    objects = model.Session.query(HarvestObject).options(selectinload(HarvestObject.extras)).filter(
        HarvestObject.id.in_(list(wanted))).all() if wanted else []
    for missing in set(wanted) - {obj.id for obj in objects}:
        log.error("harvest object %s does not exist", missing)
        consumer.basic_ack(wanted.pop(missing))
    finished_jobs = {job.id for job in model.Session.query(HarvestJob).filter(
        HarvestJob.id.in_({obj.harvest_job_id for obj in objects}), HarvestJob.status == "Finished")} \
        if objects else set()
    runnable = []
    for obj in objects:
        if obj.state in ("COMPLETE", "ERROR"):
            # Delivered again after it was finished (put back as stalled
            # while its batch was still being written): nothing to do.
            continue
        obj.retry_times += 1
        if obj.retry_times >= 5:
            log.error("too many consecutive retries for harvest object %s", obj.id)
            obj.state = "ERROR"
        elif obj.harvest_job_id in finished_jobs:
            log.error("job %s was aborted or timed out; harvest object %s set to error",
                      obj.harvest_job_id, obj.id)
            obj.state, obj.report_status = "ERROR", "errored"
        else:
            runnable.append(obj)
    model.Session.commit()
    by_type: dict[str, list] = {}
    for obj in runnable:
        by_type.setdefault(obj.source.type, []).append(obj)
    runnable_ids = [obj.id for obj in runnable]
    try:
        for source_type, group in by_type.items():
            harvester = harvest_queue.get_harvester(source_type)
            if harvester is None:
                log.error("no harvester for source type %s", source_type)
            elif hasattr(harvester, "import_batch"):
                harvester.import_batch(group)
            else:
                for obj in group:
                    harvest_queue.fetch_and_import_stages(harvester, obj)
    except pipeline.SERVICE_ERRORS:
        # A service outage is not the objects' fault: take back this try,
        # so that only real failures use up their five retries.
        model.Session.rollback()
        with contextlib.suppress(*pipeline.SERVICE_ERRORS):
            model.Session.query(HarvestObject).filter(HarvestObject.id.in_(runnable_ids)).update(
                {"retry_times": HarvestObject.retry_times - 1}, synchronize_session=False)
            model.Session.commit()
        raise
    model.Session.remove()
    for body in wanted.values():
        consumer.basic_ack(body)


def gather_message(consumer: IdleSafeRedisConsumer, bodies: list[str]) -> None:
    """ckanext-harvest's gather_callback, except that a gather that fails
    (a service down, the process killed) leaves its message unacknowledged,
    so the scheduler runs it again, instead of losing the job."""
    for body in bodies:
        try:
            job = model.Session.get(HarvestJob, json.loads(body)["harvest_job_id"])
        except (KeyError, ValueError, TypeError):
            log.error("gather message without a harvest job id: %s", body[:200])
            consumer.basic_ack(body)
            continue
        if job is not None and (job.gather_finished is not None or job.status == "Finished"):
            # A copy of a message whose gather already ran (put back while
            # that gather was still going): gathering again would disturb it.
            log.warning("gather of job %s already done; message dropped", job.id)
            consumer.basic_ack(body)
            continue
        harvester = harvest_queue.get_harvester(job.source.type) if job is not None else None
        if job is None or harvester is None:
            # ckanext-harvest reports these and finishes the job.
            harvest_queue.gather_callback(consumer, harvest_queue.FakeMethod(body), consumer, body)
            continue
        object_ids = pipeline.gather_job(harvester, job)
        publisher = harvest_queue.get_fetch_publisher()
        # The portal's harvesters' JobObjectIds (read from the database page
        # by page), another harvester's list; False or None from a gather
        # that failed.
        for object_id in object_ids or []:
            publisher.send({"harvest_object_id": object_id})
        publisher.close()
        model.Session.remove()
        consumer.basic_ack(body)


class IndexBatcher:
    """Lets the fetch consumer commit the Solr index once per batch of
    imported records (or as soon as its queue empties) instead of once per
    record, as CKAN's package_create otherwise does."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.pending = 0
        if tk.config.get("ckan.search.solr_commit"):
            # New records are indexed uncommitted whatever this says; CKAN's
            # own updates and deletes commit one by one unless it is off.
            log.info("ckan.search.solr_commit is on: updates and withdrawals commit Solr one by one "
                     "(the consumers' configuration turns it off; see config/README.md)")

    def after_messages(self, number: int) -> bool:
        self.pending += number
        if self.pending >= self.batch_size:
            self.commit()
        return self.pending > 0

    def commit(self) -> bool:
        """Commit what is pending; True while Solr could not be reached
        (the consumer then tries again within a second)."""
        if self.pending:
            try:
                search.commit()
            except SearchIndexError as error:
                log.warning("Solr commit failed, will retry: %s", str(error)[:200])
                return True
            self.pending = 0
        return False


QUEUES = {
    "gather": (harvest_queue.get_gather_routing_key, gather_message),
    "fetch": (harvest_queue.get_fetch_routing_key, fetch_batch),
}


def run_consumer(kind: str, until_idle: bool = False) -> None:
    """Consume the ``kind`` ("gather" or "fetch") queue until SIGTERM or SIGINT,
    finishing the message in hand before stopping. A message whose handling
    fails is logged and the consumer goes on.

    :param until_idle: return as soon as the queue is empty and the work in
        hand is done (a drain, as ``harvest-consumer --until-idle`` and the
        tests run it), instead of waiting for more
    """
    routing_key_of, callback = QUEUES[kind]
    if kind == "gather":
        # Loaded before listening, not by the first job that names a new
        # department (its slug is spelled in pinyin): half a second saved there.
        importlib.import_module("pypinyin")
    # A drain waits only a moment on an empty queue before it stops.
    poll_seconds = 0.2 if until_idle else tk.config.get("ckanext.shanghai.harvest.queue_poll_seconds")
    batch = tk.config.get("ckanext.shanghai.harvest.index_batch")
    batcher = IndexBatcher(batch) if kind == "fetch" else None
    consumer = IdleSafeRedisConsumer(idle_safe_connection(poll_seconds), routing_key_of(), poll_seconds,
                                     on_idle=batcher.commit if batcher else None,
                                     batch_size=tk.config.get("ckanext.shanghai.harvest.fetch_batch")
                                     if kind == "fetch" else 1, until_idle=until_idle)

    def stop(signum, frame):
        consumer.stopping = True
        if not consumer.busy:
            # Idle in BLPOP: nothing in hand, leave at once.
            raise SystemExit(0)
        log.info("%s consumer stopping after the current message", kind)

    if not until_idle:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    consumer.start_heartbeat(tk.config.get("ckanext.shanghai.harvest.heartbeat_seconds"))
    log.info("%s consumer listening on %s (poll %ss)", kind, consumer.routing_key, poll_seconds)
    try:
        for bodies in consumer.consume():
            try:
                callback(consumer, bodies)
            except Exception:
                # Left unacknowledged: the scheduler puts the messages back
                # once they are stalled (a service was down, say).
                log.exception("%s consumer: messages failed: %s", kind, bodies[0][:200])
                model.Session.rollback()
                model.Session.remove()
                time.sleep(min(poll_seconds, 5))
            if batcher:
                consumer.work_pending = batcher.after_messages(len(bodies))
    finally:
        consumer.stopping = True
        if batcher:
            batcher.commit()

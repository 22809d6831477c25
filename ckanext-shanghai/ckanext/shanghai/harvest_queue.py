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

import datetime
import json
import logging
import signal
import time

import redis

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.lib import search
from ckanext.harvest import queue as harvest_queue
from ckanext.harvest.model import HarvestJob, HarvestObject

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

    def __init__(self, connection: redis.Redis, routing_key: str, poll_seconds: int,
                 on_idle=None, batch_size: int = 1):
        super().__init__(connection, routing_key)
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.stopping = False
        self.busy = False
        # Called when the queue is empty; returns True while it still has
        # work to finish soon (the next wait is then short).
        self.on_idle = on_idle or (lambda: False)
        self.work_pending = False

    def consume(self, queue=None):
        while not self.stopping:
            self.busy = False
            try:
                timeout = 1 if self.work_pending else self.poll_seconds
                popped = self.redis.blpop(self.routing_key, timeout=timeout)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                # Redis restarting: wait one poll and reconnect rather than die.
                log.warning("Redis unavailable for %s, retrying: %s", self.routing_key, error)
                self.redis.connection_pool.disconnect()
                time.sleep(min(self.poll_seconds, 5))
                continue
            if popped is None:
                self.busy = True
                self.work_pending = self.on_idle()
                continue
            self.busy = True
            _key, body = popped
            bodies = [body]
            if self.batch_size > 1:
                # Whatever else is already waiting, up to a batch, without blocking.
                bodies += self.redis.lpop(self.routing_key, self.batch_size - 1) or []
            for body in bodies:
                # Same value format as ckanext-harvest, whose `harvester run`
                # re-queues messages whose persistence key has grown old.
                self.redis.set(self.persistance_key(body), str(datetime.datetime.now()))
            yield bodies


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
    objects = model.Session.query(HarvestObject).filter(HarvestObject.id.in_(list(wanted))).all() \
        if wanted else []
    for missing in set(wanted) - {obj.id for obj in objects}:
        log.error("harvest object %s does not exist", missing)
        consumer.basic_ack(wanted.pop(missing))
    finished_jobs = {job.id for job in model.Session.query(HarvestJob).filter(
        HarvestJob.id.in_({obj.harvest_job_id for obj in objects}), HarvestJob.status == "Finished")} \
        if objects else set()
    runnable = []
    for obj in objects:
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
    for source_type, group in by_type.items():
        harvester = harvest_queue.get_harvester(source_type)
        if harvester is None:
            log.error("no harvester for source type %s", source_type)
        elif hasattr(harvester, "import_batch"):
            harvester.import_batch(group)
        else:
            for obj in group:
                harvest_queue.fetch_and_import_stages(harvester, obj)
    model.Session.remove()
    for body in wanted.values():
        consumer.basic_ack(body)


def gather_message(consumer: IdleSafeRedisConsumer, bodies: list[str]) -> None:
    for body in bodies:
        harvest_queue.gather_callback(consumer, harvest_queue.FakeMethod(body), consumer, body)


class IndexBatcher:
    """Lets the fetch consumer commit the Solr index once per batch of
    imported records (or as soon as its queue empties) instead of once per
    record, as CKAN's package_create otherwise does."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.pending = 0
        tk.config["ckan.search.solr_commit"] = False

    def after_messages(self, number: int) -> bool:
        self.pending += number
        if self.pending >= self.batch_size:
            self.commit()
        return self.pending > 0

    def commit(self) -> bool:
        if self.pending:
            search.commit()
            self.pending = 0
        return False


QUEUES = {
    "gather": (harvest_queue.get_gather_routing_key, gather_message),
    "fetch": (harvest_queue.get_fetch_routing_key, fetch_batch),
}


def run_consumer(kind: str) -> None:
    """Consume the ``kind`` ("gather" or "fetch") queue until SIGTERM or SIGINT,
    finishing the message in hand before stopping. A message whose handling
    fails is logged and the consumer goes on."""
    routing_key_of, callback = QUEUES[kind]
    poll_seconds = tk.config.get("ckanext.shanghai.harvest.queue_poll_seconds")
    batch = tk.config.get("ckanext.shanghai.harvest.index_batch")
    batcher = IndexBatcher(batch) if kind == "fetch" else None
    consumer = IdleSafeRedisConsumer(idle_safe_connection(poll_seconds), routing_key_of(), poll_seconds,
                                     on_idle=batcher.commit if batcher else None,
                                     batch_size=tk.config.get("ckanext.shanghai.harvest.fetch_batch")
                                     if kind == "fetch" else 1)

    def stop(signum, frame):
        consumer.stopping = True
        if not consumer.busy:
            # Idle in BLPOP: nothing in hand, leave at once.
            raise SystemExit(0)
        log.info("%s consumer stopping after the current message", kind)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("%s consumer listening on %s (poll %ss)", kind, consumer.routing_key, poll_seconds)
    try:
        for bodies in consumer.consume():
            try:
                callback(consumer, bodies)
            except Exception:
                log.exception("%s consumer: messages failed: %s", kind, bodies[0][:200])
                model.Session.rollback()
                model.Session.remove()
            if batcher:
                consumer.work_pending = batcher.after_messages(len(bodies))
    finally:
        if batcher:
            batcher.commit()

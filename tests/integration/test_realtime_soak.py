"""Soak of real-time push (issue 16, Reliability): a generator pushes a
known sequence of observations (new ones, late ones older than what is
kept, and batches sent again after a lost answer) through the public push
endpoint while the receiving web process is killed (SIGKILL) and started
again, the stream server is killed (SIGKILL, at half-time) and started
again, and Redis and PostgreSQL are restarted; subscribers follow the
product's stream address (a 307 to the stream server), reconnecting with
Last-Event-ID whenever it breaks.

At the end the latest table holds each key's newest observation, the
history holds every distinct observation sent exactly once (0 lost, 0
duplicated, 0 older over newer), and every subscriber saw every event
once, in order. Bounded: SHANGHAI_SOAK_SECONDS (default 120; the issue's
closing note asks for a run of about ten minutes, 600)."""
from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
import sqlalchemy.exc

import ckan.model as model
from ckan.tests import factories, helpers

from portal_testing import ROOT, make_department, port_of, restart_service, start_streams

SECONDS = float(os.environ.get("SHANGHAI_SOAK_SECONDS", "120"))

# The run itself lasts SECONDS; the checks after it and the services' restarts
# get five minutes more than that, whatever the suite's per-test timeout.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("clean_db"), pytest.mark.timeout(SECONDS + 300)]
KEYS = 200
SUBSCRIBERS = 3
FIELDS = [{"id": "carpark_id", "type": "text"}, {"id": "observed_at", "type": "timestamp"},
          {"id": "free_spaces", "type": "int"}]


class _Service:
    """A process group the soak kills outright or stops at the end."""

    process: subprocess.Popen | None = None

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


class Web(_Service):
    """The receiving process, gunicorn as `make serve` runs it, on the test port."""

    def __init__(self, ckan_ini: Path, logs: Path):
        self.ckan_ini, self.log = ckan_ini, logs / "soak-web.log"
        self.port = int(os.environ["SHANGHAI_TEST_PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        gunicorn = str(Path(os.sys.executable).parent / "gunicorn")
        self.process = subprocess.Popen(
            [gunicorn, "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--threads", "8",
             "--graceful-timeout", "10", "ckanext.shanghai.wsgi:application"],
            env=dict(os.environ, CKAN_INI=str(self.ckan_ini)), stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
        self.starts += 1
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/api/3/action/status_show", timeout=3):
                    return
            except OSError:
                assert self.process.poll() is None and time.monotonic() < deadline, self.log.read_text()[-3000:]
                time.sleep(0.3)


class Streams(_Service):
    """The stream server, as `make serve` runs it beside the web app."""

    def __init__(self, ckan_ini: Path, logs: Path):
        self.ckan_ini, self.log = ckan_ini, logs / "soak-streams.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.process = start_streams(self.ckan_ini, self.log)
        self.starts += 1


class Generator(threading.Thread):
    """Round r observes every key at T0 + r seconds; every fifth round also
    sends a late observation (older than the round before it) for a tenth
    of the keys, and every third round sends the previous batch again.
    Each push is retried until the portal answers 200: a push whose answer
    was lost may have been applied, and applying it again must change
    nothing."""

    def __init__(self, base: str, resource_id: str, key: str, start: dt.datetime):
        super().__init__(daemon=True)
        self.base, self.resource_id, self.key, self.start_at = base, resource_id, key, start
        self.stopping = threading.Event()
        self.sent: dict[tuple[str, dt.datetime], int] = {}
        self.newest: dict[str, tuple[dt.datetime, int]] = {}
        self.pushes = self.retries = 0
        self.problem: str | None = None

    def batch(self, moment: dt.datetime, keys: range, value) -> list[dict]:
        return [{"carpark_id": f"K{k:03d}", "observed_at": moment.isoformat(), "free_spaces": value(k)}
                for k in keys]

    def push(self, records: list[dict]) -> None:
        body = json.dumps({"records": records}).encode()
        while True:
            request = urllib.request.Request(f"{self.base}/api/realtime/{self.resource_id}/push", data=body,
                                             headers={"Content-Type": "application/json", "X-Push-Key": self.key})
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    json.load(answer)
                break
            except urllib.error.HTTPError as error:
                if error.code < 500:
                    self.problem = f"push refused with {error.code}: {error.read()[:500]!r}"
                    raise
            except (OSError, http.client.HTTPException, ValueError):
                pass
            self.retries += 1
            time.sleep(0.3)
        self.pushes += 1
        for record in records:
            moment = dt.datetime.fromisoformat(record["observed_at"])
            self.sent[(record["carpark_id"], moment)] = record["free_spaces"]
            newest = self.newest.get(record["carpark_id"])
            if newest is None or moment > newest[0]:
                self.newest[record["carpark_id"]] = (moment, record["free_spaces"])

    def run(self) -> None:
        previous: list[dict] = []
        round_number = 0
        while not self.stopping.is_set():
            round_number += 1
            moment = self.start_at + dt.timedelta(seconds=round_number)
            records = self.batch(moment, range(KEYS), lambda k: (k * 7 + round_number * 13) % 500)
            self.push(records)
            if round_number % 5 == 0:
                late = moment - dt.timedelta(seconds=1.5)
                self.push(self.batch(late, range(0, KEYS, 10), lambda k: 1000 + round_number))
            if round_number % 3 == 0 and previous:
                self.push(previous)
            previous = records
            time.sleep(0.2)


class Subscriber(threading.Thread):
    """Follows the stream from the first event, reconnecting with the last
    id it saw whenever the connection breaks."""

    def __init__(self, port: int, resource_id: str):
        super().__init__(daemon=True)
        self.port, self.resource_id = port, resource_id
        self.stopping = threading.Event()
        self.events: list[tuple[int, str, dt.datetime]] = []
        self.last = 0
        self.connections = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
            try:
                # The web app hands the subscriber over to the stream server.
                connection.request("GET", f"/api/realtime/{self.resource_id}/stream",
                                   headers={"Last-Event-ID": str(self.last)})
                answer = connection.getresponse()
                answer.read()
                connection.close()
                if answer.status == 307:
                    target = urllib.parse.urlsplit(answer.getheader("Location"))
                    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=20)
                    connection.request("GET", f"{target.path}?{target.query}",
                                       headers={"Last-Event-ID": str(self.last)})
                    answer = connection.getresponse()
                    if answer.status == 200:
                        self.connections += 1
                        self._read(answer)
            except (OSError, http.client.HTTPException, ValueError):
                pass
            finally:
                connection.close()
            self.stopping.wait(0.3)

    def _read(self, answer) -> None:
        event_id = None
        for raw in answer:
            line = raw.decode("utf-8").rstrip("\n")
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: ") and event_id is not None:
                data = json.loads(line[6:])
                self.events.append((event_id, data["key"], dt.datetime.fromisoformat(data["observed"])))
                self.last = event_id
            elif not line:
                event_id = None
            if self.stopping.is_set():
                return


def _riding_out_restarts(function, timeout: float = 120):
    """Ask the database, riding out a restart's broken connections."""
    from ckanext.datastore.backend.postgres import get_write_engine

    deadline = time.monotonic() + timeout
    while True:
        try:
            return function()
        except sqlalchemy.exc.DBAPIError:
            assert time.monotonic() < deadline
            model.Session.rollback()
            model.Session.remove()
            get_write_engine().dispose()
            time.sleep(1)


def history(resource_id: str) -> list[tuple[int, str, dt.datetime, dict]]:
    from ckanext.datastore.backend.postgres import get_write_engine

    with get_write_engine().connect() as connection:
        return [(row.id, row.key, row.observed, json.loads(row.record) if isinstance(row.record, str) else row.record)
                for row in connection.execute(sa.text(
                    "select id, key, observed, record from shanghai_rt_history where resource_id = :r order by id"),
                    {"r": resource_id})]


def test_push_history_and_streams_lose_nothing_through_kills_and_restarts(ckan_ini, tmp_path):
    department = make_department(name="soak-jtw", title="上海市交通委员会（浸泡测试）")
    editor = factories.User()
    helpers.call_action("organization_member_create", id=department["id"], username=editor["name"], role="editor")
    as_editor = {"user": editor["name"], "ignore_auth": False}
    package = helpers.call_action("package_create", context=dict(as_editor), name="soak-carparks",
                                  title="停车场浸泡测试", owner_org=department["id"], data_domain="road-transport",
                                  update_frequency="realtime", open_condition="unconditional")
    product = helpers.call_action("shanghai_realtime_product_create", context=dict(as_editor),
                                  package_id=package["id"], fields=FIELDS, key_field="carpark_id",
                                  time_field="observed_at", refresh_seconds=10)
    key = helpers.call_action("shanghai_realtime_key_create", context=dict(as_editor),
                              id=product["resource_id"])["key"]
    resource_id = product["resource_id"]

    web = Web(ckan_ini, tmp_path)
    web.start()
    streams = Streams(ckan_ini, tmp_path)
    streams.start()
    generator = Generator(web.base, resource_id, key,
                          dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=2))
    subscribers = [Subscriber(web.port, resource_id) for _ in range(SUBSCRIBERS)]
    faults = [(0.2, "web killed", lambda: (web.kill(), time.sleep(1), web.start())),
              (0.4, "redis restarted", lambda: restart_service("redis", signal.SIGTERM, port_of("ckan.redis.url"))),
              (0.5, "stream server killed", lambda: (streams.kill(), time.sleep(1), streams.start())),
              (0.6, "postgres restarted",
               lambda: restart_service("postgres", signal.SIGINT, port_of("sqlalchemy.url"))),
              (0.8, "web killed again", lambda: (web.kill(), time.sleep(1), web.start()))]
    try:
        for thread in (generator, *subscribers):
            thread.start()
        started = time.monotonic()
        for share, _what, inject in faults:
            time.sleep(max(started + share * SECONDS - time.monotonic(), 0))
            assert generator.is_alive(), generator.problem
            inject()
        time.sleep(max(started + SECONDS - time.monotonic(), 0))
        generator.stopping.set()
        generator.join(timeout=120)
        assert not generator.is_alive() and generator.problem is None, generator.problem

        rows = _riding_out_restarts(lambda: history(resource_id))
        newest_id = rows[-1][0]
        deadline = time.monotonic() + 120
        while any(s.last < newest_id for s in subscribers) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        for subscriber in subscribers:
            subscriber.stopping.set()
        generator.stopping.set()
        streams.stop()
        web.stop()

    # The history: every distinct observation sent, once; nothing else.
    kept = [(key_, observed) for _id, key_, observed, _record in rows]
    assert len(kept) == len(set(kept)), "an observation is in the history twice"
    assert set(kept) == set(generator.sent), (
        f"lost {len(set(generator.sent) - set(kept))}, unexpected {len(set(kept) - set(generator.sent))}")
    assert all(record["free_spaces"] == generator.sent[(key_, observed)] for _id, key_, observed, record in rows)
    # The latest table: each key's newest observation, never a late one over it.
    table = _riding_out_restarts(lambda: helpers.call_action("shanghai_realtime_search", id=resource_id,
                                                             limit=1000)["records"])
    assert {row["carpark_id"]: row["free_spaces"] for row in table} == {
        key_: value for key_, (_moment, value) in generator.newest.items()}
    assert all(row["free_spaces"] < 1000 for row in table), "a late observation overwrote a newer one"
    # Every subscriber saw every event once, in order, across its reconnects.
    ids = [row[0] for row in rows]
    for subscriber in subscribers:
        seen = [event[0] for event in subscriber.events]
        assert seen == ids, f"a subscriber saw {len(seen)} events, {len(set(seen))} distinct, of {len(ids)}"
        # Killing the web app no longer breaks a stream (the stream server
        # holds it); killing the stream server does.
        assert subscriber.connections >= 2, "the subscriber never had to reconnect"
    assert generator.retries > 0 and web.starts == 3 and streams.starts == 2
    print(f"soak {SECONDS:.0f}s: {generator.pushes} pushes, {generator.retries} retried, {len(rows)} observations "
          f"kept, {SUBSCRIBERS} subscribers with {[s.connections for s in subscribers]} connections each")

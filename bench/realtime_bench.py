"""Real-time push benchmark: a car-park table of 5,000 keys observed each
minute, pushed in batches through the portal's push action (keyed upsert
with history, out-of-order and repeat safe), against stock CKAN (one
``datastore_upsert`` call per observation, the only keyed path it has) and
the limit (PostgreSQL ``INSERT ... ON CONFLICT`` of the same batches into a
table of the same columns, nothing else), the three in turn, round by round.
Push to visible: from the push
call to the value answered by ``datastore_search``. Push to stream: from
the push call to the event's arrival on each of ``--streams`` Server-Sent
Events connections opened at the served web app's stream address, which
hands each over (307, with a ticket) to the stream server (``make bench``
starts both as `make serve` does). A benchmark, not a test.

    CKAN_INI=.local/bench.ini python bench/realtime_bench.py [--keys 5000] [--minutes 12] [--rounds 3] [--batch 1000] [--streams 100]
"""
from __future__ import annotations

import argparse
import configparser
import datetime as dt
import http.client
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harvest_bench  # noqa: E402
import limits  # noqa: E402
import report as bench_report  # noqa: E402

FIELDS = [{"id": "carpark_id", "type": "text"}, {"id": "observed_at", "type": "timestamp"},
          {"id": "free_spaces", "type": "int"}, {"id": "lng", "type": "float8"}, {"id": "lat", "type": "float8"}]


def observations(keys: int, minute: int, start: dt.datetime) -> list[dict]:
    moment = (start + dt.timedelta(minutes=minute)).isoformat()
    return [{"carpark_id": f"P{k:05d}", "observed_at": moment, "free_spaces": (k * 7 + minute * 13) % 400,
             "lng": 121.2 + (k % 100) / 200, "lat": 31.0 + (k // 100) / 200} for k in range(keys)]


def batches(records: list[dict], size: int) -> list[list[dict]]:
    return [records[i:i + size] for i in range(0, len(records), size)]


def product(context: dict) -> dict:
    import ckan.model as model
    import ckan.plugins.toolkit as tk

    owner = model.Group.get("bench-owner") or model.Group.get(tk.get_action("organization_create")(
        dict(context), {"name": "bench-owner", "title": "基准测试", "department_type": "other"})["id"])
    dataset = tk.get_action("package_create")(dict(context), {
        "name": f"bench-realtime-{int(time.time())}", "title": "实时泊位基准", "owner_org": owner.id,
        "data_domain": "road-transport", "update_frequency": "realtime", "open_condition": "unconditional"})
    return tk.get_action("shanghai_realtime_product_create")(dict(context), {
        "package_id": dataset["id"], "fields": FIELDS, "key_field": "carpark_id",
        "time_field": "observed_at", "refresh_seconds": 60})


def ours(context: dict, resource_id: str, keys: int, minutes: range, size: int, start: dt.datetime) -> dict:
    """Push ``minutes`` of observations in batches through the push action;
    after each push, the last value is asked back through ``datastore_search``."""
    import ckan.plugins.toolkit as tk

    push = tk.get_action("shanghai_realtime_push")
    search = tk.get_action("datastore_search")
    pushed, seconds, visible = 0, 0.0, []
    for minute in minutes:
        for chunk in batches(observations(keys, minute, start), size):
            started = time.perf_counter()
            push(dict(context), {"id": resource_id, "records": chunk})
            seconds += time.perf_counter() - started
            last = chunk[-1]
            found = search(dict(context), {"resource_id": resource_id, "filters": {"carpark_id": last["carpark_id"]}})
            if found["records"][0]["free_spaces"] != last["free_spaces"]:
                raise RuntimeError("a pushed value is not visible after the push returned")
            visible.append(time.perf_counter() - started)
            pushed += len(chunk)
    return {"observations": pushed, "seconds": seconds, "visible": visible}


def history_bytes(resource_id: str) -> dict:
    """Bytes the history takes per observation (table, indexes and TOAST of
    every partition; one product in the bench, so all rows are its) and
    per day at 5,000 keys a minute (7.2 million observations)."""
    import sqlalchemy as sa
    from ckanext.datastore.backend.postgres import get_write_engine

    with get_write_engine().connect() as connection:
        rows = connection.execute(sa.text("select count(*) from shanghai_rt_history where resource_id = :r"),
                                  {"r": resource_id}).scalar()
        size = connection.execute(sa.text(
            "select coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) from pg_inherits i "
            "where i.inhparent = 'shanghai_rt_history'::regclass")).scalar()
    size = int(size)  # PostgreSQL's sum() of bigints is numeric (a Decimal), which JSON cannot hold
    per_observation = size / rows if rows else 0
    return {"rows": rows, "bytes": size, "bytes_per_observation": round(per_observation, 1),
            "bytes_per_day_at_5000_keys_per_minute": round(per_observation * 7_200_000)}


def stock_table(context: dict, package_id: str) -> str:
    """A stock keyed DataStore table of the same columns."""
    import ckan.plugins.toolkit as tk

    return tk.get_action("datastore_create")(dict(context), {
        "resource": {"package_id": package_id, "name": "stock"},
        "fields": FIELDS, "primary_key": ["carpark_id"], "force": True})["resource_id"]


def stock(context: dict, resource_id: str, records: list[dict]) -> dict:
    """One datastore_upsert per observation (stock CKAN's only keyed path)."""
    import ckan.plugins.toolkit as tk

    upsert = tk.get_action("datastore_upsert")
    started = time.perf_counter()
    for record in records:
        upsert(dict(context), {"resource_id": resource_id, "records": [record], "method": "upsert", "force": True})
    return {"observations": len(records), "seconds": time.perf_counter() - started}


class Limit:
    """INSERT ... ON CONFLICT of the same batches into a plain keyed table of
    the same columns, nothing else."""

    STATEMENT = (
        "insert into bench_rt_limit select * from jsonb_populate_recordset(null::bench_rt_limit, cast(:rows as jsonb)) "
        "on conflict (carpark_id) do update set observed_at = excluded.observed_at, "
        "free_spaces = excluded.free_spaces, lng = excluded.lng, lat = excluded.lat "
        "where bench_rt_limit.observed_at < excluded.observed_at")

    def __init__(self):
        import sqlalchemy as sa
        import ckan.plugins.toolkit as tk

        self.sa = sa
        self.engine = sa.create_engine(tk.config["ckan.datastore.write_url"])
        with self.engine.begin() as connection:
            connection.execute(sa.text("drop table if exists bench_rt_limit; create table bench_rt_limit ("
                                       "carpark_id text primary key, observed_at timestamp, free_spaces int, "
                                       "lng float8, lat float8)"))

    def push(self, keys: int, minutes: range, size: int, start: dt.datetime, passes: int = 3) -> dict:
        """The same batches ``passes`` times, the table put back as it was
        before each pass (untimed); the median pass counts, since one pass
        is short enough for one slow moment of the machine to swing it."""
        text = self.sa.text
        with self.engine.begin() as connection:
            connection.execute(text("drop table if exists bench_rt_before; "
                                    "create table bench_rt_before as select * from bench_rt_limit"))
        times = []
        for number in range(passes):
            if number:
                with self.engine.begin() as connection:
                    connection.execute(text("truncate bench_rt_limit; "
                                            "insert into bench_rt_limit select * from bench_rt_before"))
            pushed, seconds = 0, 0.0
            for minute in minutes:
                for chunk in batches(observations(keys, minute, start), size):
                    started = time.perf_counter()
                    with self.engine.begin() as connection:
                        connection.execute(text(self.STATEMENT), {"rows": json.dumps(chunk)})
                    seconds += time.perf_counter() - started
                    pushed += len(chunk)
            times.append(seconds)
        with self.engine.begin() as connection:
            connection.execute(text("drop table bench_rt_before"))
        return {"observations": pushed, "seconds": statistics.median(times)}

    def close(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(self.sa.text("drop table bench_rt_limit"))
        self.engine.dispose()


def interleaved(context: dict, declared: dict, keys: int, minutes: int, size: int, stock_sample: int,
                rounds: int, start: dt.datetime) -> tuple[dict, dict, dict]:
    """Ours, stock and the limit in turn, ``rounds`` times, each round on
    its own minutes (each side pushes the same new observations), so a slow
    stretch of a shared machine falls on all three; totals over the rounds,
    and each round's own rates."""
    stock_resource = stock_table(context, declared["package_id"])
    engine = Limit()
    sides = {"ours": {"observations": 0, "seconds": 0.0, "rounds": []},
             "stock": {"observations": 0, "seconds": 0.0, "rounds": []},
             "limit": {"observations": 0, "seconds": 0.0, "rounds": []}}
    visible: list[float] = []
    per_round = max(1, minutes // rounds)
    for number in range(rounds):
        span = range(number * per_round, (number + 1) * per_round)
        sample = observations(keys, span[0], start)[:max(1, stock_sample // rounds)]
        measured = {"ours": ours(context, declared["resource_id"], keys, span, size, start),
                    "stock": stock(context, stock_resource, sample),
                    "limit": engine.push(keys, span, size, start)}
        visible += measured["ours"].pop("visible")
        for name, run in measured.items():
            side = sides[name]
            side["observations"] += run["observations"]
            side["seconds"] += run["seconds"]
            side["rounds"].append(round(run["observations"] / run["seconds"], 1))
    engine.close()
    for side in sides.values():
        side["per_second"] = side["observations"] / side["seconds"]
    sides["ours"]["push_to_visible"] = limits.percentiles(visible)
    return sides["ours"], sides["stock"], sides["limit"]


class Follower(threading.Thread):
    """One stream connection; records when each (key, observed) arrives."""

    def __init__(self, base: str, resource_id: str):
        super().__init__(daemon=True)
        self.parts = urllib.parse.urlsplit(base)
        self.path = f"/api/realtime/{resource_id}/stream"
        self.open = threading.Event()
        self.arrived: dict[tuple[str, str], float] = {}

    def run(self) -> None:
        try:
            connection = http.client.HTTPConnection(self.parts.hostname, self.parts.port, timeout=120)
            connection.request("GET", self.path)
            answer = connection.getresponse()
            if answer.status == 307:  # to the stream server, with a ticket
                answer.read()
                connection.close()
                target = urllib.parse.urlsplit(answer.getheader("Location"))
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                connection.request("GET", f"{target.path}?{target.query}")
                answer = connection.getresponse()
            if answer.status != 200:
                return
            self.open.set()
            for raw in answer:
                line = raw.decode("utf-8")
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                    self.arrived[(data["key"], data["record"]["observed_at"])] = time.monotonic()
        except (OSError, http.client.HTTPException, ValueError):
            return


def _health(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.load(answer)
    except (OSError, ValueError):
        return {}


def streams(context: dict, resource_id: str, base: str, count: int, rounds: int, keys: int) -> dict:
    """Push ``rounds`` batches of ``keys`` observations (in process, as the
    push endpoint does) while ``count`` stream connections are open; the
    time from each push call to the arrival of its last observation on
    each open stream."""
    import ckan.plugins.toolkit as tk

    health = f"{tk.config.get('ckanext.shanghai.realtime.stream_url').rstrip('/')}/health"
    before = _health(health)
    followers = [Follower(base, resource_id) for _ in range(count)]
    for follower in followers:
        follower.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(f.open.is_set() for f in followers):
        time.sleep(0.2)
    opened = [f for f in followers if f.open.is_set()]
    push = tk.get_action("shanghai_realtime_push")
    sent = []
    for _ in range(rounds):
        moment = dt.datetime.now(dt.timezone.utc)
        local = moment.astimezone(dt.timezone(dt.timedelta(hours=8))).replace(tzinfo=None).isoformat()
        records = [{"carpark_id": f"S{k:05d}", "observed_at": moment.isoformat(), "free_spaces": k % 400,
                    "lng": 121.4, "lat": 31.2} for k in range(keys)]
        started = time.monotonic()
        push(dict(context), {"id": resource_id, "records": records})
        sent.append((started, (records[-1]["carpark_id"], local)))
        time.sleep(1)
    time.sleep(5)
    latencies, missing = [], 0
    for follower in opened:
        for started, event in sent:
            if event in follower.arrived:
                latencies.append(follower.arrived[event] - started)
            else:
                missing += 1
    after = _health(health)
    result = {"streams_asked": count, "streams_open": len(opened), "rounds": rounds, "keys_per_push": keys,
              "not_delivered": missing, "via": "stream server (307 from the web app's stream address)",
              # The stream server's history reads meanwhile: one per new batch
              # for all the streams, plus each stream's own catch-up on opening.
              "stream_server_reads": {k: after.get(k, 0) - before.get(k, 0)
                                      for k in ("fanout_reads", "catch_up_reads", "notifications")}}
    if latencies:
        result.update(limits.percentiles(latencies))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=5000, help="car parks (keys) observed each minute")
    parser.add_argument("--minutes", type=int, default=12, help="minutes of observations pushed (over all rounds)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of ours, stock and the limit in turn")
    parser.add_argument("--batch", type=int, default=1000, help="observations per push")
    parser.add_argument("--stock-sample", type=int, default=1000, help="observations upserted one by one (stock)")
    parser.add_argument("--streams", type=int, default=100, help="stream connections open during push to stream")
    args, _others = parser.parse_known_args()  # the other benchmarks' options

    app = harvest_bench.ckan_app()
    with app.test_request_context():
        context = harvest_bench._context()
        start = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=args.minutes + 1)).replace(microsecond=0)
        declared = product(context)
        run, peer, engine = interleaved(context, declared, args.keys, args.minutes, args.batch, args.stock_sample,
                                        args.rounds, start)
        storage = history_bytes(declared["resource_id"])
        parser_ini = configparser.ConfigParser(interpolation=None, strict=False)
        parser_ini.read(os.environ["CKAN_INI"], encoding="utf-8")
        follow = streams(context, declared["resource_id"], parser_ini["app:main"]["ckan.site_url"].rstrip("/"),
                         args.streams, 20, 100)
    results = [
        bench_report.figure("realtime_push_observations_per_second", round(run["per_second"], 1), "obs/s",
                            better="higher", stock=round(peer["per_second"], 1), limit=round(engine["per_second"], 1),
                            limit_of="INSERT ... ON CONFLICT of the same batches, nothing else",
                            target="ratio >= 10, value >= 2000", detail={"ours": run, "stock": peer, "limit": engine,
                                                                         "keys": args.keys, "batch": args.batch}),
        bench_report.figure("realtime_push_to_visible_p95", run["push_to_visible"]["p95_ms"], "ms", better="lower",
                            target="value <= 1000", detail=run["push_to_visible"]),
    ]
    # -1: no observation reached a stream (none could be opened).
    results.append(bench_report.figure("realtime_push_to_stream_p95", follow.get("p95_ms", -1), "ms", better="lower",
                                       target=f"value <= 1000 with {args.streams} open streams", detail=follow))
    results.append(bench_report.figure("realtime_history_bytes_per_observation", storage["bytes_per_observation"],
                                       "bytes", better="lower", detail=storage))
    bench_report.publish("realtime", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Harvest import benchmark: the portal's import path against the stock path
(one package_create per record, Solr committing each, as stock harvesters do),
in the same run on the same stack. Prints a table and writes the figures to
bench/results/latest.json. Run by `make bench`; a benchmark, not a test.

    CKAN_INI=.local/bench.ini python bench/harvest_bench.py [--large 50000] [--stock 1000]
"""
from __future__ import annotations

import argparse
import importlib
import json
import statistics
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "config"))

import corpus  # noqa: E402
import limits  # noqa: E402
import report as bench_report  # noqa: E402
from stack import fetch_consumers as make_serve_fetch_consumers  # noqa: E402

CATALOG = ROOT / "config" / "demo" / "catalogs" / "shanghai.json"


def write_json(records: list[dict], directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def tk_config(key: str):
    import ckan.plugins.toolkit as tk

    return tk.config.get(key)


def ckan_app():
    from ckan.cli import load_config
    from ckan.config.middleware import make_app

    return make_app(load_config(os.environ["CKAN_INI"]))._wsgi_app


def _bench_source(export: Path, label: str, mapping: str = "shanghai") -> dict:
    import ckan.model as model
    import ckan.plugins.toolkit as tk

    context = _context()
    owner = model.Group.get("bench-owner") or model.Group.get(tk.get_action("organization_create")(
        dict(context), {"name": "bench-owner", "title": "基准测试", "department_type": "other"})["id"])
    return tk.get_action("harvest_source_create")(dict(context), {
        "name": f"bench-{label}-{int(time.time())}", "url": str(export), "title": label,
        "source_type": "shanghai_agency_export", "owner_org": owner.id,
        "config": json.dumps({"mapping": mapping}),
    })


def _context() -> dict:
    import ckan.plugins.toolkit as tk

    return {"user": tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"], "ignore_auth": True}


def gather_only(export: Path, label: str) -> dict:
    """The gather stage alone, in this process, with its peak Python memory."""
    import ckan.plugins.toolkit as tk
    from ckanext.harvest import queue as harvest_queue
    from ckanext.harvest.model import HarvestJob
    from ckanext.shanghai.harvesters import pipeline, records

    source = _bench_source(export, label)
    job = HarvestJob.get(tk.get_action("harvest_job_create")(_context(), {"source_id": source["id"],
                                                                        "run": False})["id"])
    job.status = "Running"
    job.save()
    # Loaded before measuring, as the gather consumer loads it before it
    # listens: its pinyin tables (some 45 MB) are the process's, not a gather's.
    importlib.import_module("pypinyin")
    started = time.perf_counter()
    tracemalloc.start()
    # As the gather consumer runs it (queue.gather_message), reading every
    # object id it would send to the fetch queue.
    object_ids = pipeline.gather_job(harvest_queue.get_harvester("shanghai_agency_export"), job)
    for _object_id in object_ids or []:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    seconds = time.perf_counter() - started
    report = records.report_for_job(job.id)
    return {"records": report["records_read"], "seconds": seconds,
            "gather_records_per_second": report["records_read"] / seconds,
            "gather_peak_mb": peak / 2**20, "export_mb": export.stat().st_size / 2**20,
            "source_id": source["id"], "job_id": job.id}


def on_raw_connection(measure, *args):
    """``measure(connection, *args)`` on a DBAPI connection of CKAN's engine."""
    import ckan.model as model

    connection = model.meta.engine.raw_connection()
    try:
        return measure(connection, *args)
    finally:
        connection.close()


def gather_limit(export: Path, job_id: str) -> dict:
    """The engines doing a gather's work alone: Python reading the export
    and hashing each record, then PostgreSQL taking the rows the gather
    wrote for ``job_id`` (harvest objects, records, rejections) with COPY."""
    reading = limits.read_and_hash_rate(export)
    copy = on_raw_connection(limits.copy_rows_rate, {
        "harvest_object": f"SELECT * FROM harvest_object WHERE harvest_job_id = '{job_id}'",
        "shanghai_harvest_record": f"SELECT * FROM shanghai_harvest_record WHERE last_seen_job_id = '{job_id}'",
        "shanghai_harvest_rejection": f"SELECT * FROM shanghai_harvest_rejection WHERE job_id = '{job_id}'",
    })
    seconds = reading["seconds"] + copy["seconds"]
    return {"records": reading["records"], "seconds": seconds,
            "records_per_second": reading["records"] / seconds, "reading": reading, "postgresql_copy": copy}


def rerun_limit(export: Path, source_id: str) -> dict:
    """The engines recognising an unchanged export alone: Python reading and
    hashing every record, PostgreSQL handing over the source's stored hashes."""
    reading = limits.read_and_hash_rate(export)
    lookup = on_raw_connection(limits.select_rate, "SELECT identity, content_hash FROM shanghai_harvest_record "
                                                   f"WHERE source_id = '{source_id}'")
    seconds = reading["seconds"] + lookup["seconds"]
    return {"records": reading["records"], "seconds": seconds,
            "records_per_second": reading["records"] / seconds, "reading": reading, "postgresql_select": lookup}


def queue_path(export: Path, label: str, fetch_consumers: int, logs: Path, mapping: str = "shanghai") -> dict:
    """The product's own path end to end: one gather consumer and
    ``fetch_consumers`` fetch consumers (as `make serve` runs them) harvest
    the export; timed from the job's start until every object is final and
    the new packages are searchable in Solr."""
    import ckan.model as model
    import ckan.plugins.toolkit as tk
    from ckanext.harvest.model import HarvestJob, HarvestObject
    from ckanext.shanghai.harvesters import scheduler as harvest_scheduler
    from ckanext.shanghai.harvesters import records

    source = _bench_source(export, label, mapping)
    consumers = [_start_consumer("gather", logs / f"{label}-gather.log")] + [
        _start_consumer("fetch", logs / f"{label}-fetch{n}.log") for n in range(fetch_consumers)]
    try:
        _wait_listening(len(consumers), consumers)
        started = time.perf_counter()
        job_id = tk.get_action("harvest_job_create")(_context(), {"source_id": source["id"], "run": True})["id"]
        while True:
            time.sleep(0.2)
            model.Session.remove()
            job = HarvestJob.get(job_id)
            if job.gather_finished is None:
                if any(c.poll() is not None for c in consumers):
                    raise RuntimeError(f"a consumer died; see {logs}")
                continue
            waiting = model.Session.query(HarvestObject).filter(
                HarvestObject.harvest_job_id == job_id,
                HarvestObject.state.in_(["WAITING", "FETCH", "IMPORT"])).count()
            report = records.report_for_job(job_id)
            if not waiting and _indexed(source["id"]) >= report["added"]:
                break
        seconds = time.perf_counter() - started
        gather_seconds = (job.gather_finished - job.gather_started).total_seconds()
    finally:
        for consumer in consumers:
            consumer.send_signal(signal.SIGTERM)
        for consumer in consumers:
            consumer.wait(60)
    harvest_scheduler.finish_jobs(source["id"])
    report = records.report_for_job(job_id)
    return {
        "fetch_consumers": fetch_consumers,
        "records": report["records_read"], "added": report["added"], "rejected": report["rejected"],
        "seconds": seconds, "gather_seconds": gather_seconds,
        "records_per_second": report["records_read"] / seconds,
        # Packages written per second: the figure comparable with the stock path.
        "added_per_second": report["added"] / seconds,
        "source_id": source["id"], "job_id": job_id,
    }


def consumer_ini() -> Path:
    """The configuration make serve gives the harvest consumers (config/stack/settings.py, harvest_ini)."""
    ini = Path(os.environ["CKAN_INI"])
    harvest = ini.with_name(f"{ini.stem}-harvest.ini")
    return harvest if harvest.exists() else ini


def engine_limit(job_id: str, batch: int, sample: int | None = None) -> dict:
    """The same work for the engines alone: the Solr documents of the
    products this job wrote (the first ``sample`` of them, if given), built
    beforehand (not timed), sent to Solr's /update in batches of the fetch
    consumers' size (the median of three passes); and the same catalog rows
    (package, resource, package_tag, member, activity) written with
    PostgreSQL COPY. Datasets per second of the two in sequence."""
    import ckan.model as model
    import ckan.plugins.toolkit as tk
    from ckanext.harvest.model import HarvestObject
    from ckanext.shanghai.harvesters.index import bulk

    ids = [row.package_id for row in model.Session.query(HarvestObject.package_id).filter(
        HarvestObject.harvest_job_id == job_id, HarvestObject.report_status == "added",
        HarvestObject.package_id.isnot(None)).order_by(HarvestObject.package_id)]
    ids = ids[:sample] if sample else ids
    docs = []
    for start in range(0, len(ids), batch):
        docs += bulk.build_documents(bulk.show_pairs(ids[start:start + batch]))
    model.Session.remove()
    solr = limits.solr_update_rate(tk.config["solr_url"], docs, batch, repeat=3)
    listed = "ARRAY[" + ",".join(f"'{i}'" for i in ids) + "]"
    copy = on_raw_connection(limits.copy_rows_rate, {
        "package": f"SELECT * FROM package WHERE id = ANY({listed})",
        "resource": f"SELECT * FROM resource WHERE package_id = ANY({listed})",
        "package_tag": f"SELECT * FROM package_tag WHERE package_id = ANY({listed})",
        "member": f"SELECT * FROM member WHERE table_id = ANY({listed})",
        "activity": f"SELECT * FROM activity WHERE object_id = ANY({listed})",
    })
    seconds = solr["seconds"] + copy["seconds"]
    return {"datasets": len(ids), "seconds": seconds, "datasets_per_second": len(ids) / seconds,
            "solr_update": solr, "postgresql_copy": copy}


def _start_consumer(kind: str, log: Path) -> subprocess.Popen:
    ckan = Path(sys.executable).parent / "ckan"
    return subprocess.Popen([str(ckan), "-c", str(consumer_ini()), "shanghai", "harvest-consumer", kind],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _wait_listening(number: int, consumers: list, timeout: float = 120) -> None:
    """Until ``number`` consumers wait on their queues (BLPOP in Redis)."""
    import ckan.plugins.toolkit as tk
    import redis

    connection = redis.Redis.from_url(tk.config["ckan.redis.url"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(client.get("cmd") == "blpop" for client in connection.client_list()) >= number:
            return
        if any(c.poll() is not None for c in consumers):
            break
        time.sleep(0.5)
    raise RuntimeError("harvest consumers did not start")


def _indexed(source_id: str) -> int:
    from ckan.lib import search

    conn = search.make_connection()
    return conn.search("*:*", fq=f'harvest_source_id:"{source_id}"', rows=0).hits


def relabel(records_: list[dict], label: str) -> list[dict]:
    """The records with a label in each title, so each run's records are new
    to the catalog (a record's identity includes its title)."""
    return [dict(record, 数据集名称=f"{record['数据集名称']}（{label}）") for record in records_]


def _rerun_once(source_id: str) -> dict:
    """The same source gathered again, unchanged: every record is
    recognised by its hash and nothing is queued."""
    import ckan.plugins.toolkit as tk
    from ckanext.harvest import queue as harvest_queue
    from ckanext.harvest.model import HarvestJob
    from ckanext.shanghai.harvesters import pipeline, records

    job_id = tk.get_action("harvest_job_create")(_context(), {"source_id": source_id, "run": False})["id"]
    job = HarvestJob.get(job_id)
    job.status = "Running"
    job.save()
    started = time.perf_counter()
    pipeline.gather_job(harvest_queue.get_harvester("shanghai_agency_export"), job)
    seconds = time.perf_counter() - started
    report = records.report_for_job(job_id)
    # Finished as the consumers would finish it, so the next run may start.
    job.status = "Finished"
    job.save()
    return {"records": report["records_read"], "unchanged": report["unchanged"], "seconds": seconds,
            "records_per_second": report["records_read"] / seconds}


def our_second_run(source_id: str, export: Path, rounds: int = 3) -> dict:
    """The same source again, unchanged, ``rounds`` times, each run followed
    by its limit (a run takes about a second: one slow moment would
    otherwise decide the figure); the median of each."""
    runs, limits_ = [], []
    for _round in range(rounds):
        runs.append(_rerun_once(source_id))
        limits_.append(rerun_limit(export, source_id))
    middle = statistics.median(run["records_per_second"] for run in runs)
    middle_limit = statistics.median(limit["records_per_second"] for limit in limits_)
    return {**runs[0], "records_per_second": middle, "runs": runs,
            "limit": {**limits_[0], "records_per_second": middle_limit, "runs": limits_}}


def stock_packages(records_: list[dict], limit: int) -> list[dict]:
    """The first ``limit`` records mapped to packages, as a stock harvester's
    import stage would hand them to package_create."""
    import ckan.model as model
    from ckanext.shanghai.harvesters.mapping import MAPPINGS_DIR, load_mapping

    mapping = load_mapping(MAPPINGS_DIR / "shanghai.yaml")
    owner = model.Group.get("bench-owner")
    packages = []
    for record in records_:
        try:
            mapped = mapping.apply(record)
        except Exception:
            continue
        packages.append(dict(mapped.package, type=mapped.dataset_type, owner_org=owner.id,
                             name="stock-" + mapped.package["name"][:90]))
        if len(packages) >= limit:
            break
    return packages


class StockPath:
    """One package_create per record through the action API, as a stock
    harvester's import stage does (activity stream on, Solr commit each),
    run a part at a time between our runs so that the machine's slow and
    quick stretches fall on both sides; ``result`` sums the parts."""

    def __init__(self, packages: list[dict], parts: int):
        import ckan.plugins.toolkit as tk

        self.user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
        size = -(-len(packages) // parts)
        self.parts = [packages[start:start + size] for start in range(0, len(packages), size)]
        self.done: list[dict] = []

    def next_part(self) -> None:
        import ckan.model as model
        import ckan.plugins.toolkit as tk

        packages = self.parts[len(self.done)]
        created = failed = 0
        started = time.perf_counter()
        for package in packages:
            try:
                tk.get_action("package_create")({"user": self.user}, package)
                created += 1
            except tk.ValidationError:
                model.Session.rollback()
                failed += 1
        self.done.append({"records": len(packages), "created": created, "failed": failed,
                          "seconds": time.perf_counter() - started})

    def result(self) -> dict:
        while len(self.done) < len(self.parts):
            self.next_part()
        records = sum(part["records"] for part in self.done)
        seconds = sum(part["seconds"] for part in self.done)
        return {"records": records, "created": sum(part["created"] for part in self.done),
                "failed": sum(part["failed"] for part in self.done), "seconds": seconds,
                "records_per_second": records / seconds,
                "parts": [round(part["records"] / part["seconds"], 2) for part in self.done]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=50_000, help="size of the large corpus")
    parser.add_argument("--stock", type=int, default=500, help="records run through the stock path")
    parser.add_argument("--fetch-consumers", type=int, default=make_serve_fetch_consumers(),
                        help="fetch consumers for the headline run (default: as many as make serve "
                             "starts, FETCH_CONSUMERS: one more than the cores)")
    parser.add_argument("--large-import", action="store_true",
                        help="also import the large corpus through the consumers; by default only "
                             "its gather stage runs, for the memory figure")
    args, _others = parser.parse_known_args()  # the other benchmarks' options

    real = json.loads(CATALOG.read_text(encoding="utf-8"))
    app = ckan_app()
    with tempfile.TemporaryDirectory(prefix="harvest-bench-", dir=os.environ.get("BENCH_TMP")) as tmp, \
            app.test_request_context():
        directory = Path(tmp)
        # The first harvest on a freshly started stack also creates the
        # export's 56 departments and runs while Solr's JVM is still
        # compiling its hot code: reported on its own. Solr keeps getting
        # faster over the next few thousand documents, so the headline run
        # (as many fetch consumers as make serve starts) comes last; the
        # stock path runs between the warm runs, on the same stack, its
        # department already there.
        cold = queue_path(write_json(relabel(real, "首次"), directory, "cold.json"), "cold",
                          args.fetch_consumers, directory)
        # The stock path in three parts, one before each of our warm runs.
        stock_run = StockPath(stock_packages(real, args.stock), parts=3)
        stock_run.next_part()
        single = queue_path(write_json(relabel(real, "单"), directory, "single.json"), "single", 1, directory)
        stock_run.next_part()
        two = queue_path(write_json(relabel(real, "双"), directory, "two.json"), "two", 2, directory) \
            if args.fetch_consumers != 2 else None
        stock_run.next_part()
        shanghai_path = write_json(real, directory, "shanghai.json")
        shanghai = queue_path(shanghai_path, "shanghai", args.fetch_consumers, directory)
        stock = stock_run.result()
        again = our_second_run(shanghai["source_id"], shanghai_path)
        limit = engine_limit(shanghai["job_id"], tk_config("ckanext.shanghai.harvest.fetch_batch"))
        small_path = write_json(relabel(real, "内存"), directory, "memory.json")
        small_gather = gather_only(small_path, "memory")
        small_gather["limit"] = gather_limit(small_path, small_gather["job_id"])
        large_path = write_json(corpus.copies(relabel(real, "大"), args.large, "数据集名称"), directory, "large.json")
        large_gather = gather_only(large_path, "large-gather")
        large_gather["limit"] = gather_limit(large_path, large_gather["job_id"])
        large = queue_path(large_path, "large", args.fetch_consumers, directory) if args.large_import else None
    stock_rate = round(stock["records_per_second"], 1)
    limit_rate = round(limit["datasets_per_second"], 1)
    limit_of = (f"Solr /update of the same documents in batches of {limit['solr_update']['batch']} "
                "plus PostgreSQL COPY of the same rows")

    def written(name: str, run: dict, target: str | None = None) -> dict:
        return bench_report.figure(name, round(run["added_per_second"], 1), "datasets/s", better="higher",
                                   stock=stock_rate, limit=limit_rate, limit_of=limit_of, target=target,
                                   detail=run)

    results = [
        written("harvest_shanghai_datasets_written_per_second", shanghai, target="ratio >= 10"),
        written("harvest_shanghai_first_run_cold_stack_datasets_written_per_second", cold),
        written("harvest_shanghai_datasets_written_per_second_1_fetch_consumer", single),
        *([written("harvest_shanghai_datasets_written_per_second_2_fetch_consumers", two)] if two else []),
        # Records read (the export's, repeats included) against the engines'
        # time for the same job.
        bench_report.figure("harvest_shanghai_source_records_per_second", round(shanghai["records_per_second"], 1),
                            "records/s", better="higher",
                            stock=stock_rate,
                            limit=round(shanghai["records"] / limit["seconds"], 1),
                            limit_of=limit_of + ", over the records read"),
        bench_report.figure("harvest_shanghai_unchanged_rerun_records_per_second",
                            round(again["records_per_second"], 1), "records/s", better="higher",
                            limit=round(again["limit"]["records_per_second"], 1),
                            limit_of="Python reading and hashing the export, PostgreSQL handing over the "
                                     "stored hashes", detail=again),
        bench_report.figure(f"harvest_large_{args.large}_gather_records_per_second",
                            round(large_gather["gather_records_per_second"], 1), "records/s", better="higher",
                            limit=round(large_gather["limit"]["records_per_second"], 1),
                            limit_of="Python reading and hashing the export, then PostgreSQL COPY of the "
                                     "rows the gather wrote", detail=large_gather),
        bench_report.figure("harvest_gather_peak_mb_shanghai", round(small_gather["gather_peak_mb"], 2), "MB",
                            better="lower", limit=round(small_gather["export_mb"], 2),
                            limit_of="the export file held once in memory",
                            detail=small_gather),
        bench_report.figure(f"harvest_gather_peak_mb_large_{args.large}", round(large_gather["gather_peak_mb"], 2),
                            "MB", better="lower", limit=round(large_gather["export_mb"], 2),
                            limit_of="the export file held once in memory"),
    ]
    if large:
        results.append(written(f"harvest_large_{args.large}_datasets_written_per_second", large))
    # The peer and the limit themselves, for the record (every figure above
    # already carries them).
    bench_report.publish("harvest", results, peers={"stock_package_create": stock, "engine_limit": limit})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Harvest import benchmark: the portal's import path against the stock path
(one package_create per record, Solr committing each, as stock harvesters do),
in the same run on the same stack. Prints a table and writes the figures to
bench/results/latest.json. Run by `make bench`; a benchmark, not a test.

    CKAN_INI=.local/bench.ini python bench/harvest_bench.py [--large 50000] [--stock 1000]
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT.parent / "shared" / "data" / "catalogs" / "shanghai.json"
RESULTS = ROOT / "bench" / "results" / "latest.json"

DISTRICTS = ["黄浦区", "徐汇区", "长宁区", "静安区", "普陀区", "虹口区", "杨浦区", "闵行区",
             "宝山区", "嘉定区", "浦东新区", "金山区", "松江区", "青浦区", "奉贤区", "崇明区"]


def build_corpus(records: list[dict], size: int, seed: int = 2026) -> list[dict]:
    """``size`` records built from the real ones: each copy gets its own
    identity and a district and year in its title, so titles stay real
    Chinese text but the catalog grows to city scale."""
    rng = random.Random(seed)
    corpus = []
    for number in range(size):
        base = copy.deepcopy(records[number % len(records)])
        round_ = number // len(records)
        if round_:
            district = rng.choice(DISTRICTS)
            base["数据集名称"] = f"{district}{base['数据集名称']}（{2015 + round_ % 10}年）"
            base["详情页网址"] = base["详情页网址"].replace("id=", f"id=R{round_}X", 1)
        corpus.append(base)
    return corpus


def write_json(records: list[dict], directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def ckan_app():
    from ckan.cli import load_config
    from ckan.config.middleware import make_app

    return make_app(load_config(os.environ["CKAN_INI"]))._wsgi_app


def our_path(export: Path, label: str, import_objects: bool = True) -> dict:
    """Gather + import through the agency export harvester, synchronously
    (gather only when ``import_objects`` is false)."""
    import ckan.model as model
    import ckan.plugins.toolkit as tk
    from ckanext.harvest import queue as harvest_queue
    from ckanext.harvest.model import HarvestJob, HarvestObject
    from ckanext.shanghai.harvesters import records
    from ckanext.shanghai.harvesters.writer import batched_index_commits

    context = {"user": tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"], "ignore_auth": True}
    owner = model.Group.get("bench-owner") or model.Group.get(tk.get_action("organization_create")(
        dict(context), {"name": "bench-owner", "title": "基准测试", "department_type": "other"})["id"])
    source = tk.get_action("harvest_source_create")(dict(context), {
        "name": f"bench-{label}-{int(time.time())}", "url": str(export), "title": label,
        "source_type": "shanghai_agency_export", "owner_org": owner.id,
        "config": json.dumps({"mapping": "shanghai"}),
    })
    job_id = tk.get_action("harvest_job_create")(dict(context), {"source_id": source["id"], "run": False})["id"]
    job = HarvestJob.get(job_id)
    harvester = harvest_queue.get_harvester("shanghai_agency_export")

    job.status = "Running"
    job.save()
    started = time.perf_counter()
    tracemalloc.start()
    object_ids = harvest_queue.gather_stage(harvester, job)
    _, gather_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gathered = time.perf_counter()
    if import_objects:
        with batched_index_commits():
            for object_id in object_ids:
                harvest_queue.fetch_and_import_stages(harvester, HarvestObject.get(object_id))
                model.Session.remove()
    finished = time.perf_counter()
    # Let ckanext-harvest mark the job finished, as the scheduler would.
    tk.get_action("harvest_jobs_run")(dict(context), {"source_id": source["id"]})
    report = records.report_for_job(job_id)
    return {
        "records": report["records_read"],
        "added": report["added"],
        "rejected": report["rejected"],
        "seconds": finished - started,
        "gather_seconds": gathered - started,
        "gather_records_per_second": report["records_read"] / (gathered - started),
        "imported": import_objects,
        "records_per_second": report["records_read"] / (finished - started),
        # Packages written per second: the figure comparable with the stock path.
        "added_per_second": report["added"] / (finished - started),
        "gather_peak_mb": gather_peak / 2**20,
        "job_id": job_id,
        "source_id": source["id"],
    }


def our_second_run(source_id: str) -> dict:
    """The same source again, unchanged: every record is recognised by hash."""
    import ckan.plugins.toolkit as tk
    from ckanext.harvest import queue as harvest_queue
    from ckanext.harvest.model import HarvestJob
    from ckanext.shanghai.harvesters import records

    context = {"user": tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"], "ignore_auth": True}
    job_id = tk.get_action("harvest_job_create")(dict(context), {"source_id": source_id, "run": False})["id"]
    job = HarvestJob.get(job_id)
    job.status = "Running"
    job.save()
    started = time.perf_counter()
    harvest_queue.gather_stage(harvest_queue.get_harvester("shanghai_agency_export"), job)
    seconds = time.perf_counter() - started
    report = records.report_for_job(job_id)
    return {"records": report["records_read"], "unchanged": report["unchanged"], "seconds": seconds,
            "records_per_second": report["records_read"] / seconds}


def stock_path(records_: list[dict], limit: int) -> dict:
    """One package_create per record through the action API, as a stock
    harvester's import stage does: activity stream on, Solr commit each."""
    import ckan.model as model
    import ckan.plugins.toolkit as tk
    from ckanext.shanghai.harvesters.mapping import MAPPINGS_DIR, load_mapping

    mapping = load_mapping(MAPPINGS_DIR / "shanghai.yaml")
    user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
    owner = model.Group.get("bench-owner")
    tk.config["ckan.search.solr_commit"] = True
    packages = []
    for record in records_:
        try:
            mapped = mapping.apply(record)
        except Exception:
            continue
        package = dict(mapped.package, type=mapped.dataset_type, owner_org=owner.id,
                       name="stock-" + mapped.package["name"][:90])
        packages.append(package)
        if len(packages) >= limit:
            break
    created = failed = 0
    started = time.perf_counter()
    for package in packages:
        try:
            tk.get_action("package_create")({"user": user}, package)
            created += 1
        except tk.ValidationError:
            model.Session.rollback()
            failed += 1
    seconds = time.perf_counter() - started
    return {"records": len(packages), "created": created, "failed": failed, "seconds": seconds,
            "records_per_second": len(packages) / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=50_000, help="size of the large corpus")
    parser.add_argument("--stock", type=int, default=500, help="records run through the stock path")
    parser.add_argument("--large-import", action="store_true",
                        help="also import the large corpus (about an hour at today's speed); "
                             "by default only its gather stage runs, for the memory figure")
    args = parser.parse_args()

    real = json.loads(CATALOG.read_text(encoding="utf-8"))
    app = ckan_app()
    results = []
    with tempfile.TemporaryDirectory(prefix="harvest-bench-", dir=os.environ.get("BENCH_TMP")) as tmp, \
            app.test_request_context():
        directory = Path(tmp)
        shanghai = our_path(write_json(real, directory, "shanghai.json"), "shanghai")
        again = our_second_run(shanghai["source_id"])
        stock = stock_path(real, args.stock)
        large = our_path(write_json(build_corpus(real, args.large), directory, "large.json"), "large",
                         import_objects=args.large_import)
    ratio = shanghai["added_per_second"] / stock["records_per_second"]
    results = [
        {"name": "harvest_shanghai_datasets_written_per_second", "value": round(shanghai["added_per_second"], 1),
         "unit": "datasets/s", "stock": round(stock["records_per_second"], 1), "ratio": round(ratio, 2),
         "detail": shanghai},
        {"name": "harvest_shanghai_source_records_per_second", "value": round(shanghai["records_per_second"], 1),
         "unit": "records/s"},
        {"name": "harvest_shanghai_unchanged_rerun_records_per_second",
         "value": round(again["records_per_second"], 1), "unit": "records/s", "detail": again},
        {"name": f"harvest_large_{args.large}_{'records' if args.large_import else 'gather'}_per_second",
         "value": round(large["records_per_second"] if args.large_import else large["gather_records_per_second"], 1),
         "unit": "records/s", "detail": large},
        {"name": "harvest_gather_peak_mb_shanghai", "value": round(shanghai["gather_peak_mb"], 2), "unit": "MB"},
        {"name": f"harvest_gather_peak_mb_large_{args.large}", "value": round(large["gather_peak_mb"], 2),
         "unit": "MB"},
        {"name": "stock_package_create_records_per_second", "value": round(stock["records_per_second"], 1),
         "unit": "records/s", "detail": stock},
    ]
    print(f"{'benchmark':<52} {'ours':>10} {'stock':>10} {'ratio':>7}")
    for row in results:
        print(f"{row['name']:<52} {row['value']:>10} {row.get('stock', ''):>10} {row.get('ratio', ''):>7}  {row['unit']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["harvest"] = {
        "when": dt.datetime.utcnow().isoformat(timespec="seconds") + "Z",
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "results": results,
    }
    RESULTS.write_text(json.dumps(existing, ensure_ascii=False, indent=1))
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""English queries on Chinese products: recall of the fifty hand-written
queries of bench/english_queries.yaml (the expected product on the first page
of results) over the Shanghai demo catalog harvested through the production
consumers, and what the machine translation costs per product. Writes the
figures to bench/results/latest.json (section "english") and the query-by-
query outcome to bench/results/english_recall.json. A benchmark, not a test.

    make bench BENCH=english
    CKAN_INI=.local/bench.ini python bench/english_bench.py
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import report as bench_report  # noqa: E402

CATALOG = ROOT / "config" / "demo" / "catalogs" / "shanghai.json"
QUERIES = ROOT / "bench" / "english_queries.yaml"
# Written after the glossary was last tuned, never used to tune it.
HELD_OUT = ROOT / "bench" / "english_queries_heldout.yaml"
DETAIL = ROOT / "bench" / "results" / "english_recall.json"
# The target: the expected product on the first page for >= 80%.
RECALL_TARGET = 0.8
# Put after each title, so the records are new to a stack where another
# benchmark harvested the same catalog; Latin, so it adds no English word
# that a query could meet in every product.
LABEL = "（EN）"


def ckan_app():
    from ckan.cli import load_config
    from ckan.config.middleware import make_app

    return make_app(load_config(os.environ["CKAN_INI"]))._wsgi_app


def _context() -> dict:
    import ckan.plugins.toolkit as tk

    return {"user": tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"], "ignore_auth": True}


def harvest_catalog(directory: Path) -> dict:
    """The demo catalog harvested as production does: a source, a job on the
    gather queue, the production consumers draining the queues in this
    process, the scheduler's step marking the job finished."""
    import ckan.model as model
    import ckan.plugins.toolkit as tk
    from ckanext.harvest import queue as harvest_queue
    from ckanext.shanghai.harvesters import queue, records
    from ckanext.shanghai.harvesters.scheduler import finish_jobs

    export = directory / "shanghai.json"
    catalog = json.loads(CATALOG.read_text(encoding="utf-8"))
    labelled = [dict(record, 数据集名称=f"{record['数据集名称'].strip()}{LABEL}") for record in catalog]
    export.write_text(json.dumps(labelled, ensure_ascii=False), encoding="utf-8")
    context = _context()
    owner = model.Group.get("english-bench-owner") or model.Group.get(tk.get_action("organization_create")(
        dict(context), {"name": "english-bench-owner", "title": "英文检索基准", "department_type": "other"})["id"])
    source = tk.get_action("harvest_source_create")(dict(context), {
        "name": f"english-bench-{int(time.time())}", "url": str(export), "title": "english bench",
        "source_type": "shanghai_agency_export", "owner_org": owner.id, "config": json.dumps({"mapping": "shanghai"}),
    })
    harvest_queue.purge_queues()
    started = time.perf_counter()
    job = tk.get_action("harvest_job_create")(_context(), {"source_id": source["id"], "run": True})
    queue.run_consumer("gather", until_idle=True)
    queue.run_consumer("fetch", until_idle=True)
    seconds = time.perf_counter() - started
    finish_jobs(source["id"])
    model.Session.remove()
    report = records.report_for_job(job["id"])
    return {"source_id": source["id"], "added": report["added"], "records": report["records_read"],
            "seconds": seconds}


def search(base: str, query: str, source_id: str, rows: int) -> list[dict]:
    """The first page of results for ``query`` through the portal's action
    API (the search page's package_search and its query shaping), among the
    products of this benchmark's harvest (other benchmarks' copies of the
    catalog may share the stack)."""
    params = urllib.parse.urlencode({"q": query, "rows": rows, "fq": f'harvest_source_id:"{source_id}"'})
    with urllib.request.urlopen(f"{base}/api/3/action/package_search?{params}", timeout=60) as response:
        return json.load(response)["result"]["results"]


def recall(base: str, source_id: str, rows: int, path: Path) -> tuple[float, list[dict]]:
    queries = yaml.safe_load(path.read_text(encoding="utf-8"))["queries"]
    outcome = []
    for entry in queries:
        results = search(base, entry["query"], source_id, rows)
        titles = [result["title"].strip().removesuffix(LABEL) for result in results]
        rank = titles.index(entry["expected"]) + 1 if entry["expected"] in titles else None
        outcome.append({"query": entry["query"], "expected": entry["expected"], "rank": rank,
                        "found": len(results), "first": [r.get("title_en") for r in results[:3]]})
    found = sum(1 for item in outcome if item["rank"])
    return found / len(queries), outcome


def translation_cost() -> dict:
    """Loading the lexicon once per process, then translating each product
    of the catalog (title and summary, as the write path does)."""
    from ckanext.shanghai import translation
    from ckanext.shanghai.translation import dictionary

    dictionary.lexicon.cache_clear()
    started = time.perf_counter()
    dictionary.lexicon()
    load_seconds = time.perf_counter() - started
    catalog = json.loads(CATALOG.read_text(encoding="utf-8"))
    started = time.perf_counter()
    for record in catalog:
        translation.translate_product(record.get("数据集名称"), record.get("摘要"))
    per_product_ms = (time.perf_counter() - started) * 1000 / len(catalog)
    return {"load_seconds": load_seconds, "per_product_ms": per_product_ms, "products": len(catalog)}


def site_url() -> str:
    import ckan.plugins.toolkit as tk

    return tk.config.get("ckan.site_url").rstrip("/")


def main() -> int:
    import ckan.plugins.toolkit as tk

    app = ckan_app()
    with tempfile.TemporaryDirectory(prefix="english-bench-", dir=os.environ.get("BENCH_TMP")) as tmp, \
            app.test_request_context():
        cost = translation_cost()
        harvest = harvest_catalog(Path(tmp))
        rows = tk.config.get("ckan.datasets_per_page")
        share, outcome = recall(site_url(), harvest["source_id"], rows, QUERIES)
        held_share, held_outcome = recall(site_url(), harvest["source_id"], rows, HELD_OUT)
    import_ms = harvest["seconds"] * 1000 / harvest["records"]
    # The write path translates once (schema validation) and the index once more.
    translation_share = 2 * cost["per_product_ms"] / import_ms
    DETAIL.parent.mkdir(parents=True, exist_ok=True)
    DETAIL.write_text(json.dumps({"recall": share, "rows": rows, "queries": outcome,
                                  "held_out_recall": held_share, "held_out": held_outcome},
                                 ensure_ascii=False, indent=1), encoding="utf-8")
    for item in outcome + held_outcome:
        print(f"{'ok ' if item['rank'] else 'MISS'} {item['rank'] or '-':>3}  {item['query']:<40} {item['expected']}")
    bench_report.publish("english", [
        bench_report.figure("English query recall (expected product on the first page)", round(share, 3), "share",
                            better="higher", target=f">= {RECALL_TARGET}",
                            detail={"queries": len(outcome), "rows": rows, "file": str(DETAIL.relative_to(ROOT))}),
        bench_report.figure("English query recall, held-out queries (never used to tune the glossary)",
                            round(held_share, 3), "share", better="higher", target=f">= {RECALL_TARGET}",
                            detail={"queries": len(held_outcome), "rows": rows}),
        bench_report.figure("machine translation per product (title and summary)", round(cost["per_product_ms"], 3),
                            "ms", better="lower", detail={"products": cost["products"]}),
        bench_report.figure("machine translation share of the harvest import time", round(translation_share, 4),
                            "share", better="lower",
                            detail={"import_ms_per_record": round(import_ms, 2), "records": harvest["records"],
                                    "added": harvest["added"], "translations_per_product": 2}),
        bench_report.figure("lexicon load, once per process", round(cost["load_seconds"], 2), "s", better="lower"),
    ], catalog=str(CATALOG.relative_to(ROOT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

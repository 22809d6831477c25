"""DataStore load benchmark: real tables loaded by the portal's loader (the
job the worker runs when a tabular resource is uploaded) against the loader
of another commit (``--baseline``; by default c1b8530, the last row-by-row
loader before the COPY path: the peer) and against
the limit, PostgreSQL COPY of the same file into a table of text columns,
in the same run on the same stack. The baseline runs with the full-text
index method its commit's stack configured (CKAN's GiST unless it set
one), and once more with this stack's, so that the share of the gain that
is configuration shows apart from the share that is the loader.

Two figures per table: rows/s until the new table is queryable (the load's
commit: typed, its ``_full_text`` filled and indexed, readers see it; the
loader's own clock, ``status["seconds"]["queryable"]``), and rows/s until
the job is done (every index built, status written). The old loader's
table is queryable only when it is done, so both figures are set against
its whole time. Each load's phases (stage, scan, fill, index, swap,
commit...) are in the detail, their medians printed; Python's peak memory
(tracemalloc) over one more load of each table shows it does not grow
with the file. Prints the figures and writes them to
bench/results/latest.json; a benchmark, not a test.

    CKAN_INI=.local/bench.ini python bench/datastore_bench.py [--rounds 3] [--repeat 70] [--baseline c1b8530]

The large table is the presale-permits table's rows repeated ``--repeat``
times under its header (real rows; only the count is made up), so that the
fixed cost of a load (the resource's status, the search index) no longer
hides the rate.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import io
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harvest_bench  # noqa: E402
import limits  # noqa: E402
import report as bench_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT / "config" / "demo" / "tables"
LOADER = "ckanext-shanghai/ckanext/shanghai/datastore/loader.py"
# The largest real table (UTF-8 with BOM), a mid-sized one (UTF-8), a GBK
# one with a quoted cell holding a line break; then the large one.
FILES = ["bj_new_housing_presale_permits_utf8bom.csv", "nbs_admin_divisions_counties.csv",
         "bj_env_bureau_penalties_gbk.csv"]
LARGE_SOURCE = "bj_new_housing_presale_permits_utf8bom.csv"
# The peer: the last loader that read every row in Python (before the COPY path).
BASELINE = "c1b8530"
# Rounds of a small table: until our loads add up to this many seconds (at most MAX_ROUNDS).
MIN_LOAD_SECONDS = 2.0
MAX_ROUNDS = 15


def baseline_loader(ref: str):
    """The loader module as it is at git ``ref`` (it imports today's
    columns, readers and coordinates modules, whose interfaces it uses)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{LOADER}"], check=True,
                            capture_output=True).stdout
    path = Path(tempfile.mkdtemp(prefix="baseline-loader-")) / "baseline_loader.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("baseline_loader", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def baseline_index_method(ref: str) -> str:
    """The ``ckan.datastore.default_fts_index_method`` the stack of git ``ref`` sets (CKAN's default: gist)."""
    settings = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:config/stack/settings.py"],
                              capture_output=True, text=True).stdout
    match = re.search(r"default_fts_index_method = (\w+)", settings)
    return match.group(1) if match else "gist"


@contextlib.contextmanager
def index_method(method: str):
    import ckan.plugins.toolkit as tk

    key = "ckan.datastore.default_fts_index_method"
    saved = tk.config.get(key)
    tk.config[key] = method
    try:
        yield
    finally:
        tk.config[key] = saved


def repeated_table(path: Path, times: int, into: Path) -> Path:
    """``path``'s rows ``times`` over under its header, as UTF-8 (with BOM)."""
    header, rows = path.read_bytes().split(b"\n", 1)
    with into.open("wb") as out:
        out.write(header + b"\n")
        for _ in range(times):
            out.write(rows if rows.endswith(b"\n") else rows + b"\n")
    return into


def upload(dataset_id: str, path: Path, name: str) -> str:
    import ckan.plugins.toolkit as tk
    from werkzeug.datastructures import FileStorage

    with path.open("rb") as stream:
        resource = tk.get_action("resource_create")(harvest_bench._context(), {
            "package_id": dataset_id, "name": name, "format": "CSV",
            "upload": FileStorage(stream=stream, filename=path.name, content_type="text/csv")})
    return resource["id"]


def timed_load(loader, resource_id: str) -> dict:
    """One load: its seconds until the job is done (every index built),
    and, when the loader tells (``status["seconds"]``), until the table was
    queryable (committed: typed, searchable) and each phase's seconds."""
    started = time.perf_counter()
    status = loader.load_resource(resource_id)
    seconds = time.perf_counter() - started
    if status["state"] != "complete":
        raise RuntimeError(f"{loader.__name__} did not load {resource_id}: {status}")
    run = {"rows": status["rows"], "seconds": seconds, "rows_per_second": status["rows"] / seconds}
    phases = status.get("seconds")
    if phases:
        run["queryable_seconds"] = phases["queryable"]
        run["queryable_rows_per_second"] = status["rows"] / phases["queryable"]
        run["phases"] = phases
    return run


def median_phases(runs: list[dict]) -> dict[str, float]:
    """Each phase's median seconds over the runs, in the order of the first run."""
    return {name: round(statistics.median(run["phases"].get(name, 0.0) for run in runs), 4)
            for name in runs[0]["phases"]}


def measure(dataset_id: str, path: Path, rounds: int, before, before_method: str,
            label: str | None = None) -> dict:
    """Ours, the baseline (with its own index method, then with ours) and
    COPY, one after the other, ``rounds`` times each at least, each loader reloading
    its own resource."""
    import sqlalchemy as sa
    import ckan.plugins.toolkit as tk
    from ckanext.shanghai.datastore import loader

    data = path.read_bytes()
    gbk = path.name.endswith("gbk.csv")
    text = data.decode("gb18030") if gbk else data.decode("utf-8-sig")
    columns = len(next(csv.reader(io.StringIO(text.split("\n", 1)[0]))))
    ours_id = upload(dataset_id, path, f"ours-{path.name}")
    before_id = upload(dataset_id, path, f"before-{path.name}")
    same_config_id = upload(dataset_id, path, f"before-same-config-{path.name}")
    engine = sa.create_engine(tk.config["ckan.datastore.write_url"])
    ours, baseline, same_config, copy = [], [], [], []
    # At least ``rounds`` rounds, and on a small table (a load of a tenth
    # of a second, whose median of three moved by a sixth between quiet
    # runs) more, until our loads add up to MIN_LOAD_SECONDS.
    while len(ours) < rounds or (sum(run["seconds"] for run in ours) < MIN_LOAD_SECONDS
                                 and len(ours) < MAX_ROUNDS):
        ours.append(timed_load(loader, ours_id))
        with index_method(before_method):
            baseline.append(timed_load(before, before_id))
        same_config.append(timed_load(before, same_config_id))
        connection = engine.raw_connection()
        try:
            copy.append(limits.copy_file_rate(connection, data, "GB18030" if gbk else "UTF8", columns))
        finally:
            connection.close()
    engine.dispose()
    fields = tk.get_action("datastore_info")({"ignore_auth": True}, {"id": ours_id})["fields"]
    return {"file": label or path.name, "bytes": len(data), "columns": columns,
            "types": {field["id"]: field["type"] for field in fields},
            "ours_queryable_rows_per_second": statistics.median(run["queryable_rows_per_second"] for run in ours),
            "ours_rows_per_second": statistics.median(run["rows_per_second"] for run in ours),
            "ours_phases": median_phases(ours),
            "baseline_rows_per_second": statistics.median(run["rows_per_second"] for run in baseline),
            "copy_rows_per_second": statistics.median(run["rows_per_second"] for run in copy),
            "baseline_index_method": before_method,
            "baseline_with_our_config_rows_per_second": statistics.median(
                run["rows_per_second"] for run in same_config),
            "ours": ours, "baseline": baseline, "baseline_with_our_config": same_config, "copy": copy,
            "ours_resource": ours_id}


def traced_peak(resource_id: str) -> float:
    """MB of Python memory at the peak of one more load (tracemalloc)."""
    from ckanext.shanghai.datastore import loader

    tracemalloc.start()
    try:
        loader.load_resource(resource_id)
        return round(tracemalloc.get_traced_memory()[1] / 1048576, 1)
    finally:
        tracemalloc.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="loads of each table at least (the median is kept); small tables get more")
    parser.add_argument("--repeat", type=int, default=70, help="the large table: presale rows times this")
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the loader to compare with")
    args, _others = parser.parse_known_args()  # the other benchmarks' options

    import ckan.model as model
    import ckan.plugins.toolkit as tk

    before = baseline_loader(args.baseline)
    before_method = baseline_index_method(args.baseline)
    app = harvest_bench.ckan_app()
    with app.test_request_context(), tempfile.TemporaryDirectory() as scratch:
        context = harvest_bench._context()
        owner = model.Group.get("bench-owner") or model.Group.get(tk.get_action("organization_create")(
            dict(context), {"name": "bench-owner", "title": "基准测试", "department_type": "other"})["id"])
        dataset = tk.get_action("package_create")(dict(context), {
            "name": f"bench-datastore-{int(time.time())}", "title": "DataStore 基准", "owner_org": owner.id,
            "data_domain": "health", "update_frequency": "annual", "open_condition": "unconditional"})
        runs = [measure(dataset["id"], TABLES / name, args.rounds, before, before_method) for name in FILES]
        large = repeated_table(TABLES / LARGE_SOURCE, args.repeat, Path(scratch) / "presale_large.csv")
        runs.append(measure(dataset["id"], large, args.rounds, before, before_method,
                            label=f"presale_x{args.repeat}"))
        # Python's peak over one more load, small table and large: it does not grow with the file.
        for run in runs:
            run["ours_peak_traced_mb"] = traced_peak(run["ours_resource"])
    results = []
    for run in runs:
        stem = Path(run["file"]).stem
        common = {"better": "higher", "stock": round(run["baseline_rows_per_second"], 1),
                  "limit": round(run["copy_rows_per_second"], 1),
                  "limit_of": "PostgreSQL COPY of the same file into text columns (its fastest pass)"}
        # The main figure: until readers can query the new table (committed,
        # typed, full-text searchable); the second: until every index is built.
        results.append(bench_report.figure(
            f"datastore_load_rows_per_second_{stem}", round(run["ours_queryable_rows_per_second"], 1),
            "rows/s until queryable", target="x stock >= 5 and >= 50,000 rows/s (large tables)", **common,
            detail={**run, "baseline": args.baseline, "baseline_runs": run.pop("baseline")}))
        results.append(bench_report.figure(
            f"datastore_load_indexed_rows_per_second_{stem}", round(run["ours_rows_per_second"], 1),
            "rows/s until every index is built", **common))
    bench_report.publish("datastore", results)
    for run in runs:
        print(f"{run['file']:<44} ours {run['ours_queryable_rows_per_second']:>8,.0f} queryable, "
              f"{run['ours_rows_per_second']:>8,.0f} indexed  {args.baseline} "
              f"{run['baseline_rows_per_second']:>8,.0f} ({before_method}), "
              f"{run['baseline_with_our_config_rows_per_second']:>8,.0f} (this stack's index method)  "
              f"COPY {run['copy_rows_per_second']:>9,.0f} rows/s  peak {run['ours_peak_traced_mb']} MB")
        print("    phases (s, median): " + ", ".join(f"{name} {seconds}" for name, seconds in run["ours_phases"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

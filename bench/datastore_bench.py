"""DataStore load benchmark: real tables loaded by the portal's loader (the
job the worker runs when a tabular resource is uploaded) against the limit,
PostgreSQL COPY of the same file into a table of text columns, in the same
run on the same stack. Prints the figures and writes them to
bench/results/latest.json; a benchmark, not a test.

    CKAN_INI=.local/bench.ini python bench/datastore_bench.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harvest_bench  # noqa: E402
import limits  # noqa: E402
import report as bench_report  # noqa: E402

TABLES = Path(__file__).resolve().parents[1] / "config" / "demo" / "tables"
# UTF-8 tables (COPY reads them as they are): the largest and a mid-sized one.
FILES = ["bj_new_housing_presale_permits_utf8bom.csv", "nbs_admin_divisions_counties.csv"]


def upload(dataset_id: str, path: Path) -> str:
    import ckan.plugins.toolkit as tk
    from werkzeug.datastructures import FileStorage

    with path.open("rb") as stream:
        resource = tk.get_action("resource_create")(harvest_bench._context(), {
            "package_id": dataset_id, "name": path.name, "format": "CSV",
            "upload": FileStorage(stream=stream, filename=path.name, content_type="text/csv")})
    return resource["id"]


def measure(resource_id: str, path: Path, rounds: int) -> dict:
    """Ours and COPY, one after the other, ``rounds`` times each."""
    import sqlalchemy as sa
    import ckan.plugins.toolkit as tk
    from ckanext.shanghai.datastore import loader

    data = path.read_bytes()
    columns = len(next(csv.reader(io.StringIO(data.decode("utf-8-sig").split("\n", 1)[0]))))
    engine = sa.create_engine(tk.config["ckan.datastore.write_url"])
    ours, copy = [], []
    for _round in range(rounds):
        started = time.perf_counter()
        status = loader.load_resource(resource_id)
        seconds = time.perf_counter() - started
        if status["state"] != "complete":
            raise RuntimeError(f"the loader did not load {path.name}: {status}")
        ours.append({"rows": status["rows"], "seconds": seconds, "rows_per_second": status["rows"] / seconds})
        connection = engine.raw_connection()
        try:
            copy.append(limits.copy_file_rate(connection, data, "UTF8", columns))
        finally:
            connection.close()
    engine.dispose()
    return {"file": path.name, "bytes": len(data), "columns": columns,
            "ours_rows_per_second": statistics.median(run["rows_per_second"] for run in ours),
            "copy_rows_per_second": statistics.median(run["rows_per_second"] for run in copy),
            "ours": ours, "copy": copy}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="loads of each table (the median is kept)")
    args, _others = parser.parse_known_args()  # the other benchmarks' options

    import ckan.model as model
    import ckan.plugins.toolkit as tk

    app = harvest_bench.ckan_app()
    with app.test_request_context():
        context = harvest_bench._context()
        owner = model.Group.get("bench-owner") or model.Group.get(tk.get_action("organization_create")(
            dict(context), {"name": "bench-owner", "title": "基准测试", "department_type": "other"})["id"])
        dataset = tk.get_action("package_create")(dict(context), {
            "name": f"bench-datastore-{int(time.time())}", "title": "DataStore 基准", "owner_org": owner.id,
            "data_domain": "health", "update_frequency": "annual", "open_condition": "unconditional"})
        runs = [measure(upload(dataset["id"], TABLES / name), TABLES / name, args.rounds) for name in FILES]
    results = [
        bench_report.figure(f"datastore_load_rows_per_second_{Path(run['file']).stem}",
                            round(run["ours_rows_per_second"], 1), "rows/s", better="higher",
                            limit=round(run["copy_rows_per_second"], 1),
                            limit_of="PostgreSQL COPY of the same file into text columns",
                            target="of_limit >= 0.5", detail=run)
        for run in runs
    ]
    bench_report.publish("datastore", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

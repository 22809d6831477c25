"""Typed-table load engines, compared on the same tables in the same run: the
loader before typed tables (every column text, rows sent through
datastore_create / datastore_upsert in chunks of 1,000), the typed loader
(one streamed type-inference pass, then PostgreSQL COPY and a cast into
typed columns), and plain COPY of the file into text columns (the limit).
A quick measurement for choosing the engine, not a test and not part of
``make bench``: it needs a CKAN stack and prints rows/s.

    CKAN_INI=.local/bench.ini python bench/typed_load_candidates.py [--repeat 20] [--xloader]

``--xloader`` compares the typed loader with ckanext-xloader 2.6 instead
(``pip install ckanext-xloader==2.6.0`` first; it is not a dependency of
the portal).

The large table is the presale-permits table repeated ``--repeat`` times
(its rows are real; only the count is made up), to show the rate once the
fixed cost of creating a DataStore table no longer dominates.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TABLES = Path(__file__).resolve().parents[1] / "config" / "demo" / "tables"
SMALL = ["sh_elderly_care_institutions_utf8bom.csv", "bj_env_bureau_penalties_gbk.csv",
         "nbs_admin_divisions_counties.csv", "bj_new_housing_presale_permits_utf8bom.csv"]


def repeated_table(path: Path, times: int, into: Path) -> Path:
    """``path``'s rows ``times`` over under its header, as UTF-8."""
    lines = path.read_bytes().decode("utf-8-sig").splitlines(keepends=True)
    with into.open("w", encoding="utf-8", newline="") as out:
        out.write(lines[0])
        for _ in range(times):
            out.writelines(lines[1:])
    return into


def text_upsert_load(context: dict, resource_id: str, path: Path) -> int:
    """The loader as it was before typed tables (commit 0a26f59): the file
    read and spooled, then text columns through datastore_create and
    datastore_upsert, 1,000 rows a call."""
    import ckan.plugins.toolkit as tk
    from ckanext.shanghai.datastore import loader

    with path.open("rb") as stream, loader.read_table(stream) as table:
        with contextlib.suppress(tk.ObjectNotFound):
            tk.get_action("datastore_delete")(dict(context), {"resource_id": resource_id, "force": True})
        fields = [{"id": name, "type": "text"} for name in table.headers]
        rows = table.rows()
        batches = iter(lambda: list(itertools.islice(rows, 1000)), [])
        first = next(batches, [])
        tk.get_action("datastore_create")(dict(context), {
            "resource_id": resource_id, "force": True, "fields": fields,
            "records": [dict(zip(table.headers, row)) for row in first]})
        for batch in batches:
            tk.get_action("datastore_upsert")(dict(context), {
                "resource_id": resource_id, "force": True, "method": "insert",
                "records": [dict(zip(table.headers, row)) for row in batch]})
        return table.row_count


def typed_load(context: dict, resource_id: str, path: Path) -> int:
    from ckanext.shanghai.datastore import loader

    with path.open("rb") as stream, loader.read_table(stream) as table:
        loader._replace_table(context, resource_id, table)
        return table.row_count


def _fresh(context: dict, resource_id: str) -> None:
    import ckan.plugins.toolkit as tk

    with contextlib.suppress(tk.ObjectNotFound):
        tk.get_action("datastore_delete")(dict(context), {"resource_id": resource_id, "force": True})


def _row_count(resource_id: str) -> int:
    import ckan.plugins.toolkit as tk

    return tk.get_action("datastore_search")({"ignore_auth": True}, {"resource_id": resource_id,
                                                                     "limit": 0})["total"]


def xloader_copy_load(context: dict, resource_id: str, path: Path) -> int:
    """ckanext-xloader 2.6's direct path, as its job runs it: load_csv
    (tabulator re-encodes the file to UTF-8, COPY into text columns, the
    full-text column filled afterwards), the record count, then its column
    indexes. Every column stays text."""
    import logging

    from ckanext.xloader import loader as xloader

    log = logging.getLogger("xloader-bench")
    _fresh(context, resource_id)
    fields = xloader.load_csv(str(path), resource_id=resource_id, mimetype="CSV", logger=log)
    xloader.calculate_record_count(resource_id=resource_id, logger=log)
    # xloader.create_column_indexes, with the commit it lacks on SQLAlchemy 2
    # (it leaves its connection idle in a transaction holding the table's
    # lock, so the next load of the table waits forever).
    import ckan.model as model

    with xloader.get_write_engine().begin() as connection:
        xloader.create_indexes({"model": model, "ignore_auth": True, "connection": connection},
                               {"resource_id": resource_id, "fields": fields})
        xloader._enable_fulltext_trigger(connection, resource_id)
    return _row_count(resource_id)


def xloader_typed_load(context: dict, resource_id: str, path: Path) -> int:
    """ckanext-xloader 2.6's type-guessing path (``use_type_guessing``):
    tabulator guesses types on a sample, rows go through datastore_upsert."""
    import logging

    from ckanext.xloader import loader as xloader

    log = logging.getLogger("xloader-bench")
    _fresh(context, resource_id)
    xloader.load_table(str(path), resource_id=resource_id, mimetype="CSV", logger=log)
    xloader.calculate_record_count(resource_id=resource_id, logger=log)
    return _row_count(resource_id)


def copy_limit(path: Path) -> int:
    import ckan.plugins.toolkit as tk
    import sqlalchemy as sa

    import limits

    data = path.read_bytes()
    text = data.decode("utf-8-sig") if not path.name.endswith("gbk.csv") else data.decode("gb18030")
    data = text.encode("utf-8")
    columns = len(text.split("\n", 1)[0].split(","))
    engine = sa.create_engine(tk.config["ckan.datastore.write_url"])
    connection = engine.raw_connection()
    try:
        return limits.copy_file_rate(connection, data, "UTF8", columns)["rows"]
    finally:
        connection.close()
        engine.dispose()


def timed(function, *args, trace: bool = True) -> dict:
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        rows = function(*args)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
    finally:
        if trace:
            tracemalloc.stop()
    return {"rows": rows, "seconds": seconds, "rows_per_second": rows / seconds, "peak_mb": peak / 2**20}


def compare(context: dict, resource_id: str, paths: list[Path], rounds: int = 3) -> list[dict]:
    """Median rows/s of each engine on each table (the same resource is
    reloaded by each in turn)."""
    results = []
    for path in paths:
        row = {"table": path.name}
        for name, run in (("text_upsert", lambda: timed(text_upsert_load, context, resource_id, path)),
                          ("typed_copy", lambda: timed(typed_load, context, resource_id, path)),
                          ("copy_limit", lambda: timed(copy_limit, path))):
            runs = [run() for _ in range(rounds)]
            row[name] = round(statistics.median(r["rows_per_second"] for r in runs))
            row[f"{name}_peak_mb"] = round(max(r["peak_mb"] for r in runs), 1)
            row["rows"] = runs[0]["rows"]
        row["ratio"] = round(row["typed_copy"] / row["text_upsert"], 1)
        results.append(row)
    return results


def compare_xloader(context: dict, resource_id: str, paths: list[Path], rounds: int = 3,
                    typed_up_to: int = 10_000) -> list[dict]:
    """Median rows/s of the typed loader and of ckanext-xloader's two paths
    on each table, without tracemalloc (xloader's type-guessing path only
    on tables of up to ``typed_up_to`` rows: it goes through upsert)."""
    results = []
    for path in paths:
        row = {"table": path.name}
        engines = [("typed_copy", typed_load), ("xloader_copy", xloader_copy_load)]
        rows = sum(1 for _ in path.open("rb")) - 1
        if rows <= typed_up_to:
            engines.append(("xloader_typed", xloader_typed_load))
        for name, function in engines:
            runs = []
            for _ in range(rounds):
                try:
                    runs.append(timed(function, context, resource_id, path, trace=False))
                except Exception as error:  # an engine that cannot load the table: say so
                    row[name] = f"failed: {type(error).__name__}: {str(error)[:80]}"
                    break
            if runs:
                row[name] = round(statistics.median(r["rows_per_second"] for r in runs))
                row[f"{name}_rows"] = runs[0]["rows"]
        results.append(row)
    return results


def print_table(results: list[dict]) -> None:
    print(f"{'table':48} {'rows':>8} {'text+upsert':>12} {'typed COPY':>11} {'COPY text':>10} {'ratio':>6}"
          f" {'peak MB (upsert/typed)':>24}")
    for r in results:
        print(f"{r['table']:48} {r['rows']:>8} {r['text_upsert']:>12,} {r['typed_copy']:>11,} "
              f"{r['copy_limit']:>10,} {r['ratio']:>6} "
              f"{r['text_upsert_peak_mb']:>11} / {r['typed_copy_peak_mb']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--xloader", action="store_true",
                        help="compare with ckanext-xloader 2.6 (installed separately) instead")
    args = parser.parse_args()

    import ckan.model as model
    import ckan.plugins.toolkit as tk

    import harvest_bench

    app = harvest_bench.ckan_app()
    with app.test_request_context(), tempfile.TemporaryDirectory() as folder:
        context = harvest_bench._context()
        owner = model.Group.get("bench-owner") or model.Group.get(tk.get_action("organization_create")(
            dict(context), {"name": "bench-owner", "title": "基准测试", "department_type": "other"})["id"])
        dataset = tk.get_action("package_create")(dict(context), {
            "name": f"bench-typed-{int(time.time())}", "title": "类型化表格基准", "owner_org": owner.id,
            "data_domain": "health", "update_frequency": "annual", "open_condition": "unconditional"})
        resource = tk.get_action("resource_create")(dict(context), {
            "package_id": dataset["id"], "name": "bench", "format": "CSV", "url": "http://example.org/x.csv"})
        large = repeated_table(TABLES / "bj_new_housing_presale_permits_utf8bom.csv", args.repeat,
                               Path(folder) / "presale_x{}.csv".format(args.repeat))
        paths = [TABLES / name for name in SMALL] + [large]
        if args.xloader:
            for row in compare_xloader(context, resource["id"], paths, args.rounds):
                print(row)
        else:
            print_table(compare(context, resource["id"], paths, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())

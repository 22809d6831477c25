"""``ckan shanghai ...`` commands of the harvest machinery: the queue
consumers and scheduler `make serve` starts, the index check and rebuild.
The harvest plugin adds them to the portal's ``shanghai`` group."""
from __future__ import annotations

import json
import sys

import click

__all__ = ["COMMANDS"]


@click.command("harvest-consumer")
@click.argument("kind", type=click.Choice(["gather", "fetch"]))
@click.option("--until-idle", is_flag=True,
              help="Stop once the queue is empty and the work in hand is done.")
def harvest_consumer(kind: str, until_idle: bool):
    """Run the gather or fetch queue consumer; it stays up while idle."""
    from ckanext.shanghai.harvesters.queue import run_consumer

    run_consumer(kind, until_idle=until_idle)


@click.command("harvest-scheduler")
def harvest_scheduler():
    """Run the harvest scheduler (start due jobs, finish done ones, requeue
    the work of dead consumers) until SIGTERM or SIGINT."""
    from ckanext.shanghai.harvesters.scheduler import run_scheduler

    run_scheduler()


@click.command("index-check")
@click.option("--repair/--no-repair", default=False, help="Also fix what differs.")
def index_check(repair: bool):
    """Compare the database with the Solr index (missing, stale and orphaned
    documents); with --repair, fix them. Exits 1 when a difference remains."""
    from ckanext.shanghai.harvesters.index import check as checker

    difference = checker.compare()
    click.echo(json.dumps({"missing": len(difference.missing), "stale": len(difference.stale),
                           "orphaned": len(difference.orphaned)}))
    if repair and difference.total:
        checker.repair(difference)
        difference = checker.compare()
        click.echo(json.dumps({"after_repair": difference.total}))
    sys.exit(1 if difference.total else 0)


@click.command("search-index-rebuild")
@click.option("--workers", default=2, show_default=True, help="Processes indexing in parallel.")
@click.option("--batch", default=250, show_default=True, help="Datasets per Solr request.")
@click.option("--revalidate", is_flag=True,
              help="Validate every dataset by its show schema again, even when its document's digest says "
                   "nothing that shapes it has changed.")
def search_index_rebuild(workers: int, batch: int, revalidate: bool):
    """Rebuild the whole search index from the database in place: search
    keeps answering throughout; orphaned documents are removed at the end.
    If a worker fails, the rebuild stops and exits 1 with the reason as JSON
    on stderr. A dataset unchanged since it was indexed (same package, schemas,
    plugins and code) keeps its stored validated dicts; the output counts
    those ("reused") and the ones validated again ("revalidated").
    (重建检索索引，期间检索照常可用；出错时停止并说明原因。)"""
    from ckanext.shanghai.harvesters.index import rebuild as reindex

    try:
        result = reindex.rebuild(workers=workers, batch=batch, revalidate=revalidate)
    except reindex.RebuildFailed as failed:
        click.echo(json.dumps({"error": {"code": failed.code, "zh": failed.reason_zh, "en": failed.reason_en,
                                         "detail": failed.detail}}, ensure_ascii=False), err=True)
        sys.exit(1)
    click.echo(json.dumps({"documents": result.documents, "orphans_removed": result.orphans_removed,
                           "reused": result.reused, "revalidated": result.revalidated,
                           "seconds": round(result.seconds, 1),
                           "documents_per_second": round(result.per_second, 1)}))


@click.command("mapping-check")
@click.argument("mapping_file", metavar="MAPPING")
@click.argument("export", metavar="EXPORT")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--format", "fmt", default=None, help="The export's format (json, jsonl, csv, xlsx); guessed when not given.")
@click.option("--sheet", default=None, help="The Excel sheet to read.")
@click.option("--header-row", default=0, show_default=True, help="The row of an Excel sheet or CSV with the column names.")
def mapping_check(mapping_file: str, export: str, as_json: bool, fmt: str | None, sheet: str | None,
                  header_row: int):
    """Dry run of a mapping (a YAML file, or a shipped mapping's name) over
    a whole export (a file or a URL), through the same reader, mapping and
    repeat check as a harvest; writes nothing. Prints the records read, how
    many would import, the rejections by reason, every unmapped raw value
    per field, the departments that would be created, the quality flags by
    kind. (映射预检：不写入任何数据。)"""
    from pathlib import Path

    from ckanext.shanghai.files import fetching, readers
    from ckanext.shanghai.harvesters import mapping, pipeline
    from ckanext.shanghai.messages import MessageError

    path = Path(mapping_file)
    if not path.exists() and (mapping.MAPPINGS_DIR / f"{mapping_file}.yaml").exists():
        path = mapping.MAPPINGS_DIR / f"{mapping_file}.yaml"
    limits = fetching.configured_limits()
    downloaded = None
    try:
        compiled = mapping.load_mapping(path)
        source = Path(export)
        if not source.is_file():
            source = downloaded = fetching.download(export, limits)
        with open(source, "rb") as stream:
            items = readers.iter_records(stream, fmt, max_bytes=limits.max_bytes, header_row=header_row,
                                         **({"sheet": sheet} if sheet else {}))
            result = mapping.check_export(
                compiled, items, department_exists=lambda name: pipeline.find_department(name) is not None)
    except MessageError as error:
        problems = getattr(error, "problems", None) or [error.message]
        if as_json:
            click.echo(json.dumps({"error": {"code": error.message.code, "problems": [
                {"zh": problem.zh, "en": problem.en} for problem in problems]}}, ensure_ascii=False))
        else:
            click.echo(str(error), err=True)
        sys.exit(1)
    finally:
        if downloaded is not None:
            downloaded.unlink()
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo("\n".join(result.lines()))


@click.command("realtime-pull")
def realtime_pull():
    """Poll every active real-time pull source (JSON or CSV endpoints) on its
    interval and push the rows to its product, until SIGTERM or SIGINT."""
    from ckanext.shanghai.harvesters.sources.realtime_pull import run_poller

    run_poller()


COMMANDS = [mapping_check, harvest_consumer, harvest_scheduler, index_check, search_index_rebuild, realtime_pull]

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
def search_index_rebuild(workers: int, batch: int):
    """Rebuild the whole search index from the database in place: search
    keeps answering throughout; orphaned documents are removed at the end.
    If a worker fails, the rebuild stops and exits 1 with the reason as JSON
    on stderr. (重建检索索引，期间检索照常可用；出错时停止并说明原因。)"""
    from ckanext.shanghai.harvesters.index import rebuild as reindex

    try:
        result = reindex.rebuild(workers=workers, batch=batch)
    except reindex.RebuildFailed as failed:
        click.echo(json.dumps({"error": {"code": failed.code, "zh": failed.reason_zh, "en": failed.reason_en,
                                         "detail": failed.detail}}, ensure_ascii=False), err=True)
        sys.exit(1)
    click.echo(json.dumps({"documents": result.documents, "orphans_removed": result.orphans_removed,
                           "seconds": round(result.seconds, 1),
                           "documents_per_second": round(result.per_second, 1)}))


COMMANDS = [harvest_consumer, harvest_scheduler, index_check, search_index_rebuild]

"""Download counts: each download of a resource through the portal adds one
to that resource's count for the day (table shanghai_download), and the
product is reindexed so its count sorts."""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
from typing import Iterable, Iterator

import sqlalchemy as sa
from flask import request

import ckan.model as model
import ckan.plugins.toolkit as tk

log = logging.getLogger(__name__)

__all__ = ["record_download", "package_downloads", "counts_for", "downloads_by_day", "total_downloads",
           "record_downloads", "reindex_package"]

# The counts of the packages a batch is indexing, read in one query (see counts_for).
_batch_counts: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "shanghai_download_counts", default=None)


def record_download(package_id: str, resource_id: str, day: dt.date | None = None) -> None:
    model.Session.execute(sa.text(
        "insert into shanghai_download (resource_id, package_id, day, count) "
        "values (:resource_id, :package_id, :day, 1) "
        "on conflict (resource_id, day) do update set count = shanghai_download.count + 1"
    ), {"resource_id": resource_id, "package_id": package_id, "day": day or dt.date.today()})
    model.Session.commit()


def package_downloads(package_id: str) -> int:
    known = _batch_counts.get()
    if known is not None and package_id in known:
        return known[package_id]
    return int(model.Session.execute(sa.text(
        "select coalesce(sum(count), 0) from shanghai_download where package_id = :id"
    ), {"id": package_id}).scalar() or 0)


@contextlib.contextmanager
def counts_for(package_ids: Iterable[str]) -> Iterator[None]:
    """Within the block, ``package_downloads`` answers for these packages
    from one query made here, instead of one query each (a batch of Solr
    documents being built asks for every package's count)."""
    ids = list(package_ids)
    rows = dict(model.Session.execute(sa.text(
        "select package_id, sum(count) from shanghai_download where package_id = any(:ids) group by package_id"
    ), {"ids": ids}).fetchall()) if ids else {}
    token = _batch_counts.set({package_id: int(rows.get(package_id) or 0) for package_id in ids})
    try:
        yield
    finally:
        _batch_counts.reset(token)


def total_downloads() -> int:
    return int(model.Session.execute(sa.text(
        "select coalesce(sum(count), 0) from shanghai_download")).scalar() or 0)


def downloads_by_day(days: int = 30) -> list[tuple[str, int]]:
    """(ISO day, downloads) for each of the last ``days`` days, oldest first."""
    today = dt.date.today()
    start = today - dt.timedelta(days=days - 1)
    rows = dict(model.Session.execute(sa.text(
        "select day, sum(count) from shanghai_download where day >= :start group by day"
    ), {"start": start}).fetchall())
    return [((start + dt.timedelta(n)).isoformat(), int(rows.get(start + dt.timedelta(n), 0)))
            for n in range(days)]


def record_downloads(response):
    """Count a successful download of a resource through the portal."""
    endpoint = request.endpoint or ""
    if not endpoint.endswith("resource.download") or response.status_code not in (200, 302):
        return response
    args = request.view_args or {}
    try:
        resource = tk.get_action("resource_show")({"ignore_auth": True}, {"id": args.get("resource_id")})
        record_download(resource["package_id"], resource["id"])
        tk.enqueue_job(reindex_package, [resource["package_id"]], title="reindex after download")
    except Exception:  # counting must never break a download
        log.exception("could not count a download of %s", args)
    return response


def reindex_package(package_id: str) -> None:
    """Re-index a product so its download count sorts (job queue)."""
    from ckan.lib.search import rebuild

    rebuild(package_id)

"""Compare the catalog in PostgreSQL with the Solr index and repair the
difference: datasets missing from the index, index documents older than the
database row, and documents whose dataset is gone (orphans)."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.lib.search.common import make_connection

log = logging.getLogger(__name__)

_PAGE = 5000


@dataclass
class IndexDifference:
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.missing) + len(self.stale) + len(self.orphaned)


def _epoch_millis(value: dt.datetime | None) -> int | None:
    if value is None:
        return None
    return int(value.replace(tzinfo=dt.timezone.utc).timestamp() * 1000) if value.tzinfo is None else int(
        value.timestamp() * 1000)


def database_state() -> dict[str, int]:
    """Active dataset id -> metadata_modified in epoch milliseconds (UTC)."""
    rows = model.Session.query(model.Package.id, model.Package.metadata_modified).filter(
        model.Package.state == "active")
    return {package_id: _epoch_millis(modified) for package_id, modified in rows}


def index_state() -> dict[str, int]:
    """Indexed dataset id -> metadata_modified in epoch milliseconds, paged
    with a cursor; dates are read as Solr's text, since CKAN's date decoding
    drops the milliseconds."""
    connection = make_connection(decode_dates=False)
    site = tk.config.get("ckan.site_id")
    state: dict[str, str] = {}
    cursor = "*"
    while True:
        result = connection.search(
            q="*:*", fq=[f'+site_id:"{site}"', "+entity_type:package"],
            fl="id,metadata_modified",
            rows=_PAGE, sort="index_id asc", cursorMark=cursor,
        )
        for doc in result.docs:
            modified = doc.get("metadata_modified")
            state[doc["id"]] = _epoch_millis(dt.datetime.fromisoformat(modified)) if modified else None
        if result.nextCursorMark == cursor or not result.docs:
            return state
        cursor = result.nextCursorMark


def compare() -> IndexDifference:
    in_database = database_state()
    in_index = index_state()
    difference = IndexDifference()
    for package_id, modified in in_database.items():
        indexed = in_index.get(package_id)
        if package_id not in in_index:
            difference.missing.append(package_id)
        elif indexed != modified:
            difference.stale.append(package_id)
    difference.orphaned = [package_id for package_id in in_index if package_id not in in_database]
    return difference


def repair(difference: IndexDifference, batch: int = 250) -> None:
    """Index the missing and stale datasets (a batch per Solr request), drop
    the orphans (one delete per batch), commit once."""
    from ckanext.shanghai.harvesters.index import bulk as bulk_index

    to_index = difference.missing + difference.stale
    for start in range(0, len(to_index), batch):
        bulk_index.index_many(to_index[start:start + batch])
    connection = make_connection()
    site = tk.config.get("ckan.site_id")
    for start in range(0, len(difference.orphaned), batch):
        ids = " OR ".join(f'"{package_id}"' for package_id in difference.orphaned[start:start + batch])
        connection.delete(q=f'+site_id:"{site}" +entity_type:package +id:({ids})', commit=False)
    # Wait for the new searcher, so that a check right after sees the repair.
    connection.commit(waitSearcher=True)
    if difference.total:
        log.warning("search index repaired: %d missing, %d stale, %d orphaned",
                    len(difference.missing), len(difference.stale), len(difference.orphaned))

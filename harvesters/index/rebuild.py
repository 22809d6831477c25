"""Rebuild the Solr index from the database, fast and without emptying it:
every dataset's document is replaced in place (search keeps answering from
the old documents until each new one is committed), in batches dictized and
indexed together (bulk_index), by several worker processes; documents whose
dataset is gone are removed at the end."""
from __future__ import annotations

import logging
import multiprocessing
import time
from dataclasses import dataclass

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.lib import search

from ckanext.shanghai.harvesters.index import bulk as bulk_index
from ckanext.shanghai.harvesters.index import check as index_check

log = logging.getLogger(__name__)

# Solr makes new documents visible this often during a rebuild.
COMMIT_EVERY = 10_000


@dataclass
class RebuildResult:
    documents: int
    orphans_removed: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0


def package_ids() -> list[str]:
    """What CKAN's own rebuild indexes: every dataset not deleted."""
    query = model.Session.query(model.Package.id)
    if tk.config.get("ckan.search.remove_deleted_packages"):
        query = query.filter(model.Package.state != "deleted")
    return [package_id for (package_id,) in query.order_by(model.Package.id)]


def _index_share(ids: list[str], batch: int) -> int:
    sent = since_commit = 0
    for start in range(0, len(ids), batch):
        count = bulk_index.index_many(ids[start:start + batch])
        sent += count
        since_commit += count
        model.Session.remove()
        if since_commit >= COMMIT_EVERY:
            search.commit()
            since_commit = 0
    return sent


def _worker(ids: list[str], batch: int, results) -> None:
    # A forked child must not use the parent's database connections.
    model.Session.remove()
    model.meta.engine.dispose(close=False)
    results.put(_index_share(ids, batch))


def rebuild(workers: int = 2, batch: int = 250) -> RebuildResult:
    """Reindex every dataset with ``workers`` processes, then drop orphans."""
    started = time.perf_counter()
    ids = package_ids()
    model.Session.remove()
    if workers <= 1 or len(ids) < batch * 2:
        documents = _index_share(ids, batch)
    else:
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        children = [context.Process(target=_worker, args=(ids[n::workers], batch, results))
                    for n in range(workers)]
        for child in children:
            child.start()
        documents = sum(results.get() for _ in children)
        for child in children:
            child.join()
            if child.exitcode:
                raise RuntimeError(f"a reindex worker failed (exit {child.exitcode})")
    search.commit()
    in_database = set(ids)
    difference = index_check.IndexDifference(
        orphaned=[package_id for package_id in index_check.index_state() if package_id not in in_database])
    index_check.repair(difference)
    return RebuildResult(documents, len(difference.orphaned), time.perf_counter() - started)

"""Rebuild the Solr index from the database, fast and without emptying it:
every dataset's document is replaced in place (search keeps answering from
the old documents until each new one is committed), in batches dictized and
indexed together (bulk_index), by several worker processes; documents whose
dataset is gone are removed at the end. A dataset whose document carries the
digest it would get now (reuse.py) keeps its stored validated dicts instead
of being validated again, unless the rebuild is asked to revalidate."""
from __future__ import annotations

import logging
import multiprocessing
import queue
import time
from dataclasses import dataclass

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.lib import search

from ckanext.shanghai.harvesters.index import bulk as bulk_index
from ckanext.shanghai.harvesters.index import check as index_check
from ckanext.shanghai.harvesters.index import reuse

log = logging.getLogger(__name__)

# Solr makes new documents visible this often during a rebuild.
COMMIT_EVERY = 10_000


@dataclass
class RebuildResult:
    documents: int
    orphans_removed: int
    seconds: float
    # Of the datasets indexed: those whose stored validated dicts were
    # reused, and those validated again by the show schemas.
    reused: int = 0
    revalidated: int = 0

    @property
    def per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0


def package_ids() -> list[str]:
    """What CKAN's own rebuild indexes: every dataset not deleted."""
    query = model.Session.query(model.Package.id)
    if tk.config.get("ckan.search.remove_deleted_packages"):
        query = query.filter(model.Package.state != "deleted")
    return [package_id for (package_id,) in query.order_by(model.Package.id)]


def _index_share(ids: list[str], batch: int, revalidate: bool = False) -> tuple[int, int, int]:
    """(documents sent, pairs reused, pairs validated) for these datasets."""
    sent = since_commit = reused = validated = 0
    for start in range(0, len(ids), batch):
        share = ids[start:start + batch]
        pairs = bulk_index.show_pairs(share, stored=None if revalidate else reuse.stored_dicts(share))
        count = bulk_index.index_pairs(pairs)
        reused += pairs.reused
        validated += len(pairs) - pairs.reused
        sent += count
        since_commit += count
        model.Session.remove()
        if since_commit >= COMMIT_EVERY:
            search.commit()
            since_commit = 0
    return sent, reused, validated


class RebuildFailed(Exception):
    """The rebuild stopped: a worker process (or the indexing in this
    process) failed. Documents already sent stay in the index; orphans are
    not removed. ``detail`` is the failure as the worker saw it."""

    code = "rebuild-failed"

    def __init__(self, detail: str):
        self.detail = detail
        self.reason_zh = (f"检索索引重建失败，已停止（已写入的文档保留，未删除失效文档；"
                          f"排除原因后请重新运行重建或 index-check --repair）。原因：{detail}")
        self.reason_en = (f"The search index rebuild failed and stopped (documents already written stay, "
                          f"orphans are not removed; once the cause is fixed, run the rebuild again or "
                          f"index-check --repair). Cause: {detail}")
        super().__init__(self.reason_en)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:1000]}"


def _worker(ids: list[str], batch: int, revalidate: bool, results) -> None:
    # A forked child must not use the parent's database connections.
    model.Session.remove()
    model.meta.engine.dispose(close=False)
    try:
        counts = _index_share(ids, batch, revalidate)
    except BaseException as error:
        # Told to the parent, which otherwise waits for a count that never comes.
        results.put(("failed", _describe(error)))
        raise
    results.put(("indexed", counts))


def _collect(children: list, results, poll_seconds: float = 0.5) -> tuple[int, int, int]:
    """The documents every worker indexed, reused and validated (summed);
    RebuildFailed as soon as one reports a failure or dies without a word
    (killed, out of memory)."""
    totals = (0, 0, 0)
    waiting = len(children)
    while waiting:
        try:
            outcome, value = results.get(timeout=poll_seconds)
        except queue.Empty:
            ended = [child for child in children if child.exitcode is not None]
            failed = [child.exitcode for child in ended if child.exitcode != 0]
            if not failed and len(ended) < len(children):
                continue
            try:  # a report sent just before its worker ended
                outcome, value = results.get(timeout=poll_seconds)
            except queue.Empty:
                raise RebuildFailed(f"a worker process ended with exit code {(failed or [0])[0]} "
                                    "without reporting") from None
        if outcome == "failed":
            raise RebuildFailed(value)
        totals = tuple(total + count for total, count in zip(totals, value))
        waiting -= 1
    return totals


def _stop(children: list) -> None:
    """End the workers still running (another one failed)."""
    for child in children:
        if child.is_alive():
            child.terminate()
    for child in children:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
            child.join()


def rebuild(workers: int = 2, batch: int = 250, revalidate: bool = False) -> RebuildResult:
    """Reindex every dataset with ``workers`` processes, then drop orphans.
    With ``revalidate``, every dataset goes through the show schemas again
    (as after a change the digest cannot see).

    :raises RebuildFailed: a worker failed (the others are stopped); the
        index keeps what was written so far
    """
    started = time.perf_counter()
    ids = package_ids()
    model.Session.remove()
    if workers <= 1 or len(ids) < batch * 2:
        try:
            documents, reused, validated = _index_share(ids, batch, revalidate)
        except Exception as error:
            raise RebuildFailed(_describe(error)) from error
    else:
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        children = [context.Process(target=_worker, args=(ids[n::workers], batch, revalidate, results))
                    for n in range(workers)]
        for child in children:
            child.start()
        try:
            documents, reused, validated = _collect(children, results)
        except BaseException:
            _stop(children)
            raise
        for child in children:
            child.join()
            if child.exitcode:
                raise RebuildFailed(f"a worker process ended with exit code {child.exitcode}")
    search.commit()
    in_database = set(ids)
    difference = index_check.IndexDifference(
        orphaned=[package_id for package_id in index_check.index_state() if package_id not in in_database])
    index_check.repair(difference)
    return RebuildResult(documents, len(difference.orphaned), time.perf_counter() - started,
                         reused=reused, revalidated=validated)

"""The link checker: every resource link is asked, on a schedule, whether it
still answers (HEAD, then a ranged GET; ``files.fetching.probe``, under the
harvesters' address rules and timeouts), one request at a time per host with
a pause between two; the last check of each link is kept in
``shanghai_link_check``, shown on the resource page, counted in the
product's quality score and listed for its department.

A round runs as a job of CKAN's job worker (``run_round``); the harvest
scheduler queues one every ``ckanext.shanghai.links.round_minutes``
(``enqueue_round_if_due``); ``ckan shanghai check-links`` runs one now."""
from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import datetime as dt
import logging
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import sqlalchemy as sa

import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.assessment import score as scoring
from ckanext.shanghai.files import fetching
from ckanext.shanghai.messages import Message

log = logging.getLogger(__name__)

__all__ = ["Link", "due_links", "check_links", "record_results", "run_round", "enqueue_round_if_due",
           "package_links", "links_for", "department_broken_links", "link_limits"]

# The last checks of the packages a batch is indexing (see links_for).
_batch_links: contextvars.ContextVar[dict[str, dict[str, dict[str, Any]]] | None] = contextvars.ContextVar(
    "shanghai_link_checks", default=None)

# An arbitrary constant naming the "a link check round is running" lock.
_ROUND_LOCK = 0x5348_6C69_6E6B
_ROUND_KEY = "shanghai:linkcheck:round"


@dataclass(frozen=True)
class Link:
    resource_id: str
    package_id: str
    url: str

    @property
    def host(self) -> str:
        try:
            return (urllib.parse.urlsplit(self.url).hostname or "").lower()
        except ValueError:
            return ""


def link_limits() -> fetching.FetchLimits:
    """The harvest's limits (address rules, allow-list, timeouts), with the
    whole check of one link capped at ``ckanext.shanghai.links.timeout``."""
    limits = fetching.configured_limits()
    timeout = tk.config.get("ckanext.shanghai.links.timeout")
    return dataclasses.replace(limits, deadline=timeout, connect_timeout=min(limits.connect_timeout, timeout),
                               read_timeout=min(limits.read_timeout, timeout), file_roots=())


def due_links(now: dt.datetime, interval: dt.timedelta, limit: int) -> list[Link]:
    """Links of active resources of active products never checked, checked
    at another URL, or last checked before ``now - interval``; the
    longest-unchecked first. Uploaded files are the portal's own."""
    rows = model.Session.execute(sa.text(
        "select r.id, r.package_id, r.url from resource r "
        "join package p on p.id = r.package_id "
        "left join shanghai_link_check c on c.resource_id = r.id "
        "where r.state = 'active' and p.state = 'active' and coalesce(r.url_type, '') <> 'upload' "
        "and r.url ~* '^https?://' "
        "and (c.resource_id is null or c.url <> r.url or c.checked_at < :before) "
        "order by c.checked_at nulls first, r.id limit :limit"
    ), {"before": now - interval, "limit": limit}).fetchall()
    return [Link(*row) for row in rows]


def check_links(links: Iterable[Link], limits: fetching.FetchLimits, host_delay: float, hosts_at_once: int,
                probe: Callable[[str, fetching.FetchLimits], fetching.ProbeResult] = fetching.probe,
                ) -> dict[str, fetching.ProbeResult]:
    """Probe each link, one request at a time per host with ``host_delay``
    seconds between two to the same host, ``hosts_at_once`` hosts in
    parallel; the same URL is asked once. Returns resource id -> result."""
    by_host: dict[str, dict[str, list[Link]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for link in links:
        by_host[link.host][link.url].append(link)
    results: dict[str, fetching.ProbeResult] = {}
    lock = threading.Lock()

    def check_host(urls: dict[str, list[Link]]) -> None:
        for position, (url, same) in enumerate(urls.items()):
            if position:
                time.sleep(host_delay)
            try:
                result = probe(url, limits)
            except Exception as error:  # one odd link must not end the round
                log.exception("link check of %s failed", url)
                result = fetching.ProbeResult(None, "HEAD", url, Message(
                    "check-failed", "检查出错", f"The check failed: {type(error).__name__}"))
            with lock:
                for link in same:
                    results[link.resource_id] = result

    with ThreadPoolExecutor(max_workers=max(1, hosts_at_once), thread_name_prefix="linkcheck") as pool:
        for future in [pool.submit(check_host, urls) for urls in by_host.values()]:
            future.result()
    return results


def record_results(links: Iterable[Link], results: dict[str, fetching.ProbeResult], now: dt.datetime) -> set[str]:
    """Store each link's check (replacing its last); returns the ids of the
    products whose links changed status (first checks included), whose
    score must be indexed again. The caller commits."""
    links = [link for link in links if link.resource_id in results]
    if not links:
        return set()
    before = dict(model.Session.execute(sa.text(
        "select resource_id, status || '|' || url from shanghai_link_check where resource_id = any(:ids)"
    ), {"ids": [link.resource_id for link in links]}).fetchall())
    changed = set()
    for link in links:
        result = results[link.resource_id]
        status = scoring.LINK_OK if result.ok else scoring.LINK_BROKEN
        if before.get(link.resource_id) != f"{status}|{link.url}":
            changed.add(link.package_id)
        problem = result.problem
        model.Session.execute(sa.text(
            "insert into shanghai_link_check (resource_id, package_id, url, status, http_status, method, "
            "final_url, code, reason_zh, reason_en, checked_at, broken_since) values (:resource_id, "
            ":package_id, :url, :status, :http_status, :method, :final_url, :code, :reason_zh, :reason_en, "
            ":now, :broken_since) on conflict (resource_id) do update set package_id = excluded.package_id, "
            "url = excluded.url, status = excluded.status, http_status = excluded.http_status, "
            "method = excluded.method, final_url = excluded.final_url, code = excluded.code, "
            "reason_zh = excluded.reason_zh, reason_en = excluded.reason_en, checked_at = excluded.checked_at, "
            "broken_since = case when excluded.status = 'broken' and shanghai_link_check.status = 'broken' "
            "and shanghai_link_check.url = excluded.url then shanghai_link_check.broken_since "
            "else excluded.broken_since end"
        ), {"resource_id": link.resource_id, "package_id": link.package_id, "url": link.url, "status": status,
            "http_status": result.status, "method": result.method, "final_url": result.final_url,
            "code": problem.code if problem else "ok", "reason_zh": problem.zh if problem else None,
            "reason_en": problem.en if problem else None, "now": now,
            "broken_since": None if result.ok else now})
    return changed


def run_round(now: dt.datetime | None = None) -> dict[str, int]:
    """Job: check the links that are due and index again the products whose
    links changed. One round at a time (a second one started meanwhile
    returns at once)."""
    config = tk.config
    now = now or dt.datetime.utcnow()
    # A connection of its own holds the lock: the round's session commits
    # and may hand its connection back to the pool meanwhile.
    with model.meta.engine.connect() as lock:
        if not lock.execute(sa.text("select pg_try_advisory_lock(:key)"), {"key": _ROUND_LOCK}).scalar():
            return {"checked": 0, "broken": 0, "reindexed": 0, "running": 1}
        try:
            links = due_links(now, dt.timedelta(hours=config.get("ckanext.shanghai.links.interval_hours")),
                              config.get("ckanext.shanghai.links.round_size"))
            results = check_links(links, link_limits(), config.get("ckanext.shanghai.links.host_delay"),
                                  config.get("ckanext.shanghai.links.hosts_at_once"))
            changed = record_results(links, results, now)
            model.Session.commit()
            _reindex(changed)
        finally:
            lock.execute(sa.text("select pg_advisory_unlock(:key)"), {"key": _ROUND_LOCK})
    summary = {"checked": len(results), "broken": sum(not r.ok for r in results.values()),
               "reindexed": len(changed)}
    log.info("link check round: %s", summary)
    return summary


def _reindex(package_ids: Iterable[str]) -> None:
    from ckan.lib.search import rebuild

    for package_id in sorted(package_ids):
        try:
            rebuild(package_id)
        except Exception:  # the score is indexed again on the product's next write
            log.exception("could not index %s again after its link check", package_id)


def enqueue_round_if_due() -> bool:
    """Queue a link check round on the job worker unless one was queued in
    the last ``round_minutes`` (a Redis key that expires marks it)."""
    from ckan.lib.redis import connect_to_redis

    seconds = int(tk.config.get("ckanext.shanghai.links.round_minutes") * 60)
    if not connect_to_redis().set(_ROUND_KEY, dt.datetime.utcnow().isoformat(), nx=True, ex=max(seconds, 1)):
        return False
    tk.enqueue_job(run_round, title="link check round", rq_kwargs={"timeout": 6 * 3600})
    return True


def _rows_for(package_ids: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    rows = model.Session.execute(sa.text(
        "select c.package_id, c.resource_id, c.status, c.http_status, c.code, c.reason_zh, c.reason_en, "
        "c.checked_at, c.broken_since, c.final_url from shanghai_link_check c "
        "join resource r on r.id = c.resource_id and r.url = c.url "
        "where c.package_id = any(:ids)"
    ), {"ids": package_ids}).mappings().all()
    found: dict[str, dict[str, dict[str, Any]]] = {package_id: {} for package_id in package_ids}
    for row in rows:
        found.setdefault(row["package_id"], {})[row["resource_id"]] = dict(row)
    return found


def package_links(package_id: str) -> dict[str, dict[str, Any]]:
    """The last check of each of the product's links at its current URL, by
    resource id (a link not in it has not been checked)."""
    known = _batch_links.get()
    if known is not None and package_id in known:
        return known[package_id]
    return _rows_for([package_id])[package_id]


@contextlib.contextmanager
def links_for(package_ids: Iterable[str]) -> Iterator[None]:
    """Within the block, ``package_links`` answers for these packages from
    one query made here (a batch of Solr documents being built)."""
    token = _batch_links.set(_rows_for(list(package_ids)))
    try:
        yield
    finally:
        _batch_links.reset(token)


def department_broken_links(org_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The department's broken links (at their current URL), longest broken first."""
    return [dict(row) for row in model.Session.execute(sa.text(
        "select p.name as package_name, p.title as package_title, r.id as resource_id, r.name as resource_name, "
        "c.url, c.http_status, c.code, c.reason_zh, c.reason_en, c.checked_at, c.broken_since "
        "from shanghai_link_check c join resource r on r.id = c.resource_id and r.url = c.url "
        "and r.state = 'active' join package p on p.id = c.package_id and p.state = 'active' "
        "where p.owner_org = :org and c.status = 'broken' order by c.broken_since, p.name limit :limit"
    ), {"org": org_id, "limit": limit}).mappings().all()]

"""Usage of the API and downloads per day, product and developer key.

Counting is one Redis HINCRBY per successful limited request (with the rate
limit's own round trip, two in all), into one hash of pending counts; about
once a minute (``ckanext.shanghai.usage.flush_seconds``) the request that
finds the flush due queues a job that moves the pending counts into
PostgreSQL (table shanghai_usage) in one statement. Requests name products
by id or name, and resources by id: the flush resolves them to product ids
with one query each, so a request costs no query.

Resource downloads keep their own per-resource count (portal/downloads.py,
which sorts search and draws the statistics chart); here a download is also
counted per key, with DataStore dumps and table exports."""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict

import sqlalchemy as sa
from flask import g, request

import ckan.model as model
import ckan.plugins.toolkit as tk

log = logging.getLogger(__name__)

__all__ = ["redis", "remember_caller", "request_ref", "count_response", "flush", "PENDING", "FLUSH_DUE",
           "register"]

PENDING = "shanghai:usage:pending"
FLUSH_DUE = "shanghai:usage:flush-due"

# Actions whose argument names a product, and those whose argument names a resource.
_PACKAGE_ACTIONS = {"package_show": "id", "package_activity_list": "id", "shanghai_access_agreement_show": "package_id"}
_RESOURCE_ACTIONS = {"resource_show": "id", "datastore_search": "resource_id", "datastore_info": "id",
                     "shanghai_realtime_search": "id", "shanghai_realtime_history": "id",
                     "resource_view_list": "id"}


_client = None


def redis():
    """One client per process over CKAN's connection pool (made once: a
    client costs tens of microseconds to build, twice per request)."""
    global _client
    if _client is None:
        from ckan.lib.redis import connect_to_redis

        _client = connect_to_redis()
    return _client


def remember_caller(who) -> None:
    g.shanghai_caller = who


def _action_args() -> dict:
    args = dict(request.args)
    if request.method == "POST" and request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            args.update(body)
    return args


def request_ref() -> tuple[str, str]:
    """(kind, ref) of this request: kind 'api' or 'download'; ref
    'p:<product id or name>', 'r:<resource id>' or '' (no product)."""
    endpoint = request.endpoint or ""
    view_args = request.view_args or {}
    if not request.path.startswith("/api/"):
        return "download", _ref("r", view_args.get("resource_id"))
    parts = request.path.strip("/").split("/")
    if "realtime" in parts and len(parts) >= 3:  # /api/realtime/<resource id>/stream|push
        return "api", _ref("r", view_args.get("resource_id") or parts[parts.index("realtime") + 1])
    if endpoint.startswith("api.") and "action" in parts:
        action = parts[-1]
        if action in _PACKAGE_ACTIONS:
            return "api", _ref("p", _action_args().get(_PACKAGE_ACTIONS[action]))
        if action in _RESOURCE_ACTIONS:
            return "api", _ref("r", _action_args().get(_RESOURCE_ACTIONS[action]))
    return "api", ""


def _ref(prefix: str, value) -> str:
    # Ids and names are short and have no '|' (the counter's separator).
    if not isinstance(value, str) or not value or len(value) > 100 or "|" in value:
        return ""
    return f"{prefix}:{value}"


def count_response(response):
    """Flask after_request: count a served limited request; now and then
    queue the flush."""
    who = g.get("shanghai_caller")
    if who is None or response.status_code >= 400:
        return response
    try:
        kind, ref = request_ref()
        field = f"{dt.date.today().isoformat()}|{kind}|{ref}|{who.key_id}"
        pipe = redis().pipeline(transaction=False)
        pipe.hincrby(PENDING, field, 1)
        pipe.set(FLUSH_DUE, "1", nx=True, ex=tk.config.get("ckanext.shanghai.usage.flush_seconds"))
        _, due = pipe.execute()
        if due:
            tk.enqueue_job(flush, title="shanghai usage flush")
    except Exception as error:  # counting must never break a request
        log.warning("usage not counted: %s", error)
    return response


def _resolve(refs: set[str]) -> dict[str, str]:
    """ref -> product id ('' when the ref names nothing the catalog knows)."""
    resources = [ref[2:] for ref in refs if ref.startswith("r:")]
    packages = [ref[2:] for ref in refs if ref.startswith("p:")]
    found: dict[str, str] = {}
    if resources:
        for resource_id, package_id in model.Session.execute(sa.text(
                "select id, package_id from resource where id = any(:ids)"), {"ids": resources}):
            found[f"r:{resource_id}"] = package_id
    if packages:
        for package_id, name in model.Session.execute(sa.text(
                "select id, name from package where id = any(:refs) or name = any(:refs)"), {"refs": packages}):
            found[f"p:{package_id}"] = package_id
            found[f"p:{name}"] = package_id
    return {ref: found.get(ref, "") for ref in refs}


def flush() -> int:
    """Move the pending counts from Redis into shanghai_usage; returns the
    rows written. The hash is renamed first, so counts arriving meanwhile
    wait for the next flush; if the write fails they are put back."""
    connection = redis()
    taken = f"{PENDING}:{uuid.uuid4().hex}"
    try:
        connection.rename(PENDING, taken)
    except Exception:  # nothing pending (no such key)
        return 0
    pending = {field.decode(): int(value) for field, value in connection.hgetall(taken).items()}
    try:
        rows = _aggregate(pending)
        if rows:
            model.Session.execute(sa.text(
                "insert into shanghai_usage (day, package_id, key_id, api_calls, downloads) "
                "select * from unnest(cast(:days as date[]), cast(:packages as text[]), cast(:keys as text[]), "
                "cast(:calls as bigint[]), cast(:downloads as bigint[])) "
                "on conflict (day, package_id, key_id) do update set "
                "api_calls = shanghai_usage.api_calls + excluded.api_calls, "
                "downloads = shanghai_usage.downloads + excluded.downloads"),
                {"days": [r[0] for r in rows], "packages": [r[1] for r in rows], "keys": [r[2] for r in rows],
                 "calls": [r[3] for r in rows], "downloads": [r[4] for r in rows]})
        model.Session.commit()
    except Exception:
        model.Session.rollback()
        pipe = connection.pipeline(transaction=False)
        for field, value in pending.items():
            pipe.hincrby(PENDING, field, value)
        pipe.delete(taken)
        pipe.execute()
        raise
    connection.delete(taken)
    return len(rows)


def _aggregate(pending: dict[str, int]) -> list[tuple]:
    parsed = []
    for field, value in pending.items():
        day, kind, ref, key_id = field.split("|", 3)
        parsed.append((day, kind, ref, key_id, value))
    products = _resolve({ref for _, _, ref, _, _ in parsed if ref})
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for day, kind, ref, key_id, value in parsed:
        counts = totals[(dt.date.fromisoformat(day), products.get(ref, ""), key_id)]
        counts[0 if kind == "api" else 1] += value
    return [(day, package_id, key_id, calls, downloads)
            for (day, package_id, key_id), (calls, downloads) in totals.items()]


def register(app) -> None:
    app.after_request(count_response)

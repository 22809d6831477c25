"""Per-request cost in a ``Server-Timing`` header: how many SQL statements
and Solr requests a page or API call made, and the time each took. Off
unless ``ckanext.shanghai.server_timing`` is on; operators read it in the
browser's developer tools, and the benchmarks count calls per page with it."""
from __future__ import annotations

import threading
import time

from flask import g
from sqlalchemy import event

import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai import compat

_local = threading.local()
_installed = False


def _counters():
    return getattr(_local, "counters", None)


def _count(kind: str, seconds: float) -> None:
    counters = _counters()
    if counters is not None:
        calls, total = counters.get(kind, (0, 0.0))
        counters[kind] = (calls + 1, total + seconds)


def _install() -> None:
    """Hook SQLAlchemy's engine and pysolr once per process."""
    global _installed
    if _installed:
        return
    _installed = True

    @event.listens_for(model.meta.engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("shanghai_started", []).append(time.perf_counter())

    @event.listens_for(model.meta.engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        started = conn.info.get("shanghai_started")
        if started:
            _count("sql", time.perf_counter() - started.pop())

    compat.count_solr_requests(lambda seconds: _count("solr", seconds))


def _start() -> None:
    _local.counters = {}
    g.shanghai_timing_started = time.perf_counter()


def _header(response):
    counters = _counters()
    _local.counters = None
    if counters is None:
        return response
    total = (time.perf_counter() - g.get("shanghai_timing_started", time.perf_counter())) * 1000
    parts = [f'{kind};desc="{calls} calls";dur={seconds * 1000:.1f}'
             for kind, (calls, seconds) in sorted(counters.items())]
    parts.append(f"app;dur={total:.1f}")
    response.headers["Server-Timing"] = ", ".join(parts)
    return response


def register(app) -> None:
    if not tk.config.get("ckanext.shanghai.server_timing"):
        return
    _install()
    app.before_request(_start)
    app.after_request(_header)

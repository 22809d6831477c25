"""Accepted error reports count in a product's quality flags: while a
department has accepted an error report on a product and the product has
not changed since (the next harvest or edit that changes it clears it), its
search document carries the flag ``public-error-report`` in ``quality_flag``
(the quality facet), beside the flags a harvest sets."""
from __future__ import annotations

import datetime as dt
import time
from typing import Any

__all__ = ["FLAG", "INDEX_FIELD", "flag_accepted_errors", "reindex"]

FLAG = "public-error-report"
INDEX_FIELD = "quality_flag"


def _modified(pkg_dict: dict[str, Any]) -> dt.datetime | None:
    value = pkg_dict.get("metadata_modified")
    if isinstance(value, str) and value:
        return dt.datetime.fromisoformat(value)
    return value or None


# Package id -> the latest acceptance of an error report on it, read once
# per _CACHE_SECONDS per process: indexing in bulk (a harvest, a rebuild)
# must not cost a query per product. The process that accepts a report
# forgets it at once (reindex); another process learns within the period.
_CACHE_SECONDS = 30.0
_cache: dict[str, Any] = {"until": 0.0, "accepted": {}}


def _latest_acceptances() -> dict[str, dt.datetime]:
    import sqlalchemy as sa

    import ckan.model as model
    from ckanext.shanghai.desk import store

    if time.monotonic() >= _cache["until"]:
        item = store.item
        rows = model.Session.execute(
            sa.select(item.c.package_id, sa.func.max(item.c.accepted))
            .where(item.c.kind == "error", item.c.accepted.isnot(None), item.c.package_id.isnot(None),
                   sa.or_(item.c.close_reason.is_(None), item.c.close_reason != "withdrawn"))
            .group_by(item.c.package_id))
        _cache.update(accepted=dict(rows.all()), until=time.monotonic() + _CACHE_SECONDS)
    return _cache["accepted"]


def flag_accepted_errors(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """Add the flag to a search document when the product has accepted
    error reports since it last changed (as store.accepted_errors says)."""
    accepted = _latest_acceptances().get(pkg_dict.get("id") or "")
    modified = _modified(pkg_dict)
    if modified is not None and modified.tzinfo is None:  # CKAN stores naive UTC
        modified = modified.replace(tzinfo=dt.timezone.utc)
    if accepted is None or (modified is not None and accepted < modified):
        return pkg_dict
    flags = pkg_dict.get(INDEX_FIELD) or []
    flags = [flags] if isinstance(flags, str) else list(flags)
    if FLAG not in flags:
        flags.append(FLAG)
    pkg_dict[INDEX_FIELD] = flags
    return pkg_dict


def reindex(package_id: str | None) -> None:
    """Index the product again, so that its flag follows an acceptance."""
    _cache["until"] = 0.0
    if package_id:
        from ckan.lib.search import rebuild

        rebuild(package_id)

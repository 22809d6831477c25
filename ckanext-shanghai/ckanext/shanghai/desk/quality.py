"""Accepted error reports count in a product's quality flags: while a
department has accepted an error report on a product and the product has
not changed since (the next harvest or edit that changes it clears it), its
search document carries the flag ``public-error-report`` in ``quality_flag``
(the quality facet), beside the flags a harvest sets."""
from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["FLAG", "INDEX_FIELD", "flag_accepted_errors", "reindex"]

FLAG = "public-error-report"
INDEX_FIELD = "quality_flag"


def _modified(pkg_dict: dict[str, Any]) -> dt.datetime | None:
    value = pkg_dict.get("metadata_modified")
    if isinstance(value, str) and value:
        return dt.datetime.fromisoformat(value)
    return value or None


def flag_accepted_errors(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """Add the flag to a search document when the product has accepted
    error reports since it last changed."""
    from ckanext.shanghai.desk import store

    if not pkg_dict.get("id") or not store.accepted_errors(pkg_dict["id"], _modified(pkg_dict)):
        return pkg_dict
    flags = pkg_dict.get(INDEX_FIELD) or []
    flags = [flags] if isinstance(flags, str) else list(flags)
    if FLAG not in flags:
        flags.append(FLAG)
    pkg_dict[INDEX_FIELD] = flags
    return pkg_dict


def reindex(package_id: str | None) -> None:
    """Index the product again, so that its flag follows an acceptance."""
    if package_id:
        from ckan.lib.search import rebuild

        rebuild(package_id)

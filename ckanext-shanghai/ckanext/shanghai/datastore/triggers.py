"""When a tabular resource is created, or its file or link changes, its
table is loaded into the DataStore (a job; see loader.py)."""
from __future__ import annotations

from ckanext.shanghai.datastore import loader

__all__ = ["after_resource_change", "remember_changed_source"]


def after_resource_change(context: dict, resource: dict, created: bool) -> None:
    if not loader.is_tabular(resource):
        return
    if not created and not context.get("shanghai_reload", {}).get(resource.get("id")):
        return
    loader.enqueue_load(resource["id"])


def remember_changed_source(context: dict, current: dict, resource: dict) -> None:
    """Before an update: reload only when the file or link changed."""
    changed = resource.get("upload") not in (None, "") or current.get("url") != resource.get("url")
    context.setdefault("shanghai_reload", {})[current.get("id")] = changed

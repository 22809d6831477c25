"""Template helpers of real-time products: liveness on the product page,
the department page and /statistics."""
from __future__ import annotations

import datetime as dt

import ckan.plugins.toolkit as tk

from ckanext.shanghai.datastore import geo
from ckanext.shanghai.realtime import actions, store

__all__ = ["sh_realtime_status", "sh_realtime_interrupted", "sh_realtime_local_time"]


def sh_realtime_status(pkg: dict) -> list[dict]:
    """Liveness and uptime of each real-time table of the product, whether
    its feed is simulated (the resource's ``realtime_simulated``) and whether
    its keys go on a map (``mapped``: the department declared the table's
    coordinate system)."""
    if not pkg.get("id"):
        return []
    resources = {resource["id"]: resource for resource in pkg.get("resources") or []}
    return [dict(actions.status(product), timezone=actions.zone().key, simulated=tk.asbool(
                resources.get(product["resource_id"], {}).get("realtime_simulated")),
                # A declared coordinate system: the latest table has a map.
                mapped=bool(geo.declared_crs(resources.get(product["resource_id"], {}))))
            for product in store.products_of([pkg["id"]])]


def sh_realtime_interrupted(organization_id: str | None = None) -> list[dict]:
    """The public real-time products whose feed is interrupted."""
    return tk.get_action("shanghai_realtime_status_list")(
        {"ignore_auth": True}, {"organization_id": organization_id, "interrupted": True})


def sh_realtime_local_time(value: str | None) -> str:
    """A stored time on the city's clock, as people read it."""
    if not value:
        return "—"
    return dt.datetime.fromisoformat(value).astimezone(actions.zone()).strftime("%Y-%m-%d %H:%M:%S")

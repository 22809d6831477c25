"""Template helpers of the portal."""
from __future__ import annotations

from flask import g

import ckan.model as model
import ckan.plugins.toolkit as tk

__all__ = ["get_organization"]


@tk.chained_helper
def get_organization(next_helper, org: str | None = None, include_datasets: bool = False) -> dict:
    """CKAN's ``h.get_organization`` (chained; ``next_helper`` is CKAN's,
    not called) without its two Solr searches: a data
    product page shows its department's name, logo and description, not its
    sub-groups or the counts CKAN computes by searching. ``package_count``
    (public datasets) comes from one SQL count; the answer is kept for the
    rest of the request (the page asks twice)."""
    if org is None:
        return {}
    cache = g.setdefault("shanghai_organizations", {})
    key = (org, include_datasets)
    if key not in cache:
        try:
            found = tk.get_action("organization_show")({}, {
                "id": org, "include_datasets": include_datasets, "include_dataset_count": include_datasets,
                "include_groups": False, "include_users": False, "include_followers": False})
        except (tk.ObjectNotFound, tk.ValidationError, tk.NotAuthorized):
            found = {}
        if found and not include_datasets:
            found["package_count"] = model.Session.query(model.Package.id).filter(
                model.Package.owner_org == found["id"], model.Package.state == "active",
                model.Package.private.is_(False), model.Package.type != "harvest").count()
        cache[key] = found
    return cache[key]

"""Who may have the data of a conditionally open product, and what everyone
else is shown instead.

A conditional product's metadata is public. Its data (uploaded files, the
addresses of linked files, DataStore rows) goes only to its department's
own people, sysadmins and holders of an approved, unexpired, unrevoked
grant. Everyone else sees, in place of a linked file's address, the
portal's own download address, which answers 403 with the way to apply.
"""
from __future__ import annotations

import json
from typing import Any

import ckan.authz as authz
import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.access import store

__all__ = ["CONDITIONAL", "is_conditional", "package_open_condition", "access_level", "user_of",
           "gated_url", "redact_package", "restore_package", "shape_index_document",
           "resource_access", "redact_activities"]

CONDITIONAL = "conditional"


def package_open_condition(package: model.Package) -> str | None:
    return package.extras.get("open_condition")


def is_conditional(pkg: dict | model.Package | None) -> bool:
    if pkg is None:
        return False
    if isinstance(pkg, model.Package):
        return package_open_condition(pkg) == CONDITIONAL
    return pkg.get("open_condition") == CONDITIONAL


def user_of(context: dict | None) -> model.User | None:
    """The signed-in user a call acts for, or None for anonymous."""
    context = context or {}
    user = context.get("auth_user_obj")
    if isinstance(user, model.User):
        return user
    name = context.get("user")
    if not name:
        return None
    return model.User.get(name)


def access_level(user: model.User | None, package_id: str, owner_org: str | None) -> str | None:
    """Why ``user`` may have the data: "sysadmin", "department" (any member
    of the owning department), "grant", or None. Checked on every request,
    so an expired or revoked grant stops access at once."""
    if user is None or not getattr(user, "is_authenticated", True) or user.state != "active":
        return None
    if user.sysadmin:
        return "sysadmin"
    if owner_org and authz.has_user_permission_for_group_or_org(owner_org, user.name, "read"):
        return "department"
    if store.active_grant(user.id, package_id) is not None:
        return "grant"
    return None


def _trusted(context: dict | None) -> bool:
    # Calls the portal makes on its own behalf (indexing, harvesting, jobs)
    # skip authorization; the public API never sets this.
    return bool((context or {}).get("ignore_auth"))


def gated_url(package_id: str, resource_id: str) -> str:
    return f"{tk.config.get('ckan.site_url').rstrip('/')}/dataset/{package_id}/resource/{resource_id}/download"


def _gate_resources(pkg_dict: dict[str, Any]) -> None:
    for resource in pkg_dict.get("resources") or []:
        if resource.get("url_type") != "upload" and resource.get("id"):
            resource["url"] = gated_url(pkg_dict["id"], resource["id"])


def redact_package(context: dict | None, pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """After package_show (and so resource_show): a conditional product's
    linked-file addresses for those who may have them, the gated address
    for everyone else."""
    if not is_conditional(pkg_dict) or not pkg_dict.get("id"):
        return pkg_dict
    if _trusted(context) or access_level(user_of(context), pkg_dict["id"], pkg_dict.get("owner_org")):
        return restore_package(pkg_dict)
    _gate_resources(pkg_dict)
    return pkg_dict


def restore_package(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """The real addresses, from the database: the search index keeps only
    the gated ones, and package_show may answer from it."""
    gated = {r["id"] for r in pkg_dict.get("resources") or []
             if r.get("url_type") != "upload" and r.get("url") == gated_url(pkg_dict["id"], r.get("id", ""))}
    if not gated:
        return pkg_dict
    urls = dict(model.Session.query(model.Resource.id, model.Resource.url)
                .filter(model.Resource.id.in_(gated)).all())
    for resource in pkg_dict["resources"]:
        if resource.get("id") in urls:
            resource["url"] = urls[resource["id"]]
    return pkg_dict


def shape_index_document(doc: dict[str, Any]) -> dict[str, Any]:
    """Before indexing: the index (which answers package_search, its ``fl``
    fields and package_show's cache) never holds a conditional product's
    linked-file addresses, so no query can read or probe them."""
    if doc.get("open_condition") != CONDITIONAL or not any(doc.get("res_url") or []):
        return doc
    for key in ("data_dict", "validated_data_dict"):
        if isinstance(doc.get(key), str):
            stored = json.loads(doc[key])
            _gate_resources(stored)
            doc[key] = json.dumps(stored)
            if key == "validated_data_dict":
                # Solr copies res_url into urls and text: this one field is enough.
                doc["res_url"] = [r.get("url") for r in stored.get("resources") or []]
    return doc


def resource_access(context: dict | None, resource_id: str) -> tuple[str | None, model.Package | None]:
    """(access level, product) for a resource's data: "open" when its
    product is not conditional; None when the caller may not have it."""
    resource = model.Resource.get(resource_id) if resource_id else None
    package = resource.package if resource is not None else None
    if package is None or not is_conditional(package):
        return "open", package
    if _trusted(context):
        return "trusted", package
    return access_level(user_of(context), package.id, package.owner_org), package


def redact_activities(context: dict | None, activities: list[dict] | dict) -> Any:
    """Activity records keep a full copy of the product; gate it as
    package_show does."""
    items = activities if isinstance(activities, list) else [activities]
    for activity in items:
        data = activity.get("data") if isinstance(activity, dict) else None
        package = data.get("package") if isinstance(data, dict) else None
        if isinstance(package, dict) and is_conditional(package):
            redact_package(context, package)
    return activities

"""Template helpers of the portal."""
from __future__ import annotations

from flask import g
from markupsafe import Markup

import ckan.model as model
import ckan.plugins.toolkit as tk

__all__ = ["get_organization", "humanize_entity_type", "get_translated", "dataset_display_name",
           "sh_machine_translated", "render_assets"]


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


# The portal's own dataset types by name in each language: CKAN would make
# English names from the types' machine names ("Application", "Civil-affairs").
# Every department's product type is a data product.
_APPLICATION = {"one": ("数据应用", "Data application"), "many": ("数据应用", "Data applications"),
                "search": ("搜索数据应用", "Search data applications"),
                "none": ("该数据应用暂无介绍。", "This data application has no description.")}
_PRODUCT = {"one": ("数据产品", "Data product"), "many": ("数据产品", "Data products"),
            "search": ("搜索数据产品", "Search data products"),
            "none": ("该数据产品暂无描述。", "This data product has no description.")}
_MANY = {"breadcrumb", "content tab", "facet label", "main nav", "page title"}
# Types CKAN or other plugins name themselves.
_NOT_OURS = {"dataset", "harvest"}


@tk.chained_helper
def humanize_entity_type(next_helper, entity_type: str, object_type: str, purpose: str):
    """CKAN's ``h.humanize_entity_type`` (chained), with the portal's own
    dataset types (applications, each department's products) named in the
    page's language."""
    if entity_type != "package" or object_type in _NOT_OURS:
        return next_helper(entity_type, object_type, purpose)
    from ckanext.shanghai.portal.helpers import sh_t

    names = _APPLICATION if object_type == "application" else _PRODUCT
    if purpose == "search placeholder":
        return sh_t(*names["search"])
    if purpose == "no description":
        return sh_t(*names["none"])
    if purpose in _MANY:
        return sh_t(*names["many"])
    if purpose == "my label":
        return sh_t("我的" + names["many"][0], "My " + names["many"][1].lower())
    if purpose in ("add link", "create label", "create title"):
        return sh_t("新建" + names["one"][0], "New " + names["one"][1].lower())
    if purpose in ("edit label", "update label"):
        return sh_t("编辑" + names["one"][0], "Edit " + names["one"][1].lower())
    return sh_t(*names["one"])


# Fields with a machine translation of their own (schemas/presets.yaml).
_MACHINE_TRANSLATED = ("title", "notes")


def sh_machine_translated(pkg: dict, field: str = "title") -> bool:
    """Whether this page shows the machine translation of a product's
    ``field``: an English page, no English of a person's own (CKAN's
    ``<field>_translated``), and a translation stored."""
    from ckanext.shanghai.portal.helpers import sh_is_english

    if field not in _MACHINE_TRANSLATED or not isinstance(pkg, dict) or not sh_is_english():
        return False
    own = pkg.get(f"{field}_translated")
    if isinstance(own, dict) and own.get("en"):
        return False
    return bool(pkg.get(f"{field}_en"))


@tk.chained_helper
def get_translated(next_helper, data_dict: dict, field: str):
    """CKAN's ``h.get_translated`` (chained), which the product's heading,
    breadcrumb, page title and summary go through: on the English pages a
    product with no English of its own shows its machine translation."""
    if sh_machine_translated(data_dict, field):
        return data_dict[f"{field}_en"]
    return next_helper(data_dict, field)


@tk.chained_helper
def dataset_display_name(next_helper, package_or_package_dict):
    """CKAN's ``h.dataset_display_name`` (chained; it calls CKAN's own
    get_translated, not the chained one): the heading, breadcrumb and page
    title of a product in the page's language, as ``get_translated``."""
    if sh_machine_translated(package_or_package_dict, "title"):
        return package_or_package_dict["title_en"]
    return next_helper(package_or_package_dict)


@tk.chained_helper
def render_assets(next_helper, type_: str) -> Markup:
    """CKAN's ``h.render_assets`` (chained), with every script deferred: on a
    phone the page's text paints before CKAN's half megabyte of JavaScript
    has arrived. Deferred scripts still run in order, before the document's
    DOMContentLoaded, which is when CKAN's modules start; no template of the
    portal runs inline JavaScript."""
    tags = next_helper(type_)
    if type_ != "script":
        return tags
    return Markup(str(tags).replace("<script src=", "<script defer src="))

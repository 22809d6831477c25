"""Pages the public portal adds (statistics, API guide, sitemap), download
counting, data-application validators and the search and index hooks the
theme needs."""
from __future__ import annotations

import json
import logging
from typing import Any
from xml.sax.saxutils import escape

from flask import Blueprint, Response, request

import ckan.plugins.toolkit as tk
from ckan.lib.navl.dictization_functions import Invalid, missing

from ckanext.shanghai.datastore import loader as datastore_loader
from ckanext.shanghai.portal import downloads
from ckanext.shanghai.portal import stats

log = logging.getLogger(__name__)

__all__ = ["shanghai_portal", "record_downloads",
           "shanghai_web_address", "shanghai_data_product_names",
           "shanghai_data_product_names_output", "after_resource_change"]

shanghai_portal = Blueprint("shanghai_portal", __name__)


@shanghai_portal.route("/statistics")
def statistics():
    return tk.render("shanghai/statistics.html", {"stats": stats.statistics()})


@shanghai_portal.route("/statistics.json")
def statistics_json():
    return Response(json.dumps(stats.statistics(), ensure_ascii=False), mimetype="application/json")


@shanghai_portal.route("/api-guide")
def api_guide():
    # A product with a table in the DataStore makes the best example.
    candidates = stats.product_search(q="*:*", fq="res_url:*download* -open_condition:conditional", rows=20)["results"] \
        + stats.product_search(q="*:*", rows=1)["results"]
    example = next((p for p in candidates if any(r.get("datastore_active") for r in p["resources"])),
                   candidates[0] if candidates else None)
    return tk.render("shanghai/api_guide.html", {"example": example})


@shanghai_portal.route("/sitemap.xml")
def sitemap():
    """Public pages: home, lists, every public data product, application and department."""
    base = tk.config.get("ckan.site_url").rstrip("/")
    urls = [f"{base}/", f"{base}/dataset/", f"{base}/organization/", f"{base}/application/",
            f"{base}/statistics", f"{base}/api-guide"]
    start = 0
    while True:
        page = tk.get_action("package_search")({"ignore_auth": True, "user": ""}, {
            "q": "*:*", "fq": "-dataset_type:harvest", "rows": 1000, "start": start,
            "include_private": False, "fl": "name,dataset_type", "sort": "name asc"})
        for hit in page["results"]:
            urls.append(f"{base}/{hit.get('dataset_type') or 'dataset'}/{hit['name']}")
        start += 1000
        if start >= page["count"]:
            break
    for name in tk.get_action("organization_list")({"ignore_auth": True}, {"all_fields": False}):
        urls.append(f"{base}/organization/{name}")
    body = ['<?xml version="1.0" encoding="UTF-8"?>',
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']
    body += [f"<url><loc>{escape(url)}</loc></url>" for url in urls]
    body.append("</urlset>")
    return Response("\n".join(body), mimetype="application/xml")


# --------------------------------------------------------------------------
# Downloads


def record_downloads(response):
    """Count a successful download of a resource through the portal."""
    endpoint = request.endpoint or ""
    if not endpoint.endswith("resource.download") or response.status_code not in (200, 302):
        return response
    args = request.view_args or {}
    try:
        resource = tk.get_action("resource_show")({"ignore_auth": True}, {"id": args.get("resource_id")})
        downloads.record_download(resource["package_id"], resource["id"])
        tk.enqueue_job(reindex_package, [resource["package_id"]], title="reindex after download")
    except Exception:  # counting must never break a download
        log.exception("could not count a download of %s", args)
    return response


def reindex_package(package_id: str) -> None:
    """Re-index a product so its download count sorts (job queue)."""
    from ckan.lib.search import rebuild

    rebuild(package_id)


# --------------------------------------------------------------------------
# Search and index


# --------------------------------------------------------------------------
# Resources: load tables into the DataStore


def after_resource_change(context: dict, resource: dict, created: bool) -> None:
    if not datastore_loader.is_tabular(resource):
        return
    if not created and not context.get("shanghai_reload", {}).get(resource.get("id")):
        return
    datastore_loader.enqueue_load(resource["id"])


def remember_changed_source(context: dict, current: dict, resource: dict) -> None:
    """Before an update: reload only when the file or link changed."""
    changed = resource.get("upload") not in (None, "") or current.get("url") != resource.get("url")
    context.setdefault("shanghai_reload", {})[current.get("id")] = changed


# --------------------------------------------------------------------------
# Validators of data applications


def shanghai_web_address(value: Any) -> Any:
    if value is missing or value in (None, ""):
        return value
    if not str(value).startswith(("http://", "https://")):
        raise Invalid(f"应用地址应以 http:// 或 https:// 开头：{value!s:.60} / "
                      f"The address must start with http:// or https://: {value!s:.60}")
    return value


def shanghai_data_product_names(value: Any) -> Any:
    """A list of existing public data product names, stored as JSON."""
    if value is missing or value in (None, ""):
        return value
    if isinstance(value, str):
        try:
            names = json.loads(value) if value.strip().startswith("[") else value.split(",")
        except ValueError:
            names = value.split(",")
    else:
        names = list(value)
    names = [str(name).strip() for name in names if str(name).strip()]
    unknown = []
    for name in names:
        try:
            product = tk.get_action("package_show")({"ignore_auth": True}, {"id": name})
        except tk.ObjectNotFound:
            unknown.append(name)
            continue
        if product.get("private") or product.get("type") in ("application", "harvest"):
            unknown.append(name)
    if unknown:
        raise Invalid(f"以下数据产品不存在或未公开：{'、'.join(unknown)} / "
                      f"These data products do not exist or are not public: {', '.join(unknown)}")
    if not names:
        raise Invalid("请至少填写一个数据产品 / Name at least one data product")
    return json.dumps(names)


def shanghai_data_product_names_output(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value

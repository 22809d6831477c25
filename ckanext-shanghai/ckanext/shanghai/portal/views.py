"""Pages the public portal adds: statistics, the API guide, the sitemap."""
from __future__ import annotations

import json
import logging
from xml.sax.saxutils import escape

from flask import Blueprint, Response

import ckan.plugins.toolkit as tk

from ckanext.shanghai.portal import stats

log = logging.getLogger(__name__)

__all__ = ["shanghai_portal"]

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
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            'xmlns:xhtml="http://www.w3.org/1999/xhtml">']
    # Each page with its English twin (/en/...), as the pages' hreflang links say.
    for url in urls:
        english = base + "/en" + url[len(base):]
        alternates = "".join(f'<xhtml:link rel="alternate" hreflang="{lang}" href="{escape(href)}"/>'
                             for lang, href in (("zh-Hans", url), ("en", english), ("x-default", url)))
        body.append(f"<url><loc>{escape(url)}</loc>{alternates}</url>")
    body.append("</urlset>")
    return Response("\n".join(body), mimetype="application/xml")

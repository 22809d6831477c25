"""Template helpers of the public portal theme: text in the page's language,
the language switch, home page lists, freshness, DataStore previews, data
applications and harvest-source health."""
from __future__ import annotations

import json

import ckan.plugins.toolkit as tk
from flask import request

from ckanext.shanghai import search
from ckanext.shanghai.datastore import loader as datastore_loader
from ckanext.shanghai.portal import charts
from ckanext.shanghai.portal import downloads
from ckanext.shanghai.portal import stats

__all__ = [
    "sh_t", "sh_is_english", "sh_language_url", "sh_key_figures", "sh_department_counts",
    "sh_domain_counts", "sh_newest_products", "sh_most_downloaded", "sh_featured_apps",
    "sh_freshness", "sh_choice_label", "sh_datastore_preview", "sh_load_status",
    "sh_package_downloads", "sh_apps_using", "sh_products_of_app", "sh_harvest_health",
    "sh_api_examples", "sh_site_url", "sh_error_text", "sh_has_value", "sh_department_summary",
    "sh_optional_assets", "sh_page_meta", "sh_qr_svg", "sh_share_links",
    "sh_asset_url", "sh_stat_chart", "sh_light_page", "sh_pager_symbol",
    "sh_quality_flags",
    "sh_map_tiles", "sh_table_maps", "sh_spatial_districts",
    "sh_quality_score", "sh_link_check", "sh_department_quality", "sh_department_broken_links",
]


def sh_is_english() -> bool:
    return not search.current_language().startswith("zh")


def sh_t(zh: str, en: str) -> str:
    """The portal's own interface text in the page's language."""
    return en if sh_is_english() else zh


def sh_language_url(language: str) -> str:
    """This page's address in ``language`` (``en`` or ``zh_Hans_CN``),
    with CKAN's locale prefix (/en/...) and the same query string."""
    path = request.environ.get("CKAN_CURRENT_URL") or request.full_path
    if path.startswith("/en/") or path == "/en":
        path = path[3:] or "/"
    default = tk.config.get("ckan.locale_default")
    root = tk.config.get("ckan.root_path") or ""
    if language == default:
        return f"{root}{path}" if path.startswith("/") else f"{root}/{path}"
    return f"{root}/{language}{path if path.startswith('/') else '/' + path}"


def sh_site_url() -> str:
    return tk.config.get("ckan.site_url").rstrip("/")


def sh_key_figures() -> dict:
    return stats.key_figures()


def sh_department_counts(limit: int = 60) -> list[dict]:
    return stats.facet_counts("organization")[:limit]


def sh_domain_counts() -> list[dict]:
    return stats.facet_counts("data_domain")


def sh_newest_products(limit: int = 6) -> list[dict]:
    return stats.product_search(q="*:*", rows=limit, sort="metadata_created desc")["results"]


def sh_most_downloaded(limit: int = 6) -> list[dict]:
    result = stats.product_search(q="*:*", fq="downloads_total:[1 TO *]", rows=limit,
                                  sort="downloads_total desc, metadata_modified desc")
    return result["results"]


def sh_featured_apps(limit: int = 4) -> list[dict]:
    return tk.get_action("package_search")({"ignore_auth": True, "user": ""}, {
        "q": "*:*", "fq": "+dataset_type:application", "rows": limit,
        "sort": "metadata_modified desc", "include_private": False})["results"]


def sh_freshness(pkg: dict) -> dict:
    return stats.freshness(pkg)


def sh_choice_label(field_name: str, value: str) -> str:
    labels = search.choice_labels(field_name).get(value)
    return search._in_language(labels, search.current_language()) if labels else (value or "")


def sh_datastore_preview(resource_id: str, limit: int = 10) -> dict | None:
    """The first rows of a resource's DataStore table, or None."""
    try:
        return tk.get_action("datastore_search")({}, {"resource_id": resource_id, "limit": limit,
                                                      "include_total": True})
    except (tk.ObjectNotFound, tk.NotAuthorized, tk.ValidationError, KeyError):
        return None


def sh_load_status(resource_id: str) -> dict | None:
    return datastore_loader.load_status(resource_id)


def sh_package_downloads(package_id: str) -> int:
    return downloads.package_downloads(package_id)


def sh_apps_using(package_name: str, limit: int = 20) -> list[dict]:
    """Public data applications that list this product as used."""
    return tk.get_action("package_search")({"ignore_auth": True, "user": ""}, {
        "q": "*:*", "fq": f'+dataset_type:application +related_datasets:"{package_name}"',
        "rows": limit, "include_private": False})["results"]


def sh_products_of_app(app: dict) -> list[dict]:
    names = app.get("related_datasets") or []
    if isinstance(names, str):
        try:
            names = json.loads(names)
        except ValueError:
            names = [part.strip() for part in names.split(",") if part.strip()]
    products = []
    for name in names:
        try:
            products.append(tk.get_action("package_show")({}, {"id": name}))
        except (tk.ObjectNotFound, tk.NotAuthorized):
            continue
    return products


def sh_harvest_health(org_id: str) -> list[dict]:
    """The harvest sources this department's products came from (or that it
    owns), each with its last job: status, when, counts and errors."""
    import sqlalchemy as sa

    import ckan.model as model

    rows = model.Session.execute(sa.text(
        "select distinct o.harvest_source_id from harvest_object o join package p on p.id = o.package_id "
        "where p.owner_org = :org and o.current = true "
        "union select s.id from harvest_source s join package p on p.id = s.id where p.owner_org = :org"
    ), {"org": org_id}).fetchall()
    sources = []
    for (source_id,) in rows:
        try:
            source = tk.get_action("harvest_source_show")({"ignore_auth": True}, {"id": source_id})
        except tk.ObjectNotFound:
            continue
        status = source.get("status") or {}
        last = status.get("last_job") or {}
        stats_ = last.get("stats") or {}
        errored = int(stats_.get("errored", 0) or 0)
        state = "never" if not last else ("running" if last.get("status") != "Finished"
                                          else ("errors" if errored else "ok"))
        sources.append({"id": source["id"], "name": source["name"], "title": source.get("title"),
                        "state": state, "finished": last.get("finished"),
                        "added": stats_.get("added", 0), "updated": stats_.get("updated", 0),
                        "errored": errored, "total_datasets": status.get("total_datasets")})
    return sources


def sh_api_examples(pkg: dict) -> list[dict]:
    """Working requests for this product: action API, and the DataStore for
    each resource that is loaded."""
    base = sh_site_url()
    examples = [{"label": sh_t("元数据（package_show）", "Metadata (package_show)"),
                 "url": f"{base}/api/3/action/package_show?id={pkg['name']}"}]
    for resource in pkg.get("resources", []):
        if not resource.get("datastore_active"):
            continue
        rid = resource["id"]
        preview = sh_datastore_preview(rid, limit=1) or {}
        fields = [f["id"] for f in preview.get("fields", []) if f["id"] != "_id"]
        first = (preview.get("records") or [{}])[0]
        examples.append({"label": sh_t("前 5 行（datastore_search）", "First 5 rows (datastore_search)"),
                         "url": f"{base}/api/3/action/datastore_search?resource_id={rid}&limit=5"})
        if fields and first.get(fields[0]) not in (None, ""):
            filters = json.dumps({fields[min(1, len(fields) - 1)]: first.get(fields[min(1, len(fields) - 1)])},
                                 ensure_ascii=False)
            examples.append({"label": sh_t("按字段筛选（filters）", "Filter by a column (filters)"),
                             "url": f"{base}/api/3/action/datastore_search?resource_id={rid}&filters={filters}"})
        examples.append({"label": sh_t("分页（offset / limit）", "Paging (offset / limit)"),
                         "url": f"{base}/api/3/action/datastore_search?resource_id={rid}&limit=100&offset=100"})
        break
    return examples


# An error page's status in both languages; what it says when the view that
# failed gave no reason of its own (Werkzeug's reasons are English only).
_ERRORS = {
    400: ("请求有误", "Bad request", "请求无法处理，请检查网址或表单后重试。",
          "The request could not be understood; check the address or the form and try again."),
    401: ("需要登录", "Sign-in required", "请先登录再访问此页面。", "Please sign in to see this page."),
    403: ("无权访问", "Not allowed", "您没有访问此页面的权限。", "You are not allowed to see this page."),
    404: ("页面不存在", "Page not found", "您访问的页面不存在，可能已被移动或删除。请检查网址，或从首页重新查找。",
          "The page you asked for does not exist; it may have moved or been removed. "
          "Check the address, or start again from the home page."),
    405: ("请求方式不允许", "Method not allowed", "此页面不接受这种请求方式。",
          "This page does not accept this kind of request."),
    409: ("操作冲突", "Conflict", "该内容已被他人修改，请刷新后重试。",
          "Someone else changed this meanwhile; reload and try again."),
    413: ("提交的内容过大", "Too large", "提交的文件或内容超过了允许的大小。",
          "The file or content sent is larger than allowed."),
    429: ("请求过于频繁", "Too many requests", "请稍候再试。", "Please wait a moment and try again."),
    500: ("服务器错误", "Server error", "服务器处理请求时出错，请稍后再试。",
          "The server failed to answer this request; please try again later."),
    503: ("服务暂时不可用", "Service unavailable", "服务暂时不可用，请稍后再试。",
          "The service is unavailable for a moment; please try again later."),
}


def sh_error_text(code, name: str | None, content) -> dict:
    """The title and message of an error page in the page's language.

    ``content`` is kept when it is the failing view's own (already through
    CKAN's translation); Werkzeug's stock reasons and CKAN's bare
    "Internal server error" are replaced."""
    from werkzeug.exceptions import default_exceptions

    if isinstance(code, (list, tuple)):  # CKAN's handler passes [500] for uncaught errors
        code = code[0] if code else 500
    try:
        code = int(code)
    except (TypeError, ValueError):
        code = 500
    known = _ERRORS.get(code) or _ERRORS[500 if code >= 500 else 400]
    stock = default_exceptions.get(code)
    text = str(content or "").strip()
    if not text or text == "Internal server error" or (stock is not None and text == stock.description):
        text = sh_t(known[2], known[3])
    return {"code": code, "title": f"{code} {sh_t(known[0], known[1])}", "message": text}


def sh_has_value(value) -> bool:
    """Whether a field has something to show (not None, blank or empty)."""
    if value is None or not value and not isinstance(value, (int, float)):
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return True


def sh_department_summary(organization: dict) -> str:
    """What a department without a description of its own is, in the
    page's language: its kind and how many products it publishes."""
    kind = ""
    schema = tk.h.scheming_get_organization_schema("organization") or {}
    for field in schema.get("fields", []):
        if field["field_name"] == "department_type":
            for choice in field.get("choices", []):
                if choice["value"] == organization.get("department_type"):
                    kind = search._in_language(choice["label"], search.current_language())
    title = organization.get("title") or organization.get("name")
    count = organization.get("package_count")
    if sh_is_english():
        text = f"{title} ({kind.lower()})" if kind else title
        if count is None:
            return text + " publishes its data products on this portal."
        return text + f" publishes {count} data product{'' if count == 1 else 's'} on this portal."
    text = f"{title}（{kind}）" if kind else title
    return text + (f"在本平台开放 {count} 个数据产品。" if count is not None else "在本平台开放数据产品。")


_FORM_VIEWS = {"new", "edit", "new_resource", "edit_resource", "resource_edit", "resources", "new_view",
               "edit_view", "member_new", "manage_members", "bulk_process", "register", "dictionary"}


def sh_optional_assets() -> set[str]:
    """Which optional bundles (stylesheets, scripts) this page needs: ``activity`` (activity
    streams), ``harvest`` (harvest sources and jobs), ``forms`` (forms)."""
    endpoint = request.endpoint or ""
    blueprint, _, view = endpoint.rpartition(".")
    needs = set()
    if blueprint == "activity" or "activity" in view or blueprint == "dashboard":
        needs.add("activity")
    if blueprint in ("harvest", "harvester") or "/harvest" in request.path:
        needs.add("harvest")
    if view in _FORM_VIEWS or request.method == "POST":
        needs.add("forms")
    return needs


# Pages whose content uses none of CKAN's script modules get the portal's
# few lines for the menu button and the filters instead of CKAN's quarter
# megabyte of JavaScript (jQuery, its vendor bundle, Bootstrap, the modules)
# and the icon font (the portal's stylesheet draws their icons, .sh-light):
# the home and statistics pages, a data product's page (its resource menus
# open with the portal's lines), and a department's page, whose search form
# and facets need htmx alone (hx-boost, hx-trigger).
_LIGHT_PAGES = {
    "home.index": {"htmx": False},
    "shanghai_portal.statistics": {"htmx": False},
    "organization.read": {"htmx": True},
}


def sh_light_page() -> dict | None:
    """What a page without CKAN's scripts still loads (``htmx``), or None
    for a page that needs them all. Signed-in users get CKAN's scripts
    everywhere (their pages carry editing controls)."""
    if tk.current_user.is_authenticated:
        return None
    endpoint = request.endpoint or ""
    blueprint, _, view = endpoint.rpartition(".")
    if blueprint in (tk.h.scheming_dataset_schemas() or {}) and blueprint != "harvest":
        if view == "read":
            return {"htmx": False}  # a data product or application: Bootstrap's menus only
        if view == "search":
            return {"htmx": True}  # the search form and facets, as on a department's page
    return _LIGHT_PAGES.get(endpoint)


def sh_pager_symbol(direction: str):
    """A pager's previous or next link text: CKAN's chevron and a name a
    screen reader reads."""
    from markupsafe import Markup, escape

    icon, name = (("left", sh_t("上一页", "Previous page")) if direction == "previous"
                  else ("right", sh_t("下一页", "Next page")))
    return Markup(f'<i class="fa-solid fa-chevron-{icon}" aria-hidden="true"></i>'
                  f'<span class="visually-hidden">{escape(name)}</span>')


def sh_stat_chart(chart_id: str, figures: dict):
    """One chart of the statistics page as inline SVG (``portal/charts.py``)."""
    from markupsafe import Markup

    if chart_id == "sh-chart-departments":
        svg = charts.bar_chart(figures["departments"][:20])
    elif chart_id == "sh-chart-domains":
        svg = charts.bar_chart(figures["domains"])
    elif chart_id == "sh-chart-open":
        svg = charts.bar_chart(figures["open_condition"])
    elif chart_id == "sh-chart-frequency":
        svg = charts.bar_chart(figures["update_frequency"])
    elif chart_id == "sh-chart-freshness":
        svg = charts.bar_chart([{"name": f["label"], "value": f["share"]} for f in figures["freshness"]])
    elif chart_id == "sh-chart-downloads":
        svg = charts.column_chart([{"name": d["day"][5:], "value": d["value"]} for d in figures["downloads"]],
                                  unit=sh_t("下载", "downloads"))
    elif chart_id == "sh-chart-scores" and figures.get("scores"):
        svg = charts.bar_chart(figures["scores"]["bins"])
    else:
        svg = ""
    return Markup(svg)


def _absolute(language: str, keep_query: bool = False) -> str:
    path = sh_language_url(language)
    if not keep_query:
        path = path.split("?", 1)[0]
    return sh_site_url() + path


def sh_page_meta(pkg: dict | None = None, group: dict | None = None) -> dict:
    """What search engines and link previews read of this page: its
    description (the product's or department's own, else the portal's),
    canonical address, its address in each language, Open Graph fields."""
    from ckan.lib.helpers import markdown_extract

    text = ""
    if pkg:
        text = pkg.get("notes") or ""
    elif group:
        text = group.get("description") or ""
    description = str(markdown_extract(text, extract_length=160)) if text else ""
    if not description and group:
        description = sh_department_summary(group)
    if not description:
        description = sh_t("上海市公共数据开放平台：查找、预览和下载各部门开放的数据产品，并通过 API 获取。",
                           "Shanghai's public data portal: find, preview and download the data products "
                           "the city's departments publish, or fetch them through the API.")
    title = (pkg or {}).get("title") or (group or {}).get("title") or tk.config.get("ckan.site_title")
    english = sh_is_english()
    return {
        "description": description,
        "canonical": _absolute("en" if english else "zh_Hans_CN"),
        "alternates": [("zh-Hans", _absolute("zh_Hans_CN")), ("en", _absolute("en")),
                       ("x-default", _absolute("zh_Hans_CN"))],
        "og_type": "article" if pkg else "website",
        "og_title": title,
        "og_locale": "en_US" if english else "zh_CN",
        "site_name": tk.config.get("ckan.site_title"),
    }


def sh_qr_svg(url: str, label: str):
    """A QR code of ``url`` as inline SVG with ``label`` as its name, drawn
    here (segno), for WeChat's "scan to share" (inline, not a data: URI,
    which the page's script checks treat as a way in)."""
    import segno
    from markupsafe import Markup

    # segno escapes the title and draws only paths from the URL's bits.
    svg = segno.make(url, error="m").svg_inline(scale=3, border=2, title=label)
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))


def sh_share_links(url: str, title: str) -> list[dict]:
    """Where this page can be shared: Weibo on Chinese pages (WeChat by its
    QR code beside), X and Facebook on English ones."""
    from urllib.parse import quote

    if sh_is_english():
        return [{"name": "X", "icon": "fa-brands fa-square-x-twitter",
                 "url": f"https://x.com/share?url={quote(url, safe='')}"},
                {"name": "Facebook", "icon": "fa-brands fa-facebook-square",
                 "url": f"https://www.facebook.com/sharer.php?u={quote(url, safe='')}"}]
    return [{"name": "新浪微博", "icon": "fa-brands fa-weibo",
             "url": f"https://service.weibo.com/share/share.php?url={quote(url, safe='')}&title={quote(title or '', safe='')}"}]


def sh_asset_url(name: str) -> str:
    """The address of a webassets bundle, for a script to fetch later
    rather than a tag that blocks the page (CKAN has no public call for it)."""
    from ckan.lib import webassets_tools
    from ckan.lib.helpers import url_for_static_or_external

    return url_for_static_or_external(webassets_tools.env[name].urls()[0])


def sh_quality_flags(pkg: dict) -> list[dict]:
    """The product's quality flags for its page, in the page's language:
    ``code``, ``label`` (the kind), ``field``, ``value`` (what the source
    said) and ``reason`` (what was found and what was done)."""
    from ckanext.shanghai import quality

    language = search.current_language()
    english = not language.startswith("zh")
    return [{"code": flag["code"], "label": quality.label(flag["code"], language), "field": flag.get("field"),
             "value": flag.get("value"), "reason": flag.get("reason_en" if english else "reason_zh") or ""}
            for flag in quality.parse(pkg.get(quality.FIELD))]


# A table with more points than this gets its GeoJSON link but no map: the
# browser would fetch and draw every row.
MAP_MAX_POINTS = 20000
_NAME_COLUMNS = ("name", "名称", "机构名称", "单位名称", "title", "标题")


def sh_map_tiles() -> dict:
    """The configured tile server (``url`` empty when there is none),
    its attribution and the coordinate system of its images."""
    return {"url": tk.config.get("ckanext.shanghai.map.tile_url") or "",
            "attribution": tk.config.get("ckanext.shanghai.map.tile_attribution") or "",
            "crs": tk.config.get("ckanext.shanghai.map.tile_crs") or "wgs84"}


def sh_table_maps(pkg: dict) -> list[dict]:
    """The maps of a product's tables with coordinates: ``resource``,
    ``geojson_url`` (in the tile server's system when the department
    declared the table's), ``label_field`` and ``too_many`` (rows over
    MAP_MAX_POINTS: no map is drawn)."""
    from ckanext.shanghai.datastore import geo

    maps = []
    crs = sh_map_tiles()["crs"]
    for resource in pkg.get("resources") or []:
        if not resource.get("datastore_active"):
            continue
        status = datastore_loader.load_status(resource["id"]) or {}
        if not status.get("coordinates"):
            continue
        # A conditional product's table stays unmapped until the grant.
        if not tk.h.check_access("datastore_search", {"resource_id": resource["id"]}):
            continue
        params = {"map": 1}
        if geo.declared_crs(resource):
            params["crs"] = crs
        url = tk.h.url_for("shanghai_tables.export", id=pkg["name"], resource_id=resource["id"],
                           fmt="geojson", **params)
        texts = [entry["name"] for entry in status.get("dictionary") or [] if entry.get("type") == "text"]
        label = next((name for name in texts if name.strip().lower() in _NAME_COLUMNS), texts[0] if texts else "")
        maps.append({"resource": resource, "geojson_url": url, "label_field": label,
                     "too_many": (status.get("rows") or 0) > MAP_MAX_POINTS})
    return maps


def sh_spatial_districts() -> list[dict]:
    """Shanghai's districts for the search page's filter: ``value`` and
    ``label`` in the page's language."""
    english = sh_is_english()
    return [{"value": district["name"], "label": district["en"] if english else district["name"]}
            for district in search.spatial.DISTRICTS]


def sh_quality_score(pkg: dict) -> dict:
    """The product's metadata quality score for its page: ``score``,
    ``band`` and its ``band_label``, points per dimension (``dimensions``:
    label, points, max) and what to fix (``fixes``: text, points to gain,
    details), in the page's language; the same function the index runs."""
    from ckanext.shanghai.assessment import links, score

    language = search.current_language()
    english = not language.startswith("zh")
    assessment = score.assess(pkg, links.package_links(pkg["id"]))
    return {
        "score": assessment.score, "max": score.MAX_SCORE, "band": assessment.band,
        "band_label": score.band_label(assessment.band, language),
        "dimensions": [{"code": code, "label": score.dimension_label(code, language), "points": points,
                        "max": score.DIMENSIONS[code][0]} for code, points in assessment.dimensions.items()],
        "fixes": [{"code": check.indicator.code, "points": check.lost,
                   "text": check.indicator.fix_en if english else check.indicator.fix_zh,
                   "dimension": score.dimension_label(check.indicator.dimension, language),
                   "details": [d["en" if english else "zh"] for d in check.details]}
                  for check in assessment.fixes()],
    }


def sh_link_check(resource: dict) -> dict | None:
    """The last check of the resource's link at its current URL: ``state``
    (ok, broken), ``checked_at``, ``broken_since``, ``http_status`` and the
    ``reason`` in the page's language; None when it has not been checked."""
    from ckanext.shanghai.assessment import links

    row = links.package_links(resource["package_id"]).get(resource["id"])
    if row is None:
        return None
    english = sh_is_english()
    return {"state": row["status"], "checked_at": row["checked_at"], "broken_since": row["broken_since"],
            "http_status": row["http_status"], "reason": row["reason_en" if english else "reason_zh"] or ""}


def sh_department_quality(org_id: str) -> dict:
    """A department's average score, its distribution and its ten
    lowest-scoring public products."""
    from ckanext.shanghai.assessment import summary

    fq = f'owner_org:"{org_id}"'
    return dict(summary.distribution(fq, search.current_language()), lowest=summary.lowest(fq, 10))


def sh_department_broken_links(org_id: str, limit: int = 100) -> list[dict]:
    from ckanext.shanghai.assessment import links

    english = sh_is_english()
    return [dict(row, reason=row["reason_en" if english else "reason_zh"] or "")
            for row in links.department_broken_links(org_id, limit)]

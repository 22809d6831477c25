"""Template helpers of the public portal theme: text in the page's language,
the language switch, home page lists, freshness, DataStore previews, data
applications and harvest-source health."""
from __future__ import annotations

import json

import ckan.plugins.toolkit as tk
from flask import request

from ckanext.shanghai import search
from ckanext.shanghai.datastore import loader as datastore_loader
from ckanext.shanghai.portal import downloads
from ckanext.shanghai.portal import stats

__all__ = [
    "sh_t", "sh_is_english", "sh_language_url", "sh_key_figures", "sh_department_counts",
    "sh_domain_counts", "sh_newest_products", "sh_most_downloaded", "sh_featured_apps",
    "sh_freshness", "sh_choice_label", "sh_datastore_preview", "sh_load_status",
    "sh_package_downloads", "sh_apps_using", "sh_products_of_app", "sh_harvest_health",
    "sh_api_examples", "sh_site_url", "sh_quality_flags",
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

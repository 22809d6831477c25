"""Figures of the public catalog for the home and statistics pages: counts
by department, domain, open condition and frequency, freshness against the
declared update frequency, and downloads. Public data products only."""
from __future__ import annotations

import datetime as dt
from typing import Any

import ckan.plugins.toolkit as tk

from ckanext.shanghai import search
from ckanext.shanghai.portal import downloads

__all__ = ["PRODUCTS_FQ", "ALLOWED_DAYS", "freshness", "product_search", "facet_counts",
           "key_figures", "freshness_shares", "quality_by_department", "score_distribution", "statistics",
           "usage_totals"]

# Data products: every dataset type but data applications and harvest sources.
PRODUCTS_FQ = "-dataset_type:application -dataset_type:harvest"
# Days a product may go without an update before it is overdue.
ALLOWED_DAYS = {"realtime": 2, "daily": 2, "weekly": 8, "monthly": 32, "quarterly": 93,
                "semiannual": 184, "annual": 366}


def _anonymous() -> dict:
    return {"ignore_auth": True, "user": ""}


def product_search(**params: Any) -> dict:
    """package_search over public data products, as an anonymous visitor sees them."""
    fq = " ".join(part for part in (PRODUCTS_FQ, params.pop("fq", "")) if part)
    return tk.get_action("package_search")(_anonymous(), dict(
        params, fq=fq, include_private=False, include_drafts=False))


def freshness(pkg: dict, today: dt.date | None = None) -> dict:
    """{'state': 'on_time'|'overdue'|'unscheduled'|'unknown', 'due': ISO date or None}."""
    from ckanext.shanghai.logic.validators import parse_date

    frequency = pkg.get("update_frequency")
    allowed = ALLOWED_DAYS.get(frequency or "")
    last = parse_date(pkg.get("last_updated") or "")
    if allowed is None:
        return {"state": "unscheduled", "due": None}
    if last is None:
        return {"state": "unknown", "due": None}
    due = last + dt.timedelta(days=allowed)
    return {"state": "overdue" if (today or dt.date.today()) > due else "on_time", "due": due.isoformat()}


def facet_counts(field: str, fq: str = "") -> list[dict]:
    """[{name, display_name, count}] of a facet over public products, largest first."""
    result = product_search(q="*:*", fq=fq, rows=0, **{"facet.field": [field], "facet.limit": -1})
    items = result.get("search_facets", {}).get(field, {}).get("items", [])
    return sorted(items, key=lambda item: -item["count"])


def key_figures() -> dict:
    products = product_search(q="*:*", rows=0)["count"]
    departments = len(facet_counts("organization"))
    applications = tk.get_action("package_search")(_anonymous(), {
        "q": "*:*", "fq": "+dataset_type:application", "rows": 0, "include_private": False})["count"]
    return {"products": products, "departments": departments, "applications": applications,
            "downloads": downloads.total_downloads()}


def freshness_shares(today: dt.date | None = None) -> list[dict]:
    """Per scheduled frequency: products, on time, and the on-time share."""
    today = today or dt.date.today()
    language = search.current_language()
    labels = search.choice_labels("update_frequency")
    shares = []
    for frequency, days in ALLOWED_DAYS.items():
        base = f'+update_frequency:"{frequency}"'
        total = product_search(q="*:*", fq=base, rows=0)["count"]
        if not total:
            continue
        cutoff = (today - dt.timedelta(days=days)).isoformat()
        on_time = product_search(q="*:*", fq=f'{base} +last_updated:["{cutoff}" TO *]', rows=0)["count"]
        shares.append({"frequency": frequency,
                       "label": search._in_language(labels.get(frequency, {}), language) or frequency,
                       "total": total, "on_time": on_time,
                       "share": round(100.0 * on_time / total, 1)})
    return shares


def statistics() -> dict:
    """Everything the statistics page charts."""
    return {
        "figures": key_figures(),
        "departments": [{"name": i["display_name"], "value": i["count"]} for i in facet_counts("organization")],
        "domains": [{"name": i["display_name"], "value": i["count"]} for i in facet_counts("data_domain")],
        "open_condition": [{"name": i["display_name"], "value": i["count"]}
                           for i in facet_counts("open_condition")],
        "update_frequency": [{"name": i["display_name"], "value": i["count"]}
                             for i in facet_counts("update_frequency")],
        "freshness": freshness_shares(),
        "downloads": [{"day": day, "value": count} for day, count in downloads.downloads_by_day(30)],
        "access": access_on_time(),
        "usage": usage_totals(),
        "quality": quality_by_department(),
        "scores": score_distribution(),
    }


def score_distribution() -> dict:
    """The metadata quality scores of the public catalog (bands, bins, average)."""
    from ckanext.shanghai.assessment import summary

    return summary.distribution("", search.current_language())


def quality_by_department() -> dict:
    """The harvest's quality flags summed per department: for each
    department with flagged products, its products, how many carry flags,
    and how many carry each kind (a product counts once per kind)."""
    from ckanext.shanghai import quality

    language = search.current_language()
    kinds = [item["name"] for item in facet_counts(quality.INDEX_FIELD)]
    products = {item["name"]: item for item in facet_counts("organization")}
    flagged = facet_counts("organization", fq=f"{quality.INDEX_FIELD}:[* TO *]")
    by_kind = {code: {item["name"]: item["count"]
                      for item in facet_counts("organization", fq=f'{quality.INDEX_FIELD}:"{code}"')}
               for code in kinds}
    departments = []
    for item in flagged:
        flags = {code: by_kind[code].get(item["name"], 0) for code in kinds}
        departments.append({"name": item["name"], "display_name": item["display_name"],
                            "products": products.get(item["name"], item)["count"], "flagged": item["count"],
                            "flags": flags, "total": sum(flags.values())})
    departments.sort(key=lambda row: (-row["total"], row["name"]))
    return {"kinds": [{"code": code, "label": quality.label(code, language)} for code in kinds],
            "departments": departments}


def access_on_time() -> dict | None:
    """Requests for conditional products answered within the city's limit
    (None without the shanghai_access plugin's tables)."""
    import ckan.plugins as plugins

    if not plugins.plugin_loaded("shanghai_access"):
        return None
    from ckanext.shanghai.access import store

    return store.on_time()


def usage_totals() -> dict | None:
    """API calls, developer applications and keys per day (None without the
    shanghai_keys plugin's tables)."""
    import ckan.plugins as plugins

    if not plugins.plugin_loaded("shanghai_keys"):
        return None
    from ckanext.shanghai.keys import store

    return store.site_totals()

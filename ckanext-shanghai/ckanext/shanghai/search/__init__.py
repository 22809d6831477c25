"""All Solr shaping of the portal in one place: what a dataset's index
document holds (``index_document``, the one before_dataset_index) and how a
search is asked (``search_params``, the one before_dataset_search), each a
fixed sequence of steps. The Solr schema is config/solr/configsets/ckan."""
from __future__ import annotations

import functools
import json
import logging
import re
from collections import OrderedDict
from typing import Any

import ckan.plugins as plugins
import ckan.plugins.toolkit as tk

from ckanext.shanghai.search import spatial

log = logging.getLogger(__name__)

# Fields CKAN's indexer writes itself, or that the Solr schema types
# explicitly; every other top-level string is a schema field (data_domain,
# a department's monitoring_station ...) and lands in the dynamic "*" field.
_CKAN_INDEX_FIELDS = frozenset(
    """id index_id site_id name title notes url version state type dataset_type
    entity_type owner_org organization groups tags license license_id author
    author_email maintainer maintainer_email metadata_created metadata_modified
    capacity permission_labels data_dict validated_data_dict text urls
    private creator_user_id revision_id ckan_url download_url title_string
    indexed_ts num_resources num_tags text_en""".split()
)
_INDEX_PREFIXES = ("res_", "extras_", "vocab_", "_")
# The machine translation's fields: analysed as English (schema type text_en).
_ENGLISH_FIELDS = frozenset({"title_en", "notes_en"})

# Lucene refuses a single indexed term over 32,766 bytes; a free-text schema
# field that long still goes into the searchable text, not the exact field.
_MAX_EXACT_BYTES = 8_000

# The dismax fields; "text" is segmented into Chinese words by the schema,
# title_en and text_en (the machine translation and its search terms) are
# analysed as English, so "hospitals" finds 医院.
QUERY_FIELDS = "name^4 title^4 title_en^3 tags^2 groups^2 text text_en"

# Words an English query is read without: the English fields keep them, but
# every query word must match somewhere, and a word-by-word translation has
# no "of" or "the" ("list of hospitals" finds 医院名单).
_ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it of on or the to with".split()
)
_LATIN_QUERY = re.compile(r"^[A-Za-z0-9\s'\-.,&]+$")


def index_document(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """A dataset's Solr document, shaped in a fixed order: the portal's own
    fields (download counts, related products), then the text and exact
    fields, the spatial extent, then the public desk's flag of accepted error reports, then,
    last, conditional access takes out the addresses of
    conditional products (so no earlier step can put one back)."""
    if plugins.plugin_loaded("shanghai_portal"):
        pkg_dict = _portal_fields(pkg_dict)
        pkg_dict = _score_fields(pkg_dict)
    pkg_dict = _quality_fields(pkg_dict)
    pkg_dict = _english_fields(pkg_dict)
    pkg_dict = shape_index_document(pkg_dict)
    pkg_dict = spatial.index_fields(pkg_dict)
    if plugins.plugin_loaded("shanghai_desk"):
        from ckanext.shanghai.desk import quality

        pkg_dict = quality.flag_accepted_errors(pkg_dict)
    if plugins.plugin_loaded("shanghai_access"):
        from ckanext.shanghai.access import policy

        pkg_dict = policy.shape_index_document(pkg_dict)
    return pkg_dict


def search_params(params: dict[str, Any]) -> dict[str, Any]:
    """A search as sent to Solr: the ranked fields, the spatial filter
    (``ext_bbox``, ``ext_district``), and data applications kept out of a
    search that does not ask for them."""
    params = shape_query(params)
    spatial_filter = spatial.filter_query(params.get("extras") or {})
    if spatial_filter:
        params["fq"] = f"{params.get('fq') or ''} {spatial_filter}".strip()
    if plugins.plugin_loaded("shanghai_portal"):
        fq = params.get("fq") or ""
        if "dataset_type:application" not in fq:
            params["fq"] = f"{fq} -dataset_type:application".strip()
    return params


def _portal_fields(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    from ckanext.shanghai.portal import downloads, validators

    # The index gets extras as stored (a JSON list as text); one term per product.
    related = pkg_dict.get("related_datasets")
    if isinstance(related, str):
        pkg_dict["related_datasets"] = validators.shanghai_data_product_names_output(related)
    if pkg_dict.get("type") != "harvest":
        try:
            pkg_dict["downloads_total"] = downloads.package_downloads(pkg_dict["id"])
        except Exception:  # before the migration: index without counts
            log.warning("download counts unavailable while indexing %s", pkg_dict.get("id"))
    return pkg_dict


def _score_fields(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """The product's metadata quality score (``quality_score``, sorts), its
    band (``quality_band``, a facet) and points per dimension, from the
    validated dict being indexed and the last check of its links: computed
    on every write, the harvest's batches included, and after a link check."""
    if pkg_dict.get("type") in ("harvest", "application"):
        return pkg_dict
    import json

    from ckanext.shanghai.assessment import links, score

    validated = json.loads(pkg_dict.get("validated_data_dict") or "{}")
    assessment = score.assess(validated, links.package_links(pkg_dict["id"]))
    pkg_dict["quality_score"] = assessment.score
    pkg_dict["quality_band"] = assessment.band
    for dimension, points in assessment.dimensions.items():
        pkg_dict[f"quality_{dimension}"] = points
    return pkg_dict


def _quality_fields(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """A product's quality flags as one code per kind (``quality_flag``, a
    facet); their JSON is kept out of the searchable text."""
    from ckanext.shanghai import quality

    flags = pkg_dict.pop(quality.FIELD, None)
    pkg_dict.pop(f"extras_{quality.FIELD}", None)
    codes = quality.codes(flags)
    if codes:
        pkg_dict[quality.INDEX_FIELD] = codes
    return pkg_dict


def _english_fields(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """The machine translation as English fields: the stored title_en and
    notes_en (made now for a product written before they existed) and the
    English search terms of every word (``text_en``: "car park" and
    "parking lot" for 停车场). The translation's mark is no search text."""
    from ckanext.shanghai import translation

    if pkg_dict.get("type") == "harvest":
        return pkg_dict
    english = translation.translate_product(pkg_dict.get("title"), pkg_dict.get("notes"))
    for field in (translation.TITLE_FIELD, translation.NOTES_FIELD):
        if not pkg_dict.get(field) and english[field]:
            pkg_dict[field] = english[field]
        # CKAN also writes them as extras_title_en and extras_notes_en, which
        # the schema analyses as Chinese text and copies into "text": English
        # analysed four times over. Their English fields (and text_en, which
        # the schema copies them into) are where English queries look.
        pkg_dict.pop(f"extras_{field}", None)
    pkg_dict[translation.SEARCH_FIELD] = english[translation.SEARCH_FIELD] + _department_english(pkg_dict)
    pkg_dict.pop(translation.MARK_FIELD, None)
    pkg_dict.pop(f"extras_{translation.MARK_FIELD}", None)
    return pkg_dict


def _department_english(pkg_dict: dict[str, Any]) -> list[str]:
    """The department's name in English, so "Chongming nursing homes" finds
    a product of Chongming's district government whose title names no
    district. CKAN's indexer keeps only the department's machine name in
    the document; its title is in the dictized package (``data_dict``)."""
    try:
        organization = json.loads(pkg_dict.get("data_dict") or "{}").get("organization") or {}
    except (TypeError, ValueError):
        return []
    title = organization.get("title") if isinstance(organization, dict) else None
    return list(_translated_department(title)) if title else []


@functools.lru_cache(maxsize=512)
def _translated_department(title: str) -> tuple[str, ...]:
    from ckanext.shanghai import translation

    english = translation.translate(title)
    return (english.english, *english.search_terms)


def shape_index_document(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """Make schema fields searchable as text and keep exact fields indexable.
    A field CKAN also wrote as ``extras_<key>`` with the same value is in
    the text already (the schema copies extras_* there): Solr would analyse
    it into "text" twice. The English fields have their own analysis."""
    searchable: list[str] = list(pkg_dict.get("text") or [])
    for key, value in list(pkg_dict.items()):
        if key in _CKAN_INDEX_FIELDS or key in _ENGLISH_FIELDS or key.startswith(_INDEX_PREFIXES):
            continue
        values = value if isinstance(value, list) else [value]
        strings = [item for item in values if isinstance(item, str) and item]
        if not strings:
            continue
        if pkg_dict.get(f"extras_{key}") != value:
            searchable.extend(strings)
        if any(len(item.encode("utf-8")) > _MAX_EXACT_BYTES for item in strings):
            pkg_dict.pop(key)
    if searchable:
        pkg_dict["text"] = searchable
    return pkg_dict


def shape_query(search_params: dict[str, Any]) -> dict[str, Any]:
    """Ask Solr for the fields the portal ranks by."""
    query = search_params.get("q") or ""
    if ":" not in query and "qf" not in search_params:
        search_params["qf"] = QUERY_FIELDS
        if _LATIN_QUERY.match(query):
            words = [word for word in query.split() if word.lower() not in _ENGLISH_STOPWORDS]
            if words:
                search_params["q"] = " ".join(words)
    return search_params


# The facets of the catalog: Solr field -> title in each language.
FACETS = OrderedDict([
    ("organization", {"zh_Hans_CN": "数据提供方", "en": "Department"}),
    ("data_domain", {"zh_Hans_CN": "数据领域", "en": "Data domain"}),
    ("national_theme", {"zh_Hans_CN": "国家主题分类", "en": "National theme"}),
    ("open_condition", {"zh_Hans_CN": "开放属性", "en": "Open condition"}),
    ("res_format", {"zh_Hans_CN": "数据格式", "en": "Format"}),
    ("update_frequency", {"zh_Hans_CN": "更新频度", "en": "Update frequency"}),
    ("quality_flag", {"zh_Hans_CN": "质量提示", "en": "Quality flags"}),
    ("quality_band", {"zh_Hans_CN": "元数据质量", "en": "Metadata quality"}),
])
_CHOICE_FACETS = ("data_domain", "national_theme", "open_condition", "update_frequency")


def current_language() -> str:
    """The page's language, or the site default outside a request."""
    try:
        return tk.h.lang() or tk.config.get("ckan.locale_default")
    except (RuntimeError, AttributeError, TypeError):
        return tk.config.get("ckan.locale_default")


def _in_language(labels: dict[str, str], language: str) -> str:
    if language.startswith("zh"):
        return labels.get("zh_Hans_CN") or labels.get("en")
    return labels.get("en") or labels.get("zh_Hans_CN")


def facet_titles() -> "OrderedDict[str, str]":
    """Facet field -> title in the current language, in display order."""
    language = current_language()
    return OrderedDict((name, _in_language(labels, language)) for name, labels in FACETS.items())


def choice_labels(field_name: str) -> dict[str, dict[str, str]]:
    """Value -> {language: label} of a core schema choice field."""
    schema = tk.h.scheming_get_dataset_schema("dataset") or {}
    for field in schema.get("dataset_fields", []):
        if field["field_name"] == field_name:
            return {choice["value"]: choice["label"] for choice in field.get("choices", [])}
    return {}


def label_facet_items(search_results: dict[str, Any]) -> dict[str, Any]:
    """Show choice codes (``health``, ``annual``) by their labels in the
    current language, in pages and in the API's ``search_facets``."""
    facets = search_results.get("search_facets") or {}
    language = current_language()
    for name in _CHOICE_FACETS:
        if name not in facets:
            continue
        labels = choice_labels(name)
        for item in facets[name].get("items", []):
            if item["name"] in labels:
                item["display_name"] = _in_language(labels[item["name"]], language)
        facets[name]["title"] = _in_language(FACETS[name], language)
    if "quality_band" in facets:
        from ckanext.shanghai.assessment import score

        items = facets["quality_band"].get("items", [])
        for item in items:
            item["display_name"] = score.band_label(item["name"], language)
        # Best band first, as the bands rank, not by count.
        order = [code for code, _lowest, _labels in score.BANDS]
        items.sort(key=lambda item: order.index(item["name"]) if item["name"] in order else len(order))
        facets["quality_band"]["title"] = _in_language(FACETS["quality_band"], language)
    if "quality_flag" in facets:
        from ckanext.shanghai import quality

        for item in facets["quality_flag"].get("items", []):
            item["display_name"] = quality.label(item["name"], language)
        facets["quality_flag"]["title"] = _in_language(FACETS["quality_flag"], language)
    return search_results

"""All Solr shaping of the portal in one place: what a dataset's index
document holds (before_dataset_index) and how a search is asked
(before_dataset_search). The Solr schema is config/solr/configsets/ckan."""
from __future__ import annotations

from typing import Any

# Fields CKAN's indexer writes itself, or that the Solr schema types
# explicitly; every other top-level string is a schema field (data_domain,
# a department's monitoring_station ...) and lands in the dynamic "*" field.
_CKAN_INDEX_FIELDS = frozenset(
    """id index_id site_id name title notes url version state type dataset_type
    entity_type owner_org organization groups tags license license_id author
    author_email maintainer maintainer_email metadata_created metadata_modified
    capacity permission_labels data_dict validated_data_dict text urls
    private creator_user_id revision_id ckan_url download_url title_string
    indexed_ts num_resources num_tags""".split()
)
_INDEX_PREFIXES = ("res_", "extras_", "vocab_", "_")

# Lucene refuses a single indexed term over 32,766 bytes; a free-text schema
# field that long still goes into the searchable text, not the exact field.
_MAX_EXACT_BYTES = 8_000

# The dismax fields; "text" is segmented into Chinese words by the schema.
QUERY_FIELDS = "name^4 title^4 tags^2 groups^2 text"


def shape_index_document(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """Make schema fields searchable as text and keep exact fields indexable."""
    searchable: list[str] = list(pkg_dict.get("text") or [])
    for key, value in list(pkg_dict.items()):
        if key in _CKAN_INDEX_FIELDS or key.startswith(_INDEX_PREFIXES):
            continue
        values = value if isinstance(value, list) else [value]
        strings = [item for item in values if isinstance(item, str) and item]
        if not strings:
            continue
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
    return search_params

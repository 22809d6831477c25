"""Dictize and index many packages at once, as CKAN's package_show and
index_package do one at a time: the same dicts and the same Solr documents,
but one SQL query per table for a whole batch instead of seven per package,
and one Solr request per batch instead of one per package.

Used by the harvest import path and by the project's index rebuild."""
from __future__ import annotations

import collections
import contextlib
import json
import logging
from typing import Any, Iterable, Iterator

import pysolr
from sqlalchemy import select

import ckan.model as model
import ckan.plugins as plugins
from ckan import logic
from ckan.lib import search
from ckan.lib.dictization import legacy_dict_sort, table_dictize
from ckan.lib.dictization import model_dictize
from ckan.lib.plugins import lookup_package_plugin, plugin_validate
from ckan.logic.schema import default_show_package_schema
from ckan.logic.validators import package_name_validator

from ckanext.shanghai import compat
from ckanext.shanghai.harvesters.index import reuse

log = logging.getLogger(__name__)

__all__ = ["dictize_many", "ShowPairs", "show_pairs", "build_documents", "index_pairs", "index_many", "send_documents"]


def _group_rows(rows: Iterable[Any], key: str) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = collections.defaultdict(list)
    for row in rows:
        grouped[getattr(row, key)].append(row)
    return grouped


def dictize_many(ids: list[str]) -> dict[str, dict[str, Any]]:
    """``{id: dict}`` for these packages, each equal to what CKAN's
    ``package_dictize`` returns for it (checked by a test against it)."""
    if not ids:
        return {}
    session = model.Session
    context: dict[str, Any] = {"model": model, "session": session}
    pkg_t, res_t = model.package_table, model.resource_table
    tag_t, pkg_tag_t = model.tag_table, model.package_tag_table
    group_t, member_t, rel_t = model.group_table, model.member_table, model.package_relationship_table

    packages = session.execute(select(pkg_t).where(pkg_t.c.id.in_(ids))).all()
    resources = _group_rows(session.execute(select(res_t).where(res_t.c.package_id.in_(ids))).all(),
                            "package_id")
    tags = _group_rows(session.execute(
        select(tag_t, pkg_tag_t.c.state, pkg_tag_t.c.package_id.label("of_package"))
        .join(pkg_tag_t, tag_t.c.id == pkg_tag_t.c.tag_id)
        .where(pkg_tag_t.c.package_id.in_(ids))).all(), "of_package")
    in_groups = {row.table_id for row in session.execute(
        select(member_t.c.table_id).join(group_t, group_t.c.id == member_t.c.group_id)
        .where(member_t.c.table_id.in_(ids), member_t.c.state == "active",
               group_t.c.is_organization.is_(False))).all()}
    org_ids = {row.owner_org for row in packages if row.owner_org}
    organizations = {row.id: row for row in session.execute(
        select(group_t).where(group_t.c.id.in_(org_ids), group_t.c.state == "active")).all()} if org_ids else {}
    as_subject = _group_rows(session.execute(
        select(rel_t).where(rel_t.c.subject_package_id.in_(ids))).all(), "subject_package_id")
    as_object = _group_rows(session.execute(
        select(rel_t).where(rel_t.c.object_package_id.in_(ids))).all(), "object_package_id")
    licenses = model.Package.get_license_register()

    result: dict[str, dict[str, Any]] = {}
    for row in packages:
        if row.id in in_groups:
            # Group membership needs group_dictize (rare for harvested
            # data): let CKAN dictize that one package itself.
            result[row.id] = model_dictize.package_dictize(session.get(model.Package, row.id), context)
            continue
        pkg = table_dictize(row, context)
        if pkg.get("title"):
            pkg["title"] = pkg["title"].strip()
        pkg.pop("plugin_data", None)
        pkg["resources"] = model_dictize.resource_list_dictize(resources.get(row.id, []), context)
        pkg["num_resources"] = len(pkg["resources"])
        tag_dicts = []
        for tag_row in tags.get(row.id, []):
            if tag_row.state != "active":
                continue
            tag = table_dictize(tag_row, context)
            del tag["of_package"]
            tag_dicts.append(tag)
        pkg["tags"] = sorted(tag_dicts, key=lambda tag: tag["name"])
        pkg["num_tags"] = len(pkg["tags"])
        for tag in pkg["tags"]:
            tag["display_name"] = tag["name"]
        pkg["extras"] = [{"key": k, "value": v} for k, v in (pkg["extras"] or {}).items()]
        pkg["groups"] = []
        org = organizations.get(row.owner_org)
        if org is not None:
            pkg["organization"] = table_dictize(org, context)
            del pkg["organization"]["extras"]
        else:
            pkg["organization"] = None
        pkg["relationships_as_subject"] = _active_sorted(as_subject.get(row.id, []), context)
        pkg["relationships_as_object"] = _active_sorted(as_object.get(row.id, []), context)
        license = licenses.get(row.license_id) if row.license_id else None
        pkg["isopen"] = bool(license and license.isopen())
        pkg["type"] = row.type or "dataset"
        if license and license.url:
            pkg["license_url"] = license.url
            pkg["license_title"] = license.title.split("::")[-1]
        elif license:
            pkg["license_title"] = license.title
        else:
            pkg["license_title"] = row.license_id
        pkg["metadata_modified"] = row.metadata_modified.isoformat()
        pkg["metadata_created"] = row.metadata_created.isoformat() if row.metadata_created else None
        result[row.id] = pkg
    return result


def _active_sorted(rows: list[Any], context: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted((table_dictize(row, context) for row in rows if row.state == "active"),
                  key=legacy_dict_sort)


class ShowPairs(list):
    """``show_pairs``' answer: a list of (default-schema dict, custom-schema
    dict), with what the documents need besides: ``sources``, each package's
    digest (reuse.package_digest), ``origins``, each harvested package's
    origin, and ``reused``, how many pairs came from the index unvalidated."""

    def __init__(self, pairs=(), sources=None, origins=None, reused: int = 0):
        super().__init__(pairs)
        self.sources: dict[str, str] = sources or {}
        self.origins: dict[str, tuple] | None = origins
        self.reused = reused


def show_pairs(ids: list[str], stored: dict[str, tuple[str, str, str]] | None = None) -> ShowPairs:
    """(default-schema dict, custom-schema dict) for each package, as
    ``ckan.logic.package_show_default_and_custom_schemas`` makes for
    indexing, in the order of ``ids`` (missing packages are left out).

    :param stored: what the index holds (reuse.stored_dicts): a package
        whose document has the digest it would get now keeps the dicts
        stored beside it, without being validated again
    """
    dictized = dictize_many(ids)
    if not dictized:
        return ShowPairs()
    sources = {package_id: reuse.package_digest(pkg_dict) for package_id, pkg_dict in dictized.items()}
    origins = _harvest_origins(list(dictized)) if stored is not None else None
    reusable = {}
    for package_id, (source, data_dict, validated) in (stored or {}).items():
        origin = origins.get(package_id)
        if package_id in sources and source == reuse.with_origin(sources[package_id], origin) \
                and not _has_origin_keys(dictized[package_id], origin):
            reusable[package_id] = tuple(_ungated(_without_origin(json.loads(stored_dict), origin),
                                                  dictized[package_id])
                                         for stored_dict in (data_dict, validated))
    to_validate = [package_id for package_id in dictized if package_id not in reusable]
    objects = {pkg.id: pkg for pkg in model.Session.query(model.Package).filter(
        model.Package.id.in_(to_validate))} if to_validate else {}
    context: dict[str, Any] = {"model": model, "session": model.Session, "ignore_auth": True,
                               "use_cache": False, "validate": False}
    default_schema = _without_name_lookup(default_show_package_schema())
    pairs = ShowPairs(sources=sources, origins=origins, reused=len(reusable))
    for package_id in ids:
        if package_id in reusable:
            pairs.append(reusable[package_id])
            continue
        pkg_dict = dictized.get(package_id)
        if pkg_dict is None:
            continue
        context["package"] = objects[package_id]
        # What package_show does for an unvalidated dict.
        for item in plugins.PluginImplementations(plugins.IPackageController):
            item.read(objects[package_id])
        for item in plugins.PluginImplementations(plugins.IResourceController):
            for resource_dict in pkg_dict["resources"]:
                item.before_resource_show(resource_dict)
        with_default, _ = plugin_validate(object(), context, pkg_dict, default_schema, "package_show")
        package_plugin = lookup_package_plugin(pkg_dict["type"])
        custom_schema = _without_name_lookup(package_plugin.show_package_schema())
        if custom_schema == default_schema:
            with_custom = with_default
        else:
            with_custom, _ = plugin_validate(package_plugin, context, pkg_dict, custom_schema, "package_show")
        logic.apply_after_dataset_show_plugins(context, with_custom)
        pairs.append((with_default, with_custom))
    return pairs


def _has_origin_keys(pkg_dict: dict[str, Any], origin: tuple | None) -> bool:
    """Whether the package itself holds a key the harvest hook writes (its
    value in the index is then the hook's, not the package's)."""
    if origin is None:
        return False
    keys = {key for key, _value in origin}
    return bool(keys & set(pkg_dict) or keys & {extra.get("key") for extra in pkg_dict.get("extras") or []})


def _without_origin(stored: dict[str, Any], origin: tuple | None) -> dict[str, Any]:
    """A stored dict as package_show made it: without the extras the harvest
    hook appended (it appends them again, the same way)."""
    if origin is None or "extras" not in stored:
        return stored
    keys = {key for key, _value in origin}
    stored["extras"] = [extra for extra in stored["extras"] or [] if extra.get("key") not in keys]
    return stored


def _ungated(stored: dict[str, Any], pkg_dict: dict[str, Any]) -> dict[str, Any]:
    """A stored dict with the linked-file addresses conditional access
    replaced by its gate (access.policy.shape_index_document) given back
    from the package, as package_show had them before the hook ran."""
    if not plugins.plugin_loaded("shanghai_access"):
        return stored
    from ckanext.shanghai.access import policy

    urls = {resource["id"]: resource.get("url") for resource in pkg_dict.get("resources") or []}
    for resource in stored.get("resources") or []:
        if resource.get("url") == policy.gated_url(stored["id"], resource.get("id", "")) \
                and resource["id"] in urls:
            resource["url"] = urls[resource["id"]]
    return stored


def _without_name_lookup(schema: dict[str, Any]) -> dict[str, Any]:
    """The show schema without package_name_validator: it only reports a
    name taken by another package (one query per package), never changes
    the value, and package_show discards a show validation's errors; the
    dicts are the same without it."""
    if package_name_validator not in schema.get("name", ()):
        return schema
    return dict(schema, name=[v for v in schema["name"] if v is not package_name_validator])


def send_documents(docs: list[dict[str, Any]], commit: bool = False) -> None:
    """One Solr update request for ``docs`` (SearchIndexError if Solr fails)."""
    if not docs:
        return
    conn = search.make_connection()
    try:
        conn.add(docs=docs, commit=commit)
    except pysolr.SolrError as error:
        raise search.SearchIndexError(f"Solr returned an error: {str(error)[:1000]}") from error
    except OSError as error:
        raise search.SearchIndexError(f"Could not reach Solr: {error}") from error


def index_pairs(pairs: list[tuple[dict[str, Any], dict[str, Any]]], commit: bool = False) -> int:
    """Index ``show_pairs`` output in one Solr request; returns how many
    documents were sent (deleted packages leave the index, as in CKAN)."""
    docs = build_documents(pairs)
    send_documents(docs, commit=commit)
    return len(docs)


def build_documents(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """The Solr documents CKAN's indexer builds for ``show_pairs`` output
    (every before_dataset_index hook included), not sent. Each carries its
    ``index_source`` digest when ``pairs`` has them (a rebuild then reuses
    its stored dicts)."""
    package_index = search.index_for("Package")
    docs: list[dict[str, Any]] = []
    # Held while indexing: index_package and the harvest plugin's
    # before_dataset_index then find these in the session, not by a query each.
    ids = [default["id"] for default, _custom in pairs]
    held = model.Session.query(model.Package).filter(model.Package.id.in_(ids)).all()
    origins = getattr(pairs, "origins", None)
    if origins is None:
        origins = _harvest_origins(ids)
    with compat.collected_solr_adds(docs), _harvest_origins_of(origins), _download_counts_of(ids), \
            _link_checks_of(ids):
        for default, custom in pairs:
            package_index.update_dict(dict(default, with_custom_schema=custom), defer_commit=True)
    del held
    sources = getattr(pairs, "sources", None) or {}
    for doc in docs:
        source = sources.get(doc["id"])
        if source is not None:
            doc[reuse.FIELD] = reuse.with_origin(source, origins.get(doc["id"]))
    return docs


def _download_counts_of(ids: list[str]) -> contextlib.AbstractContextManager:
    """The portal's documents carry each product's download count: read for
    the whole batch in one query, not one per document."""
    if not plugins.plugin_loaded("shanghai_portal"):
        return contextlib.nullcontext()
    from ckanext.shanghai.portal import downloads

    return downloads.counts_for(ids)


def _link_checks_of(ids: list[str]) -> contextlib.AbstractContextManager:
    """The portal's documents carry each product's quality score, which
    counts its links' last checks: read for the whole batch in one query."""
    if not plugins.plugin_loaded("shanghai_portal"):
        return contextlib.nullcontext()
    from ckanext.shanghai.assessment import links

    return links.links_for(ids)


def _harvest_origins(ids: list[str]) -> dict[str, tuple]:
    """Each harvested package's (harvest_object_id, harvest_source_id,
    harvest_source_title) pairs, in one query for the whole batch."""
    if not plugins.plugin_loaded("harvest") or not ids:
        return {}
    from ckanext.harvest.model import HarvestObject, HarvestSource

    rows = model.Session.query(HarvestObject.package_id, HarvestObject.id, HarvestSource.id, HarvestSource.title) \
        .join(HarvestSource, HarvestSource.id == HarvestObject.harvest_source_id) \
        .filter(HarvestObject.package_id.in_(ids), HarvestObject.current.is_(True)) \
        .order_by(HarvestObject.import_finished.asc().nullslast()).all()
    # Last wins: the order is the reverse of the hook's "first by
    # import_finished desc" (where PostgreSQL puts NULL first).
    return {package_id: (("harvest_object_id", object_id), ("harvest_source_id", source_id),
                         ("harvest_source_title", source_title))
            for package_id, object_id, source_id, source_title in rows}


@contextlib.contextmanager
def _harvest_origins_of(origins: dict[str, tuple]) -> Iterator[None]:
    """ckanext-harvest's before_dataset_index looks up each package's
    current harvest object (one query per package) to add its object id,
    source id and source title to the document. Within the block its hook
    finds them in ``origins`` (_harvest_origins, one query for the whole
    batch) and adds them the same way (the equivalence test compares the
    documents with package_create's)."""
    if not plugins.plugin_loaded("harvest"):
        yield
        return

    def before_dataset_index(doc: dict[str, Any]) -> dict[str, Any]:
        if isinstance(doc.get("status"), dict):  # as the hook does for Solr 8
            try:
                doc["status"] = json.dumps(doc["status"])
            except ValueError:
                doc.pop("status", None)
        origin = origins.get(doc["id"])
        if origin is None:
            return doc
        for field in ("data_dict", "validated_data_dict"):
            stored = json.loads(doc[field])
            for key, value in origin:
                _set_top_or_extra(stored, key, value)
            doc[field] = json.dumps(stored)
        for key, value in origin:
            doc.setdefault(key, value)
        return doc

    with compat.harvest_index_hook(before_dataset_index):
        yield


def _set_top_or_extra(stored: dict[str, Any], key: str, value: Any) -> None:
    """A field of the schema is set in place; anything else is an extra."""
    if key in stored:
        stored[key] = value
        return
    extras = stored.get("extras")
    if not extras:
        extras = stored["extras"] = []
    for extra in extras:
        if extra.get("key") == key:
            extra["value"] = value
            return
    extras.append({"key": key, "value": value})


def index_many(ids: list[str], commit: bool = False) -> int:
    """Index these packages in one Solr request; returns how many were sent."""
    return index_pairs(show_pairs(ids), commit=commit)

"""The import path: write harvested records into the catalog with CKAN's own
validation, dictization and index code (same database rows, same Solr
documents as package_create / package_update / package_delete).

New packages go in batches (``create_many``): each record is validated by its
schema alone, then the batch is saved in one flush, dictized with a few SQL
queries and indexed with one Solr request. Updates and withdrawals go one by
one through CKAN's actions, committing the Solr index once per batch."""
from __future__ import annotations

import logging
from typing import Any

import datetime as dt
import uuid

import sqlalchemy as sa

import ckan.model as model
import ckan.plugins as plugins
import ckan.plugins.toolkit as tk
from ckan.lib.plugins import lookup_package_plugin, plugin_validate
from ckan.lib.plugins import get_permission_labels

from ckanext.shanghai import compat, quality
from ckanext.shanghai.harvesters.index import bulk as bulk_index
from ckanext.shanghai.logic import validators as shanghai_validators

log = logging.getLogger(__name__)


class CatalogWriter:
    """Writes packages as one user (the harvest's site user)."""

    def __init__(self, user_name: str):
        self.user_name = user_name
        self.user = model.User.get(user_name)

    def _context(self) -> dict[str, Any]:
        # The harvest context: the product's quality flags are stored, and a
        # source's backwards dates kept as it gave them (flagged).
        return {"user": self.user_name, "ignore_auth": True, "model": model,
                "session": model.Session, "auth_user_obj": self.user, quality.HARVEST_CONTEXT: True}

    def create(self, package: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a new package through CKAN's own action (its
        chained actions, signals and activity run); raises tk.ValidationError."""
        return tk.get_action("package_create")(self._context(), dict(package))

    def create_many(self, packages: list[dict[str, Any]]) -> list[Any]:
        """Validate and save new packages as package_create would, in one
        flush, without committing: the caller commits (or rolls back) the
        batch with its own bookkeeping and then calls ``index_and_record``.

        :returns: for each package in order, its new id or the
            ``tk.ValidationError`` that rejects it (nothing of it stored)."""
        results: list[Any] = []
        valid: list[tuple[int, dict[str, Any]]] = []
        names: set[str] = set()
        batch_context = self._batch_context(packages)
        for position, package in enumerate(packages):
            package_plugin = lookup_package_plugin(package.get("type"))
            data, errors = plugin_validate(package_plugin, dict(batch_context), dict(package),
                                           package_plugin.create_package_schema(), "package_create")
            if not errors and data["name"] in names:
                errors = {"name": [tk._("That URL is already in use.")]}
            if errors:
                results.append(tk.ValidationError(errors))
                continue
            names.add(data["name"])
            data["creator_user_id"] = self.user.id
            valid.append((position, data))
            results.append(None)
        if not valid:
            return results
        tag_ids = self._tag_ids(data for _, data in valid)
        now = dt.datetime.utcnow()
        rows: dict[str, list[dict[str, Any]]] = {"package": [], "resource": [], "package_tag": [], "member": []}
        for position, data in valid:
            _package_rows(data, tag_ids, now, rows)
            results[position] = data["id"]
        for table in (model.package_table, model.resource_table, model.package_tag_table, model.member_table):
            if rows[table.name]:
                model.Session.execute(table.insert(), rows[table.name])
        context = dict(self._context(), defer_commit=True)
        objects = {pkg.id: pkg for pkg in model.Session.query(model.Package).filter(
            model.Package.id.in_([data["id"] for _, data in valid]))}
        default_views = tk.config.get("ckan.views.default_views")
        for _position, data in valid:
            pkg = objects[data["id"]]
            for item in plugins.PluginImplementations(plugins.IPackageController):
                item.create(pkg)
                item.after_dataset_create(context, data)
            if default_views and data.get("resources"):
                tk.get_action("package_create_default_resource_views")(
                    dict(context, ignore_auth=True), {"package": data})
        return results

    def _batch_context(self, packages: list[dict[str, Any]]) -> dict[str, Any]:
        """The validation context of a batch: the names its packages would
        take from undeleted packages, and which of its departments exist,
        each found in one query; the name and department validators answer
        from these (see logic/validators.py) instead of a query per package."""
        wanted_names = {p["name"] for p in packages if isinstance(p.get("name"), str)}
        wanted_departments = {p["owner_org"] for p in packages if isinstance(p.get("owner_org"), str)}
        # Every name looked up: None where it is free. A name not in here
        # (not text before validation) goes to CKAN's own check.
        taken: dict[str, str | None] = dict.fromkeys(wanted_names)
        if wanted_names:
            taken.update(model.Session.query(model.Package.name, model.Package.id).filter(
                model.Package.name.in_(wanted_names), model.Package.state != model.State.DELETED))
        departments = {group_id for (group_id,) in model.Session.query(model.Group.id).filter(
            model.Group.id.in_(wanted_departments))} if wanted_departments else set()
        return dict(self._context(), **{shanghai_validators.BATCH_TAKEN_NAMES: taken,
                                        shanghai_validators.BATCH_DEPARTMENTS: departments})

    def _tag_ids(self, datas) -> dict[str, str]:
        """Ids of the batch's free tags. New ones are created first, in a
        short transaction of their own under a lock, so that two packages of
        a batch, or two fetch consumers, meeting the same new tag create it
        once (an unused tag left by a failed batch is harmless)."""
        wanted = {tag["name"] for data in datas for tag in data.get("tags") or []
                  if not tag.get("vocabulary_id")}
        if not wanted:
            return {}
        ids = _free_tag_ids(model.Session, wanted)
        if wanted - set(ids):
            with model.meta.engine.begin() as connection:
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _TAG_LOCK})
                missing = wanted - set(_free_tag_ids(connection, wanted))
                if missing:
                    connection.execute(model.tag_table.insert(), [
                        {"id": str(uuid.uuid4()), "name": name, "vocabulary_id": None}
                        for name in sorted(missing)])
            ids = _free_tag_ids(model.Session, wanted)
        return ids

    def index_and_record(self, package_ids: list[str], kind: str = "new") -> None:
        """Index packages saved by ``create_many`` in one Solr request,
        without a commit (the fetch consumer commits once per batch, see
        queue.IndexBatcher), and write their activities."""
        pairs = bulk_index.show_pairs(package_ids)
        bulk_index.index_pairs(pairs)
        if "activity" not in tk.config.get("ckan.plugins", ""):
            return
        labels = get_permission_labels()
        objects = {pkg.id: pkg for pkg in model.Session.query(model.Package).filter(
            model.Package.id.in_(package_ids))}
        # What activity_create stores, without re-validating ids the batch
        # has just written.
        model.Session.add_all([
            compat.activity(self.user.id, custom, kind, self.user_name,
                            labels.get_dataset_labels(objects[custom["id"]]))
            for _default, custom in pairs
        ])

    def update(self, package_id: str, package: dict[str, Any]) -> dict[str, Any]:
        """Update a package through CKAN's own action (chained actions,
        signals and the activity run); raises tk.ValidationError."""
        return tk.get_action("package_update")(self._context(), dict(package, id=package_id))

    def withdraw(self, package_id: str) -> None:
        """Withdraw (delete) a package through CKAN's own action."""
        tk.get_action("package_delete")(self._context(), {"id": package_id})


def _free_tag_ids(connection, names: set[str]) -> dict[str, str]:
    tag = model.tag_table
    return {row.name: row.id for row in connection.execute(
        sa.select(tag.c.name, tag.c.id).where(tag.c.name.in_(names), tag.c.vocabulary_id.is_(None)))}


# An arbitrary constant naming the portal's "creating free tags" lock.
_TAG_LOCK = 0x5348_7461_6773

_PACKAGE_COLUMNS = [c.name for c in model.package_table.c]
_RESOURCE_COLUMNS = [c for c in model.resource_table.c]
# Resource keys package_create never stores (resource_dict_save drops them).
_RESOURCE_IGNORED = {"extras", "revision_timestamp", "tracking_summary"}


def _package_rows(data: dict[str, Any], tag_ids: dict[str, str], now: dt.datetime,
                  rows: dict[str, list[dict[str, Any]]]) -> None:
    """The rows package_create's package_dict_save and
    package_owner_org_update write for a new, validated package dict (a test
    checks both give the same package_show). Sets ``data["id"]`` and the
    resources' ids, as package_create does."""
    package_id = data.get("id") or str(uuid.uuid4())
    data["id"] = package_id
    row = {name: data[name] for name in _PACKAGE_COLUMNS if name in data}
    row.update(
        id=package_id,
        type=data.get("type") or "dataset",
        private=data.get("private", False),
        state=data.get("state") or "active",
        metadata_created=now,
        metadata_modified=data.get("metadata_modified") or now,
        # Only a sysadmin's package_create keeps plugin_data; harvests set none.
        plugin_data=None,
        extras={extra["key"]: extra["value"] for extra in data.get("extras", [])},
    )
    rows["package"].append({name: row.get(name) for name in _PACKAGE_COLUMNS})
    for position, resource in enumerate(data.get("resources") or []):
        resource_id = resource.get("id") or str(uuid.uuid4())
        resource["id"] = resource_id
        resource_row: dict[str, Any] = {}
        extras = {key: value for key, value in resource.items() if key not in _RESOURCE_IGNORED}
        for column in _RESOURCE_COLUMNS:
            if column.name in extras:
                resource_row[column.name] = extras.pop(column.name)
            elif column.doc == "remove_if_not_provided":
                resource_row[column.name] = None if column.nullable else ""
            else:
                # model.Resource() starts these four as "", the rest as None.
                resource_row[column.name] = "" if column.name in ("url", "format", "description", "hash") \
                    else None
        if resource_row["url"] and resource_row.get("url_type") == "upload":
            resource_row["url"] = resource_row["url"].rsplit("/")[-1]
        resource_row.update(id=resource_id, package_id=package_id, position=position, state="active",
                            created=resource_row["created"] or now, metadata_modified=now, extras=extras)
        rows["resource"].append(resource_row)
    for tag in data.get("tags") or []:
        if tag.get("vocabulary_id"):
            raise ValueError("vocabulary tags are not supported by the batch path")
        rows["package_tag"].append({"id": str(uuid.uuid4()), "package_id": package_id,
                                    "tag_id": tag_ids[tag["name"]], "state": "active"})
    if data.get("owner_org"):
        rows["member"].append({"id": str(uuid.uuid4()), "table_id": package_id, "table_name": "package",
                               "group_id": data["owner_org"], "capacity": "organization",
                               "state": "active"})

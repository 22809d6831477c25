"""Actions of real-time products: declare one (a keyed DataStore table with
an observation time and an interval), its push keys (shown once, revocable),
push a batch, read the table as of a moment and one key's history, and
each product's liveness and uptime."""
from __future__ import annotations

import datetime as dt
import logging
import re
import zoneinfo

import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.access import policy
from ckanext.shanghai.realtime import batch, store, webhooks

log = logging.getLogger(__name__)

__all__ = [
    "shanghai_realtime_product_create", "shanghai_realtime_product_show", "shanghai_realtime_key_create",
    "shanghai_realtime_key_list", "shanghai_realtime_key_revoke", "shanghai_realtime_push",
    "shanghai_realtime_search", "shanghai_realtime_history", "shanghai_realtime_prune",
    "shanghai_realtime_status_list", "shanghai_realtime_webhook_create", "shanghai_realtime_webhook_list",
    "shanghai_realtime_webhook_delete", "shanghai_realtime_delivery_list",
]

MIN_REFRESH_SECONDS = 10
_COLUMN = re.compile(r"^[A-Za-z_\u4e00-\u9fff][A-Za-z0-9_\u4e00-\u9fff]{0,62}$")
_TYPES = {"text", "int", "int4", "int8", "bigint", "integer", "numeric", "float8", "bool", "boolean",
          "timestamp", "date", "json"}


def _error(field: str, zh: str, en: str):
    return tk.ValidationError({field: [f"{zh} / {en}"]})


def zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(tk.config.get("ckanext.shanghai.realtime.timezone"))


def _product(data_dict: dict) -> dict:
    product = store.get_product(str(data_dict.get("id") or data_dict.get("resource_id") or ""))
    if product is None:
        raise tk.ObjectNotFound("没有这个实时数据产品 / No such real-time data product")
    return product


def _user_id(context: dict) -> str | None:
    user = policy.user_of(context)
    return user.id if user is not None else None


def _time(data_dict: dict, field: str, default: dt.datetime | None = None) -> dt.datetime:
    value = data_dict.get(field)
    if value in (None, ""):
        if default is None:
            raise _error(field, f"请提供 {field}", f"{field} is required")
        return default
    try:
        return batch.parse_time(str(value), zone())
    except ValueError:
        raise _error(field, f"{field} 应为 ISO 8601 时间，如 2026-12-01T08:00:00+08:00",
                     f"{field} must be an ISO 8601 time such as 2026-12-01T08:00:00+08:00")


def _int(data_dict: dict, field: str, default: int, low: int, high: int) -> int:
    try:
        value = int(data_dict.get(field) if data_dict.get(field) not in (None, "") else default)
    except (TypeError, ValueError):
        raise _error(field, f"{field} 应为整数", f"{field} must be a whole number")
    if not low <= value <= high:
        raise _error(field, f"{field} 应在 {low} 到 {high} 之间", f"{field} must be between {low} and {high}")
    return value


def status(product: dict, at: dt.datetime | None = None, last: dt.datetime | None = None,
           with_uptime: bool = True) -> dict:
    """Liveness: interrupted when no push came for twice the interval; since
    the last push (or since the product was declared, if none ever came)."""
    at = at or store.now()
    last = last if last is not None else store.last_push(product["resource_id"])
    reference = last or product["created"]
    interrupted = (at - reference).total_seconds() > 2 * int(product["refresh_seconds"])
    result = {"resource_id": product["resource_id"], "package_id": product["package_id"],
              "key_field": product["key_field"], "time_field": product["time_field"],
              "refresh_seconds": product["refresh_seconds"], "last_push": last.isoformat() if last else None,
              "interrupted": interrupted, "interrupted_since": reference.isoformat() if interrupted else None}
    if with_uptime:
        days = int(tk.config.get("ckanext.shanghai.realtime.uptime_days"))
        result["uptime"] = dict(store.uptime(product, days, at), days=days)
    return result


def shanghai_realtime_product_create(context, data_dict):
    """Declare a real-time product: a new DataStore table on an existing
    data product, keyed by one column, with an observation-time column.

    :param package_id: the data product (id or name).
    :param name: the resource's name.
    :param fields: the columns, ``[{"id": ..., "type": ...}]`` (DataStore types).
    :param key_field: the primary key column (e.g. the car park's id).
    :param time_field: the observation time column (type timestamp).
    :param refresh_seconds: the declared interval between pushes (>= 10).
    :returns: the product, with its ``resource_id``.
    """
    package = model.Package.get(str(data_dict.get("package_id") or ""))
    if package is None or package.state != "active":
        raise tk.ObjectNotFound("没有这个数据产品 / No such data product")
    tk.check_access("shanghai_realtime_product_create", context, {"package_id": package.id})
    fields = data_dict.get("fields")
    if not isinstance(fields, list) or not fields:
        raise _error("fields", "请列出表的列（fields）", "List the table's columns (fields)")
    names = []
    for column in fields:
        name = column.get("id") if isinstance(column, dict) else None
        if not isinstance(name, str) or not _COLUMN.match(name) or name.startswith("_"):
            raise _error("fields", f"列名无效：{name!r}", f"Not a valid column name: {name!r}")
        if (column.get("type") or "text") not in _TYPES:
            raise _error("fields", f"列 {name} 的类型 {column.get('type')!r} 不受支持",
                         f"Column {name}: type {column.get('type')!r} is not supported")
        names.append(name)
    if len(set(names)) != len(names):
        raise _error("fields", "列名重复", "A column name is repeated")
    key_field, time_field = data_dict.get("key_field"), data_dict.get("time_field")
    if key_field not in names:
        raise _error("key_field", "主键列应是表中的一列", "The key column must be one of the columns")
    types = {c["id"]: c.get("type") or "text" for c in fields}
    if time_field not in names or types[time_field] != "timestamp" or time_field == key_field:
        raise _error("time_field", "观测时间列应是表中类型为 timestamp 的另一列",
                     "The observation time column must be another column, of type timestamp")
    refresh = _int(data_dict, "refresh_seconds", 0, MIN_REFRESH_SECONDS, 86400)
    site = {"user": tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"], "ignore_auth": True}
    created = tk.get_action("datastore_create")(dict(site), {
        "resource": {"package_id": package.id, "name": str(data_dict.get("name") or "实时数据"),
                     "format": "JSON", "url_type": "datastore", "description": "实时数据，由数据提供部门推送"},
        "fields": [{"id": c["id"], "type": types[c["id"]]} for c in fields],
        "primary_key": [key_field], "indexes": [time_field], "force": True,
    })
    store.ensure_history()
    product = store.add_product(resource_id=created["resource_id"], package_id=package.id,
                                organization_id=package.owner_org, key_field=key_field, time_field=time_field,
                                refresh_seconds=refresh, created_by=_user_id(context))
    model.Session.commit()
    return store.get_product(product["resource_id"])


@tk.side_effect_free
def shanghai_realtime_product_show(context, data_dict):
    """A real-time product, its columns, liveness and uptime.

    :param id: the resource id, or the data product's id or name.
    """
    product = _product(data_dict)
    tk.check_access("shanghai_realtime_product_show", context, product)
    result = dict(product, created=product["created"].isoformat())
    result["columns"] = store.columns_of(product["resource_id"])
    result["status"] = status(product)
    return result


def shanghai_realtime_key_create(context, data_dict):
    """A new push key for one product. The key is in this answer only:
    the portal keeps a hash of it.

    :param id: the product's resource id (or the data product's).
    :param label: what the department calls it (optional).
    """
    product = _product(data_dict)
    tk.check_access("shanghai_realtime_key_create", context, product)
    row, key = store.new_push_key(product, str(data_dict.get("label") or "")[:200], _user_id(context))
    model.Session.commit()
    return {"id": row["id"], "key": key, "hint": row["hint"], "label": row["label"],
            "resource_id": product["resource_id"], "created": row["created"].isoformat()}


@tk.side_effect_free
def shanghai_realtime_key_list(context, data_dict):
    """The product's push keys (never the keys themselves).

    :param id: the product's resource id (or the data product's).
    """
    product = _product(data_dict)
    tk.check_access("shanghai_realtime_key_create", context, product)
    return [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}
            for row in store.list_push_keys(product["resource_id"])]


def shanghai_realtime_key_revoke(context, data_dict):
    """Revoke a push key: pushes with it are refused from now on.

    :param key_id: the key's id (from key_create or key_list).
    """
    row = store.get_push_key(str(data_dict.get("key_id") or ""))
    if row is None:
        raise tk.ObjectNotFound("没有这个推送密钥 / No such push key")
    tk.check_access("shanghai_realtime_key_create", context, store.get_product(row["resource_id"]))
    store.revoke_push_key(row["id"], _user_id(context))
    model.Session.commit()
    return {"id": row["id"], "revoked": True}


def shanghai_realtime_push(context, data_dict):
    """Push a batch of observations to a real-time product.

    Each record is an object of the table's columns, with the key and the
    observation time; ``"_delete": true`` deletes the key as of that time.
    An observation older than the one kept for its key changes nothing, and
    pushing the same batch again changes nothing. A batch with an unknown
    column or a value of the wrong type is refused whole, naming the
    record, column and value; nothing of it is written.

    :param id: the product's resource id (or the data product's).
    :param records: the list of records.
    :returns: counts: received, kept (new in the history), repeated,
        upserted and deleted (rows of the table changed).
    """
    product = _product(data_dict)
    tk.check_access("shanghai_realtime_push", context, product)
    records = data_dict.get("records")
    limit = int(tk.config.get("ckanext.shanghai.realtime.max_batch"))
    if isinstance(records, list) and len(records) > limit:
        raise tk.ValidationError({"records": [{"record": None, "code": "batch-too-large", "field": "records",
                                               "value": str(len(records)),
                                               "reason_zh": f"一次最多推送 {limit} 条记录",
                                               "reason_en": f"A push holds at most {limit} records"}]})
    at = store.now()
    retention = int(tk.config.get("ckanext.shanghai.realtime.retention_days"))
    columns = store.columns_of(product["resource_id"])
    try:
        observations = batch.check_batch(
            records, columns, product["key_field"], product["time_field"], zone(),
            oldest=at - dt.timedelta(days=retention),
            newest=at + dt.timedelta(seconds=int(tk.config.get("ckanext.shanghai.realtime.future_seconds"))))
    except batch.BatchRejected as rejected:
        raise tk.ValidationError({"records": rejected.as_dicts()})
    result = store.apply_batch(product, columns, observations, zone().key)
    if context.get("shanghai_realtime_key"):
        store.touch_push_key(context["shanghai_realtime_key"]["id"])
        model.Session.commit()
    return result


@tk.side_effect_free
def shanghai_realtime_search(context, data_dict):
    """The product's table: now (the DataStore's own search, with its
    filters), or as it was at ``as_of`` (from the history).

    :param id: the product's resource id (or the data product's).
    :param as_of: an ISO 8601 time (optional).
    :param limit: rows (default 100, at most 32000).
    :param offset: rows to skip.
    """
    product = _product(data_dict)
    tk.check_access("shanghai_realtime_search", context, product)
    if data_dict.get("as_of") in (None, ""):
        query = {k: v for k, v in data_dict.items() if k not in ("id", "as_of")}
        fresh = {key: context[key] for key in ("user", "auth_user_obj", "ignore_auth") if key in context}
        return tk.get_action("datastore_search")(fresh, dict(query, resource_id=product["resource_id"]))
    as_of = _time(data_dict, "as_of")
    limit = _int(data_dict, "limit", 100, 1, 32000)
    offset = _int(data_dict, "offset", 0, 0, 10 ** 9)
    total, records = store.table_as_of(product["resource_id"], as_of, limit, offset)
    return {"resource_id": product["resource_id"], "as_of": as_of.isoformat(), "total": total,
            "records": records, "limit": limit, "offset": offset}


@tk.side_effect_free
def shanghai_realtime_history(context, data_dict):
    """One key's observations over a period, oldest first (deletions too).

    :param id: the product's resource id (or the data product's).
    :param key: the key's value.
    :param since: ISO 8601 time (default: a day before ``until``).
    :param until: ISO 8601 time (default: now).
    :param limit: at most this many observations (default 1000, at most 100000).
    """
    product = _product(data_dict)
    tk.check_access("shanghai_realtime_search", context, product)
    key = data_dict.get("key")
    if key in (None, ""):
        raise _error("key", "请提供主键值（key）", "Give the key's value (key)")
    until = _time(data_dict, "until", store.now())
    since = _time(data_dict, "since", until - dt.timedelta(days=1))
    limit = _int(data_dict, "limit", 1000, 1, 100000)
    rows = store.key_history(product["resource_id"], str(key), since, until, limit)
    return {"resource_id": product["resource_id"], "key": str(key), "since": since.isoformat(),
            "until": until.isoformat(),
            "observations": [{"event_id": r["id"], "observed": r["observed"].isoformat(),
                              "received": r["received"].isoformat(), "deleted": r["deleted"],
                              "record": r["record"]} for r in rows]}


def shanghai_realtime_prune(context, data_dict):
    """Drop history partitions older than the retention (sysadmins; also
    ``ckan shanghai realtime-prune``). :returns: the days dropped."""
    tk.check_access("shanghai_realtime_prune", context, data_dict)
    days = int(tk.config.get("ckanext.shanghai.realtime.retention_days"))
    return {"retention_days": days, "dropped": [d.isoformat() for d in store.prune_history(days)]}


@tk.side_effect_free
def shanghai_realtime_status_list(context, data_dict):
    """Liveness of every real-time product (or one department's).

    :param organization_id: only this department's products (optional).
    :param interrupted: only interrupted feeds (optional, true/false).
    """
    tk.check_access("shanghai_realtime_status_list", context, data_dict)
    organization = data_dict.get("organization_id")
    if organization:
        group = model.Group.get(organization)
        organization = group.id if group is not None else organization
    products = store.products_of(organization_id=organization or None)
    lasts = store.last_pushes([p["resource_id"] for p in products])
    at = store.now()
    result = []
    for product in products:
        package = model.Package.get(product["package_id"])
        if package is None or package.state != "active" or package.private:
            continue
        entry = status(product, at, lasts.get(product["resource_id"]), with_uptime=False)
        entry.update(title=package.title, name=package.name, organization_id=product["organization_id"])
        if tk.asbool(data_dict.get("interrupted")) and not entry["interrupted"]:
            continue
        result.append(entry)
    return result


def _hook_dict(hook: dict) -> dict:
    return {key: (value.isoformat() if isinstance(value, dt.datetime) else value)
            for key, value in hook.items() if key != "secret"}


def _own_hook(context: dict, data_dict: dict) -> dict:
    hook = webhooks.get(str(data_dict.get("webhook_id") or ""))
    user = policy.user_of(context)
    if hook is None or user is None or (hook["user_id"] != user.id and not user.sysadmin):
        raise tk.ObjectNotFound("没有这个订阅 / No such subscription")
    return hook


def shanghai_realtime_webhook_create(context, data_dict):
    """Subscribe an address to a product's observations (from now on). The
    signing secret is in this answer only.

    :param id: the product's resource id (or the data product's).
    :param url: the subscriber's https (or http) address.
    :returns: the subscription with its ``secret``.
    """
    product = _product(data_dict)
    tk.check_access("shanghai_realtime_webhook_create", context, product)
    url = str(data_dict.get("url") or "").strip()
    try:
        from ckanext.shanghai.files import fetching

        fetching.check_url(url, fetching.configured_limits())
    except fetching.SourceFetchError as error:
        raise tk.ValidationError({"url": [str(error)]})
    hook = webhooks.create(product, policy.user_of(context).id, url)
    model.Session.commit()
    return dict(_hook_dict(hook), secret=hook["secret"])


@tk.side_effect_free
def shanghai_realtime_webhook_list(context, data_dict):
    """The caller's subscriptions, each with its failures in a row and when
    the next attempt is due."""
    tk.check_access("shanghai_realtime_webhook_create", context, None)
    return [_hook_dict(hook) for hook in webhooks.list_for_user(policy.user_of(context).id)]


def shanghai_realtime_webhook_delete(context, data_dict):
    """End a subscription. :param webhook_id: its id."""
    tk.check_access("shanghai_realtime_webhook_create", context, None)
    hook = _own_hook(context, data_dict)
    webhooks.deactivate(hook["id"])
    model.Session.commit()
    return {"id": hook["id"], "active": False}


@tk.side_effect_free
def shanghai_realtime_delivery_list(context, data_dict):
    """A subscription's delivery attempts, newest first.

    :param webhook_id: its id.
    :param failed: only the failed ones (true/false, default false).
    :param limit: at most this many (default 100).
    """
    tk.check_access("shanghai_realtime_webhook_create", context, None)
    hook = _own_hook(context, data_dict)
    rows = webhooks.deliveries(hook["id"], tk.asbool(data_dict.get("failed")), _int(data_dict, "limit", 100, 1, 1000))
    return [{key: (value.isoformat() if isinstance(value, dt.datetime) else value) for key, value in row.items()}
            for row in rows]

"""Where real-time products live.

In CKAN's database (created by the shanghai_realtime migration): which
DataStore table is a real-time product, and the push keys (hashes only).

In the DataStore's database, beside the product's own table (created on
first use, as the DataStore creates its tables): every accepted
observation in ``shanghai_rt_history``, partitioned by observation day so
that retention drops whole partitions; the newest deletion of each key
(``shanghai_rt_tombstone``) so that an older observation arriving late
cannot bring a deleted key back; and one row per interval that had a push
(``shanghai_rt_interval``) for liveness and uptime.

A push is one transaction there, serialised per product: the history rows'
identity numbers then increase in commit order within a product, and
serve as the stream's event ids (a reader that has seen id N never sees a
smaller id appear later). A push that kept new observations sends a
PostgreSQL NOTIFY on ``shanghai_rt`` (the product's resource id) when it
commits: the stream server's wake-up."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from typing import Iterable

import sqlalchemy as sa

import ckan.model as model

from ckanext.shanghai.realtime.batch import Observation

__all__ = [
    "product_table", "push_key_table", "NOTIFY_CHANNEL", "now", "coordinate_columns", "get_product", "products_of", "add_product",
    "new_push_key", "find_push_key", "get_push_key", "list_push_keys", "revoke_push_key", "touch_push_key", "columns_of",
    "ensure_history", "apply_batch", "table_as_of", "key_history", "events_after", "events_before_now",
    "last_push", "last_pushes", "uptime", "prune_history", "history_partitions",
]

_metadata = sa.MetaData()

product_table = sa.Table(
    "shanghai_realtime_product", _metadata,
    sa.Column("resource_id", sa.UnicodeText, primary_key=True),
    sa.Column("package_id", sa.UnicodeText),
    sa.Column("organization_id", sa.UnicodeText),
    sa.Column("key_field", sa.UnicodeText),
    sa.Column("time_field", sa.UnicodeText),
    sa.Column("refresh_seconds", sa.Integer),
    sa.Column("created", sa.DateTime(timezone=True)),
    sa.Column("created_by", sa.UnicodeText),
)

push_key_table = sa.Table(
    "shanghai_realtime_push_key", _metadata,
    sa.Column("id", sa.UnicodeText, primary_key=True),
    sa.Column("resource_id", sa.UnicodeText),
    sa.Column("organization_id", sa.UnicodeText),
    sa.Column("key_hash", sa.UnicodeText),
    sa.Column("hint", sa.UnicodeText),
    sa.Column("label", sa.UnicodeText),
    sa.Column("created", sa.DateTime(timezone=True)),
    sa.Column("created_by", sa.UnicodeText),
    sa.Column("last_used", sa.DateTime(timezone=True)),
    sa.Column("revoked", sa.DateTime(timezone=True)),
    sa.Column("revoked_by", sa.UnicodeText),
)

HISTORY = "shanghai_rt_history"
# NOTIFY channel of committed pushes; the payload is the resource id.
NOTIFY_CHANNEL = "shanghai_rt"
_KEY_PREFIX = "shrt_"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _engine() -> sa.engine.Engine:
    from ckanext.datastore.backend.postgres import get_write_engine

    return get_write_engine()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------
# Products and push keys (CKAN's database)


def get_product(resource_or_package_id: str) -> dict | None:
    """The real-time product of a resource id, or the first of a package
    (by id or name)."""
    ident = resource_or_package_id or ""
    row = model.Session.execute(sa.select(product_table).where(product_table.c.resource_id == ident)).first()
    if row is None:
        package = model.Package.get(ident)
        if package is not None:
            row = model.Session.execute(sa.select(product_table).where(
                product_table.c.package_id == package.id).order_by(product_table.c.created)).first()
    return dict(row._mapping) if row is not None else None


def products_of(package_ids: Iterable[str] | None = None, organization_id: str | None = None) -> list[dict]:
    query = sa.select(product_table)
    if package_ids is not None:
        query = query.where(product_table.c.package_id.in_(list(package_ids)))
    if organization_id is not None:
        query = query.where(product_table.c.organization_id == organization_id)
    return [dict(r._mapping) for r in model.Session.execute(query.order_by(product_table.c.created))]


def add_product(**fields) -> dict:
    model.Session.execute(product_table.insert().values(created=now(), **fields))
    return fields


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_push_key(product: dict, label: str, user_id: str | None) -> tuple[dict, str]:
    """A new key for one product: (its stored row, the key itself, which is
    returned this once and never stored)."""
    key = _KEY_PREFIX + secrets.token_urlsafe(32)
    row = {"id": str(uuid.uuid4()), "resource_id": product["resource_id"],
           "organization_id": product["organization_id"], "key_hash": _hash(key),
           "hint": key[:len(_KEY_PREFIX) + 4] + "…", "label": label, "created": now(), "created_by": user_id}
    model.Session.execute(push_key_table.insert().values(**row))
    return row, key


def find_push_key(key: str) -> dict | None:
    """The unrevoked key row a pushed key matches, or None."""
    if not key or not key.startswith(_KEY_PREFIX):
        return None
    row = model.Session.execute(sa.select(push_key_table).where(
        push_key_table.c.key_hash == _hash(key), push_key_table.c.revoked.is_(None))).first()
    return dict(row._mapping) if row is not None else None


def list_push_keys(resource_id: str) -> list[dict]:
    query = sa.select(push_key_table).where(push_key_table.c.resource_id == resource_id) \
        .order_by(push_key_table.c.created)
    return [{k: v for k, v in r._mapping.items() if k != "key_hash"} for r in model.Session.execute(query)]


def get_push_key(key_id: str) -> dict | None:
    row = model.Session.execute(sa.select(push_key_table).where(push_key_table.c.id == key_id)).first()
    return dict(row._mapping) if row is not None else None


def revoke_push_key(key_id: str, user_id: str | None) -> None:
    model.Session.execute(push_key_table.update().where(push_key_table.c.id == key_id,
                                                        push_key_table.c.revoked.is_(None))
                          .values(revoked=now(), revoked_by=user_id))


def touch_push_key(key_id: str) -> None:
    model.Session.execute(push_key_table.update().where(push_key_table.c.id == key_id).values(last_used=now()))


# --------------------------------------------------------------------------
# The DataStore's database


def columns_of(resource_id: str) -> dict[str, str]:
    """The product table's columns and their PostgreSQL types, in order."""
    with _engine().connect() as connection:
        rows = connection.execute(sa.text(
            "select attname, format_type(atttypid, atttypmod) from pg_attribute "
            "where attrelid = cast(:table as regclass) and attnum > 0 and not attisdropped "
            "and attname not in ('_id', '_full_text') order by attnum"), {"table": _ident(resource_id)})
        return {name: column_type for name, column_type in rows}


def coordinate_columns(resource_id: str) -> dict | None:
    """The table's coordinate columns (``{"lng", "lat"}`` or ``{"pair"}``,
    as the DataStore loader finds them), judged on its column types and
    one row; None when it has none (or no row yet)."""
    from ckanext.shanghai.datastore import coordinates

    kinds = {"integer": "integer", "bigint": "integer", "smallint": "integer", "numeric": "numeric",
             "double precision": "numeric", "real": "numeric"}
    columns = columns_of(resource_id)
    with _engine().connect() as connection:
        row = connection.execute(sa.text(f"select * from {_ident(resource_id)} limit 1")).first()
    if row is None:
        return None
    example = row._mapping
    return coordinates.detect_columns([{"name": name, "type": kinds.get(column_type, "text"),
                                        "example": example.get(name)} for name, column_type in columns.items()])


_SCHEMA = f"""
create table if not exists {HISTORY} (
    id bigint generated always as identity,
    resource_id text not null,
    key text not null,
    observed timestamptz not null,
    received timestamptz not null default now(),
    deleted boolean not null default false,
    record jsonb not null,
    unique (resource_id, key, observed)
) partition by range (observed);
create index if not exists {HISTORY}_events on {HISTORY} (resource_id, id);
create table if not exists shanghai_rt_tombstone (
    resource_id text not null,
    key text not null,
    observed timestamptz not null,
    primary key (resource_id, key)
);
create table if not exists shanghai_rt_interval (
    resource_id text not null,
    interval_start timestamptz not null,
    pushes integer not null default 1,
    observations integer not null default 0,
    last_at timestamptz not null,
    primary key (resource_id, interval_start)
);
"""


def ensure_history() -> None:
    """The history tables, once per database (idempotent)."""
    with _engine().begin() as connection:
        connection.execute(sa.text("select pg_advisory_xact_lock(hashtext('shanghai_rt_schema'))"))
        connection.execute(sa.text(_SCHEMA))


def _partition_name(day: dt.date) -> str:
    return f"{HISTORY}_p{day:%Y%m%d}"


def _ensure_partitions(connection, days: set[dt.date]) -> None:
    existing = set(history_partitions(connection))
    for day in sorted(days - existing):
        connection.execute(sa.text("select pg_advisory_xact_lock(hashtext('shanghai_rt_partition'))"))
        connection.execute(sa.text(
            f"create table if not exists {_partition_name(day)} partition of {HISTORY} "
            f"for values from ('{day.isoformat()} 00:00:00+00') to ('{(day + dt.timedelta(days=1)).isoformat()} 00:00:00+00')"))


def history_partitions(connection=None) -> list[dt.date]:
    """The days that have a history partition, oldest first."""
    query = sa.text("select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
                    "where i.inhparent = cast(:parent as regclass) order by c.relname")
    if connection is None:
        with _engine().connect() as connection:
            names = connection.execute(query, {"parent": HISTORY}).scalars().all()
    else:
        names = connection.execute(query, {"parent": HISTORY}).scalars().all()
    return [dt.datetime.strptime(name.rsplit("_p", 1)[1], "%Y%m%d").date() for name in names]


def prune_history(retention_days: int, today: dt.date | None = None) -> list[dt.date]:
    """Drop every partition wholly older than the retention; the dropped days."""
    today = today or now().date()
    cutoff = today - dt.timedelta(days=retention_days)
    dropped = []
    with _engine().begin() as connection:
        for day in history_partitions(connection):
            if day < cutoff:
                connection.execute(sa.text(f"drop table if exists {_partition_name(day)}"))
                dropped.append(day)
    return dropped


def _newest_per_key(observations: list[Observation]) -> list[Observation]:
    newest: dict[str, Observation] = {}
    for observation in observations:
        current = newest.get(observation.key)
        if current is None or observation.observed > current.observed:
            newest[observation.key] = observation
    return list(newest.values())


def apply_batch(product: dict, columns: dict[str, str], observations: list[Observation],
                zone_name: str) -> dict[str, int]:
    """Write a checked batch in one transaction: history (a repeat of a
    kept observation is a no-op), then the table, where an observation
    replaces a key's row only when it is newer than both the row and the
    key's latest deletion. Returns counts of what changed."""
    resource_id = product["resource_id"]
    table, key_column, time_column = _ident(resource_id), _ident(product["key_field"]), _ident(product["time_field"])
    key_type = columns[product["key_field"]]
    pushed_at = now()
    interval = int(product["refresh_seconds"])
    interval_start = dt.datetime.fromtimestamp(int(pushed_at.timestamp()) // interval * interval, dt.timezone.utc)
    history_rows = json.dumps([{"key": o.key, "observed": o.observed.isoformat(), "deleted": o.deleted,
                                "record": o.values} for o in observations], ensure_ascii=False)
    newest = _newest_per_key(observations)
    upserts = [o.values for o in newest if not o.deleted]
    deletes = [{"key": o.key, "observed": o.observed.isoformat()} for o in newest if o.deleted]
    names = [name for name in columns if any(name in values for values in upserts)]
    with _engine().begin() as connection:
        connection.execute(sa.text("select pg_advisory_xact_lock(hashtext(:lock))"),
                           {"lock": f"shanghai_rt:{resource_id}"})
        _ensure_partitions(connection, {o.observed.date() for o in observations})
        kept = connection.execute(sa.text(
            f"insert into {HISTORY} (resource_id, key, observed, deleted, record) "
            "select :resource_id, x.key, x.observed, x.deleted, x.record "
            "from jsonb_to_recordset(cast(:rows as jsonb)) as x(key text, observed timestamptz, deleted boolean, record jsonb) "
            "on conflict do nothing"), {"resource_id": resource_id, "rows": history_rows}).rowcount
        deleted = 0
        if deletes:
            deleted = connection.execute(sa.text(
                f"delete from {table} t using jsonb_to_recordset(cast(:rows as jsonb)) as d(key text, observed timestamptz) "
                f"where t.{key_column} = cast(d.key as {key_type}) "
                f"and t.{time_column} <= (d.observed at time zone :zone)"),
                {"rows": json.dumps(deletes), "zone": zone_name}).rowcount
            connection.execute(sa.text(
                "insert into shanghai_rt_tombstone (resource_id, key, observed) "
                "select :resource_id, d.key, d.observed from jsonb_to_recordset(cast(:rows as jsonb)) "
                "as d(key text, observed timestamptz) on conflict (resource_id, key) do update "
                "set observed = greatest(shanghai_rt_tombstone.observed, excluded.observed)"),
                {"resource_id": resource_id, "rows": json.dumps(deletes)})
        upserted = 0
        if upserts:
            column_list = ", ".join(_ident(name) for name in names)
            assignments = ", ".join(f"{_ident(name)} = excluded.{_ident(name)}" for name in names
                                    if name != product["key_field"])
            upserted = connection.execute(sa.text(
                f"insert into {table} ({column_list}) "
                f"select {', '.join('r.' + _ident(name) for name in names)} "
                f"from jsonb_populate_recordset(null::{table}, cast(:rows as jsonb)) r "
                "where not exists (select 1 from shanghai_rt_tombstone s where s.resource_id = :resource_id "
                f"and s.key = cast(r.{key_column} as text) and (s.observed at time zone :zone) >= r.{time_column}) "
                f"on conflict ({key_column}) do update set {assignments} "
                f"where {table}.{time_column} < excluded.{time_column}"),
                {"rows": json.dumps(upserts, ensure_ascii=False), "resource_id": resource_id,
                 "zone": zone_name}).rowcount
        connection.execute(sa.text(
            "insert into shanghai_rt_interval (resource_id, interval_start, observations, last_at) "
            "values (:resource_id, :start, :kept, :at) on conflict (resource_id, interval_start) do update "
            "set pushes = shanghai_rt_interval.pushes + 1, "
            "observations = shanghai_rt_interval.observations + excluded.observations, last_at = excluded.last_at"),
            {"resource_id": resource_id, "start": interval_start, "kept": kept, "at": pushed_at})
        if kept:
            # Delivered at commit, so a woken reader finds the rows.
            connection.execute(sa.text("select pg_notify(:channel, :resource_id)"),
                               {"channel": NOTIFY_CHANNEL, "resource_id": resource_id})
    return {"received": len(observations), "kept": kept, "repeated": len(observations) - kept,
            "upserted": upserted, "deleted": deleted}


# --------------------------------------------------------------------------
# Reading history


def _json(value):
    # The DataStore's engine hands JSON columns over as text.
    return json.loads(value) if isinstance(value, str) else value


def table_as_of(resource_id: str, as_of: dt.datetime, limit: int, offset: int) -> tuple[int, list[dict]]:
    """The table as it was at ``as_of``: each key's newest observation at or
    before it, unless that was a deletion. (total, records by key)."""
    query = (f"with latest as (select distinct on (key) key, observed, deleted, record, id from {HISTORY} "
             "where resource_id = :resource_id and observed <= :as_of order by key, observed desc, id desc) "
             "select record, count(*) over () as total from latest where not deleted order by key "
             "limit :limit offset :offset")
    with _engine().connect() as connection:
        rows = connection.execute(sa.text(query), {"resource_id": resource_id, "as_of": as_of,
                                                   "limit": limit, "offset": offset}).all()
        total = rows[0].total if rows else connection.execute(sa.text(
            f"with latest as (select distinct on (key) key, deleted from {HISTORY} "
            "where resource_id = :resource_id and observed <= :as_of order by key, observed desc, id desc) "
            "select count(*) from latest where not deleted"), {"resource_id": resource_id, "as_of": as_of}).scalar()
    return total, [_json(row.record) for row in rows]


def key_history(resource_id: str, key: str, since: dt.datetime, until: dt.datetime, limit: int) -> list[dict]:
    """One key's observations over a period, oldest first."""
    with _engine().connect() as connection:
        rows = connection.execute(sa.text(
            f"select id, observed, received, deleted, record from {HISTORY} where resource_id = :resource_id "
            "and key = :key and observed >= :since and observed <= :until order by observed, id limit :limit"),
            {"resource_id": resource_id, "key": key, "since": since, "until": until, "limit": limit}).all()
    return [dict(row._mapping, record=_json(row.record)) for row in rows]


def events_after(resource_id: str, last_id: int, limit: int) -> list[dict]:
    """Accepted observations with an event id above ``last_id``, in order."""
    with _engine().connect() as connection:
        rows = connection.execute(sa.text(
            f"select id, key, observed, deleted, record from {HISTORY} "
            "where resource_id = :resource_id and id > :last_id order by id limit :limit"),
            {"resource_id": resource_id, "last_id": last_id, "limit": limit}).all()
    return [dict(row._mapping, record=_json(row.record)) for row in rows]


def last_pushes(resource_ids: list[str]) -> dict[str, dt.datetime]:
    if not resource_ids:
        return {}
    with _engine().connect() as connection:
        if not connection.execute(sa.text("select to_regclass('shanghai_rt_interval')")).scalar():
            return {}
        rows = connection.execute(sa.text(
            "select resource_id, max(last_at) from shanghai_rt_interval where resource_id = any(:ids) "
            "group by resource_id"), {"ids": list(resource_ids)}).all()
    return {resource_id: last_at for resource_id, last_at in rows}


def last_push(resource_id: str) -> dt.datetime | None:
    return last_pushes([resource_id]).get(resource_id)


def uptime(product: dict, days: int, at: dt.datetime | None = None) -> dict:
    """Share of the product's intervals over the last ``days`` days (or
    since it was created, if later) in which it received a push."""
    at = at or now()
    interval = int(product["refresh_seconds"])
    start = max(at - dt.timedelta(days=days), product["created"])
    expected = max(int((at.timestamp() - start.timestamp()) // interval), 1)
    with _engine().connect() as connection:
        if not connection.execute(sa.text("select to_regclass('shanghai_rt_interval')")).scalar():
            return {"intervals": expected, "with_data": 0, "share": 0.0}
        with_data = connection.execute(sa.text(
            "select count(*) from shanghai_rt_interval where resource_id = :resource_id "
            "and interval_start >= :start and interval_start <= :at"),
            {"resource_id": product["resource_id"], "start": start - dt.timedelta(seconds=interval),
             "at": at}).scalar()
    with_data = min(with_data, expected)
    return {"intervals": expected, "with_data": with_data, "share": round(with_data / expected, 4)}


def events_before_now(resource_id: str) -> int:
    """The newest event id of the product (0 when none): where a new
    subscriber starts."""
    with _engine().connect() as connection:
        return connection.execute(sa.text(
            f"select coalesce(max(id), 0) from {HISTORY} where resource_id = :resource_id"),
            {"resource_id": resource_id}).scalar()

"""Tables of developer keys: applications (each holding one CKAN API token,
table shanghai_application) and the usage figures read from shanghai_usage."""
from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

import ckan.model as model

__all__ = ["add_application", "get_application", "applications_of", "mark_revoked", "department_usage",
           "product_totals", "site_totals"]

_APPLICATION_COLUMNS = ("a.id, a.user_id, a.token_id, a.name, a.description, a.contact, a.created, a.revoked, "
                        "t.last_access")


def _application(row) -> dict:
    item = dict(row._mapping)
    for field in ("created", "revoked", "last_access"):
        if item.get(field) is not None:
            item[field] = item[field].isoformat()
    item["active"] = item["revoked"] is None
    return item


def add_application(user_id: str, token_id: str, name: str, description: str, contact: str) -> dict:
    application_id = str(uuid.uuid4())
    model.Session.execute(sa.text(
        "insert into shanghai_application (id, user_id, token_id, name, description, contact, created) "
        "values (:id, :user_id, :token_id, :name, :description, :contact, :created)"),
        {"id": application_id, "user_id": user_id, "token_id": token_id, "name": name,
         "description": description, "contact": contact, "created": dt.datetime.utcnow()})
    return get_application(application_id)


def get_application(application_id: str) -> dict | None:
    row = model.Session.execute(sa.text(
        f"select {_APPLICATION_COLUMNS} from shanghai_application a "
        "left join api_token t on t.id = a.token_id where a.id = :id"), {"id": application_id}).first()
    return _application(row) if row else None


def applications_of(user_id: str) -> list[dict]:
    return [_application(row) for row in model.Session.execute(sa.text(
        f"select {_APPLICATION_COLUMNS} from shanghai_application a "
        "left join api_token t on t.id = a.token_id where a.user_id = :user "
        "order by a.revoked is not null, a.created desc"), {"user": user_id})]


def mark_revoked(application_id: str) -> None:
    model.Session.execute(sa.text(
        "update shanghai_application set revoked = :now where id = :id and revoked is null"),
        {"id": application_id, "now": dt.datetime.utcnow()})


def _since(days: int) -> dt.date:
    return dt.date.today() - dt.timedelta(days=days - 1)


def department_usage(organization_id: str, days: int) -> dict:
    """The department's products' usage over the last ``days`` days: per
    day (API calls, downloads, distinct keys), per product and per key
    (with the application and its owner when the key is an application's)."""
    params = {"org": organization_id, "since": _since(days)}
    scope = ("from shanghai_usage u join package p on p.id = u.package_id "
             "where p.owner_org = :org and u.day >= :since")
    by_day = {row.day: row for row in model.Session.execute(sa.text(
        "select u.day, sum(u.api_calls) as api_calls, sum(u.downloads) as downloads, "
        f"count(distinct nullif(u.key_id, '')) as keys {scope} group by u.day"), params)}
    start = params["since"]
    daily = []
    for n in range(days):
        day = start + dt.timedelta(n)
        row = by_day.get(day)
        daily.append({"day": day.isoformat(), "api_calls": int(row.api_calls) if row else 0,
                      "downloads": int(row.downloads) if row else 0, "keys": int(row.keys) if row else 0})
    products = [dict(row._mapping) for row in model.Session.execute(sa.text(
        "select p.id, p.name, p.title, sum(u.api_calls)::bigint as api_calls, sum(u.downloads)::bigint as downloads, "
        f"count(distinct nullif(u.key_id, '')) as keys {scope} "
        "group by p.id, p.name, p.title order by sum(u.api_calls) + sum(u.downloads) desc"), params)]
    keys = _keys_of_department(params)
    return {"days": days, "since": start.isoformat(), "daily": daily, "products": products, "keys": keys}


def _keys_of_department(params: dict) -> list[dict]:
    rows = model.Session.execute(sa.text(
        "select u.key_id, a.name as application, a.contact, coalesce(au.name, tu.name) as owner, "
        "(a.revoked is not null) as revoked, sum(u.api_calls)::bigint as api_calls, "
        "sum(u.downloads)::bigint as downloads, count(distinct u.package_id) as products, "
        "count(distinct u.day) as days_active "
        "from shanghai_usage u join package p on p.id = u.package_id "
        "left join shanghai_application a on a.token_id = u.key_id "
        "left join \"user\" au on au.id = a.user_id "
        "left join api_token t on t.id = u.key_id left join \"user\" tu on tu.id = t.user_id "
        "where p.owner_org = :org and u.day >= :since and u.key_id <> '' "
        "group by u.key_id, a.name, a.contact, au.name, tu.name, a.revoked "
        "order by sum(u.api_calls) + sum(u.downloads) desc"), params)
    return [dict(row._mapping) for row in rows]


def product_totals(package_id: str) -> dict:
    """A product's public totals since counting began."""
    row = model.Session.execute(sa.text(
        "select coalesce(sum(api_calls), 0) as api_calls, coalesce(sum(downloads), 0) as downloads, "
        "count(distinct nullif(key_id, '')) as keys from shanghai_usage where package_id = :id"),
        {"id": package_id}).first()
    return {"api_calls": int(row.api_calls), "downloads": int(row.downloads), "keys": int(row.keys)}


def site_totals(days: int = 30) -> dict:
    """The portal's public totals: API calls (all time and per day over the
    last ``days`` days), distinct keys per day, applications registered."""
    start = _since(days)
    total = model.Session.execute(sa.text(
        "select coalesce(sum(api_calls), 0) from shanghai_usage")).scalar()
    by_day = {row.day: row for row in model.Session.execute(sa.text(
        "select day, sum(api_calls) as api_calls, count(distinct nullif(key_id, '')) as keys "
        "from shanghai_usage where day >= :since group by day"), {"since": start})}
    applications = model.Session.execute(sa.text(
        "select count(*) from shanghai_application where revoked is null")).scalar()
    daily = []
    for n in range(days):
        day = start + dt.timedelta(n)
        row = by_day.get(day)
        daily.append({"day": day.isoformat(), "api_calls": int(row.api_calls) if row else 0,
                      "keys": int(row.keys) if row else 0})
    return {"api_calls": int(total or 0), "applications": int(applications or 0), "daily": daily}

"""Webhooks of real-time products: each subscriber's address receives the
product's observations in order, as JSON POSTs signed with HMAC-SHA256 of
the timestamp and body under the subscription's secret. A failed delivery
is retried with exponential backoff from the same event, so nothing is lost
or skipped; every attempt is recorded for the subscriber to see. The
subscriber's access is checked at every delivery: a conditional product's
revoked or expired grant stops its webhooks. Addresses pass the
harvesters' rules (http(s), public addresses unless allow-listed)."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import uuid

import requests
import sqlalchemy as sa

import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.files import fetching
from ckanext.shanghai.realtime import auth, store

__all__ = ["webhook_table", "delivery_table", "signature", "create", "get", "list_for_user", "deliveries",
           "deactivate", "deliver_due", "SIGNATURE_HEADER", "TIMESTAMP_HEADER"]

SIGNATURE_HEADER = "X-Shanghai-Signature"
TIMESTAMP_HEADER = "X-Shanghai-Timestamp"
_BATCH = 500

_metadata = sa.MetaData()

webhook_table = sa.Table(
    "shanghai_realtime_webhook", _metadata,
    sa.Column("id", sa.UnicodeText, primary_key=True),
    sa.Column("resource_id", sa.UnicodeText),
    sa.Column("user_id", sa.UnicodeText),
    sa.Column("url", sa.UnicodeText),
    sa.Column("secret", sa.UnicodeText),
    sa.Column("created", sa.DateTime(timezone=True)),
    sa.Column("active", sa.Boolean),
    sa.Column("last_event_id", sa.BigInteger),
    sa.Column("failures", sa.Integer),
    sa.Column("next_attempt", sa.DateTime(timezone=True)),
)

delivery_table = sa.Table(
    "shanghai_realtime_delivery", _metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("webhook_id", sa.UnicodeText),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("first_event_id", sa.BigInteger),
    sa.Column("last_event_id", sa.BigInteger),
    sa.Column("attempt", sa.Integer),
    sa.Column("delivered", sa.Boolean),
    sa.Column("http_status", sa.Integer),
    sa.Column("error", sa.UnicodeText),
)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What the subscriber recomputes: ``sha256=`` and the hex HMAC-SHA256
    of ``timestamp + "." + body`` under its secret."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def create(product: dict, user_id: str, url: str) -> dict:
    """A new subscription, starting after the product's newest event."""
    row = {"id": str(uuid.uuid4()), "resource_id": product["resource_id"], "user_id": user_id, "url": url,
           "secret": secrets.token_urlsafe(32), "created": store.now(), "active": True,
           "last_event_id": store.events_before_now(product["resource_id"]), "failures": 0,
           "next_attempt": store.now()}
    model.Session.execute(webhook_table.insert().values(**row))
    return row


def get(webhook_id: str) -> dict | None:
    row = model.Session.execute(sa.select(webhook_table).where(webhook_table.c.id == webhook_id)).first()
    return dict(row._mapping) if row is not None else None


def list_for_user(user_id: str) -> list[dict]:
    query = sa.select(webhook_table).where(webhook_table.c.user_id == user_id).order_by(webhook_table.c.created)
    return [dict(r._mapping) for r in model.Session.execute(query)]


def deliveries(webhook_id: str, failed_only: bool, limit: int) -> list[dict]:
    query = sa.select(delivery_table).where(delivery_table.c.webhook_id == webhook_id)
    if failed_only:
        query = query.where(delivery_table.c.delivered.is_(False))
    return [dict(r._mapping) for r in model.Session.execute(query.order_by(delivery_table.c.id.desc()).limit(limit))]


def deactivate(webhook_id: str) -> None:
    model.Session.execute(webhook_table.update().where(webhook_table.c.id == webhook_id).values(active=False))


def _backoff(failures: int) -> dt.timedelta:
    base = float(tk.config.get("ckanext.shanghai.realtime.webhook_retry_seconds"))
    ceiling = float(tk.config.get("ckanext.shanghai.realtime.webhook_retry_max_seconds"))
    return dt.timedelta(seconds=min(base * 2 ** max(failures - 1, 0), ceiling))


def _post(hook: dict, product: dict, events: list[dict]) -> tuple[int | None, str | None]:
    body = json.dumps({"resource_id": product["resource_id"], "package_id": product["package_id"],
                       "events": [{"event_id": e["id"], "key": e["key"], "observed": e["observed"].isoformat(),
                                   "deleted": e["deleted"], "record": e["record"]} for e in events]},
                      ensure_ascii=False, default=str).encode("utf-8")
    timestamp = str(int(store.now().timestamp()))
    limits = fetching.configured_limits()
    try:
        fetching.check_url(hook["url"], limits)
        response = requests.post(hook["url"], data=body, allow_redirects=False,
                                 timeout=(limits.connect_timeout, limits.read_timeout),
                                 headers={"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                                          SIGNATURE_HEADER: signature(hook["secret"], timestamp, body),
                                          "X-Shanghai-Event-Ids": f"{events[0]['id']}-{events[-1]['id']}"})
    except fetching.SourceFetchError as error:
        return None, str(error)
    except requests.RequestException as error:
        return None, f"{type(error).__name__}: {error}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def deliver_due(at: dt.datetime | None = None) -> list[dict]:
    """One round: every active subscription whose next attempt is due gets
    the next events after the last it acknowledged (a 2xx). What happened,
    one entry per subscription that had something to deliver."""
    at = at or store.now()
    due = [dict(r._mapping) for r in model.Session.execute(sa.select(webhook_table).where(
        webhook_table.c.active.is_(True), webhook_table.c.next_attempt <= at).order_by(webhook_table.c.next_attempt))]
    results = []
    for hook in due:
        product = store.get_product(hook["resource_id"])
        user = model.User.get(hook["user_id"])
        if product is None or user is None or not auth.may_read({"user": user.name, "auth_user_obj": user}, product):
            deactivate(hook["id"])
            model.Session.commit()
            results.append({"webhook_id": hook["id"], "delivered": False, "error": "access-ended"})
            continue
        events = store.events_after(hook["resource_id"], hook["last_event_id"], _BATCH)
        if not events:
            continue
        status, error = _post(hook, product, events)
        attempt = hook["failures"] + 1
        delivered = error is None
        values = ({"last_event_id": events[-1]["id"], "failures": 0, "next_attempt": at} if delivered
                  else {"failures": attempt, "next_attempt": at + _backoff(attempt)})
        model.Session.execute(webhook_table.update().where(webhook_table.c.id == hook["id"]).values(**values))
        model.Session.execute(delivery_table.insert().values(
            webhook_id=hook["id"], at=at, first_event_id=events[0]["id"], last_event_id=events[-1]["id"],
            attempt=attempt, delivered=delivered, http_status=status, error=error))
        model.Session.commit()
        results.append({"webhook_id": hook["id"], "delivered": delivered, "events": len(events),
                        "http_status": status, "error": error})
    return results

"""The tables of the public desk (created by the shanghai_desk migration,
never at start-up) and the queries on them: items and their clocks, the
event trail, followers, in-site notices and the league table. The clock is
conditional access's: the same calendar, holidays and time zone."""
from __future__ import annotations

import datetime as dt
import json
import statistics
import uuid
from typing import Any

import sqlalchemy as sa

import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.access.store import calendar, local_date, local_time, local_today, now

__all__ = [
    "item", "event", "follow", "notice", "KINDS", "STATUSES", "CLOSE_REASONS", "ERROR_TYPES",
    "acknowledge_days", "answer_days", "extension_days", "create_item", "get_item", "update_item",
    "list_items", "record", "events", "filed_since", "set_following", "is_following", "followers",
    "add_notices", "notices", "unseen_notices", "mark_notices_seen", "league", "accepted_errors",
    "due_soon", "answered_on_time", "calendar", "local_date", "local_time", "local_today", "now",
]

KINDS = ("request", "error", "comment")
STATUSES = ("new", "acknowledged", "answered", "closed")
# Closing reasons of each kind, and what each one needs besides a note.
CLOSE_REASONS = {
    "request": {"released": "link", "exists": "link", "partly_released": "link", "later": "date",
                "elsewhere": "link", "not_suitable": "basis", "cannot_compile": None, "withdrawn": None},
    "error": {"corrected": None, "not_an_error": "note", "withdrawn": None},
    "comment": {"answered": None, "withdrawn": None},
}
ERROR_TYPES = ("wrong_values", "broken_link", "out_of_date", "wrong_description")

_metadata = sa.MetaData()

item = sa.Table(
    "shanghai_desk_item", _metadata,
    sa.Column("id", sa.UnicodeText, primary_key=True),
    sa.Column("kind", sa.UnicodeText),
    sa.Column("title", sa.UnicodeText),
    sa.Column("body", sa.UnicodeText),
    sa.Column("reason", sa.UnicodeText),
    sa.Column("update_frequency", sa.UnicodeText),
    sa.Column("error_type", sa.UnicodeText),
    sa.Column("package_id", sa.UnicodeText),
    sa.Column("resource_id", sa.UnicodeText),
    sa.Column("organization_id", sa.UnicodeText),
    sa.Column("user_id", sa.UnicodeText),
    sa.Column("status", sa.UnicodeText),
    sa.Column("submitted", sa.DateTime(timezone=True)),
    sa.Column("ack_deadline", sa.Date),
    sa.Column("answer_deadline", sa.Date),
    sa.Column("acknowledged", sa.DateTime(timezone=True)),
    sa.Column("first_answered", sa.DateTime(timezone=True)),
    sa.Column("extended", sa.DateTime(timezone=True)),
    sa.Column("extension_reason", sa.UnicodeText),
    sa.Column("closed", sa.DateTime(timezone=True)),
    sa.Column("close_reason", sa.UnicodeText),
    sa.Column("close_link", sa.UnicodeText),
    sa.Column("close_date", sa.Date),
    sa.Column("close_note", sa.UnicodeText),
    sa.Column("accepted", sa.DateTime(timezone=True)),
    sa.Column("reminded", sa.Date),
)

event = sa.Table(
    "shanghai_desk_event", _metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("item_id", sa.UnicodeText),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("actor_id", sa.UnicodeText),
    sa.Column("actor_name", sa.UnicodeText),
    sa.Column("action", sa.UnicodeText),
    sa.Column("organization_id", sa.UnicodeText),
    sa.Column("body", sa.UnicodeText),
    sa.Column("detail", sa.UnicodeText),
)

follow = sa.Table(
    "shanghai_desk_follow", _metadata,
    sa.Column("item_id", sa.UnicodeText, primary_key=True),
    sa.Column("user_id", sa.UnicodeText, primary_key=True),
    sa.Column("created", sa.DateTime(timezone=True)),
)

notice = sa.Table(
    "shanghai_desk_notice", _metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("user_id", sa.UnicodeText),
    sa.Column("item_id", sa.UnicodeText),
    sa.Column("event", sa.UnicodeText),
    sa.Column("created", sa.DateTime(timezone=True)),
    sa.Column("seen", sa.Boolean),
)


def acknowledge_days() -> int:
    return int(tk.config.get("ckanext.shanghai.desk.acknowledge_working_days"))


def answer_days() -> int:
    return int(tk.config.get("ckanext.shanghai.desk.answer_working_days"))


def extension_days() -> int:
    return int(tk.config.get("ckanext.shanghai.desk.extension_working_days"))


def _row(row) -> dict[str, Any] | None:
    return dict(row._mapping) if row is not None else None


# --------------------------------------------------------------------------
# Items


def create_item(**fields) -> dict[str, Any]:
    """A new item on the clock: acknowledge and answer deadlines counted in
    working days after the day it arrives (city time)."""
    submitted = now()
    day, clock = local_date(submitted), calendar()
    row = dict(fields, id=str(uuid.uuid4()), status="new", submitted=submitted,
               ack_deadline=clock.add_working_days(day, acknowledge_days()),
               answer_deadline=clock.add_working_days(day, answer_days()))
    model.Session.execute(item.insert().values(**row))
    return row


def get_item(item_id: str) -> dict[str, Any] | None:
    return _row(model.Session.execute(sa.select(item).where(item.c.id == item_id)).first())


def update_item(item_id: str, expected: tuple[str, ...], **fields) -> dict[str, Any] | None:
    """Change an item only if its status is still one of ``expected`` (two
    people acting at once: the second finds it changed); the new row or None."""
    result = model.Session.execute(
        item.update().where(item.c.id == item_id, item.c.status.in_(expected))
        .values(**fields).returning(*item.c))
    return _row(result.first())


def list_items(*, item_id: str | None = None, kind: str | None = None, status: str | None = None,
               organization_ids: list[str] | None = None, unassigned: bool = False,
               package_id: str | None = None, user_id: str | None = None, open_only: bool = False,
               q: str | None = None, limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Items (newest first) with the product's and department's names and
    the filer's display name; and how many match."""
    where = []
    if item_id is not None:
        where.append(item.c.id == item_id)
    if kind:
        where.append(item.c.kind == kind)
    if status:
        where.append(item.c.status == status)
    if open_only:
        where.append(item.c.status != "closed")
    if organization_ids is not None:
        scope = item.c.organization_id.in_(organization_ids)
        where.append(sa.or_(scope, item.c.organization_id.is_(None)) if unassigned else scope)
    if package_id:
        where.append(item.c.package_id == package_id)
    if user_id:
        where.append(item.c.user_id == user_id)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(sa.or_(item.c.title.ilike(pattern), item.c.body.ilike(pattern)))
    package, group, user = model.package_table, model.group_table, model.user_table
    query = (sa.select(item, package.c.name.label("package_name"), package.c.title.label("package_title"),
                       package.c.private.label("package_private"), group.c.name.label("organization_name"), group.c.title.label("organization_title"),
                       user.c.name.label("user_name"), user.c.fullname.label("user_fullname"))
             .select_from(item.join(package, package.c.id == item.c.package_id, isouter=True)
                          .join(group, group.c.id == item.c.organization_id, isouter=True)
                          .join(user, user.c.id == item.c.user_id, isouter=True))
             .where(*where).order_by(item.c.submitted.desc(), item.c.id).limit(limit).offset(offset))
    count = model.Session.execute(sa.select(sa.func.count()).select_from(item).where(*where)).scalar()
    return int(count or 0), [dict(r._mapping) for r in model.Session.execute(query)]


def filed_since(user_id: str, since: dt.datetime) -> int:
    return int(model.Session.execute(sa.select(sa.func.count()).select_from(item).where(
        item.c.user_id == user_id, item.c.submitted >= since)).scalar() or 0)


def answered_on_time(row: dict[str, Any]) -> bool | None:
    """Whether the first answer came by the answer deadline (None: not yet)."""
    if row.get("first_answered") is None:
        return None
    return local_date(row["first_answered"]) <= row["answer_deadline"]


def due_soon(within_days: int) -> list[dict[str, Any]]:
    """Unanswered items whose acknowledge or answer deadline is at most
    ``within_days`` working days away (or past), not yet reminded today."""
    today, clock = local_today(), calendar()
    horizon = clock.add_working_days(today, within_days)
    rows = model.Session.execute(sa.select(item).where(
        item.c.status != "closed", item.c.first_answered.is_(None), item.c.organization_id.isnot(None),
        sa.or_(item.c.reminded.is_(None), item.c.reminded < today),
        sa.or_(sa.and_(item.c.acknowledged.is_(None), item.c.ack_deadline <= horizon),
               item.c.answer_deadline <= horizon)))
    return [dict(r._mapping) for r in rows]


# --------------------------------------------------------------------------
# Events: the thread the public reads and the audit trail, in one


def record(item_id: str, action: str, *, actor: model.User | None, organization_id: str | None = None,
           body: str | None = None, detail: dict | None = None) -> None:
    """One event, in the caller's transaction."""
    model.Session.execute(event.insert().values(
        item_id=item_id, at=now(), actor_id=getattr(actor, "id", None), actor_name=getattr(actor, "name", None),
        action=action, organization_id=organization_id, body=body,
        detail=json.dumps(detail, ensure_ascii=False, default=str) if detail else None))


def events(item_id: str, limit: int = 500) -> list[dict[str, Any]]:
    group = model.group_table
    query = (sa.select(event, group.c.title.label("organization_title"))
             .select_from(event.join(group, group.c.id == event.c.organization_id, isouter=True))
             .where(event.c.item_id == item_id).order_by(event.c.at, event.c.id).limit(limit))
    out = []
    for row in model.Session.execute(query):
        entry = dict(row._mapping)
        entry["detail"] = json.loads(entry["detail"]) if entry["detail"] else {}
        out.append(entry)
    return out


# --------------------------------------------------------------------------
# Followers and in-site notices


def set_following(item_id: str, user_id: str, following: bool) -> None:
    if following:
        model.Session.execute(sa.text(
            "insert into shanghai_desk_follow (item_id, user_id, created) values (:item, :user, now()) "
            "on conflict do nothing"), {"item": item_id, "user": user_id})
    else:
        model.Session.execute(follow.delete().where(follow.c.item_id == item_id, follow.c.user_id == user_id))


def is_following(item_id: str, user_id: str) -> bool:
    return model.Session.execute(sa.select(follow.c.user_id).where(
        follow.c.item_id == item_id, follow.c.user_id == user_id)).first() is not None


def followers(item_id: str) -> list[str]:
    return [r[0] for r in model.Session.execute(sa.select(follow.c.user_id).where(follow.c.item_id == item_id))]


def add_notices(user_ids: list[str], item_id: str, event_name: str) -> None:
    for user_id in dict.fromkeys(user_ids):
        model.Session.execute(notice.insert().values(user_id=user_id, item_id=item_id, event=event_name,
                                                     created=now(), seen=False))


def notices(user_id: str, limit: int = 100) -> list[dict[str, Any]]:
    query = (sa.select(notice, item.c.title, item.c.kind)
             .select_from(notice.join(item, item.c.id == notice.c.item_id))
             .where(notice.c.user_id == user_id).order_by(notice.c.created.desc(), notice.c.id.desc())
             .limit(limit))
    return [dict(r._mapping) for r in model.Session.execute(query)]


def unseen_notices(user_id: str) -> int:
    return int(model.Session.execute(sa.select(sa.func.count()).select_from(notice).where(
        notice.c.user_id == user_id, notice.c.seen.is_(False))).scalar() or 0)


def mark_notices_seen(user_id: str) -> None:
    model.Session.execute(notice.update().where(notice.c.user_id == user_id, notice.c.seen.is_(False))
                          .values(seen=True))


# --------------------------------------------------------------------------
# Error reports on the product page


def accepted_errors(package_id: str, metadata_modified: dt.datetime | None) -> list[dict[str, Any]]:
    """Error reports a department accepted on the product since it last
    changed: a harvest (or an edit) that changes the product after the
    acceptance takes them off the page."""
    where = [item.c.package_id == package_id, item.c.kind == "error", item.c.accepted.isnot(None),
             sa.or_(item.c.close_reason.is_(None), item.c.close_reason != "withdrawn")]
    if metadata_modified is not None:
        if metadata_modified.tzinfo is None:  # CKAN stores naive UTC
            metadata_modified = metadata_modified.replace(tzinfo=dt.timezone.utc)
        where.append(item.c.accepted >= metadata_modified)
    return [dict(r._mapping) for r in model.Session.execute(
        sa.select(item).where(*where).order_by(item.c.accepted.desc()))]


# --------------------------------------------------------------------------
# The league table


def league(organization_id: str | None = None) -> list[dict[str, Any]]:
    """Per department (that has items): requests, error reports, comments,
    the median working days from arrival to first answer, the share of due
    items answered by their deadline, and requests resolved by releasing
    data. Withdrawn items that were never answered are not due."""
    today, clock = local_today(), calendar()
    group = model.group_table
    where = [item.c.organization_id.isnot(None)]
    if organization_id:
        where.append(item.c.organization_id == organization_id)
    rows = model.Session.execute(
        sa.select(item.c.organization_id, group.c.name, group.c.title, item.c.kind, item.c.submitted,
                  item.c.first_answered, item.c.answer_deadline, item.c.close_reason)
        .select_from(item.join(group, group.c.id == item.c.organization_id)).where(*where))
    table: dict[str, dict[str, Any]] = {}
    days: dict[str, list[int]] = {}
    for org_id, name, title, kind, submitted, answered, deadline, reason in rows:
        entry = table.setdefault(org_id, {
            "organization_id": org_id, "organization_name": name, "organization_title": title,
            "requests": 0, "errors": 0, "comments": 0, "answered": 0, "answered_on_time": 0,
            "overdue_open": 0, "released": 0})
        entry[{"request": "requests", "error": "errors", "comment": "comments"}[kind]] += 1
        if answered is not None:
            entry["answered"] += 1
            entry["answered_on_time"] += local_date(answered) <= deadline
            days.setdefault(org_id, []).append(clock.working_days_between(local_date(submitted),
                                                                          local_date(answered)))
        elif reason != "withdrawn" and deadline < today:
            entry["overdue_open"] += 1
        if kind == "request" and reason in ("released", "partly_released"):
            entry["released"] += 1
    out = []
    for org_id, entry in table.items():
        due = entry["answered"] + entry["overdue_open"]
        entry["due"] = due
        entry["on_time_share"] = round(entry["answered_on_time"] / due, 4) if due else None
        entry["median_working_days"] = statistics.median(days[org_id]) if org_id in days else None
        entry["items"] = entry["requests"] + entry["errors"] + entry["comments"]
        out.append(entry)
    out.sort(key=lambda e: (-(e["on_time_share"] if e["on_time_share"] is not None else -1),
                            e["median_working_days"] if e["median_working_days"] is not None else 1e9,
                            e["organization_title"] or ""))
    return out

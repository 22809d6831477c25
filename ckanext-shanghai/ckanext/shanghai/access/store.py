"""The tables of conditional access (created by the shanghai_access
migration, never at start-up) and the queries on them: agreements, access
requests with their grants, the audit trail and the on-time figures."""
from __future__ import annotations

import datetime as dt
import json
import uuid
import zoneinfo
from typing import Any, Iterator

import sqlalchemy as sa

import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.access.workdays import Calendar, parse_dates

__all__ = [
    "agreement", "access_request", "audit", "calendar", "local_today", "now", "current_agreement",
    "agreement_versions", "publish_agreement", "create_request", "get_request", "list_requests",
    "update_request", "active_grant", "record", "audit_rows", "on_time", "deadline_limit", "local_date",
    "local_time", "get_agreement", "unseen_decisions", "mark_seen", "answered_on_time", "grant_is_active",
]

_metadata = sa.MetaData()

agreement = sa.Table(
    "shanghai_agreement", _metadata,
    sa.Column("id", sa.UnicodeText, primary_key=True),
    sa.Column("organization_id", sa.UnicodeText),
    sa.Column("version", sa.Integer),
    sa.Column("text_zh", sa.UnicodeText),
    sa.Column("text_en", sa.UnicodeText),
    sa.Column("created", sa.DateTime(timezone=True)),
    sa.Column("created_by", sa.UnicodeText),
)

access_request = sa.Table(
    "shanghai_access_request", _metadata,
    sa.Column("id", sa.UnicodeText, primary_key=True),
    sa.Column("package_id", sa.UnicodeText),
    sa.Column("organization_id", sa.UnicodeText),
    sa.Column("user_id", sa.UnicodeText),
    sa.Column("purpose", sa.UnicodeText),
    sa.Column("intended_use", sa.UnicodeText),
    sa.Column("applicant_org", sa.UnicodeText),
    sa.Column("period_end", sa.Date),
    sa.Column("agreement_id", sa.UnicodeText),
    sa.Column("status", sa.UnicodeText),
    sa.Column("submitted", sa.DateTime(timezone=True)),
    sa.Column("deadline", sa.Date),
    sa.Column("decided", sa.DateTime(timezone=True)),
    sa.Column("decided_by", sa.UnicodeText),
    sa.Column("decision_reason", sa.UnicodeText),
    sa.Column("expires", sa.Date),
    sa.Column("revoked", sa.DateTime(timezone=True)),
    sa.Column("revoked_by", sa.UnicodeText),
    sa.Column("revoke_reason", sa.UnicodeText),
    sa.Column("unseen", sa.Boolean),
)

audit = sa.Table(
    "shanghai_access_audit", _metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("actor_id", sa.UnicodeText),
    sa.Column("actor_name", sa.UnicodeText),
    sa.Column("action", sa.UnicodeText),
    sa.Column("organization_id", sa.UnicodeText),
    sa.Column("package_id", sa.UnicodeText),
    sa.Column("resource_id", sa.UnicodeText),
    sa.Column("request_id", sa.UnicodeText),
    sa.Column("detail", sa.UnicodeText),
)


# --------------------------------------------------------------------------
# Time: the city's calendar in the city's time zone


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(tk.config.get("ckanext.shanghai.access.timezone"))


def local_today() -> dt.date:
    return now().astimezone(_zone()).date()


def local_date(moment: dt.datetime) -> dt.date:
    return moment.astimezone(_zone()).date()


def local_time(moment: dt.datetime) -> dt.datetime:
    """A stored (UTC) moment on the city's clock, as people read it."""
    return moment.astimezone(_zone())


def calendar() -> Calendar:
    return Calendar(holidays=parse_dates(tk.config.get("ckanext.shanghai.access.holidays")),
                    extra_workdays=parse_dates(tk.config.get("ckanext.shanghai.access.extra_workdays")))


def deadline_limit() -> int:
    return int(tk.config.get("ckanext.shanghai.access.deadline_working_days"))


# --------------------------------------------------------------------------
# Agreements


def _row(row) -> dict[str, Any] | None:
    return dict(row._mapping) if row is not None else None


def current_agreement(organization_id: str) -> dict[str, Any]:
    """The department's latest agreement, or the city's latest standard one."""
    query = sa.select(agreement).where(
        sa.or_(agreement.c.organization_id == organization_id, agreement.c.organization_id.is_(None))
    ).order_by(agreement.c.organization_id.is_(None), agreement.c.version.desc()).limit(1)
    row = _row(model.Session.execute(query).first())
    if row is None:
        raise tk.ObjectNotFound("没有数据使用协议，请先执行数据库迁移 / No data use agreement: "
                                "run the database migration (ckan db upgrade -p shanghai_access)")
    return row


def agreement_versions(organization_id: str) -> list[dict[str, Any]]:
    query = sa.select(agreement).where(agreement.c.organization_id == organization_id) \
        .order_by(agreement.c.version.desc())
    return [dict(r._mapping) for r in model.Session.execute(query)]


def get_agreement(agreement_id: str) -> dict[str, Any] | None:
    return _row(model.Session.execute(sa.select(agreement).where(agreement.c.id == agreement_id)).first())


def publish_agreement(organization_id: str, text_zh: str, text_en: str, user_id: str) -> dict[str, Any]:
    """A new version of the department's agreement; earlier versions stay,
    so every application keeps the text its applicant accepted."""
    # Two admins publishing at once: the unique (organization, version) key
    # makes the second fail rather than share a number; a lock avoids even that.
    model.Session.execute(sa.text("select pg_advisory_xact_lock(hashtext(:key))"),
                          {"key": f"shanghai_agreement:{organization_id}"})
    latest = model.Session.execute(sa.select(sa.func.max(agreement.c.version)).where(
        agreement.c.organization_id == organization_id)).scalar() or 0
    row = {"id": str(uuid.uuid4()), "organization_id": organization_id, "version": latest + 1,
           "text_zh": text_zh, "text_en": text_en, "created": now(), "created_by": user_id}
    model.Session.execute(agreement.insert().values(**row))
    return row


# --------------------------------------------------------------------------
# Requests and grants


def create_request(**fields) -> dict[str, Any]:
    submitted = now()
    row = dict(fields, id=str(uuid.uuid4()), status="pending", submitted=submitted,
               deadline=calendar().add_working_days(local_date(submitted), deadline_limit()), unseen=False)
    model.Session.execute(access_request.insert().values(**row))
    return row


def get_request(request_id: str) -> dict[str, Any] | None:
    return _row(model.Session.execute(
        sa.select(access_request).where(access_request.c.id == request_id)).first())


def update_request(request_id: str, expected_status: str, **fields) -> dict[str, Any] | None:
    """Change a request only if it is still in ``expected_status`` (two
    admins deciding at once: the second finds it decided); returns the new
    row or None."""
    result = model.Session.execute(
        access_request.update().where(access_request.c.id == request_id,
                                      access_request.c.status == expected_status)
        .values(**fields).returning(*access_request.c))
    return _row(result.first())


def list_requests(*, user_id: str | None = None, organization_ids: list[str] | None = None,
                  package_id: str | None = None, status: str | None = None, request_id: str | None = None,
                  limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Requests (newest first) with the product's name and title, the
    department's title and the applicant's name; and how many match."""
    where = []
    if user_id is not None:
        where.append(access_request.c.user_id == user_id)
    if organization_ids is not None:
        where.append(access_request.c.organization_id.in_(organization_ids))
    if package_id is not None:
        where.append(access_request.c.package_id == package_id)
    if status:
        where.append(access_request.c.status == status)
    if request_id is not None:
        where.append(access_request.c.id == request_id)
    package, group, user = model.package_table, model.group_table, model.user_table
    query = (sa.select(access_request, package.c.name.label("package_name"),
                       package.c.title.label("package_title"), group.c.title.label("organization_title"),
                       user.c.name.label("user_name"), user.c.fullname.label("user_fullname"))
             .select_from(access_request
                          .join(package, package.c.id == access_request.c.package_id, isouter=True)
                          .join(group, group.c.id == access_request.c.organization_id, isouter=True)
                          .join(user, user.c.id == access_request.c.user_id, isouter=True))
             .where(*where).order_by(access_request.c.submitted.desc()).limit(limit).offset(offset))
    count = model.Session.execute(sa.select(sa.func.count()).select_from(access_request).where(*where)).scalar()
    return int(count or 0), [dict(r._mapping) for r in model.Session.execute(query)]


def answered_on_time(decided: dt.datetime, deadline: dt.date) -> bool:
    return local_date(decided) <= deadline


def grant_is_active(row: dict[str, Any], today: dt.date) -> bool:
    """The rule active_grant applies in SQL, for a request already loaded."""
    return (row["status"] == "approved" and row.get("revoked") is None
            and row.get("expires") is not None and row["expires"] >= today)


def active_grant(user_id: str, package_id: str) -> dict[str, Any] | None:
    """The user's approved, unrevoked grant on the product that has not yet
    expired (a grant runs to the end of its expiry day, city time)."""
    query = sa.select(access_request).where(
        access_request.c.user_id == user_id, access_request.c.package_id == package_id,
        access_request.c.status == "approved", access_request.c.revoked.is_(None),
        access_request.c.expires >= local_today(),
    ).order_by(access_request.c.expires.desc()).limit(1)
    return _row(model.Session.execute(query).first())


def unseen_decisions(user_id: str) -> int:
    return int(model.Session.execute(sa.select(sa.func.count()).select_from(access_request).where(
        access_request.c.user_id == user_id, access_request.c.unseen.is_(True))).scalar() or 0)


def mark_seen(user_id: str) -> None:
    model.Session.execute(access_request.update().where(
        access_request.c.user_id == user_id, access_request.c.unseen.is_(True)).values(unseen=False))


# --------------------------------------------------------------------------
# Audit


def record(action: str, *, actor: model.User | None, organization_id: str | None = None,
           package_id: str | None = None, resource_id: str | None = None,
           request_id: str | None = None, detail: dict | None = None) -> None:
    """One line of the audit trail, in the caller's transaction."""
    model.Session.execute(audit.insert().values(
        at=now(), actor_id=getattr(actor, "id", None), actor_name=getattr(actor, "name", None),
        action=action, organization_id=organization_id, package_id=package_id,
        resource_id=resource_id, request_id=request_id,
        detail=json.dumps(detail, ensure_ascii=False, default=str) if detail else None))


def audit_rows(*, organization_ids: list[str] | None = None, package_id: str | None = None,
               request_id: str | None = None, action: str | None = None,
               limit: int | None = 100, offset: int = 0) -> Iterator[dict[str, Any]]:
    where = []
    if organization_ids is not None:
        where.append(audit.c.organization_id.in_(organization_ids))
    if package_id:
        where.append(audit.c.package_id == package_id)
    if request_id:
        where.append(audit.c.request_id == request_id)
    if action:
        where.append(audit.c.action == action)
    package = model.package_table
    query = (sa.select(audit, package.c.name.label("package_name"), package.c.title.label("package_title"))
             .select_from(audit.join(package, package.c.id == audit.c.package_id, isouter=True))
             .where(*where).order_by(audit.c.at.desc(), audit.c.id.desc()).offset(offset))
    if limit is not None:
        query = query.limit(limit)
    for row in model.Session.execute(query.execution_options(yield_per=1000)):
        item = dict(row._mapping)
        item["detail"] = json.loads(item["detail"]) if item["detail"] else {}
        item["at"] = local_time(item["at"])
        yield item


# --------------------------------------------------------------------------
# Answered on time


def on_time(organization_id: str | None = None) -> dict[str, Any]:
    """Of the applications that are due (answered, or still open past their
    deadline), how many were answered by the deadline. A withdrawn one
    counts only if it was answered before its applicant withdrew it."""
    today = local_today()
    where = [access_request.c.status != "withdrawn"]
    if organization_id:
        where.append(access_request.c.organization_id == organization_id)
    rows = model.Session.execute(sa.select(
        access_request.c.status, access_request.c.decided, access_request.c.deadline).where(*where))
    answered = in_time = overdue_open = pending = 0
    for status, decided, deadline in rows:
        if decided is None:
            pending += 1
            overdue_open += deadline < today
            continue
        answered += 1
        in_time += answered_on_time(decided, deadline)
    due = answered + overdue_open
    return {"answered": answered, "answered_on_time": in_time, "pending": pending,
            "overdue_open": overdue_open, "due": due,
            "on_time_share": round(in_time / due, 4) if due else None,
            "deadline_working_days": deadline_limit()}

"""Template helpers of the public desk: the header's desk link and notice
count, the labels of kinds, states and reasons, the product page's
accepted error reports and the league table."""
from __future__ import annotations

import datetime as dt

import ckan.model as model
from ckan.common import current_user

from ckanext.shanghai.desk import auth, store
from ckanext.shanghai.desk.labels import LABELS

__all__ = ["sh_desk_unseen", "sh_desk_works_desk", "sh_desk_label", "sh_desk_accepted_errors",
           "sh_desk_league", "sh_desk_close_reasons", "sh_desk_departments", "sh_desk_message_text"]


def _english() -> bool:
    from ckanext.shanghai.portal.helpers import sh_is_english

    return sh_is_english()


def sh_desk_label(group: str, code: str | None) -> str:
    """The label of a kind, state, reason, error type, step or frequency in
    the page's language (the code itself if unknown)."""
    if not code:
        return ""
    pair = LABELS.get(group, {}).get(code)
    if pair is None:
        return code
    return pair[1] if _english() else pair[0]


def sh_desk_close_reasons(kind: str) -> list[tuple[str, str, str | None]]:
    """(code, label, what it needs) of the reasons a department closes with."""
    return [(code, sh_desk_label("close_reason", code), needs)
            for code, needs in store.CLOSE_REASONS.get(kind, {}).items() if code != "withdrawn"]


def sh_desk_message_text(message) -> str:
    """An error of a desk action in the page's language."""
    inner = getattr(message, "message", None)
    if inner is not None:
        return inner.en if _english() else inner.zh
    return str(message)


def sh_desk_unseen() -> int:
    if not current_user.is_authenticated:
        return 0
    try:
        return store.unseen_notices(current_user.id)
    except Exception:  # before the migration: the header still renders
        model.Session.rollback()
        return 0


def sh_desk_works_desk() -> bool:
    if not current_user.is_authenticated:
        return False
    user = model.User.get(current_user.id)
    return user is not None and (user.sysadmin or bool(auth.desks_of(user)))


def sh_desk_accepted_errors(pkg: dict) -> list[dict]:
    """Accepted error reports on the product since it last changed."""
    modified = pkg.get("metadata_modified")
    if isinstance(modified, str):
        modified = dt.datetime.fromisoformat(modified)
    try:
        return store.accepted_errors(pkg["id"], modified)
    except Exception:  # before the migration: the product page still renders
        model.Session.rollback()
        return []


def sh_desk_league(organization_id: str | None = None) -> list[dict]:
    try:
        return store.league(organization_id)
    except Exception:  # before the migration
        model.Session.rollback()
        return []


def sh_desk_departments() -> list[tuple[str, str]]:
    """(id, title) of every active department, for the forms."""
    rows = model.Session.query(model.Group.id, model.Group.title, model.Group.name).filter(
        model.Group.is_organization.is_(True), model.Group.state == "active").order_by(model.Group.title)
    return [(gid, title or name) for gid, title, name in rows]

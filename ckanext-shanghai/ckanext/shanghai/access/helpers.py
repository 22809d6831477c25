"""Template helpers of conditional access: the product page's panel and the
header's count of decisions the user has not yet seen."""
from __future__ import annotations

import ckan.model as model
from ckan.common import current_user

from ckanext.shanghai.access import policy, store
from ckanext.shanghai.access.actions import request_dict

__all__ = ["sh_access_panel", "sh_access_unseen", "sh_access_is_admin"]


def sh_access_panel(pkg: dict) -> dict | None:
    """For a conditional product: whether the viewer has its data and why,
    their active grant or open request. None for other products."""
    if not policy.is_conditional(pkg):
        return None
    user = model.User.get(current_user.id) if current_user.is_authenticated else None
    level = policy.access_level(user, pkg["id"], pkg.get("owner_org"))
    panel = {"level": level, "signed_in": user is not None, "grant": None, "pending": None,
             "agreement": store.current_agreement(pkg["owner_org"]) if pkg.get("owner_org") else None}
    if user is not None:
        panel["grant"] = store.active_grant(user.id, pkg["id"])
        _, pending = store.list_requests(user_id=user.id, package_id=pkg["id"], status="pending", limit=1)
        panel["pending"] = request_dict(pending[0]) if pending else None
    return panel


def sh_access_unseen() -> int:
    if not current_user.is_authenticated:
        return 0
    try:
        return store.unseen_decisions(current_user.id)
    except Exception:  # before the migration: the header still renders
        model.Session.rollback()
        return 0


def sh_access_is_admin() -> bool:
    """Whether the signed-in user administers any department (or is a sysadmin)."""
    if not current_user.is_authenticated:
        return False
    user = model.User.get(current_user.id)
    return bool(user.sysadmin or user.get_groups("organization", "admin"))

"""Auth functions of the public desk.

Who may do what: any signed-in user files a request, error report or
comment, follows items and reads their own notices; anyone reads items, their
answers and the league table; a department's editors and admins (and
sysadmins) work its desk: acknowledge, answer, extend, transfer, accept an
error report, close and reopen; items filed with no department are
sysadmins' to pass on; the filer withdraws or reopens their own item."""
from __future__ import annotations

import ckan.authz as authz
import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.access.policy import user_of
from ckanext.shanghai.desk import store

__all__ = [
    "shanghai_desk_item_create", "shanghai_desk_item_show", "shanghai_desk_item_list",
    "shanghai_desk_item_acknowledge", "shanghai_desk_item_answer", "shanghai_desk_item_extend",
    "shanghai_desk_item_transfer", "shanghai_desk_item_accept", "shanghai_desk_item_close",
    "shanghai_desk_item_reopen", "shanghai_desk_item_withdraw", "shanghai_desk_item_follow",
    "shanghai_desk_notice_list", "shanghai_desk_league",
]

_SIGN_IN = {"success": False, "msg": "请先登录 / Please sign in"}
DESK_ROLES = ("editor", "admin")


def works_desk_of(user: model.User | None, organization_id: str | None) -> bool:
    """A sysadmin, or an editor or admin of the department (no department:
    sysadmins only)."""
    if user is None or user.state != "active":
        return False
    if user.sysadmin:
        return True
    if organization_id is None:
        return False
    return authz.users_role_for_group_or_org(organization_id, user.name) in DESK_ROLES


def desks_of(user: model.User) -> list[str] | None:
    """Ids of the departments whose desk ``user`` works; None means all."""
    if user.sysadmin:
        return None
    return sorted({group.id for role in DESK_ROLES for group in user.get_groups("organization", role)})


def _item(data_dict: dict) -> dict | None:
    return store.get_item(str(data_dict.get("id") or ""))


def shanghai_desk_item_create(context, data_dict):
    if user_of(context) is None:
        return _SIGN_IN
    return {"success": True}


@tk.auth_allow_anonymous_access
def shanghai_desk_item_show(context, data_dict):
    return {"success": True}


@tk.auth_allow_anonymous_access
def shanghai_desk_item_list(context, data_dict):
    scope = data_dict.get("scope") or "public"
    if scope == "public":
        return {"success": True}
    user = user_of(context)
    if user is None:
        return _SIGN_IN
    if scope == "desk" and not user.sysadmin and not desks_of(user):
        return {"success": False, "msg": "只有部门的编辑和管理员可以进入受理台 / "
                                         "Only a department's editors and admins work its desk"}
    return {"success": True}


def _desk(context, data_dict, zh: str, en: str):
    user, row = user_of(context), _item(data_dict)
    if user is None:
        return _SIGN_IN
    if row is not None and works_desk_of(user, row["organization_id"]):
        return {"success": True}
    return {"success": False, "msg": f"{zh} / {en}"}


def shanghai_desk_item_acknowledge(context, data_dict):
    return _desk(context, data_dict, "只有受理部门的编辑和管理员可以确认受理",
                 "Only the department's editors and admins may acknowledge this item")


def shanghai_desk_item_answer(context, data_dict):
    return _desk(context, data_dict, "只有受理部门的编辑和管理员可以答复",
                 "Only the department's editors and admins may answer this item")


def shanghai_desk_item_extend(context, data_dict):
    return _desk(context, data_dict, "只有受理部门的编辑和管理员可以延期",
                 "Only the department's editors and admins may extend this item's deadline")


def shanghai_desk_item_transfer(context, data_dict):
    return _desk(context, data_dict, "只有受理部门的编辑和管理员可以转办",
                 "Only the department's editors and admins may transfer this item")


def shanghai_desk_item_accept(context, data_dict):
    return _desk(context, data_dict, "只有受理部门的编辑和管理员可以确认纠错",
                 "Only the department's editors and admins may accept this error report")


def shanghai_desk_item_close(context, data_dict):
    return _desk(context, data_dict, "只有受理部门的编辑和管理员可以办结",
                 "Only the department's editors and admins may close this item")


def shanghai_desk_item_reopen(context, data_dict):
    user, row = user_of(context), _item(data_dict)
    if user is None:
        return _SIGN_IN
    if row is not None and (row["user_id"] == user.id or works_desk_of(user, row["organization_id"])):
        return {"success": True}
    return {"success": False, "msg": "只有提出人和受理部门可以重新打开 / "
                                     "Only the filer and the department may reopen this item"}


def shanghai_desk_item_withdraw(context, data_dict):
    user, row = user_of(context), _item(data_dict)
    if user is None:
        return _SIGN_IN
    if row is not None and row["user_id"] == user.id:
        return {"success": True}
    return {"success": False, "msg": "只有提出人可以撤回 / Only the filer may withdraw this item"}


def shanghai_desk_item_follow(context, data_dict):
    if user_of(context) is None:
        return _SIGN_IN
    return {"success": True}


def shanghai_desk_notice_list(context, data_dict):
    if user_of(context) is None:
        return _SIGN_IN
    return {"success": True}


@tk.auth_allow_anonymous_access
def shanghai_desk_league(context, data_dict):
    return {"success": True}

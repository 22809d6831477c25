"""Who may do what with developer keys: any signed-in person registers
applications and lists and revokes their own (sysadmins any); a
department's admins (and sysadmins) see its usage; totals are public."""
from __future__ import annotations

import ckan.authz as authz
import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.keys import store

__all__ = ["shanghai_application_create", "shanghai_application_list", "shanghai_application_revoke",
           "shanghai_usage_show", "shanghai_usage_totals"]

_SIGN_IN = {"success": False, "msg": "请先登录 / Please sign in"}


def _user(context) -> model.User | None:
    return model.User.get(context.get("user") or "") if context.get("user") else None


def shanghai_application_create(context, data_dict):
    return {"success": True} if _user(context) else _SIGN_IN


def shanghai_application_list(context, data_dict):
    return {"success": True} if _user(context) else _SIGN_IN


def shanghai_application_revoke(context, data_dict):
    user = _user(context)
    if user is None:
        return _SIGN_IN
    application = store.get_application(str(data_dict.get("id") or ""))
    if user.sysadmin or application is None or application["user_id"] == user.id:
        return {"success": True}
    return {"success": False, "msg": "只能撤销自己的应用 / Only your own applications"}


def shanghai_usage_show(context, data_dict):
    user = _user(context)
    if user is None:
        return _SIGN_IN
    group = model.Group.get(str(data_dict.get("id") or ""))
    if user.sysadmin or (group is not None and authz.users_role_for_group_or_org(group.id, user.name) == "admin"):
        return {"success": True}
    return {"success": False, "msg": "仅限该部门管理员 / Only the department's admins"}


@tk.auth_allow_anonymous_access
def shanghai_usage_totals(context, data_dict):
    return {"success": True}

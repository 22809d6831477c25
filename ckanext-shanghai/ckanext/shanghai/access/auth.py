"""Auth functions of conditional access, and the checks it adds to the
DataStore's: a conditional product's rows only for those who may have its
data.

Who may do what: any signed-in user applies and sees their own requests;
the owning department's admins (and sysadmins) see its queue, decide,
revoke, publish its agreement and read its audit trail; its editors and
members may use its data but do not decide. Agreements and the on-time
figures are public."""
from __future__ import annotations

import ckan.authz as authz
import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.access import policy, store

__all__ = [
    "shanghai_access_request_create", "shanghai_access_request_show", "shanghai_access_request_list",
    "shanghai_access_request_decide", "shanghai_access_grant_revoke", "shanghai_access_request_withdraw",
    "shanghai_access_agreement_show", "shanghai_access_agreement_publish", "shanghai_access_audit_list",
    "shanghai_access_statistics", "datastore_search", "datastore_info", "datastore_search_sql",
    "activity_diff",
]

_SIGN_IN = {"success": False, "msg": "请先登录 / Please sign in"}


def _is_admin_of(user: model.User | None, organization_id: str | None) -> bool:
    if user is None or organization_id is None:
        return False
    return user.sysadmin or authz.users_role_for_group_or_org(organization_id, user.name) == "admin"


def _request(data_dict: dict) -> dict | None:
    return store.get_request(str(data_dict.get("id") or ""))


def shanghai_access_request_create(context, data_dict):
    if policy.user_of(context) is None:
        return _SIGN_IN
    return {"success": True}


def shanghai_access_request_show(context, data_dict):
    user, row = policy.user_of(context), _request(data_dict)
    if user is None:
        return _SIGN_IN
    if row is not None and (row["user_id"] == user.id or _is_admin_of(user, row["organization_id"])):
        return {"success": True}
    return {"success": False, "msg": "只有申请人和数据提供部门的管理员可以查看该申请 / "
                                     "Only the applicant and the department's admins may see this request"}


def shanghai_access_request_list(context, data_dict):
    user = policy.user_of(context)
    if user is None:
        return _SIGN_IN
    if (data_dict.get("scope") or "mine") == "queue" and not user.sysadmin \
            and not user.get_groups("organization", "admin"):
        return {"success": False, "msg": "只有部门管理员可以查看待审核申请 / "
                                         "Only department admins may see the request queue"}
    return {"success": True}


def _admin_of_request(context, data_dict, zh: str, en: str):
    user, row = policy.user_of(context), _request(data_dict)
    if user is None:
        return _SIGN_IN
    if row is not None and _is_admin_of(user, row["organization_id"]):
        return {"success": True}
    return {"success": False, "msg": f"{zh} / {en}"}


def shanghai_access_request_decide(context, data_dict):
    return _admin_of_request(context, data_dict, "只有数据提供部门的管理员可以审核该申请",
                             "Only the data product's department admins may decide this request")


def shanghai_access_grant_revoke(context, data_dict):
    return _admin_of_request(context, data_dict, "只有数据提供部门的管理员可以撤销授权",
                             "Only the data product's department admins may revoke access")


def shanghai_access_request_withdraw(context, data_dict):
    user, row = policy.user_of(context), _request(data_dict)
    if user is None:
        return _SIGN_IN
    if row is not None and row["user_id"] == user.id:
        return {"success": True}
    return {"success": False, "msg": "只有申请人可以撤回申请 / Only the applicant may withdraw a request"}


@tk.auth_allow_anonymous_access
def shanghai_access_agreement_show(context, data_dict):
    return {"success": True}


def shanghai_access_agreement_publish(context, data_dict):
    user = policy.user_of(context)
    if user is None:
        return _SIGN_IN
    group = model.Group.get(str(data_dict.get("organization") or ""))
    if group is not None and _is_admin_of(user, group.id):
        return {"success": True}
    return {"success": False, "msg": "只有部门管理员可以发布数据使用协议 / "
                                     "Only the department's admins may publish its agreement"}


def shanghai_access_audit_list(context, data_dict):
    user = policy.user_of(context)
    if user is None:
        return _SIGN_IN
    if user.sysadmin or user.get_groups("organization", "admin"):
        return {"success": True}
    return {"success": False, "msg": "只有部门管理员和系统管理员可以查看审计记录 / "
                                     "Only department admins and sysadmins may read the audit trail"}


@tk.auth_allow_anonymous_access
def shanghai_access_statistics(context, data_dict):
    return {"success": True}


# --------------------------------------------------------------------------
# The DataStore: rows of a conditional product need access to its data

_NEEDS_GRANT = ("该数据产品为有条件开放，需申请并经数据提供部门同意后才能查询数据 / "
                "This data product is open on application: its data can be queried only after "
                "its department approves your request")


def _rows_allowed(context, resource_id: str):
    level, _package = policy.resource_access(context, resource_id)
    if level is None:
        return {"success": False, "msg": _NEEDS_GRANT}
    return {"success": True}


def _rows_of_one_table(next_auth, context, data_dict):
    """After the DataStore's own check: the table's product's rule."""
    result = next_auth(context, data_dict)
    if not result.get("success"):
        return result
    return _rows_allowed(context, data_dict.get("resource_id") or data_dict.get("id"))


datastore_search = tk.chained_auth_function(tk.auth_allow_anonymous_access(_rows_of_one_table))
datastore_info = tk.chained_auth_function(tk.auth_allow_anonymous_access(_rows_of_one_table))


@tk.chained_auth_function
@tk.auth_allow_anonymous_access
def datastore_search_sql(next_auth, context, data_dict):
    result = next_auth(context, data_dict)
    if not result.get("success"):
        return result
    for name in context.get("table_names") or []:
        allowed = _rows_allowed(context, _resource_of_table(name))
        if not allowed["success"]:
            return allowed
    return {"success": True}


def _resource_of_table(name: str) -> str:
    """A DataStore table is named by its resource id, or by an alias of it."""
    if model.Resource.get(name) is not None:
        return name
    from ckanext.datastore.backend import DatastoreBackend

    exists, real_id = DatastoreBackend.get_active_backend().resource_id_from_alias(name)
    return real_id if exists and real_id else name


@tk.chained_auth_function
@tk.auth_allow_anonymous_access
def activity_diff(next_auth, context, data_dict):
    """A diff prints two full copies of a product; of a conditional one,
    only for those who may have its data."""
    result = next_auth(context, data_dict)
    if not result.get("success"):
        return result
    from ckanext.activity.model import Activity

    activity = model.Session.get(Activity, str(data_dict.get("id") or ""))
    package = model.Package.get(activity.object_id) if activity is not None else None
    if package is not None and policy.is_conditional(package) and not context.get("ignore_auth") \
            and policy.access_level(policy.user_of(context), package.id, package.owner_org) is None:
        return {"success": False, "msg": _NEEDS_GRANT}
    return {"success": True}

"""Who may do what with real-time products: the department's editors and
admins (and sysadmins) declare products and hold their push keys; a push
comes from them or with a live key of that very product; reads and streams
follow the product's visibility and, for conditionally open products, the
access rules of ckanext.shanghai.access."""
from __future__ import annotations

import ckan.authz as authz
import ckan.plugins.toolkit as tk

from ckanext.shanghai.access import policy

__all__ = [
    "shanghai_realtime_product_create", "shanghai_realtime_product_show", "shanghai_realtime_key_create",
    "shanghai_realtime_push", "shanghai_realtime_search", "shanghai_realtime_prune",
    "shanghai_realtime_status_list", "shanghai_realtime_webhook_create",
]

_DENIED = {"success": False, "msg": "没有权限 / Not authorized"}


def _may_update(context, package_id: str | None) -> bool:
    if not package_id or policy.user_of(context) is None:
        return False
    return authz.is_authorized("package_update", dict(context), {"id": package_id})["success"]


def may_read(context, product: dict | None) -> bool:
    """The product's metadata is visible and, for a conditional product,
    the caller may have its data."""
    if product is None:
        return False
    try:
        tk.check_access("package_show", dict(context), {"id": product["package_id"]})
    except tk.NotAuthorized:
        return False
    level, _package = policy.resource_access(context, product["resource_id"])
    return level is not None


def shanghai_realtime_product_create(context, data_dict):
    if _may_update(context, (data_dict or {}).get("package_id")):
        return {"success": True}
    return _DENIED


@tk.auth_allow_anonymous_access
def shanghai_realtime_product_show(context, data_dict):
    try:
        tk.check_access("package_show", dict(context), {"id": (data_dict or {}).get("package_id")})
    except tk.NotAuthorized:
        return _DENIED
    return {"success": True}


def shanghai_realtime_key_create(context, data_dict):
    if _may_update(context, (data_dict or {}).get("package_id")):
        return {"success": True}
    return _DENIED


@tk.auth_allow_anonymous_access
def shanghai_realtime_push(context, data_dict):
    key = context.get("shanghai_realtime_key")
    if key is not None:
        if key.get("resource_id") == (data_dict or {}).get("resource_id"):
            return {"success": True}
        return {"success": False, "msg": "推送密钥不属于这个数据产品 / The push key is not for this product"}
    if _may_update(context, (data_dict or {}).get("package_id")):
        return {"success": True}
    return _DENIED


@tk.auth_allow_anonymous_access
def shanghai_realtime_search(context, data_dict):
    if may_read(context, data_dict):
        return {"success": True}
    return {"success": False, "msg": "没有权限读取这个数据产品的数据，有条件开放的产品请先申请 / "
                                     "Not authorized to read this product's data; apply for a conditional product"}


def shanghai_realtime_prune(context, data_dict):
    return _DENIED  # sysadmins only


@tk.auth_allow_anonymous_access
def shanghai_realtime_status_list(context, data_dict):
    return {"success": True}


def shanghai_realtime_webhook_create(context, data_dict):
    """Signed-in users subscribe to what they may read (a product), and
    manage their own subscriptions (no product)."""
    if policy.user_of(context) is None:
        return {"success": False, "msg": "请先登录 / Please sign in"}
    if data_dict and data_dict.get("resource_id") and not may_read(context, data_dict):
        return {"success": False, "msg": "没有权限订阅这个数据产品 / Not authorized to follow this product"}
    return {"success": True}

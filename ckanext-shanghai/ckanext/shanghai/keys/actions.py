"""Actions of developer keys: register an application (its key is a CKAN
API token of the applicant, returned once), list one's applications, revoke
one; a department's usage figures; the public totals.

The key is a CKAN API token because everything the portal decides about a
caller already follows the token's user: a conditional product's grant is
the applicant's, the DataStore and file gates check that user, and CKAN
stores only the token's id, shows the token once and revokes it. An
application adds its name, description and contact around it."""
from __future__ import annotations

import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai import compat
from ckanext.shanghai.keys import store

__all__ = ["shanghai_application_create", "shanghai_application_list", "shanghai_application_revoke",
           "shanghai_usage_show", "shanghai_usage_totals"]

_LIMITS = {"name": 100, "description": 2000, "contact": 200}


def _user(context) -> model.User:
    user = model.User.get(context.get("user") or "")
    if user is None:
        raise tk.NotAuthorized("请先登录 / Please sign in")
    return user


def _text(data_dict: dict, field: str, required: bool, errors: dict) -> str:
    value = data_dict.get(field)
    value = value.strip() if isinstance(value, str) else ""
    if required and not value:
        errors[field] = ["必填 / Required"]
    elif len(value) > _LIMITS[field]:
        errors[field] = [f"不能超过 {_LIMITS[field]} 个字符 / At most {_LIMITS[field]} characters"]
    return value


def shanghai_application_create(context, data_dict):
    """Register an application and issue its developer key.

    :param name: the application's name (required, up to 100 characters)
    :param description: what it does with the data (up to 2,000)
    :param contact: how to reach its developer: e-mail or telephone (required, up to 200)
    :returns: the application, with ``key``: the developer key, returned
        this once and never again
    """
    tk.check_access("shanghai_application_create", context, data_dict)
    user = _user(context)
    errors: dict = {}
    name = _text(data_dict, "name", True, errors)
    description = _text(data_dict, "description", False, errors)
    contact = _text(data_dict, "contact", True, errors)
    if errors:
        raise tk.ValidationError(errors)
    token = tk.get_action("api_token_create")(
        {"user": user.name, "model": model}, {"user": user.name, "name": f"应用 / Application: {name}"[:200]})
    application = store.add_application(user.id, compat.api_token_id(token["token"]), name, description, contact)
    model.Session.commit()
    return dict(application, key=token["token"])


@tk.side_effect_free
def shanghai_application_list(context, data_dict):
    """The signed-in user's applications, active first (without keys).

    :returns: a list of applications (id, name, description, contact,
        created, revoked, last_access, active)
    """
    tk.check_access("shanghai_application_list", context, data_dict)
    return store.applications_of(_user(context).id)


def shanghai_application_revoke(context, data_dict):
    """Revoke an application's key: calls with it are refused at once.

    :param id: the application's id
    :returns: the application
    """
    tk.check_access("shanghai_application_revoke", context, data_dict)
    application = store.get_application(str(data_dict.get("id") or ""))
    if application is None:
        raise tk.ObjectNotFound("没有该应用 / No such application")
    if application["active"]:
        owner = model.User.get(application["user_id"])
        tk.get_action("api_token_revoke")({"user": owner.name, "model": model, "ignore_auth": True},
                                          {"jti": application["token_id"]})
        store.mark_revoked(application["id"])
        model.Session.commit()
    return store.get_application(application["id"])


@tk.side_effect_free
def shanghai_usage_show(context, data_dict):
    """A department's usage: its products' API calls, downloads and distinct
    keys per day, per product and per key (with the application's name,
    contact and owner).

    :param id: the department's id or name
    :param days: the period, in days up to today (default 30, at most 366)
    """
    tk.check_access("shanghai_usage_show", context, data_dict)
    group = model.Group.get(str(data_dict.get("id") or ""))
    if group is None or not group.is_organization:
        raise tk.ObjectNotFound("没有该部门 / No such department")
    try:
        days = int(data_dict.get("days") or 30)
    except (TypeError, ValueError):
        raise tk.ValidationError({"days": ["须为 1 到 366 的整数 / A whole number from 1 to 366"]})
    if not 1 <= days <= 366:
        raise tk.ValidationError({"days": ["须为 1 到 366 的整数 / A whole number from 1 to 366"]})
    return dict(store.department_usage(group.id, days), organization=group.name)


@tk.side_effect_free
def shanghai_usage_totals(context, data_dict):
    """Public totals: for ``package_id`` that product's API calls, downloads
    (files, DataStore dumps and exports) and distinct keys; without it the
    portal's API calls, applications registered and API calls and distinct
    keys per day over the last 30 days.

    :param package_id: a product's id or name (optional)
    """
    tk.check_access("shanghai_usage_totals", context, data_dict)
    if data_dict.get("package_id"):
        package = model.Package.get(str(data_dict["package_id"]))
        if package is None:
            raise tk.ObjectNotFound("没有该数据产品 / No such data product")
        tk.check_access("package_show", context, {"id": package.id})
        return store.product_totals(package.id)
    return store.site_totals()

"""Validators of data applications: the application's web address and the
data products it uses (existing, public, stored as a JSON list)."""
from __future__ import annotations

import json
from typing import Any

import ckan.plugins.toolkit as tk
from ckan.lib.navl.dictization_functions import Invalid, missing

__all__ = ["shanghai_web_address", "shanghai_data_product_names", "shanghai_data_product_names_output"]


def shanghai_web_address(value: Any) -> Any:
    if value is missing or value in (None, ""):
        return value
    if not str(value).startswith(("http://", "https://")):
        raise Invalid(f"应用地址应以 http:// 或 https:// 开头：{value!s:.60} / "
                      f"The address must start with http:// or https://: {value!s:.60}")
    return value


def shanghai_data_product_names(value: Any) -> Any:
    """A list of existing public data product names, stored as JSON."""
    if value is missing or value in (None, ""):
        return value
    if isinstance(value, str):
        try:
            names = json.loads(value) if value.strip().startswith("[") else value.split(",")
        except ValueError:
            names = value.split(",")
    else:
        names = list(value)
    names = [str(name).strip() for name in names if str(name).strip()]
    unknown = []
    for name in names:
        try:
            product = tk.get_action("package_show")({"ignore_auth": True}, {"id": name})
        except tk.ObjectNotFound:
            unknown.append(name)
            continue
        if product.get("private") or product.get("type") in ("application", "harvest"):
            unknown.append(name)
    if unknown:
        raise Invalid(f"以下数据产品不存在或未公开：{'、'.join(unknown)} / "
                      f"These data products do not exist or are not public: {', '.join(unknown)}")
    if not names:
        raise Invalid("请至少填写一个数据产品 / Name at least one data product")
    return json.dumps(names)


def shanghai_data_product_names_output(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value

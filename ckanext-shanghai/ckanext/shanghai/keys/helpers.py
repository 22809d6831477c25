"""Template helpers of developer keys: a product's public usage totals and
whether the user may see a department's usage."""
from __future__ import annotations

import ckan.authz as authz
from ckan.common import current_user

from ckanext.shanghai.keys import store

__all__ = ["sh_usage_totals", "sh_usage_visible"]


def sh_usage_totals(package_id: str) -> dict:
    return store.product_totals(package_id)


def sh_usage_visible(organization_id: str) -> bool:
    if not current_user.is_authenticated:
        return False
    return bool(current_user.sysadmin) or \
        authz.users_role_for_group_or_org(organization_id, current_user.name) == "admin"

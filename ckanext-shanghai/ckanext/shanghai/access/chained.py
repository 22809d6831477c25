"""CKAN's own actions, wrapped: a DataStore query under a grant goes into
the audit trail, and activity records (which keep a full copy of a product)
are gated like package_show."""
from __future__ import annotations

import ckan.model as model
import ckan.plugins.toolkit as tk
from flask import g, has_request_context

from ckanext.shanghai.access import policy, store

# datastore_search_sql exists only where the operator enabled SQL search;
# the plugin adds its wrapper then (see sql_search_actions).
__all__ = ["datastore_search", "activity_show", "activity_data_show",
           "package_activity_list", "organization_activity_list", "group_activity_list",
           "user_activity_list", "dashboard_activity_list", "recently_changed_packages_activity_list"]


def audit_data_use(context: dict, package: model.Package, resource_id: str, action: str,
                   detail: dict | None = None) -> None:
    """Record a use of a conditional product's data by a grant holder, once
    per web request and resource (a DataStore dump pages through many
    queries)."""
    if has_request_context():
        seen = g.setdefault("sh_access_audited", set())
        if resource_id in seen:
            return
        seen.add(resource_id)
    user = policy.user_of(context)
    grant = store.active_grant(user.id, package.id)
    store.record(action, actor=user, organization_id=package.owner_org, package_id=package.id,
                 resource_id=resource_id, request_id=grant["id"] if grant else None, detail=detail)
    model.Session.commit()


@tk.chained_action
@tk.side_effect_free
def datastore_search(up_func, context, data_dict):
    result = up_func(context, data_dict)
    _audit_query(context, result.get("resource_id") or data_dict.get("resource_id"),
                 {key: data_dict[key] for key in ("q", "filters", "limit", "offset", "fields", "sort")
                  if data_dict.get(key) not in (None, "", {}, [])})
    return result


def _audit_query(context: dict, resource_id: str, detail: dict) -> None:
    level, package = policy.resource_access(context, resource_id)
    if level == "grant":
        audit_data_use(context, package, resource_id, "datastore_query", detail)


@tk.chained_action
@tk.side_effect_free
def datastore_search_sql(up_func, context, data_dict):
    result = up_func(context, data_dict)
    for name in context.get("table_names") or []:
        _audit_query(context, name, {"sql": str(data_dict.get("sql", ""))[:2000]})
    return result


def sql_search_actions() -> dict:
    enabled = tk.asbool(tk.config.get("ckan.datastore.sqlsearch.enabled"))
    return {"datastore_search_sql": datastore_search_sql} if enabled else {}


def _gated(up_func, context, data_dict):
    return policy.redact_activities(context, up_func(context, data_dict))


activity_show = tk.side_effect_free(tk.chained_action(_gated))


@tk.chained_action
@tk.side_effect_free
def activity_data_show(up_func, context, data_dict):
    data = up_func(context, data_dict)
    if isinstance(data, dict) and "resources" in data:  # object_type=package
        return policy.redact_package(context, data)
    if isinstance(data, dict):
        policy.redact_activities(context, {"data": data})
    return data


package_activity_list = tk.side_effect_free(tk.chained_action(_gated))
organization_activity_list = tk.side_effect_free(tk.chained_action(_gated))
group_activity_list = tk.side_effect_free(tk.chained_action(_gated))
user_activity_list = tk.side_effect_free(tk.chained_action(_gated))
dashboard_activity_list = tk.side_effect_free(tk.chained_action(_gated))
recently_changed_packages_activity_list = tk.side_effect_free(tk.chained_action(_gated))

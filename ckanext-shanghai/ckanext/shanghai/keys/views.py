"""Pages of developer keys: my applications (register one, see its key
once, revoke), and a department's usage for its admins."""
from __future__ import annotations

from flask import Blueprint, make_response, request

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.common import current_user

__all__ = ["shanghai_keys"]

shanghai_keys = Blueprint("shanghai_keys", __name__)


def _context() -> dict:
    return {"user": current_user.name, "auth_user_obj": current_user}


def _no_store(response):
    # The page that shows a key once must not be kept by a browser or a proxy.
    response.headers["Cache-Control"] = "no-store"
    return response


@shanghai_keys.route("/developer", methods=["GET", "POST"])
def applications():
    if not current_user.is_authenticated:
        return tk.redirect_to("user.login", came_from=request.path)
    errors, form = {}, {}
    if request.method == "POST":
        form = {field: request.form.get(field, "") for field in ("name", "description", "contact")}
        try:
            created = tk.get_action("shanghai_application_create")(_context(), form)
        except tk.ValidationError as error:
            errors = error.error_dict
        else:
            return _no_store(make_response(tk.render("keys/created.html", {"application": created}), 201))
    mine = tk.get_action("shanghai_application_list")(_context(), {})
    response = make_response(tk.render("keys/applications.html", {
        "applications": mine, "errors": errors, "form": form,
        "key_limit": tk.config.get("ckanext.shanghai.ratelimit.key_per_window"),
        "anonymous_limit": tk.config.get("ckanext.shanghai.ratelimit.anonymous_per_window"),
        "window": tk.config.get("ckanext.shanghai.ratelimit.window_seconds")}), 400 if errors else 200)
    return response


@shanghai_keys.route("/developer/<application_id>/revoke", methods=["POST"])
def revoke(application_id: str):
    if not current_user.is_authenticated:
        return tk.redirect_to("user.login", came_from=tk.url_for("shanghai_keys.applications"))
    try:
        tk.get_action("shanghai_application_revoke")(_context(), {"id": application_id})
    except tk.ObjectNotFound:
        return tk.abort(404, tk._("Not found"))
    except tk.NotAuthorized:
        return tk.abort(403, tk._("Unauthorized"))
    return tk.redirect_to("shanghai_keys.applications")


@shanghai_keys.route("/organization/<id>/usage")
def department_usage(id: str):
    group = model.Group.get(id)
    if group is None or not group.is_organization or group.state != "active":
        return tk.abort(404, tk._("Organization not found"))
    try:
        usage = tk.get_action("shanghai_usage_show")(_context(), {"id": group.id, "days": request.args.get("days")})
    except tk.NotAuthorized:
        if not current_user.is_authenticated:
            return tk.redirect_to("user.login", came_from=request.path)
        return tk.abort(403, tk._("Unauthorized"))
    except tk.ValidationError as error:
        return tk.abort(400, "; ".join(m for ms in error.error_dict.values() for m in ms))
    return tk.render("keys/usage.html", {"usage": usage, "group": group})

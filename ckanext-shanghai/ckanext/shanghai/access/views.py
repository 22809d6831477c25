"""Pages of conditional access: apply for a product, my requests, the
department's queue with decisions, one request, the audit trail and its CSV,
a department's agreement; and the gate in front of every file download and
DataStore dump."""
from __future__ import annotations

import csv
import io
import json

from flask import Blueprint, Response, request, stream_with_context

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.common import current_user

from ckanext.shanghai.access import actions, chained, policy, store

__all__ = ["shanghai_access"]

shanghai_access = Blueprint("shanghai_access", __name__)


def _context() -> dict:
    return {"user": current_user.name, "auth_user_obj": current_user}


def _action(name: str, data_dict: dict):
    return tk.get_action(name)(_context(), data_dict)


def _errors_text(error: tk.ValidationError) -> list[str]:
    return [message for messages in error.error_dict.values()
            for message in (messages if isinstance(messages, list) else [messages])]


# --------------------------------------------------------------------------
# The gate


@shanghai_access.before_app_request
def gate_data():
    """Files and DataStore dumps of a conditional product: 403 with the way
    to apply for anyone without access; each use under a grant audited.
    Decided by the resource's own product, whatever product the URL names."""
    endpoint = request.endpoint or ""
    if endpoint.endswith("resource.download"):
        action = "download"
    elif endpoint == "datastore.dump":
        action = "datastore_dump"
    else:
        return None
    resource_id = (request.view_args or {}).get("resource_id")
    context = _context()
    level, package = policy.resource_access(context, resource_id)
    if level is None:
        return tk.render("access/denied.html", {"pkg": package, "signed_in": current_user.is_authenticated}), 403
    if level == "grant":
        chained.audit_data_use(context, package, resource_id, action, {"path": request.path[:500]})
    return None


# --------------------------------------------------------------------------
# Applying


@shanghai_access.route("/dataset/<id>/apply", methods=["GET", "POST"])
def apply(id: str):
    package = model.Package.get(id)
    if package is None or package.state != "active":
        return tk.abort(404, "没有该数据产品 / No such data product")
    try:
        pkg = tk.get_action("package_show")(_context(), {"id": package.id})
    except tk.NotAuthorized:
        return tk.abort(404, "没有该数据产品 / No such data product")
    if not current_user.is_authenticated:
        return tk.redirect_to("user.login", came_from=request.path)
    agreement = _action("shanghai_access_agreement_show", {"package_id": package.id})
    errors, form = [], {}
    if request.method == "POST":
        form = {key: request.form.get(key, "") for key in
                ("purpose", "intended_use", "applicant_org", "period_end", "agreement_version")}
        form["accept_agreement"] = request.form.get("accept_agreement") == "on"
        try:
            created = _action("shanghai_access_request_create", dict(form, package_id=package.id))
        except tk.ValidationError as error:
            errors = _errors_text(error)
        except tk.NotAuthorized as error:
            return tk.abort(403, str(error))
        else:
            tk.h.flash_success("申请已提交，等待数据提供部门审核 / Request sent; the department will review it")
            return tk.redirect_to("shanghai_access.request_read", request_id=created["id"])
    return tk.render("access/apply.html", {"pkg": pkg, "agreement": agreement, "errors": errors, "form": form,
                                           "deadline_days": store.deadline_limit(),
                                           "max_days": int(tk.config.get("ckanext.shanghai.access.max_grant_days"))})


# --------------------------------------------------------------------------
# Lists and one request


@shanghai_access.route("/access/mine")
def mine():
    if not current_user.is_authenticated:
        return tk.redirect_to("user.login", came_from=request.path)
    result = _action("shanghai_access_request_list", {"scope": "mine", "limit": 200})
    store.mark_seen(current_user.id)
    model.repo.commit()
    return tk.render("access/list.html", {"scope": "mine", "result": result, "status": None})


@shanghai_access.route("/access/queue")
def queue():
    if not current_user.is_authenticated:
        return tk.redirect_to("user.login", came_from=request.path)
    status = request.args.get("status", "pending")
    try:
        result = _action("shanghai_access_request_list", {
            "scope": "queue", "status": "" if status == "all" else status,
            "organization": request.args.get("organization") or None, "limit": 200})
    except tk.NotAuthorized as error:
        return tk.abort(403, str(error))
    except (tk.ValidationError, tk.ObjectNotFound):
        return tk.abort(400, "筛选条件有误 / The filter is not valid")
    return tk.render("access/list.html", {"scope": "queue", "result": result, "status": status})


@shanghai_access.route("/access/request/<request_id>")
def request_read(request_id: str):
    if not current_user.is_authenticated:
        return tk.redirect_to("user.login", came_from=request.path)
    try:
        item = _action("shanghai_access_request_show", {"id": request_id})
    except tk.ObjectNotFound:
        return tk.abort(404, "没有该申请 / No such request")
    except tk.NotAuthorized as error:
        return tk.abort(403, str(error))
    agreement = store.get_agreement(item["agreement_id"])
    trail = list(store.audit_rows(request_id=request_id, limit=200))
    is_admin = _allowed("shanghai_access_request_decide", request_id)
    return tk.render("access/request.html", {"item": item, "agreement": agreement, "trail": trail,
                                             "is_admin": is_admin,
                                             "is_applicant": item["user_id"] == current_user.id})


def _allowed(auth: str, request_id: str) -> bool:
    try:
        return tk.check_access(auth, _context(), {"id": request_id})
    except tk.NotAuthorized:
        return False


@shanghai_access.route("/access/request/<request_id>/<verb>", methods=["POST"])
def request_change(request_id: str, verb: str):
    actions = {"decide": "shanghai_access_request_decide", "revoke": "shanghai_access_grant_revoke",
               "withdraw": "shanghai_access_request_withdraw"}
    if verb not in actions:
        return tk.abort(404)
    data = {"id": request_id, "decision": request.form.get("decision"), "reason": request.form.get("reason"),
            "expires": request.form.get("expires") or None}
    try:
        _action(actions[verb], data)
    except tk.ObjectNotFound:
        return tk.abort(404, "没有该申请 / No such request")
    except tk.NotAuthorized as error:
        return tk.abort(403, str(error))
    except tk.ValidationError as error:
        for message in _errors_text(error):
            tk.h.flash_error(message)
    else:
        tk.h.flash_success({"decide": "已保存审核结果 / Decision saved", "revoke": "已撤销授权 / Access revoked",
                            "withdraw": "已撤回申请 / Request withdrawn"}[verb])
    return tk.redirect_to("shanghai_access.request_read", request_id=request_id)


# --------------------------------------------------------------------------
# Audit trail


_AUDIT_COLUMNS = ("at", "action", "actor_name", "organization_id", "package_name", "package_title",
                  "resource_id", "request_id", "detail")


def _audit_query_args() -> dict:
    return {key: request.args.get(key) for key in ("organization", "package_id", "request_id", "action")
            if request.args.get(key)}


@shanghai_access.route("/access/audit")
def audit():
    if not current_user.is_authenticated:
        return tk.redirect_to("user.login", came_from=request.path)
    try:
        rows = _action("shanghai_access_audit_list", dict(_audit_query_args(), limit=500))
    except tk.NotAuthorized as error:
        return tk.abort(403, str(error))
    except (tk.ValidationError, tk.ObjectNotFound):
        return tk.abort(400, "筛选条件有误 / The filter is not valid")
    return tk.render("access/audit.html", {"rows": rows, "filters": _audit_query_args()})


@shanghai_access.route("/access/audit.csv")
def audit_csv():
    """The whole trail the user may read (with the page's filters), as
    UTF-8 CSV with a BOM so spreadsheet software reads the Chinese."""
    try:
        tk.check_access("shanghai_access_audit_list", _context(), {})
        filters = actions.audit_filters(model.User.get(current_user.id), _audit_query_args())
    except tk.NotAuthorized as error:
        return tk.abort(403, str(error))
    except (tk.ValidationError, tk.ObjectNotFound):
        return tk.abort(400, "筛选条件有误 / The filter is not valid")

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")
        writer.writerow(_AUDIT_COLUMNS)
        for row in store.audit_rows(**filters, limit=None):
            row["at"] = row["at"].isoformat()
            row["detail"] = json.dumps(row["detail"], ensure_ascii=False) if row["detail"] else ""
            writer.writerow([row.get(column) or "" for column in _AUDIT_COLUMNS])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="access-audit.csv"'})


# --------------------------------------------------------------------------
# A department's agreement


@shanghai_access.route("/organization/<id>/agreement", methods=["GET", "POST"])
def agreement(id: str):
    group = model.Group.get(id)
    if group is None or not group.is_organization or group.state != "active":
        return tk.abort(404, "没有该部门 / No such department")
    errors = []
    if request.method == "POST":
        try:
            _action("shanghai_access_agreement_publish", {
                "organization": group.id, "text_zh": request.form.get("text_zh"),
                "text_en": request.form.get("text_en")})
        except tk.NotAuthorized as error:
            return tk.abort(403, str(error))
        except tk.ValidationError as error:
            errors = _errors_text(error)
        else:
            tk.h.flash_success("已发布新版数据使用协议 / New agreement version published")
            return tk.redirect_to("shanghai_access.agreement", id=group.name)
    current = _action("shanghai_access_agreement_show", {"organization": group.id})
    try:
        tk.check_access("shanghai_access_agreement_publish", _context(), {"organization": group.id})
        may_publish = True
    except tk.NotAuthorized:
        may_publish = False
    return tk.render("access/agreement.html", {"group": group, "agreement": current, "errors": errors,
                                               "may_publish": may_publish,
                                               "versions": store.agreement_versions(group.id)})

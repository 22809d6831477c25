"""Pages of the public desk: everyone's items, filing one, one item with
its thread and (for its department) the desk's steps, the department's
queue, my items and notices, and the league table."""
from __future__ import annotations

from flask import Blueprint, request

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.common import current_user

from ckanext.shanghai.desk import auth, helpers, store

__all__ = ["shanghai_desk"]

shanghai_desk = Blueprint("shanghai_desk", __name__)

_STEPS = {"acknowledge": "shanghai_desk_item_acknowledge", "answer": "shanghai_desk_item_answer",
          "extend": "shanghai_desk_item_extend", "transfer": "shanghai_desk_item_transfer",
          "accept": "shanghai_desk_item_accept", "close": "shanghai_desk_item_close",
          "reopen": "shanghai_desk_item_reopen", "withdraw": "shanghai_desk_item_withdraw",
          "follow": "shanghai_desk_item_follow", "unfollow": "shanghai_desk_item_follow"}
_DONE = {"acknowledge": ("已受理", "Acknowledged"), "answer": ("已答复", "Answer published"),
         "extend": ("已延期", "Deadline extended"), "transfer": ("已转办", "Transferred"),
         "accept": ("已确认纠错", "Error report accepted"), "close": ("已办结", "Closed"),
         "reopen": ("已重新打开", "Reopened"), "withdraw": ("已撤回", "Withdrawn"),
         "follow": ("已关注", "Following"), "unfollow": ("已取消关注", "No longer following")}
_FILTERS = ("kind", "status", "organization", "q", "package_id")


def _context() -> dict:
    return {"user": current_user.name, "auth_user_obj": current_user}


def _action(name: str, data_dict: dict):
    return tk.get_action(name)(_context(), data_dict)


def _say(pair: tuple[str, str]) -> str:
    return pair[1] if helpers._english() else pair[0]


def _errors(error: tk.ValidationError) -> list[str]:
    return [helpers.sh_desk_message_text(message) for messages in error.error_dict.values()
            for message in (messages if isinstance(messages, list) else [messages])]


def _filters() -> dict:
    return {key: request.args[key] for key in _FILTERS if request.args.get(key)}


def _listing(scope: str, template_scope: str):
    filters = _filters()
    if request.args.get("open"):
        filters["open"] = True
    try:
        result = _action("shanghai_desk_item_list", dict(filters, scope=scope, limit=200))
    except tk.NotAuthorized as error:
        return tk.abort(403, str(error))
    except tk.ValidationError as error:
        return tk.abort(400, " ".join(_errors(error)))
    return tk.render("desk/list.html", {"scope": template_scope, "result": result, "filters": filters,
                                        "departments": helpers.sh_desk_departments()})


@shanghai_desk.route("/desk")
def index():
    return _listing("public", "public")


@shanghai_desk.route("/desk/queue")
def queue():
    if not current_user.is_authenticated:
        return tk.redirect_to("user.login", came_from=request.path)
    return _listing("desk", "desk")


@shanghai_desk.route("/desk/mine")
def mine():
    if not current_user.is_authenticated:
        return tk.redirect_to("user.login", came_from=request.path)
    notices = _action("shanghai_desk_notice_list", {"mark_seen": True})
    result = _action("shanghai_desk_item_list", {"scope": "mine", "limit": 200})
    return tk.render("desk/list.html", {"scope": "mine", "result": result, "filters": {},
                                        "notices": notices, "departments": []})


@shanghai_desk.route("/desk/league")
def league():
    return tk.render("desk/league.html", {"league": _action("shanghai_desk_league", {})})


@shanghai_desk.route("/desk/new", methods=["GET", "POST"])
def new():
    kind = request.values.get("kind") or "request"
    if kind not in store.KINDS:
        return tk.abort(404)
    if not current_user.is_authenticated:
        return tk.redirect_to("user.login", came_from=request.full_path)
    pkg = None
    package_id = request.values.get("package_id")
    if kind != "request":
        package = model.Package.get(package_id or "")
        if package is None or package.state != "active" or package.private:
            return tk.abort(404, "没有该数据产品 / No such data product")
        pkg = tk.get_action("package_show")(_context(), {"id": package.id})
    errors, form = [], {}
    if request.method == "POST":
        form = {key: request.form.get(key, "") for key in
                ("title", "body", "reason", "update_frequency", "organization", "resource_id", "error_type")}
        try:
            created = _action("shanghai_desk_item_create", dict(
                {k: v for k, v in form.items() if v}, kind=kind, package_id=pkg["id"] if pkg else None))
        except tk.ValidationError as error:
            errors = _errors(error)
        except tk.NotAuthorized as error:
            return tk.abort(403, str(error))
        else:
            tk.h.flash_success(_say(("已提交，部门将在时限内答复", "Sent; the department will answer in time")))
            return tk.redirect_to("shanghai_desk.item_read", item_id=created["id"])
    return tk.render("desk/new.html", {"kind": kind, "pkg": pkg, "form": form, "errors": errors,
                                       "departments": helpers.sh_desk_departments(),
                                       "ack_days": store.acknowledge_days(), "answer_days": store.answer_days()})


@shanghai_desk.route("/desk/item/<item_id>")
def item_read(item_id: str):
    try:
        item = _action("shanghai_desk_item_show", {"id": item_id})
    except tk.ObjectNotFound:
        return tk.abort(404, "没有该留言 / No such item")
    user = model.User.get(current_user.id) if current_user.is_authenticated else None
    return tk.render("desk/item.html", {
        "item": item, "staff": auth.works_desk_of(user, item["organization_id"]),
        "is_filer": user is not None and user.id == item["user_id"], "signed_in": user is not None,
        "departments": helpers.sh_desk_departments(),
        "reasons": helpers.sh_desk_close_reasons(item["kind"])})


@shanghai_desk.route("/desk/item/<item_id>/<verb>", methods=["POST"])
def item_step(item_id: str, verb: str):
    if verb not in _STEPS:
        return tk.abort(404)
    if not current_user.is_authenticated:
        return tk.redirect_to("user.login", came_from=f"/desk/item/{item_id}")
    data = {key: request.form[key] for key in ("body", "reason", "organization", "link", "date", "basis", "note")
            if request.form.get(key)}
    data["id"] = item_id
    if verb in ("follow", "unfollow"):
        data["follow"] = verb == "follow"
    try:
        _action(_STEPS[verb], data)
    except tk.ObjectNotFound:
        return tk.abort(404, "没有该留言 / No such item")
    except tk.NotAuthorized as error:
        return tk.abort(403, str(error))
    except tk.ValidationError as error:
        for message in _errors(error):
            tk.h.flash_error(message)
    else:
        tk.h.flash_success(_say(_DONE[verb]))
    return tk.redirect_to("shanghai_desk.item_read", item_id=item_id)

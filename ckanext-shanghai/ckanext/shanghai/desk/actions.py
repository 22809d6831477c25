"""Actions of the public desk: file, read, list and follow items; the
department's steps (acknowledge, answer, extend, transfer, accept an error
report, close with a reason, reopen); the filer's withdrawal; notices and
the league table. Every step is recorded in the item's trail in the same
transaction as the step itself, and told to those who follow it."""
from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.access.policy import user_of
from ckanext.shanghai.desk import auth, notify, quality, store
from ckanext.shanghai.desk.labels import LABELS
from ckanext.shanghai.messages import Message, MessageText

__all__ = [
    "shanghai_desk_item_create", "shanghai_desk_item_show", "shanghai_desk_item_list",
    "shanghai_desk_item_acknowledge", "shanghai_desk_item_answer", "shanghai_desk_item_extend",
    "shanghai_desk_item_transfer", "shanghai_desk_item_accept", "shanghai_desk_item_close",
    "shanghai_desk_item_reopen", "shanghai_desk_item_withdraw", "shanghai_desk_item_follow",
    "shanghai_desk_notice_list", "shanghai_desk_league",
]

_TITLE_LIMIT = 200
_TEXT_LIMIT = 8000
_FREQUENCIES = tuple(LABELS["frequency"])


def _error(code: str, field: str, zh: str, en: str, value: Any = None) -> tk.ValidationError:
    return tk.ValidationError({field: [MessageText(Message(code, zh, en, field=field, value=value))]})


def _text(data_dict: dict, field: str, zh_name: str, en_name: str, *, required: bool = True,
          limit: int = _TEXT_LIMIT) -> str | None:
    value = data_dict.get(field)
    value = "" if value is None else str(value).strip()
    if required and not value:
        raise _error("desk-required", field, f"请填写{zh_name}", f"{en_name} is required")
    if len(value) > limit:
        raise _error("desk-too-long", field, f"{zh_name}不能超过 {limit} 字",
                     f"{en_name} is longer than {limit} characters", value)
    return value or None


def _link(data_dict: dict, field: str = "link") -> str:
    """An address of a product on this portal or elsewhere: http(s) only."""
    value = _text(data_dict, field, "链接", "A link", limit=1000)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        if value.startswith("/") and not value.startswith("//"):
            return value
        raise _error("desk-bad-link", field, "链接应以 http:// 或 https:// 开头",
                     "The link must start with http:// or https://", value)
    return value


def _date(data_dict: dict, field: str) -> dt.date:
    value = data_dict.get(field)
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value or "").strip()[:10])
    except ValueError:
        raise _error("desk-bad-date", field, "日期应为 YYYY-MM-DD", "The date must be YYYY-MM-DD", value)


def _page(data_dict: dict) -> tuple[int, int]:
    try:
        limit = min(max(int(data_dict.get("limit") or 50), 1), 1000)
        offset = max(int(data_dict.get("offset") or 0), 0)
    except (TypeError, ValueError):
        raise _error("desk-bad-page", "limit", "limit 和 offset 应为整数", "limit and offset must be whole numbers")
    return limit, offset


def _user(context: dict) -> model.User:
    user = user_of(context)
    if user is None:
        raise tk.NotAuthorized("请先登录 / Please sign in")
    return user


def _organization(value: Any, field: str = "organization") -> model.Group:
    group = model.Group.get(str(value or ""))
    if group is None or not group.is_organization or group.state != "active":
        raise _error("desk-no-department", field, "没有该部门", "No such department", value)
    return group


def _public_product(value: Any) -> model.Package:
    package = model.Package.get(str(value or ""))
    if package is None or package.state != "active" or package.private:
        raise _error("desk-no-product", "package_id", "没有该数据产品", "No such data product", value)
    return package


def _load(data_dict: dict) -> dict[str, Any]:
    row = store.get_item(str(tk.get_or_bust(data_dict, "id")))
    if row is None:
        raise tk.ObjectNotFound("没有该留言 / No such item")
    return row


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return store.local_time(value).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def item_dict(row: dict[str, Any], viewer: model.User | None = None) -> dict[str, Any]:
    """An item as the API and pages show it: its clock (working days left
    to acknowledge and to answer, or whether it was answered on time)."""
    today, clock = store.local_today(), store.calendar()
    out = {key: _iso(value) for key, value in row.items()}
    if row.get("package_private") and not auth.works_desk_of(viewer, row.get("organization_id")):
        out["package_title"] = out["package_name"] = None
    out.pop("package_private", None)
    out.pop("reminded", None)
    out["user_display_name"] = row.get("user_fullname") or row.get("user_name")
    out.pop("user_fullname", None)
    open_ = row["status"] != "closed"
    waiting_ack = open_ and row.get("acknowledged") is None and row.get("first_answered") is None
    waiting_answer = open_ and row.get("first_answered") is None
    out["acknowledge_days_left"] = clock.days_left(today, row["ack_deadline"]) if waiting_ack else None
    out["answer_days_left"] = clock.days_left(today, row["answer_deadline"]) if waiting_answer else None
    out["overdue"] = bool(waiting_answer and today > row["answer_deadline"])
    out["answered_on_time"] = store.answered_on_time(row)
    out["working_days_to_answer"] = clock.working_days_between(
        store.local_date(row["submitted"]), store.local_date(row["first_answered"])) \
        if row.get("first_answered") else None
    out["may_extend"] = waiting_answer and row.get("extended") is None
    return out


def _with_names(row: dict[str, Any]) -> dict[str, Any]:
    _, rows = store.list_items(item_id=row["id"], limit=1)
    return rows[0] if rows else row


def _done(row: dict[str, Any], user: model.User, event: str, *, department: bool = False) -> dict[str, Any]:
    """Commit the step, tell those who should hear of it, return the item."""
    model.repo.commit()
    full = _with_names(row)
    if department:
        notify.tell_department(full, event, user)
    else:
        notify.tell_public(full, event, user)
    return item_dict(full, user)


# --------------------------------------------------------------------------
# Filing and reading


def shanghai_desk_item_create(context, data_dict):
    """File a data request, an error report or a comment (signed-in users,
    at most ``ckanext.shanghai.desk.items_per_day`` in 24 hours). The filer
    follows it from the start.

    :param kind: ``request`` (data the portal does not have), ``error`` (on
        a product or one of its resources) or ``comment`` (a comment or
        question on a product)
    :param title: a short title
    :param body: the text (Markdown): what is wanted, what is wrong, or the
        comment
    :param reason: why the data is wanted (request)
    :param update_frequency: how often it should be updated (request;
        realtime, daily, weekly, monthly, quarterly, annual or once)
    :param organization: the department, if known (request)
    :param package_id: the product (error, comment)
    :param resource_id: the resource that is wrong, if one (error)
    :param error_type: wrong_values, broken_link, out_of_date or
        wrong_description (error)
    :returns: the item, with its deadlines
    """
    tk.check_access("shanghai_desk_item_create", context, data_dict)
    user = _user(context)
    kind = data_dict.get("kind")
    if kind not in store.KINDS:
        raise _error("desk-bad-kind", "kind", "类型应为 request（数据需求）、error（纠错）或 comment（评论）",
                     "kind must be request, error or comment", kind)
    limit = int(tk.config.get("ckanext.shanghai.desk.items_per_day"))
    if store.filed_since(user.id, store.now() - dt.timedelta(hours=24)) >= limit:
        raise _error("desk-rate-limit", "kind", f"24 小时内最多提交 {limit} 条，请稍后再试",
                     f"At most {limit} items in 24 hours; try again later")
    fields: dict[str, Any] = {
        "kind": kind, "user_id": user.id,
        "title": _text(data_dict, "title", "标题", "A title", limit=_TITLE_LIMIT),
        "body": _text(data_dict, "body", "内容", "The text")}
    if kind == "request":
        fields["reason"] = _text(data_dict, "reason", "需求理由", "The reason", required=False)
        frequency = data_dict.get("update_frequency") or None
        if frequency is not None and frequency not in _FREQUENCIES:
            raise _error("desk-bad-frequency", "update_frequency", "更新频度应为 " + "、".join(_FREQUENCIES),
                         "update_frequency must be one of " + ", ".join(_FREQUENCIES), frequency)
        fields["update_frequency"] = frequency
        fields["organization_id"] = _organization(data_dict["organization"]).id \
            if data_dict.get("organization") else None
    else:
        package = _public_product(data_dict.get("package_id"))
        fields.update(package_id=package.id, organization_id=package.owner_org)
        if kind == "error":
            error_type = data_dict.get("error_type")
            if error_type not in store.ERROR_TYPES:
                raise _error("desk-bad-error-type", "error_type",
                             "错误类型应为 wrong_values（数据有误）、broken_link（链接失效）、out_of_date（未及时更新）"
                             "或 wrong_description（描述有误）",
                             "error_type must be wrong_values, broken_link, out_of_date or wrong_description",
                             error_type)
            fields["error_type"] = error_type
            if data_dict.get("resource_id"):
                resource = model.Resource.get(str(data_dict["resource_id"]))
                if resource is None or resource.package_id != package.id or resource.state != "active":
                    raise _error("desk-no-resource", "resource_id", "该数据产品没有这个资源",
                                 "The product has no such resource", data_dict["resource_id"])
                fields["resource_id"] = resource.id
    row = store.create_item(**fields)
    store.set_following(row["id"], user.id, True)
    store.record(row["id"], "file", actor=user, organization_id=row["organization_id"],
                 detail={"kind": kind})
    return _done(row, user, "filed", department=True)


@tk.side_effect_free
def shanghai_desk_item_show(context, data_dict):
    """One item with its public trail (answers, transfers, extensions,
    closing), readable by anyone. The department's people also see who of
    them took each step.

    :param id: the item id
    """
    row = _load(data_dict)
    tk.check_access("shanghai_desk_item_show", context, {"id": row["id"]})
    viewer = user_of(context)
    staff = auth.works_desk_of(viewer, row["organization_id"])
    out = item_dict(_with_names(row), viewer)
    trail = []
    for entry in store.events(row["id"]):
        if entry["action"] == "notify_email" and not staff:
            continue
        public = {"at": _iso(entry["at"]), "action": entry["action"], "body": entry["body"],
                  "organization_id": entry["organization_id"], "organization_title": entry["organization_title"],
                  "detail": entry["detail"]}
        if staff or entry["actor_id"] == row["user_id"]:
            public["actor_name"] = entry["actor_name"]
        trail.append(public)
    out["events"] = trail
    out["following"] = bool(viewer) and store.is_following(row["id"], viewer.id)
    out["followers"] = len(store.followers(row["id"]))
    return out


@tk.side_effect_free
def shanghai_desk_item_list(context, data_dict):
    """Items: everyone's (``scope=public``, the default), your own
    (``mine``), or the desk of the departments you work for (``desk``;
    a sysadmin's desk holds every department's and those with none).

    :param scope: ``public``, ``mine`` or ``desk``
    :param kind: request, error or comment
    :param status: new, acknowledged, answered or closed
    :param open: true for items not yet closed
    :param organization: only this department
    :param package_id: only this product
    :param q: words in the title or text
    :param limit: at most this many (default 50, at most 1000)
    :param offset: skip this many
    :returns: ``{"count": n, "results": [...]}``
    """
    tk.check_access("shanghai_desk_item_list", context, data_dict)
    viewer = user_of(context)
    scope = data_dict.get("scope") or "public"
    kind, status = data_dict.get("kind") or None, data_dict.get("status") or None
    if kind is not None and kind not in store.KINDS:
        raise _error("desk-bad-kind", "kind", "类型应为 request、error 或 comment",
                     "kind must be request, error or comment", kind)
    if status is not None and status not in store.STATUSES:
        raise _error("desk-bad-status", "status", "状态应为 new、acknowledged、answered 或 closed",
                     "status must be new, acknowledged, answered or closed", status)
    limit, offset = _page(data_dict)
    filters: dict[str, Any] = {"kind": kind, "status": status, "limit": limit, "offset": offset,
                               "open_only": tk.asbool(data_dict.get("open") or False),
                               "q": (str(data_dict.get("q") or "").strip() or None)}
    if data_dict.get("package_id"):
        package = model.Package.get(str(data_dict["package_id"]))
        filters["package_id"] = package.id if package is not None else str(data_dict["package_id"])
    wanted = _organization(data_dict["organization"]).id if data_dict.get("organization") else None
    if scope == "public":
        filters["organization_ids"] = [wanted] if wanted else None
    elif scope == "mine":
        filters["user_id"] = _user(context).id
        filters["organization_ids"] = [wanted] if wanted else None
    elif scope == "desk":
        desks = auth.desks_of(_user(context))
        if wanted is not None:
            if desks is not None and wanted not in desks:
                raise tk.NotAuthorized("只能查看本部门的受理台 / Only your own department's desk")
            filters["organization_ids"] = [wanted]
        else:
            filters["organization_ids"] = desks
            filters["unassigned"] = desks is None
    else:
        raise _error("desk-bad-scope", "scope", "scope 应为 public、mine 或 desk",
                     "scope must be public, mine or desk", scope)
    count, rows = store.list_items(**filters)
    return {"count": count, "results": [item_dict(r, viewer) for r in rows]}


# --------------------------------------------------------------------------
# The department's steps

_OPEN = ("new", "acknowledged", "answered")


def _changed(row: dict, updated: dict | None) -> dict:
    if updated is None:
        raise _error("desk-changed", "id", "该留言刚被他人处理，请刷新后再试",
                     "Someone else has just changed this item; reload it and try again")
    return updated


def _closed_refusal() -> tk.ValidationError:
    return _error("desk-closed", "id", "该留言已办结，请先重新打开", "This item is closed; reopen it first")


def shanghai_desk_item_acknowledge(context, data_dict):
    """Acknowledge an item: the department has it and is working on it.

    :param id: the item id
    :param body: a note to the filer (Markdown, optional)
    """
    row = _load(data_dict)
    tk.check_access("shanghai_desk_item_acknowledge", context, {"id": row["id"]})
    user = _user(context)
    if row["status"] != "new":
        raise _error("desk-already-acknowledged", "id", "该留言已受理", "This item is already acknowledged")
    body = _text(data_dict, "body", "说明", "The note", required=False)
    updated = _changed(row, store.update_item(row["id"], ("new",), status="acknowledged",
                                              acknowledged=store.now()))
    store.record(row["id"], "acknowledge", actor=user, organization_id=row["organization_id"], body=body,
                 detail={"on_time": store.local_date(updated["acknowledged"]) <= row["ack_deadline"]})
    return _done(updated, user, "acknowledged")


def _answer_fields(row: dict) -> dict[str, Any]:
    """The first answer also acknowledges, and stops the clock."""
    moment = store.now()
    fields: dict[str, Any] = {}
    if row.get("acknowledged") is None:
        fields["acknowledged"] = moment
    if row.get("first_answered") is None:
        fields["first_answered"] = moment
    return fields


def shanghai_desk_item_answer(context, data_dict):
    """Answer an item publicly (the first answer stops the clock).

    :param id: the item id
    :param body: the answer (Markdown)
    """
    row = _load(data_dict)
    tk.check_access("shanghai_desk_item_answer", context, {"id": row["id"]})
    user = _user(context)
    if row["status"] == "closed":
        raise _closed_refusal()
    body = _text(data_dict, "body", "答复内容", "The answer")
    updated = _changed(row, store.update_item(row["id"], _OPEN, status="answered", **_answer_fields(row)))
    store.record(row["id"], "answer", actor=user, organization_id=row["organization_id"], body=body,
                 detail={"on_time": store.answered_on_time(updated)})
    return _done(updated, user, "answered")


def shanghai_desk_item_extend(context, data_dict):
    """Extend the answer deadline once, with a reason, by
    ``ckanext.shanghai.desk.extension_working_days`` working days.

    :param id: the item id
    :param reason: why more time is needed
    """
    row = _load(data_dict)
    tk.check_access("shanghai_desk_item_extend", context, {"id": row["id"]})
    user = _user(context)
    if row["status"] == "closed":
        raise _closed_refusal()
    if row.get("extended") is not None:
        raise _error("desk-extended-once", "id", "答复期限只能延长一次", "The deadline can be extended only once")
    if row.get("first_answered") is not None:
        raise _error("desk-already-answered", "id", "已答复的留言无需延期", "This item is already answered")
    reason = _text(data_dict, "reason", "延期理由", "A reason")
    deadline = store.calendar().add_working_days(row["answer_deadline"], store.extension_days())
    updated = _changed(row, store.update_item(row["id"], _OPEN, extended=store.now(), extension_reason=reason,
                                              answer_deadline=deadline))
    store.record(row["id"], "extend", actor=user, organization_id=row["organization_id"], body=reason,
                 detail={"from": row["answer_deadline"], "to": deadline})
    return _done(updated, user, "extended")


def shanghai_desk_item_transfer(context, data_dict):
    """Pass an item to another department, which then answers it on the
    same clock.

    :param id: the item id
    :param organization: the department it goes to
    :param reason: why (shown to the public)
    """
    row = _load(data_dict)
    tk.check_access("shanghai_desk_item_transfer", context, {"id": row["id"]})
    user = _user(context)
    if row["status"] == "closed":
        raise _closed_refusal()
    target = _organization(data_dict.get("organization"))
    if target.id == row["organization_id"]:
        raise _error("desk-same-department", "organization", "已在该部门", "The item is already with this department")
    reason = _text(data_dict, "reason", "转办理由", "A reason")
    updated = _changed(row, store.update_item(row["id"], _OPEN, organization_id=target.id))
    store.record(row["id"], "transfer", actor=user, organization_id=target.id, body=reason,
                 detail={"from": row["organization_id"], "to": target.id})
    model.repo.commit()
    full = _with_names(updated)
    notify.tell_department(full, "transferred", user)
    return item_dict(full, user)


def shanghai_desk_item_accept(context, data_dict):
    """Accept an error report: the department agrees the product is wrong.
    The product's page shows it until the product next changes (a harvest
    or an edit that corrects it).

    :param id: the item id (an error report)
    :param body: a note to the filer (Markdown, optional)
    """
    row = _load(data_dict)
    tk.check_access("shanghai_desk_item_accept", context, {"id": row["id"]})
    user = _user(context)
    if row["kind"] != "error":
        raise _error("desk-not-error-report", "id", "只有纠错可以确认", "Only an error report can be accepted")
    if row["status"] == "closed":
        raise _closed_refusal()
    if row.get("accepted") is not None:
        raise _error("desk-already-accepted", "id", "该纠错已确认", "This error report is already accepted")
    body = _text(data_dict, "body", "说明", "The note", required=False)
    fields = dict(_answer_fields(row), accepted=store.now(), status="answered")
    updated = _changed(row, store.update_item(row["id"], _OPEN, **fields))
    store.record(row["id"], "accept", actor=user, organization_id=row["organization_id"], body=body,
                 detail={"on_time": store.answered_on_time(updated)})
    accepted = _done(updated, user, "accepted")
    quality.reindex(row["package_id"])
    return accepted


def shanghai_desk_item_close(context, data_dict):
    """Close an item with a reason (closing answers it, if not yet).

    :param id: the item id
    :param reason: for a data request ``released`` (link the new product),
        ``exists`` (link), ``partly_released`` (link), ``later`` (date),
        ``elsewhere`` (link), ``not_suitable`` (basis: the legal basis),
        ``cannot_compile``; for an error report ``corrected`` or
        ``not_an_error`` (note); for a comment ``answered``. The filer's
        ``withdrawn`` is shanghai_desk_item_withdraw.
    :param link: the product's address (released, exists, partly_released,
        elsewhere)
    :param date: when it will be released, YYYY-MM-DD (later)
    :param basis: the legal basis (not_suitable)
    :param note: an explanation (Markdown; required for not_an_error)
    """
    row = _load(data_dict)
    tk.check_access("shanghai_desk_item_close", context, {"id": row["id"]})
    user = _user(context)
    if row["status"] == "closed":
        raise _error("desk-already-closed", "id", "该留言已办结", "This item is already closed")
    reasons = {k: v for k, v in store.CLOSE_REASONS[row["kind"]].items() if k != "withdrawn"}
    reason = data_dict.get("reason")
    if reason not in reasons:
        raise _error("desk-bad-close-reason", "reason", "办结理由应为 " + "、".join(reasons),
                     "reason must be one of " + ", ".join(reasons), reason)
    needs = reasons[reason]
    fields: dict[str, Any] = {"close_reason": reason, "close_link": None, "close_date": None}
    note = _text(data_dict, "note", "说明", "A note", required=needs == "note")
    if needs == "link":
        fields["close_link"] = _link(data_dict)
    elif needs == "date":
        fields["close_date"] = _date(data_dict, "date")
        if fields["close_date"] < store.local_today():
            raise _error("desk-date-past", "date", "计划开放日期不能早于今天", "The release date cannot be in the past",
                         data_dict.get("date"))
    elif needs == "basis":
        note = "\n\n".join(filter(None, [_text(data_dict, "basis", "法律依据", "The legal basis"), note]))
    fields["close_note"] = note
    updated = _changed(row, store.update_item(row["id"], _OPEN, status="closed", closed=store.now(),
                                              **fields, **_answer_fields(row)))
    store.record(row["id"], "close", actor=user, organization_id=row["organization_id"], body=note,
                 detail={"reason": reason, "link": fields["close_link"], "date": fields["close_date"],
                         "on_time": store.answered_on_time(updated)})
    return _done(updated, user, "closed")


def shanghai_desk_item_reopen(context, data_dict):
    """Reopen a closed item (its department, or its filer who is not
    satisfied); the department answers it again.

    :param id: the item id
    :param reason: why
    """
    row = _load(data_dict)
    tk.check_access("shanghai_desk_item_reopen", context, {"id": row["id"]})
    user = _user(context)
    if row["status"] != "closed":
        raise _error("desk-not-closed", "id", "该留言未办结", "This item is not closed")
    reason = _text(data_dict, "reason", "理由", "A reason")
    updated = _changed(row, store.update_item(row["id"], ("closed",), status="acknowledged", closed=None,
                                              close_reason=None, close_link=None, close_date=None,
                                              close_note=None))
    store.record(row["id"], "reopen", actor=user, organization_id=row["organization_id"], body=reason,
                 detail={"was": row["close_reason"]})
    model.repo.commit()
    full = _with_names(updated)
    notify.tell_public(full, "reopened", user)
    if user.id == row["user_id"]:
        notify.tell_department(full, "reopened", user)
    return item_dict(full, user)


def shanghai_desk_item_withdraw(context, data_dict):
    """The filer withdraws an item that is not closed.

    :param id: the item id
    """
    row = _load(data_dict)
    tk.check_access("shanghai_desk_item_withdraw", context, {"id": row["id"]})
    user = _user(context)
    if user.id != row["user_id"]:  # sysadmins pass every auth function; this is the filer's word only
        raise tk.NotAuthorized("只有提出人可以撤回 / Only the filer may withdraw this item")
    if row["status"] == "closed":
        raise _error("desk-already-closed", "id", "该留言已办结", "This item is already closed")
    updated = _changed(row, store.update_item(row["id"], _OPEN, status="closed", closed=store.now(),
                                              close_reason="withdrawn"))
    store.record(row["id"], "close", actor=user, organization_id=row["organization_id"],
                 detail={"reason": "withdrawn"})
    model.repo.commit()
    full = _with_names(updated)
    notify.tell_department(full, "closed", user)
    return item_dict(full, user)


def shanghai_desk_item_follow(context, data_dict):
    """Follow an item (notices, and e-mail if configured, on every answer),
    or stop following it.

    :param id: the item id
    :param follow: true (default) or false
    """
    row = _load(data_dict)
    tk.check_access("shanghai_desk_item_follow", context, {"id": row["id"]})
    user = _user(context)
    following = tk.asbool(data_dict.get("follow", True))
    store.set_following(row["id"], user.id, following)
    model.repo.commit()
    return {"id": row["id"], "following": following, "followers": len(store.followers(row["id"]))}


# --------------------------------------------------------------------------
# Notices and the league table


def shanghai_desk_notice_list(context, data_dict):
    """Your notices: items filed to your desk, answers to items you follow.

    :param mark_seen: true to mark them all seen (default false)
    :returns: ``{"unseen": n, "results": [...]}``
    """
    tk.check_access("shanghai_desk_notice_list", context, data_dict)
    user = _user(context)
    rows = store.notices(user.id)
    unseen = store.unseen_notices(user.id)
    if tk.asbool(data_dict.get("mark_seen") or False):
        store.mark_notices_seen(user.id)
        model.repo.commit()
    return {"unseen": unseen, "results": [{key: _iso(value) for key, value in r.items()} for r in rows]}


@tk.side_effect_free
def shanghai_desk_league(context, data_dict):
    """The public league table: per department, requests, error reports
    and comments, the median working days to a first answer, the share of
    due items answered on time and the requests resolved by releasing data.

    :param organization: only this department (optional)
    :returns: ``{"departments": [...], "acknowledge_working_days": n, "answer_working_days": n}``
    """
    tk.check_access("shanghai_desk_league", context, data_dict)
    organization_id = _organization(data_dict["organization"]).id if data_dict.get("organization") else None
    return {"departments": store.league(organization_id),
            "acknowledge_working_days": store.acknowledge_days(), "answer_working_days": store.answer_days()}

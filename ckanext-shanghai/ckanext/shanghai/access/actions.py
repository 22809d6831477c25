"""Actions of conditional access: apply, list, show, decide, revoke and
withdraw requests; data-use agreements; the audit trail; on-time figures.
Every change is audited in the same transaction as the change itself."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.access import notify, policy, store

log = logging.getLogger(__name__)

__all__ = [
    "shanghai_access_request_create", "shanghai_access_request_show", "shanghai_access_request_list",
    "shanghai_access_request_decide", "shanghai_access_grant_revoke", "shanghai_access_request_withdraw",
    "shanghai_access_agreement_show", "shanghai_access_agreement_publish", "shanghai_access_audit_list",
    "shanghai_access_statistics",
]

_TEXT_LIMIT = 4000


def _error(field: str, zh: str, en: str):
    return tk.ValidationError({field: [f"{zh} / {en}"]})


def _text(data_dict: dict, field: str, zh_name: str, en_name: str, required: bool = True) -> str:
    value = data_dict.get(field)
    value = "" if value is None else str(value).strip()
    if required and not value:
        raise _error(field, f"请填写{zh_name}", f"{en_name} is required")
    if len(value) > _TEXT_LIMIT:
        raise _error(field, f"{zh_name}不能超过 {_TEXT_LIMIT} 字", f"{en_name} is longer than {_TEXT_LIMIT} characters")
    return value


def _date(data_dict: dict, field: str, zh_name: str, en_name: str) -> dt.date:
    value = data_dict.get(field)
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value or "").strip()[:10])
    except ValueError:
        raise _error(field, f"{zh_name}应为日期（YYYY-MM-DD）", f"{en_name} must be a date (YYYY-MM-DD)")


def _page(data_dict: dict, default_limit: int) -> tuple[int, int]:
    try:
        limit = min(max(int(data_dict.get("limit") or default_limit), 1), 1000)
        offset = max(int(data_dict.get("offset") or 0), 0)
    except (TypeError, ValueError):
        raise _error("limit", "limit 和 offset 应为整数", "limit and offset must be whole numbers")
    return limit, offset


def _check_last_day(day: dt.date, field: str, past: tuple[str, str], too_far: tuple[str, str]) -> None:
    """A period asked for, or a grant's expiry: from today (city time) to
    at most max_grant_days ahead."""
    today = store.local_today()
    max_days = int(tk.config.get("ckanext.shanghai.access.max_grant_days"))
    if day < today:
        raise _error(field, *past)
    if day > today + dt.timedelta(days=max_days):
        raise _error(field, too_far[0].format(max_days), too_far[1].format(max_days))


def _user(context: dict) -> model.User:
    user = policy.user_of(context)
    if user is None:
        raise tk.NotAuthorized("请先登录 / Please sign in")
    return user


def _conditional_product(package_id: str) -> model.Package:
    package = model.Package.get(package_id or "")
    if package is None or package.state != "active":
        raise tk.ObjectNotFound("没有该数据产品 / No such data product")
    if not policy.is_conditional(package):
        raise _error("package_id", "该数据产品无条件开放，可直接下载，无需申请",
                     "This data product is open to all; no request is needed")
    return package


def _organization_id(data_dict: dict, field: str = "organization") -> str:
    group = model.Group.get(str(data_dict.get(field) or ""))
    if group is None or not group.is_organization:
        raise tk.ObjectNotFound("没有该部门 / No such department")
    return group.id


def request_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A request as the API and pages show it, with its working days left
    (open) or whether it was answered on time (decided), and its grant."""
    today = store.local_today()
    calendar = store.calendar()
    out = {key: (store.local_time(value).isoformat() if isinstance(value, dt.datetime)
                 else value.isoformat() if isinstance(value, dt.date) else value)
           for key, value in row.items()}
    out["deadline_working_days"] = store.deadline_limit()
    if row["status"] == "pending":
        out["working_days_left"] = calendar.days_left(today, row["deadline"])
        out["overdue"] = today > row["deadline"]
        out["answered_on_time"] = None
    else:
        out["working_days_left"] = None
        out["overdue"] = False
        out["answered_on_time"] = store.answered_on_time(row["decided"], row["deadline"]) \
            if row.get("decided") else None
    out["grant_active"] = store.grant_is_active(row, today)
    agreement = store.get_agreement(row["agreement_id"])
    out["agreement_version"] = agreement["version"] if agreement else None
    out["agreement_is_city_standard"] = bool(agreement) and agreement["organization_id"] is None
    return out


def _load_request(data_dict: dict) -> dict[str, Any]:
    row = store.get_request(str(tk.get_or_bust(data_dict, "id")))
    if row is None:
        raise tk.ObjectNotFound("没有该申请 / No such request")
    return row


def _with_names(row: dict[str, Any]) -> dict[str, Any]:
    _, rows = store.list_requests(request_id=row["id"], limit=1)
    return rows[0] if rows else row


# --------------------------------------------------------------------------
# Requests


def shanghai_access_request_create(context, data_dict):
    """Apply for the data of a conditionally open product.

    :param package_id: the product's id or name
    :param purpose: what the data is for (申请用途)
    :param intended_use: how it will be used: systems, scenarios, who sees it (使用场景)
    :param applicant_org: the organisation applying (申请单位)
    :param period_end: the last day the data is needed, YYYY-MM-DD
    :param agreement_version: the version of the department's data-use
        agreement the applicant read (see shanghai_access_agreement_show)
    :param accept_agreement: must be true
    :returns: the request, with its deadline and working days left
    """
    tk.check_access("shanghai_access_request_create", context, data_dict)
    user = _user(context)
    package = _conditional_product(str(data_dict.get("package_id") or ""))
    purpose = _text(data_dict, "purpose", "申请用途", "The purpose")
    intended_use = _text(data_dict, "intended_use", "使用场景", "The intended use")
    applicant_org = _text(data_dict, "applicant_org", "申请单位", "The applicant organisation")
    period_end = _date(data_dict, "period_end", "使用期限", "The period's end")
    _check_last_day(period_end, "period_end", ("使用期限不能早于今天", "The period cannot end before today"),
                    ("使用期限最长 {} 天", "The period can be at most {} days"))
    if not tk.asbool(data_dict.get("accept_agreement")):
        raise _error("accept_agreement", "请阅读并同意数据使用协议", "Read and accept the data use agreement")
    agreement = store.current_agreement(package.owner_org)
    try:
        accepted_version = int(data_dict.get("agreement_version"))
    except (TypeError, ValueError):
        raise _error("agreement_version", "请注明所同意的协议版本", "Say which agreement version you accept")
    if accepted_version != agreement["version"]:
        raise _error("agreement_version",
                     f"数据使用协议已更新为第 {agreement['version']} 版，请重新阅读后再提交",
                     f"The data use agreement is now version {agreement['version']}; read it and submit again")
    if policy.access_level(user, package.id, package.owner_org) in ("sysadmin", "department"):
        raise _error("package_id", "您所在部门或管理员身份已可使用该数据，无需申请",
                     "You already have this data as a sysadmin or a member of its department")
    if store.active_grant(user.id, package.id) is not None:
        raise _error("package_id", "您已获得该数据产品的使用授权", "You already have access to this data product")
    _, open_requests = store.list_requests(user_id=user.id, package_id=package.id, status="pending", limit=1)
    if open_requests:
        raise _error("package_id", "您对该数据产品已有待审核的申请", "You already have an open request for this product")
    row = store.create_request(
        package_id=package.id, organization_id=package.owner_org, user_id=user.id, purpose=purpose,
        intended_use=intended_use, applicant_org=applicant_org, period_end=period_end,
        agreement_id=agreement["id"])
    detail = {"purpose": purpose, "intended_use": intended_use, "applicant_org": applicant_org,
              "period_end": period_end}
    store.record("apply", actor=user, organization_id=package.owner_org, package_id=package.id,
                 request_id=row["id"], detail=detail)
    store.record("agreement_accept", actor=user, organization_id=package.owner_org, package_id=package.id,
                 request_id=row["id"], detail={"agreement_id": agreement["id"], "version": agreement["version"],
                                               "city_standard": agreement["organization_id"] is None})
    model.repo.commit()
    return request_dict(_with_names(row))


@tk.side_effect_free
def shanghai_access_request_show(context, data_dict):
    """One request, for its applicant, its department's admins and sysadmins.

    :param id: the request id
    """
    row = _load_request(data_dict)
    tk.check_access("shanghai_access_request_show", context, {"id": row["id"]})
    user = policy.user_of(context)
    if user is not None and user.id == row["user_id"] and row.get("unseen"):
        store.update_request(row["id"], row["status"], unseen=False)
        model.repo.commit()
        row["unseen"] = False
    return request_dict(_with_names(row))


@tk.side_effect_free
def shanghai_access_request_list(context, data_dict):
    """Requests: your own (``scope=mine``, the default), or the queue of
    the departments you administer (``scope=queue``; a sysadmin sees every
    department's).

    :param scope: ``mine`` or ``queue``
    :param organization: only this department (queue)
    :param package_id: only this product
    :param status: pending, approved, rejected, revoked or withdrawn
    :param limit: at most this many (default 50, at most 1000)
    :param offset: skip this many
    :returns: ``{"count": n, "results": [...], "on_time": {...}}``
    """
    tk.check_access("shanghai_access_request_list", context, data_dict)
    user = _user(context)
    scope = data_dict.get("scope") or "mine"
    status = data_dict.get("status") or None
    if status and status not in ("pending", "approved", "rejected", "revoked", "withdrawn"):
        raise _error("status", "状态应为 pending、approved、rejected、revoked 或 withdrawn",
                     "status must be pending, approved, rejected, revoked or withdrawn")
    limit, offset = _page(data_dict, 50)
    package_id = None
    if data_dict.get("package_id"):
        package = model.Package.get(str(data_dict["package_id"]))
        if package is None:
            raise tk.ObjectNotFound("没有该数据产品 / No such data product")
        package_id = package.id
    organization_ids = None
    if scope == "mine":
        user_id = user.id
    elif scope == "queue":
        user_id = None
        organization_ids = departments_in_view(
            user, data_dict, "只能查看本部门的申请 / Only your own department's requests")
    else:
        raise _error("scope", "scope 应为 mine 或 queue", "scope must be mine or queue")
    count, rows = store.list_requests(user_id=user_id, organization_ids=organization_ids,
                                      package_id=package_id, status=status, limit=limit, offset=offset)
    result = {"count": count, "results": [request_dict(r) for r in rows]}
    if scope == "queue" and organization_ids and len(organization_ids) == 1:
        result["on_time"] = store.on_time(organization_ids[0])
    elif scope == "queue":
        result["on_time"] = store.on_time()
    return result


def administered(user: model.User) -> list[str] | None:
    """Ids of the departments ``user`` administers; None means all (sysadmin)."""
    if user.sysadmin:
        return None
    return [group.id for group in user.get_groups("organization", "admin")]


def departments_in_view(user: model.User, data_dict: dict, refusal: str) -> list[str] | None:
    """The departments a queue or audit request covers: the one asked for
    (``organization``), if ``user`` administers it, else all they administer
    (None: all, for a sysadmin)."""
    organization_ids = administered(user)
    if data_dict.get("organization"):
        wanted = _organization_id(data_dict)
        if organization_ids is not None and wanted not in organization_ids:
            raise tk.NotAuthorized(refusal)
        return [wanted]
    return organization_ids


def shanghai_access_request_decide(context, data_dict):
    """Approve or reject an open request (the owning department's admins,
    sysadmins).

    :param id: the request id
    :param decision: ``approve`` or ``reject``
    :param reason: why; required to reject
    :param expires: last day of access, YYYY-MM-DD (approve; default the
        end of the period the applicant asked for)
    """
    row = _load_request(data_dict)
    tk.check_access("shanghai_access_request_decide", context, {"id": row["id"]})
    user = _user(context)
    decision = data_dict.get("decision")
    if decision not in ("approve", "reject"):
        raise _error("decision", "请选择通过或不通过", "decision must be approve or reject")
    reason = _text(data_dict, "reason", "理由", "A reason", required=decision == "reject")
    fields: dict[str, Any] = {"decided": store.now(), "decided_by": user.id, "decision_reason": reason or None,
                              "unseen": True}
    if decision == "approve":
        expires = _date(data_dict, "expires", "授权截止日期", "The expiry") if data_dict.get("expires") \
            else row["period_end"]
        _check_last_day(expires, "expires", ("授权截止日期不能早于今天", "The expiry cannot be before today"),
                        ("授权最长 {} 天", "Access can run for at most {} days"))
        fields.update(status="approved", expires=expires)
    else:
        fields.update(status="rejected")
    if row["status"] != "pending":
        raise _error("id", "该申请已处理，不能再审核", f"This request is already {row['status']}")
    updated = store.update_request(row["id"], "pending", **fields)
    if updated is None:  # decided by someone else meanwhile
        raise _error("id", "该申请已被他人处理", "Someone else has just decided this request")
    store.record("approve" if decision == "approve" else "reject", actor=user,
                 organization_id=row["organization_id"], package_id=row["package_id"], request_id=row["id"],
                 detail={"reason": reason, "expires": fields.get("expires"),
                         "on_time": store.answered_on_time(fields["decided"], row["deadline"])})
    model.repo.commit()
    updated = _with_names(updated)
    _notify(updated, "approved" if decision == "approve" else "rejected")
    return request_dict(updated)


def shanghai_access_grant_revoke(context, data_dict):
    """Revoke an approved grant at once (the owning department's admins,
    sysadmins).

    :param id: the request id
    :param reason: why
    """
    row = _load_request(data_dict)
    tk.check_access("shanghai_access_grant_revoke", context, {"id": row["id"]})
    user = _user(context)
    reason = _text(data_dict, "reason", "撤销理由", "A reason")
    if row["status"] != "approved":
        raise _error("id", "只有已通过的申请才能撤销授权", "Only an approved request's access can be revoked")
    updated = store.update_request(row["id"], "approved", status="revoked", revoked=store.now(),
                                   revoked_by=user.id, revoke_reason=reason, unseen=True)
    if updated is None:
        raise _error("id", "该授权已被他人撤销", "Someone else has just revoked this access")
    store.record("revoke", actor=user, organization_id=row["organization_id"], package_id=row["package_id"],
                 request_id=row["id"], detail={"reason": reason})
    model.repo.commit()
    updated = _with_names(updated)
    _notify(updated, "revoked")
    return request_dict(updated)


def shanghai_access_request_withdraw(context, data_dict):
    """The applicant withdraws a request still waiting for a decision.

    :param id: the request id
    """
    row = _load_request(data_dict)
    tk.check_access("shanghai_access_request_withdraw", context, {"id": row["id"]})
    user = _user(context)
    updated = store.update_request(row["id"], "pending", status="withdrawn")
    if updated is None:
        raise _error("id", "该申请已处理，不能撤回", f"This request is already {row['status']}")
    store.record("withdraw", actor=user, organization_id=row["organization_id"], package_id=row["package_id"],
                 request_id=row["id"])
    model.repo.commit()
    return request_dict(_with_names(updated))


def _notify(row: dict[str, Any], event: str) -> None:
    if not notify.enabled():
        return
    applicant = model.User.get(row["user_id"])
    subject, body = notify.decision_mail(row, event)
    try:
        notify.send(applicant, subject, body)
        outcome = {"event": event, "sent_to": applicant.email}
    except Exception as error:  # the decision stands; the failure is on record
        log.warning("could not e-mail the decision on request %s: %r", row["id"], error)
        outcome = {"event": event, "failed": type(error).__name__}
    store.record("notify_email", actor=None, organization_id=row["organization_id"],
                 package_id=row["package_id"], request_id=row["id"], detail=outcome)
    model.repo.commit()


# --------------------------------------------------------------------------
# Agreements


def _agreement_dict(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "organization_id": row["organization_id"], "version": row["version"],
            "city_standard": row["organization_id"] is None, "text_zh": row["text_zh"],
            "text_en": row["text_en"], "created": store.local_time(row["created"]).isoformat()}


@tk.side_effect_free
def shanghai_access_agreement_show(context, data_dict):
    """The data-use agreement an applicant accepts: the department's latest
    version, or the city's standard text if it has none.

    :param organization: the department's id or name (or give package_id)
    :param package_id: a product of the department
    """
    tk.check_access("shanghai_access_agreement_show", context, data_dict)
    if data_dict.get("package_id"):
        package = model.Package.get(str(data_dict["package_id"]))
        if package is None or package.state != "active":
            raise tk.ObjectNotFound("没有该数据产品 / No such data product")
        organization_id = package.owner_org
    else:
        organization_id = _organization_id(data_dict)
    return _agreement_dict(store.current_agreement(organization_id))


def shanghai_access_agreement_publish(context, data_dict):
    """Publish a new version of a department's data-use agreement (its
    admins, sysadmins). Earlier versions are kept; open requests keep the
    version their applicants accepted.

    :param organization: the department's id or name
    :param text_zh: the agreement in Chinese
    :param text_en: the agreement in English (optional)
    """
    organization_id = _organization_id(data_dict)
    tk.check_access("shanghai_access_agreement_publish", context, {"organization": organization_id})
    user = _user(context)
    text_zh = _text(data_dict, "text_zh", "协议中文文本", "The Chinese text")
    text_en = _text(data_dict, "text_en", "协议英文文本", "The English text", required=False)
    if len(text_zh) < 20:
        raise _error("text_zh", "协议文本太短", "The agreement text is too short")
    row = store.publish_agreement(organization_id, text_zh, text_en, user.id)
    store.record("agreement_publish", actor=user, organization_id=organization_id,
                 detail={"agreement_id": row["id"], "version": row["version"]})
    model.repo.commit()
    return _agreement_dict(row)


# --------------------------------------------------------------------------
# Audit and figures


@tk.side_effect_free
def shanghai_access_audit_list(context, data_dict):
    """The audit trail: every request, decision, agreement acceptance and
    every download or DataStore query under a grant (who, what, when).
    Department admins see their departments', sysadmins everything.

    :param organization: only this department
    :param package_id: only this product
    :param request_id: only this request
    :param action: only this kind (apply, agreement_accept, approve, reject,
        revoke, withdraw, download, datastore_query, agreement_publish, notify_email)
    :param limit: at most this many (default 100, at most 1000)
    :param offset: skip this many
    """
    tk.check_access("shanghai_access_audit_list", context, data_dict)
    limit, offset = _page(data_dict, 100)
    rows = store.audit_rows(**audit_filters(_user(context), data_dict), limit=limit, offset=offset)
    return [dict(row, at=row["at"].isoformat()) for row in rows]


def audit_filters(user: model.User, data_dict: dict) -> dict[str, Any]:
    """store.audit_rows' filters for what ``user`` may read of the trail
    (the action and its CSV export share them)."""
    package_id = None
    if data_dict.get("package_id"):
        package = model.Package.get(str(data_dict["package_id"]))
        package_id = package.id if package is not None else str(data_dict["package_id"])
    return {"organization_ids": departments_in_view(
                user, data_dict, "只能查看本部门的审计记录 / Only your own department's audit trail"),
            "package_id": package_id, "request_id": data_dict.get("request_id"),
            "action": data_dict.get("action")}


@tk.side_effect_free
def shanghai_access_statistics(context, data_dict):
    """Public figures: how many requests were answered within the city's
    deadline, in all and per department.

    :param organization: only this department (optional)
    """
    tk.check_access("shanghai_access_statistics", context, data_dict)
    if data_dict.get("organization"):
        return store.on_time(_organization_id(data_dict))
    return store.on_time()


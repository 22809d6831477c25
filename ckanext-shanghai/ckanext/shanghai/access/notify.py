"""Telling an applicant about a decision by e-mail, when the operator has
turned it on (ckanext.shanghai.access.notify_email) and configured CKAN's
smtp.* options. A mail server that is down or slow never holds up or undoes
the decision: the failure is logged and recorded in the audit trail."""
from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import ckan.model as model
import ckan.plugins.toolkit as tk

log = logging.getLogger(__name__)

__all__ = ["enabled", "decision_mail", "send"]

_SUBJECTS = {
    "approved": ("数据申请已通过", "Your data request was approved"),
    "rejected": ("数据申请未通过", "Your data request was not approved"),
    "revoked": ("数据使用授权已撤销", "Your data access was revoked"),
}


def enabled() -> bool:
    return tk.asbool(tk.config.get("ckanext.shanghai.access.notify_email"))


def decision_mail(request: dict, event: str) -> tuple[str, str]:
    """(subject, body) in Chinese then English."""
    zh, en = _SUBJECTS[event]
    site = tk.config.get("ckan.site_url").rstrip("/")
    link = f"{site}/access/request/{request['id']}"
    title = request.get("package_title") or request["package_id"]
    lines = [f"{zh}：{title}", ""]
    if event == "approved":
        lines.append(f"授权有效期至 {request['expires']}（含当日）。")
    reason = request.get("revoke_reason") if event == "revoked" else request.get("decision_reason")
    if reason:
        lines.append(f"理由：{reason}")
    lines += [f"详情：{link}", "", "——", "", f"{en}: {title}", ""]
    if event == "approved":
        lines.append(f"Access runs to the end of {request['expires']}.")
    if reason:
        lines.append(f"Reason: {reason}")
    lines.append(f"Details: {link}")
    return f"{zh} / {en}：{title}", "\n".join(lines)


def send(user: model.User, subject: str, body: str) -> None:
    """Raises on failure; the caller records it."""
    if not user.email:
        raise ValueError("申请人没有电子邮箱 / The applicant has no e-mail address")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = tk.config.get("smtp.mail_from") or f"noreply@{_host()}"
    message["To"] = user.email
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid()
    message.set_content(body)
    server = tk.config.get("smtp.server") or "localhost"
    host, _, port = server.partition(":")
    timeout = float(tk.config.get("ckanext.shanghai.access.smtp_timeout"))
    with smtplib.SMTP(host, int(port or 25), timeout=timeout) as smtp:
        if tk.asbool(tk.config.get("smtp.starttls")):
            smtp.starttls()
        if tk.config.get("smtp.user"):
            smtp.login(tk.config.get("smtp.user"), tk.config.get("smtp.password") or "")
        smtp.send_message(message)


def _host() -> str:
    from urllib.parse import urlsplit

    return urlsplit(tk.config.get("ckan.site_url")).hostname or "localhost"

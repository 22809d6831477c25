"""Who hears of what on the public desk, in the portal (a notice on their
page) and by e-mail when the operator turns it on
(ckanext.shanghai.desk.notify_email, CKAN's smtp.* options): the department
on a new or transferred item and before a deadline, the filer and followers
on every answer. A mail server that is down never undoes the step: the
failure is logged and kept in the item's trail."""
from __future__ import annotations

import logging

import ckan.model as model
import ckan.plugins.toolkit as tk

from ckanext.shanghai.access.notify import send
from ckanext.shanghai.desk import store
from ckanext.shanghai.desk.labels import LABELS

log = logging.getLogger(__name__)

__all__ = ["EVENTS", "department_people", "tell_department", "tell_public", "mail"]

EVENTS = LABELS["event"]


def department_people(organization_id: str | None) -> list[model.User]:
    """The department's editors and admins; sysadmins for an item with no
    department."""
    if organization_id is None:
        return model.Session.query(model.User).filter(model.User.sysadmin.is_(True),
                                                      model.User.state == "active").all()
    query = (model.Session.query(model.User)
             .join(model.Member, model.Member.table_id == model.User.id)
             .filter(model.Member.group_id == organization_id, model.Member.table_name == "user",
                     model.Member.state == "active", model.Member.capacity.in_(("editor", "admin")),
                     model.User.state == "active"))
    # The site user owns departments made by set-up commands; nobody reads its mail.
    return [user for user in query.all() if user.name != tk.config.get("ckan.site_id")]


def tell_department(row: dict, event: str, actor: model.User | None) -> None:
    people = [u for u in department_people(row["organization_id"]) if actor is None or u.id != actor.id]
    _tell(row, event, people)


def tell_public(row: dict, event: str, actor: model.User | None) -> None:
    """The filer and every follower, but not the one who acted."""
    ids = [row["user_id"], *store.followers(row["id"])]
    people = [u for u in (model.User.get(i) for i in dict.fromkeys(ids))
              if u is not None and u.state == "active" and (actor is None or u.id != actor.id)]
    _tell(row, event, people)


def _tell(row: dict, event: str, people: list[model.User]) -> None:
    store.add_notices([u.id for u in people], row["id"], event)
    model.repo.commit()
    if not tk.asbool(tk.config.get("ckanext.shanghai.desk.notify_email")):
        return
    subject, body = mail(row, event)
    for person in people:
        try:
            send(person, subject, body)
            outcome = {"event": event, "sent_to": person.email}
        except Exception as error:  # the step stands; the failure is on record
            log.warning("could not e-mail %s about desk item %s: %r", person.name, row["id"], error)
            outcome = {"event": event, "to": person.name, "failed": type(error).__name__}
        store.record(row["id"], "notify_email", actor=None, organization_id=row["organization_id"],
                     detail=outcome)
    model.repo.commit()


def mail(row: dict, event: str) -> tuple[str, str]:
    """(subject, body), Chinese then English."""
    zh, en = EVENTS[event]
    link = f"{tk.config.get('ckan.site_url').rstrip('/')}/desk/item/{row['id']}"
    lines = [f"{zh}：{row['title']}", f"答复期限：{row['answer_deadline']}", f"详情：{link}", "", "——", "",
             f"{en}: {row['title']}", f"Answer due: {row['answer_deadline']}", f"Details: {link}"]
    return f"{zh} / {en}：{row['title']}", "\n".join(lines)

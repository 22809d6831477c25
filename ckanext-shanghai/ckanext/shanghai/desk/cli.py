"""``ckan shanghai desk-remind``: remind each department of the items on
its desk whose acknowledge or answer deadline is near or past (run daily,
e.g. from cron; an item is reminded at most once a day)."""
from __future__ import annotations

import click

import ckan.model as model
import ckan.plugins.toolkit as tk

__all__ = ["desk_remind"]


@click.command("desk-remind", short_help="Remind departments of desk deadlines / 提醒部门留言即将到期")
def desk_remind():
    """Notify each department's editors and admins of unanswered items due
    within ckanext.shanghai.desk.remind_working_days working days."""
    from ckanext.shanghai.desk import notify, store

    within = int(tk.config.get("ckanext.shanghai.desk.remind_working_days"))
    rows = store.due_soon(within)
    today = store.local_today()
    for row in rows:
        store.update_item(row["id"], (row["status"],), reminded=today)
        store.record(row["id"], "remind", actor=None, organization_id=row["organization_id"],
                     detail={"ack_deadline": row["ack_deadline"], "answer_deadline": row["answer_deadline"]})
        model.repo.commit()
        notify.tell_department(row, "reminder", None)
    click.echo(f"reminded {len(rows)} item(s) / 已提醒 {len(rows)} 条")

"""Commands of real-time products: ``ckan shanghai-realtime prune`` drops
history partitions older than the retention (run it daily, e.g. from cron);
``ckan shanghai-realtime webhooks`` delivers webhooks (a long-running
process, like the harvest consumers)."""
from __future__ import annotations

import json
import time

import click

import ckan.plugins.toolkit as tk

__all__ = ["shanghai_realtime"]


@click.group("shanghai-realtime", short_help="Real-time data products")
def shanghai_realtime():
    """Real-time data products."""


@shanghai_realtime.command("prune")
def prune():
    """Drop history partitions older than ckanext.shanghai.realtime.retention_days."""
    site = tk.get_action("get_site_user")({"ignore_auth": True}, {})
    result = tk.get_action("shanghai_realtime_prune")({"user": site["name"], "ignore_auth": True}, {})
    click.echo(f"retention {result['retention_days']} days; dropped {len(result['dropped'])} day(s): "
               f"{', '.join(result['dropped']) or '-'}")


@shanghai_realtime.command("webhooks")
@click.option("--until-idle", is_flag=True, help="Stop when nothing is due instead of waiting for more.")
def deliver(until_idle):
    """Deliver due webhooks, round after round."""
    from ckanext.shanghai.realtime import webhooks

    poll = float(tk.config.get("ckanext.shanghai.realtime.stream_poll_seconds"))
    while True:
        results = webhooks.deliver_due()
        for result in results:
            click.echo(json.dumps(result, ensure_ascii=False, default=str))
        if until_idle and not results:
            return
        time.sleep(poll)

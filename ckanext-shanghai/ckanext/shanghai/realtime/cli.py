"""Commands of real-time products: ``ckan shanghai-realtime prune`` drops
history partitions older than the retention (run it daily, e.g. from cron);
``ckan shanghai-realtime webhooks`` delivers webhooks (a long-running
process, like the harvest consumers); ``ckan shanghai-realtime simulate``
is the demo's car-park feed simulator (`make serve` runs it);
``ckan shanghai-realtime streams`` serves the products' Server-Sent Events
streams (a long-running process beside the web app)."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

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


@shanghai_realtime.command("streams")
@click.option("--bind", default=None, metavar="HOST:PORT",
              help="Where to listen (default: ckanext.shanghai.realtime.stream_bind).")
@click.pass_context
def streams(ctx, bind):
    """Serve the Server-Sent Events streams of real-time products (the web
    app's stream address redirects here with a ticket)."""
    from ckanext.shanghai.realtime import streams as stream_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    bind = bind or tk.config.get("ckanext.shanghai.realtime.stream_bind")
    try:
        stream_server.parse_bind(bind)
    except ValueError as error:
        raise click.BadParameter(f"{error} (例如 / e.g. 127.0.0.1:5010)", param_hint="--bind")
    click.echo(f"stream server on {bind}", err=True)
    stream_server.serve(ctx.meta["flask_app"], bind)


@shanghai_realtime.command("simulate")
@click.option("--places", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV of real places (id, district, name, address, lng, lat): the car parks' addresses.")
@click.option("--department", default="上海市交通委员会", show_default=True,
              help="Title or name of the department that publishes the simulated product.")
@click.option("--url", "base_url", default=None, help="The portal's address (default: ckan.site_url).")
@click.option("--interval", default=60, show_default=True, type=click.IntRange(min=10),
              help="Seconds between pushes (the product's declared interval when it is created).")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where the push key is kept between runs (default: in ckan.storage_path).")
@click.option("--wait", default=3600, show_default=True, help="Seconds to wait for the department to exist.")
@click.option("--rounds", default=None, type=int, help="Stop after this many pushes (default: run until stopped).")
def simulate(places, department, base_url, interval, key_file, wait, rounds):
    """Push simulated car-park free spaces to a real-time product, through
    the public push endpoint with a push key, until stopped."""
    import ckan.model as model

    from ckanext.shanghai.realtime import simulator

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parks = simulator.car_parks(places)
    if not parks:
        raise click.ClickException(f"{places}: no rows with coordinates (lng, lat)")
    key_file = key_file or Path(tk.config.get("ckan.storage_path") or ".") / "realtime-simulator.key"
    try:
        feed = simulator.prepare(department, key_file, interval, wait)
    except RuntimeError as error:
        raise click.ClickException(str(error))
    model.Session.remove()
    base_url = base_url or tk.config.get("ckan.site_url")
    click.echo(json.dumps({"product": feed["package"], "resource_id": feed["resource_id"], "car_parks": len(parks),
                           "interval": feed["refresh_seconds"], "url": base_url}, ensure_ascii=False), err=True)
    simulator.run(base_url, feed["resource_id"], feed["key"], parks, feed["refresh_seconds"], rounds)

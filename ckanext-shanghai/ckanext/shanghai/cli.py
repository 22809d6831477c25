"""``ckan shanghai ...`` commands: set-up steps `make serve` runs, and the
harvest queue consumers it starts."""
from __future__ import annotations

import json
import sys

import click

import ckan.model as model
import ckan.plugins.toolkit as tk

__all__ = ["shanghai"]


@click.group(short_help="Shanghai data service network commands / 上海公共数据开放平台命令")
def shanghai():
    """Commands of the Shanghai data service network portal."""


def _site_user_context() -> dict:
    site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})
    return {"user": site_user["name"], "ignore_auth": True}


@shanghai.command("bootstrap-admin")
@click.argument("name")
@click.option("--email", required=True)
@click.option("--password", envvar="SHANGHAI_ADMIN_PASSWORD", required=True,
              help="Read from SHANGHAI_ADMIN_PASSWORD when not given.")
@click.option("--token/--no-token", "make_token", default=True,
              help="Also create an API token and print it.")
def bootstrap_admin(name: str, email: str, password: str, make_token: bool):
    """Create the sysadmin NAME if it does not exist (idempotent) and print
    its name and a new API token as JSON."""
    context = _site_user_context()
    user = model.User.get(name)
    if user is None:
        tk.get_action("user_create")(
            dict(context), {"name": name, "email": email, "password": password}
        )
        user = model.User.get(name)
    if not user.sysadmin:
        user.sysadmin = True
        model.Session.commit()
    result = {"name": name, "created": True}
    if make_token:
        token = tk.get_action("api_token_create")(
            dict(context, user=name), {"user": name, "name": "make-serve"}
        )
        result["token"] = token["token"]
    click.echo(json.dumps(result))


@shanghai.command("harvest-consumer")
@click.argument("kind", type=click.Choice(["gather", "fetch"]))
def harvest_consumer(kind: str):
    """Run the gather or fetch queue consumer; it stays up while idle."""
    from ckanext.shanghai.harvest_queue import run_consumer

    run_consumer(kind)


@shanghai.command("harvest-scheduler")
def harvest_scheduler():
    """Run the harvest scheduler (start due jobs, finish done ones, requeue
    the work of dead consumers) until SIGTERM or SIGINT."""
    from ckanext.shanghai.harvest_scheduler import run_scheduler

    run_scheduler()


@shanghai.command("index-check")
@click.option("--repair/--no-repair", default=False, help="Also fix what differs.")
def index_check(repair: bool):
    """Compare the database with the Solr index (missing, stale and orphaned
    documents); with --repair, fix them. Exits 1 when a difference remains."""
    from ckanext.shanghai import index_check as checker

    difference = checker.compare()
    click.echo(json.dumps({"missing": len(difference.missing), "stale": len(difference.stale),
                           "orphaned": len(difference.orphaned)}))
    if repair and difference.total:
        checker.repair(difference)
        difference = checker.compare()
        click.echo(json.dumps({"after_repair": difference.total}))
    sys.exit(1 if difference.total else 0)


@shanghai.command("search-index-rebuild")
@click.option("--workers", default=2, show_default=True, help="Processes indexing in parallel.")
@click.option("--batch", default=250, show_default=True, help="Datasets per Solr request.")
def search_index_rebuild(workers: int, batch: int):
    """Rebuild the whole search index from the database in place: search
    keeps answering throughout; orphaned documents are removed at the end.
    (重建检索索引，期间检索照常可用。)"""
    from ckanext.shanghai import reindex

    result = reindex.rebuild(workers=workers, batch=batch)
    click.echo(json.dumps({"documents": result.documents, "orphans_removed": result.orphans_removed,
                           "seconds": round(result.seconds, 1),
                           "documents_per_second": round(result.per_second, 1)}))


@shanghai.command("demo")
@click.argument("export_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--mapping", "mapping_name", default="shanghai", show_default=True)
@click.option("--tables", "tables_dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of real tables to attach once the harvest is done (make serve: config/demo/tables).")
def demo(export_path: str, mapping_name: str, tables_dir: str | None):
    """Register a real catalog export as a harvest source owned by the city's
    data centre and start its first job (idempotent)."""
    context = _site_user_context()
    owner = model.Group.get("shanghai-data-centre")
    if owner is None:
        owner_id = tk.get_action("organization_create")(dict(context), {
            "name": "shanghai-data-centre", "title": "上海市大数据中心",
            "department_type": "other",
            "description": "上海市公共数据开放平台的运营单位 / Operator of the city's open data platform",
        })["id"]
    else:
        owner_id = owner.id
    name = f"{mapping_name}-catalog-export"
    source = model.Package.get(name)
    if source is None:
        source_id = tk.get_action("harvest_source_create")(dict(context), {
            "name": name, "title": f"{mapping_name} 目录导出 catalog export", "url": export_path,
            "source_type": "shanghai_agency_export", "owner_org": owner_id,
            "config": json.dumps({"mapping": mapping_name}),
        })["id"]
    else:
        source_id = source.id
    jobs = tk.get_action("harvest_job_list")(dict(context), {"source_id": source_id})
    job = None if jobs else tk.get_action("harvest_job_create")(
        dict(context), {"source_id": source_id, "run": True})
    if tables_dir:
        _enqueue_portal_demo(source_id, tables_dir)
    if job is None:
        click.echo(json.dumps({"source": name, "job": None, "note": "already harvested"}))
        return
    click.echo(json.dumps({"source": name, "job": job["id"]}))


def _enqueue_portal_demo(source_id: str, tables_dir: str) -> None:
    """Once the harvest is done, the job worker attaches the real tables and
    seeds the data applications (ckanext.shanghai.portal_demo)."""
    from pathlib import Path

    from ckanext.shanghai import portal_demo

    tk.enqueue_job(portal_demo.seed_when_harvested, [source_id, str(Path(tables_dir).resolve())],
                   title="portal demo: tables and data applications", rq_kwargs={"timeout": 3600})


@shanghai.command("demo-portal")
@click.argument("tables_dir", type=click.Path(exists=True, file_okay=False))
def demo_portal(tables_dir: str):
    """Attach the real tables to fitting harvested products and seed the data
    applications now (idempotent); prints what was done as JSON."""
    from pathlib import Path

    from ckanext.shanghai import portal_demo

    click.echo(json.dumps(portal_demo.seed(Path(tables_dir)),
                          ensure_ascii=False))


@shanghai.command("harvest-source-create")
@click.argument("name")
@click.argument("url")
@click.argument("source_type")
@click.option("--title")
@click.option("--owner-org", help="The department (organization) that owns the source.")
@click.option("--frequency", default="MANUAL", show_default=True)
@click.option("--config", "source_config", help="Harvester configuration as JSON.")
def harvest_source_create(name, url, source_type, title, owner_org, frequency, source_config):
    """Register a harvest source and print it as JSON.

    Replaces ``ckan harvester source create``, which in ckanext-harvest 1.6.3
    creates the source and then fails printing it (AttributeError).
    """
    data_dict = {
        "name": name,
        "url": url,
        "source_type": source_type,
        "title": title or name,
        "owner_org": owner_org,
        "frequency": frequency,
        "config": source_config,
    }
    try:
        source = tk.get_action("harvest_source_create")(_site_user_context(), data_dict)
    except tk.ValidationError as error:
        click.echo(json.dumps({"error": error.error_dict}, ensure_ascii=False), err=True)
        sys.exit(1)
    click.echo(json.dumps(
        {key: source.get(key) for key in ("id", "name", "url", "source_type", "frequency", "owner_org")},
        ensure_ascii=False,
    ))

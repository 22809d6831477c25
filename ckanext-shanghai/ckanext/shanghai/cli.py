"""``ckan shanghai ...`` commands of the portal: the set-up steps `make serve`
runs. The harvest plugin (ckanext.shanghai.harvesters) adds its consumers,
scheduler and index commands to the same group."""
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
    as JSON its name, whether this run created it, and a new API token. An
    existing user keeps its e-mail and password and is made a sysadmin."""
    context = _site_user_context()
    user = model.User.get(name)
    created = user is None
    if created:
        tk.get_action("user_create")(
            dict(context), {"name": name, "email": email, "password": password}
        )
        user = model.User.get(name)
    if not user.sysadmin:
        user.sysadmin = True
        model.Session.commit()
    result = {"name": name, "created": created}
    if make_token:
        token = tk.get_action("api_token_create")(
            dict(context, user=name), {"user": name, "name": "make-serve"}
        )
        result["token"] = token["token"]
    click.echo(json.dumps(result))


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
    seeds the data applications (ckanext.shanghai.portal.demo)."""
    from pathlib import Path

    from ckanext.shanghai.portal import demo as portal_demo

    tk.enqueue_job(portal_demo.seed_when_harvested, [source_id, str(Path(tables_dir).resolve())],
                   title="portal demo: tables and data applications", rq_kwargs={"timeout": 3600})


@shanghai.command("demo-portal")
@click.argument("tables_dir", type=click.Path(exists=True, file_okay=False))
def demo_portal(tables_dir: str):
    """Attach the real tables to fitting harvested products and seed the data
    applications now (idempotent); prints what was done as JSON."""
    from pathlib import Path

    from ckanext.shanghai.portal import demo as portal_demo

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


@shanghai.command("check-links")
def check_links():
    """Check the resource links that are due now (as the job worker's
    scheduled round does) and print what was found as JSON."""
    from ckanext.shanghai.assessment import links

    click.echo(json.dumps(links.run_round()))

"""Harvest consumers on two hosts: a fetch consumer started with host 1's
ini and one with host 2's (each rendered by config/stack from the one
template, as `make serve WEB_HOSTS=2` renders them) import one agency
export through the shared Redis queues. The catalog has each record once,
every name unique, and is the catalog one consumer alone makes."""
import time

import pytest

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckanext.harvest import queue as harvest_queue
from ckanext.shanghai.harvesters import records, scheduler
from ckanext.shanghai.harvesters.index import check as index_check

from portal_testing import (create_source, empty_database, load_catalog, run_job, site_context, stack_services,
                            start_ckan, write_export)


def catalog() -> dict[str, tuple]:
    """Every data product: name -> (title, department, resources)."""
    model.Session.remove()
    return {package.name: (package.title, package.owner_org and model.Group.get(package.owner_org).name,
                           len(package.resources))
            for package in model.Session.query(model.Package).filter(
                model.Package.type != "harvest", model.Package.state == "active")}


def test_fetch_consumers_on_two_hosts_import_one_source_once(clean_db, clean_index, reset_db, migrate_db_for,
                                                             reset_index, tmp_path):
    profile, services = stack_services()
    from stack.settings import harvest_ini, render_ini

    hosts = [profile.web_host(number) for number in (1, 2)]
    for host in hosts:
        render_ini(profile, services.database_url, services.redis_url, services.solr_url, host=host)
    source_records = load_catalog("shanghai.json")[:300]
    export = write_export(tmp_path / "sh.json", source_records)
    harvest_queue.purge_queues()
    source = create_source("two-hosts", str(export), {"mapping": "shanghai"})
    consumers = [start_ckan(harvest_ini(hosts[0].ini), "shanghai", "harvest-consumer", "gather",
                            log=tmp_path / "gather-host1.log")]
    consumers += [start_ckan(harvest_ini(host.ini), "shanghai", "harvest-consumer", "fetch",
                             log=tmp_path / f"fetch-{host.name}.log") for host in hosts]
    try:
        job_id = tk.get_action("harvest_job_create")(site_context(), {"source_id": source["id"], "run": True})["id"]
        deadline = time.monotonic() + 300
        while True:
            # The scheduler's own steps (its process would run them every few seconds).
            scheduler.finish_jobs(source["id"])
            scheduler.close_reports()
            model.Session.remove()
            report = records.report_for_job(job_id)  # None until the gather consumer opens it
            if report and report["outcome"] != "running":
                break
            assert time.monotonic() < deadline, (tmp_path / "fetch-host2.log").read_text()[-3000:]
            time.sleep(1)
    finally:
        for process in consumers:
            process.terminate()
            process.wait(timeout=30)
    logs = {host.name: (tmp_path / f"fetch-{host.name}.log").read_text(errors="replace") for host in hosts}

    assert report["outcome"] == "finished", report
    two_hosts = catalog()
    names = model.Session.query(model.Package.name).filter(model.Package.type != "harvest")
    assert names.count() == names.distinct().count() == len(two_hosts) == report["added"] > 0
    assert report["added"] + report["rejected"] == report["records_read"] == 300
    assert index_check.compare().total == 0
    assert all("Traceback" not in log for log in logs.values()), logs

    # The same export, one consumer in this process, on an empty portal.
    empty_database(reset_db, migrate_db_for, reset_index)
    run_job(create_source("two-hosts", str(export), {"mapping": "shanghai"})["id"])
    assert catalog() == two_hosts

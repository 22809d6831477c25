"""Harvesting another CKAN portal through its action API. The remote portal
is a real CKAN: this project's own, served by gunicorn on the test port over
the same test database, with the harvest limited to one remote organization."""
import json

import pytest

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers
from ckanext.shanghai.harvesters.mapping import department_slug

from portal_testing import make_department, run_job, site_context

CORE = dict(update_frequency="monthly", open_condition="unconditional")


def harvested() -> dict[str, dict]:
    model.Session.remove()
    rows = model.Session.query(model.Package).filter(
        model.Package.name.like("ckan-%"), model.Package.state == "active")
    return {pkg.name: pkg for pkg in rows}


@pytest.mark.usefixtures("clean_db", "clean_index")
def test_a_remote_ckan_portal_is_harvested_and_its_deletions_follow(served_portal, monkeypatch):
    # Loopback is refused unless allow-listed: the test allow-lists it, as an
    # operator would for a portal inside the city's network.
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    remote = make_department(name="remote-stats", title="某市统计局")
    remote_ids = [
        factories.Dataset(owner_org=remote["id"], title=f"人口统计第{n}期", data_domain="social-development",
                          resources=[{"url": "http://example.com/p.csv", "format": "CSV"}], **CORE)["id"]
        for n in range(6)
    ]
    source = tk.get_action("harvest_source_create")(site_context(), {
        "name": "remote-portal", "title": "远端门户", "url": served_portal,
        "source_type": "shanghai_ckan_api", "owner_org": make_department(name="owner")["id"],
        # The "remote" is this very portal: leave out the copies the harvest makes.
        "config": json.dumps({"fq": "+organization:remote-stats -name:ckan-*"}),
    })
    first = run_job(source["id"])
    assert (first["outcome"], first["added"], first["rejected"]) == ("finished", 6, 0)
    copies = harvested()
    assert {f"ckan-{i}" for i in remote_ids} == set(copies)
    # The remote organization's department is the local one of that title
    # (here, the remote's own organization), not a second one.
    assert model.Group.get(department_slug("某市统计局")) is None
    assert all(pkg.owner_org == remote["id"] for pkg in copies.values())
    shown = helpers.call_action("package_show", id=f"ckan-{remote_ids[0]}")
    assert shown["title"] == "人口统计第0期" and shown["data_domain"] == "social-development"
    assert [r["format"] for r in shown["resources"]] == ["CSV"]

    helpers.call_action("package_delete", context={"ignore_auth": True, "user": site_context()["user"]},
                        id=remote_ids[0])
    second = run_job(source["id"])
    assert (second["added"], second["updated"], second["unchanged"], second["withdrawn"]) == (0, 0, 5, 1)
    assert set(harvested()) == {f"ckan-{i}" for i in remote_ids[1:]}


@pytest.mark.usefixtures("clean_db", "clean_index")
def test_a_remote_on_a_loopback_address_is_refused_without_allow_listing(served_portal):
    source = tk.get_action("harvest_source_create")(site_context(), {
        "name": "sneaky", "title": "内网地址", "url": served_portal, "source_type": "shanghai_ckan_api",
        "owner_org": make_department(name="owner")["id"], "config": "{}",
    })
    report = run_job(source["id"])
    assert report["outcome"] == "failed_closed"
    assert "拒绝访问内部地址" in report["message_zh"] and "non-public address" in report["message_en"]
    assert report["message_code"] == "address-refused"

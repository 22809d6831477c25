"""Departments register their own harvest sources: a department's editors
and admins manage sources for that department only, sysadmins for all,
citizens and anonymous visitors for none; the same through the web form."""
import json

import pytest

import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from portal_testing import make_department

pytestmark = pytest.mark.usefixtures("harvest_tables", "clean_index")


def source_dict(name, owner_org):
    return {"name": name, "title": name, "url": "http://catalog.example.gov.cn/export.json",
            "source_type": "shanghai_agency_export", "owner_org": owner_org,
            "config": json.dumps({"mapping": "shanghai"})}


def as_user(user, action, **data):
    context = {"user": user["name"] if user else "", "ignore_auth": False}
    return helpers.call_action(action, context=context, **data)


@pytest.fixture
def people():
    a, b = make_department(name="dept-a"), make_department(name="dept-b")
    editor_a, admin_a, editor_b, citizen = (factories.User() for _ in range(4))
    helpers.call_action("organization_member_create", id=a["id"], username=editor_a["name"], role="editor")
    helpers.call_action("organization_member_create", id=a["id"], username=admin_a["name"], role="admin")
    helpers.call_action("organization_member_create", id=b["id"], username=editor_b["name"], role="editor")
    return dict(a=a, b=b, editor_a=editor_a, admin_a=admin_a, editor_b=editor_b, citizen=citizen,
                sysadmin=factories.Sysadmin())


@pytest.mark.parametrize("who,dept,allowed", [
    ("editor_a", "a", True), ("admin_a", "a", True), ("sysadmin", "a", True), ("sysadmin", "b", True),
    ("editor_a", "b", False), ("editor_b", "a", False), ("citizen", "a", False), (None, "a", False),
])
def test_who_may_register_a_source_for_which_department(people, who, dept, allowed):
    user = people[who] if who else None
    data = source_dict(f"src-{who or 'anon'}-{dept}", people[dept]["id"])
    if allowed:
        created = as_user(user, "harvest_source_create", **data)
        assert created["owner_org"] == people[dept]["id"]
    else:
        with pytest.raises(tk.NotAuthorized):
            as_user(user, "harvest_source_create", **data)


def test_another_department_cannot_change_or_run_a_source(people):
    source = as_user(people["editor_a"], "harvest_source_create", **source_dict("a-source", people["a"]["id"]))
    for action, data in (("harvest_source_patch", {"id": source["id"], "title": "劫持"}),
                         ("harvest_job_create", {"source_id": source["id"]}),
                         ("harvest_source_delete", {"id": source["id"]})):
        with pytest.raises(tk.NotAuthorized):
            as_user(people["editor_b"], action, **data)
    assert helpers.call_action("harvest_source_show", id=source["id"])["title"] == "a-source"
    as_user(people["admin_a"], "harvest_source_patch", id=source["id"], title="A 部门目录")
    assert helpers.call_action("harvest_source_show", id=source["id"])["title"] == "A 部门目录"


def test_a_bad_mapping_is_refused_with_a_bilingual_reason(people):
    data = source_dict("bad-mapping", people["a"]["id"])
    data["config"] = json.dumps({"mapping": "no-such-portal"})
    with pytest.raises(tk.ValidationError) as raised:
        as_user(people["editor_a"], "harvest_source_create", **data)
    message = json.dumps(raised.value.error_dict, ensure_ascii=False)
    assert "没有名为 no-such-portal 的映射" in message and "No mapping named no-such-portal" in message


def test_a_departments_own_source_publishes_only_in_that_department(people, tmp_path):
    """Department B's editor registers an export whose records name other
    departments (the real Shanghai export names 50 of them): every product
    lands in B, and no other department gets a product or is created."""
    import ckan.model as model

    from portal_testing import load_catalog, run_job, write_export

    records = load_catalog("shanghai.json")[:60]
    data = source_dict("b-source", people["b"]["id"])
    data["url"] = str(write_export(tmp_path / "b.json", records))
    source = as_user(people["editor_b"], "harvest_source_create", **data)
    departments_before = model.Session.query(model.Group).filter_by(is_organization=True).count()
    report = run_job(source["id"])
    assert report["added"] > 20
    owners = {owner for (owner,) in model.Session.query(model.Package.owner_org).filter(
        model.Package.type != "harvest")}
    assert owners == {people["b"]["id"]}
    assert model.Session.query(model.Group).filter_by(is_organization=True).count() == departments_before

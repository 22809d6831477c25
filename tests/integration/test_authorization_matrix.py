"""Who may do what: anonymous visitors, a registered citizen, an editor and
an admin of department A, an editor of department B and a sysadmin, against
every action the portal adds or changes and CKAN's dataset, resource,
DataStore and harvest source actions, and who sees department A's private data product in
search results, facet counts, the API, activity streams and page listings.

MATRIX is the table: one row per action or listing, one expected outcome per
role (True: allowed / sees it; False: refused / does not see it; None: not a
cell, the role's outcome is CKAN's choice either way). Every True/False is
one parametrised test, so the number of cells checked is the number of tests
collected from this module.
"""
from __future__ import annotations

import json
import uuid

import pytest

import ckan.model as model
import ckan.plugins as plugins
import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from portal_testing import empty_database, make_department, site_context

ROLES = ("anonymous", "citizen", "editor_a", "admin_a", "editor_b", "sysadmin")
ENTITLED = {"editor_a", "admin_a", "sysadmin"}

# Department A's members and sysadmins may; nobody else.
A_ONLY = tuple(role in ENTITLED for role in ROLES)
# A listing may show the private product to its department (CKAN decides);
# it must not show it to anyone else.
NOT_TO_OTHERS = tuple(None if role in ENTITLED else False for role in ROLES)
EVERYONE = (True,) * len(ROLES)
ADMINS_OF_A = tuple(role in ("admin_a", "sysadmin") for role in ROLES)


# --- the world: two departments, their people, A's private and public products


@pytest.fixture(scope="module")
def world(reset_db, migrate_db_for, reset_index):
    plugins.load_all()
    empty_database(reset_db, migrate_db_for, reset_index)
    a = make_department(name="dept-a", title="甲部门")
    b = make_department(name="dept-b", title="乙部门")
    people = {"citizen": factories.User(), "editor_a": factories.User(), "admin_a": factories.User(),
              "editor_b": factories.User(), "sysadmin": factories.Sysadmin()}
    for who, org, role in (("editor_a", a, "editor"), ("admin_a", a, "admin"), ("editor_b", b, "editor")):
        helpers.call_action("organization_member_create", id=org["id"], username=people[who]["name"], role=role)
    # Made by A's editor (activities of the site user are hidden from
    # everyone, which would make the activity cells meaningless), in a data
    # domain no other product uses, so its facet count is its own.
    private = helpers.call_action(
        "package_create", context={"user": people["editor_a"]["name"], "ignore_auth": False},
        name="a-private-product", title="甲部门内部数据产品zqxprivate", owner_org=a["id"], private=True,
        data_domain="public-safety", update_frequency="annual", open_condition="conditional",
        resources=[{"url": "https://data.example.gov.cn/private.csv", "format": "CSV", "name": "内部表"}])
    public = product(a, private=False, title="甲部门公开数据产品")
    source = harvest_source(a)
    job = tk.get_action("harvest_job_create")(site_context(), {"source_id": source["id"], "run": False})
    from ckanext.shanghai.harvesters import records
    from ckanext.shanghai.messages import Message
    records.start_report(job["id"], source["id"])
    records.reject(job["id"], "=HYPERLINK(\"http://evil.example\")",
                   Message("missing-required", "标题为空", "title is empty", field="title"))
    model.Session.commit()
    tokens = {who: factories.APIToken(user=user["name"])["token"] for who, user in people.items()}
    world = {"a": a, "b": b, "people": people, "tokens": tokens, "private": private, "public": public,
             "source": source, "job": job, "app": helpers._get_test_app()}
    world["private_table"] = _table(world, private=True)
    world["public_table"] = _table(world)
    return world


def product(org, private=False, title=None, resources=None):
    return factories.Dataset(
        owner_org=org["id"], private=private, title=title or f"数据产品 {uuid.uuid4().hex[:6]}",
        data_domain="health", update_frequency="annual", open_condition="unconditional",
        resources=resources if resources is not None else [{"url": "https://data.example.gov.cn/a.csv",
                                                             "format": "CSV", "name": "表"}],
    )


def harvest_source(org):
    name = f"src-{uuid.uuid4().hex[:8]}"
    return tk.get_action("harvest_source_create")(site_context(), {
        "name": name, "title": name, "url": f"http://catalog.example.gov.cn/{name}.json",
        "source_type": "shanghai_agency_export", "owner_org": org["id"],
        "config": json.dumps({"mapping": "shanghai"})})


# --- acting as someone


def as_role(world, who):
    user = world["people"].get(who)
    return {"user": user["name"] if user else "", "ignore_auth": False}


def allowed(world, who, action, **data) -> bool:
    try:
        helpers.call_action(action, context=as_role(world, who), **data)
    except (tk.NotAuthorized, tk.ObjectNotFound):
        return False
    return True


def result_of(world, who, action, **data):
    try:
        return helpers.call_action(action, context=as_role(world, who), **data)
    except (tk.NotAuthorized, tk.ObjectNotFound):
        return None


def page(world, who, url):
    headers = {"Authorization": world["tokens"][who]} if who in world["tokens"] else {}
    return world["app"].get(url, headers=headers)


# --- the rows


def dataset_create(world, who):
    return allowed(world, who, "package_create", name=f"new-{uuid.uuid4().hex[:8]}", title="新数据产品",
                   owner_org=world["a"]["id"], data_domain="health", update_frequency="annual",
                   open_condition="unconditional")


def dataset_update(world, who):
    target = helpers.call_action("package_show", id=product(world["a"])["id"])
    return allowed(world, who, "package_update", **dict(target, title="已被修改"))


def dataset_patch(world, who):
    return allowed(world, who, "package_patch", id=product(world["a"])["id"], title="已被修改")


def dataset_delete(world, who):
    return allowed(world, who, "package_delete", id=product(world["a"])["id"])


def private_dataset_show(world, who):
    return allowed(world, who, "package_show", id=world["private"]["id"])


def public_dataset_show(world, who):
    return allowed(world, who, "package_show", id=world["public"]["id"])


def resource_create(world, who):
    return allowed(world, who, "resource_create", package_id=product(world["a"])["id"],
                   url="https://data.example.gov.cn/b.csv", format="CSV", name="新表")


def resource_update(world, who):
    resource = product(world["a"])["resources"][0]
    return allowed(world, who, "resource_update", **dict(resource, name="已被修改"))


def resource_patch(world, who):
    return allowed(world, who, "resource_patch", id=product(world["a"])["resources"][0]["id"], name="已被修改")


def resource_delete(world, who):
    return allowed(world, who, "resource_delete", id=product(world["a"])["resources"][0]["id"])


def private_resource_show(world, who):
    return allowed(world, who, "resource_show", id=world["private"]["resources"][0]["id"])


def dataset_search(world, who):
    found = result_of(world, who, "package_search", q="zqxprivate", include_private=True)
    return world["private"]["id"] in [d["id"] for d in found["results"]]


def search_facet_counts(world, who):
    found = result_of(world, who, "package_search", q="*:*", rows=0, include_private=True,
                      **{"facet.field": json.dumps(["organization", "data_domain"])})
    counts = {item["name"]: item["count"] for item in found["search_facets"]["data_domain"]["items"]}
    return counts.get("public-safety", 0) == 1


def package_list(world, who):
    return world["private"]["name"] in result_of(world, who, "package_list")


def current_package_list(world, who):
    listed = result_of(world, who, "current_package_list_with_resources", limit=100) or []
    return world["private"]["id"] in [d["id"] for d in listed]


def organization_show_datasets(world, who):
    shown = result_of(world, who, "organization_show", id="dept-a", include_datasets=True)
    return world["private"]["id"] in [d["id"] for d in shown["packages"]]


def dataset_activity(world, who):
    activities = result_of(world, who, "package_activity_list", id=world["private"]["id"]) or []
    return len(activities) > 0


def organization_activity(world, who):
    activities = result_of(world, who, "organization_activity_list", id=world["a"]["id"]) or []
    return world["private"]["id"] in [a["object_id"] for a in activities]


def recent_activity(world, who):
    activities = result_of(world, who, "recently_changed_packages_activity_list") or []
    return world["private"]["id"] in [a["object_id"] for a in activities]


def search_page(world, who):
    return "内部数据产品zqxprivate" in page(world, who, "/dataset/?q=zqxprivate").body


def organization_page(world, who):
    return "内部数据产品zqxprivate" in page(world, who, "/organization/dept-a?q=zqxprivate").body


def private_dataset_page(world, who):
    return page(world, who, f"/dataset/{world['private']['name']}").status_code == 200


def private_dataset_activity_page(world, who):
    response = page(world, who, f"/dataset/activity/{world['private']['name']}")
    return response.status_code == 200


def member_create(world, who):
    return allowed(world, who, "organization_member_create", id=world["a"]["id"],
                   username=factories.User()["name"], role="editor")


def harvest_source_create(world, who):
    name = f"src-{uuid.uuid4().hex[:8]}"
    return allowed(world, who, "harvest_source_create", name=name, title=name,
                   url=f"http://catalog.example.gov.cn/{name}.json", source_type="shanghai_agency_export",
                   owner_org=world["a"]["id"], config=json.dumps({"mapping": "shanghai"}))


def harvest_source_update(world, who):
    source = harvest_source(world["a"])
    return allowed(world, who, "harvest_source_update", id=source["id"], name=source["name"], title="已被修改",
                   url=source["url"], source_type="shanghai_agency_export", owner_org=world["a"]["id"],
                   config=source["config"])


def harvest_source_patch(world, who):
    return allowed(world, who, "harvest_source_patch", id=harvest_source(world["a"])["id"], title="已被修改")


def harvest_source_delete(world, who):
    return allowed(world, who, "harvest_source_delete", id=harvest_source(world["a"])["id"])


def harvest_job_create(world, who):
    return allowed(world, who, "harvest_job_create", source_id=harvest_source(world["a"])["id"], run=False)


def harvest_report(world, who):
    return allowed(world, who, "shanghai_harvest_report", id=world["job"]["id"])


def rejections_csv(world, who):
    response = page(world, who, f"/harvest/job/{world['job']['id']}/rejections.csv")
    assert response.status_code in (200, 403), response.status_code
    return response.status_code == 200


def usage_show(world, who):
    return allowed(world, who, "shanghai_usage_show", id=world["a"]["id"])


def usage_page(world, who):
    response = world["app"].get(f"/organization/{world['a']['name']}/usage", follow_redirects=False,
                                headers={"Authorization": world["tokens"][who]} if who in world["tokens"] else {})
    assert response.status_code in (200, 302, 403), response.status_code
    return response.status_code == 200


def application_create(world, who):
    return allowed(world, who, "shanghai_application_create", name=f"应用 {who}", contact="dev@example.com")


def usage_totals(world, who):
    return allowed(world, who, "shanghai_usage_totals", package_id=world["public"]["id"])


def _table(world, private=False) -> str:
    """A resource of department A with a DataStore table, made by a sysadmin."""
    resource_id = product(world["a"], private=private)["resources"][0]["id"]
    helpers.call_action("datastore_create", context={"user": world["people"]["sysadmin"]["name"]},
                        resource_id=resource_id, force=True, fields=[{"id": "名称", "type": "text"}],
                        records=[{"名称": "甲"}])
    return resource_id


def datastore_create(world, who):
    return allowed(world, who, "datastore_create", resource_id=product(world["a"])["resources"][0]["id"],
                   force=True, fields=[{"id": "名称", "type": "text"}], records=[{"名称": "乙"}])


def datastore_upsert(world, who):
    return allowed(world, who, "datastore_upsert", resource_id=_table(world), method="insert", force=True,
                   records=[{"名称": "丙"}])


def datastore_delete(world, who):
    return allowed(world, who, "datastore_delete", resource_id=_table(world), force=True)


def datastore_search_private(world, who):
    found = result_of(world, who, "datastore_search", resource_id=world["private_table"])
    return bool(found and found["records"])


def datastore_search_public(world, who):
    found = result_of(world, who, "datastore_search", resource_id=world["public_table"])
    return bool(found and found["records"])


MATRIX = {
    # CKAN's dataset and resource actions on department A's products
    "package_create": (dataset_create, A_ONLY),
    "package_update": (dataset_update, A_ONLY),
    "package_patch": (dataset_patch, A_ONLY),
    "package_delete": (dataset_delete, A_ONLY),
    "package_show private": (private_dataset_show, A_ONLY),
    "package_show public": (public_dataset_show, EVERYONE),
    "resource_create": (resource_create, A_ONLY),
    "resource_update": (resource_update, A_ONLY),
    "resource_patch": (resource_patch, A_ONLY),
    "resource_delete": (resource_delete, A_ONLY),
    "resource_show private": (private_resource_show, A_ONLY),
    "organization_member_create": (member_create, ADMINS_OF_A),
    # the DataStore tables of department A's products
    "datastore_create": (datastore_create, A_ONLY),
    "datastore_upsert": (datastore_upsert, A_ONLY),
    "datastore_delete": (datastore_delete, A_ONLY),
    "datastore_search private": (datastore_search_private, A_ONLY),
    "datastore_search public": (datastore_search_public, EVERYONE),
    # where a private product could show up
    "package_search results": (dataset_search, A_ONLY),
    "package_search facet counts": (search_facet_counts, A_ONLY),
    "package_list": (package_list, NOT_TO_OTHERS),
    "current_package_list_with_resources": (current_package_list, NOT_TO_OTHERS),
    "organization_show datasets": (organization_show_datasets, NOT_TO_OTHERS),
    "package_activity_list private": (dataset_activity, A_ONLY),
    "organization_activity_list": (organization_activity, NOT_TO_OTHERS),
    "recently_changed_packages_activity_list": (recent_activity, NOT_TO_OTHERS),
    "page /dataset search": (search_page, A_ONLY),
    "page /organization/dept-a": (organization_page, A_ONLY),
    "page /dataset/<private>": (private_dataset_page, A_ONLY),
    "page /dataset/activity/<private>": (private_dataset_activity_page, A_ONLY),
    # harvest sources of department A, and the portal's own report actions and view
    "harvest_source_create": (harvest_source_create, A_ONLY),
    "harvest_source_update": (harvest_source_update, A_ONLY),
    "harvest_source_patch": (harvest_source_patch, A_ONLY),
    "harvest_source_delete": (harvest_source_delete, A_ONLY),
    "harvest_job_create": (harvest_job_create, A_ONLY),
    "shanghai_harvest_report": (harvest_report, A_ONLY),
    "view /harvest/job/<id>/rejections.csv": (rejections_csv, A_ONLY),
    # developer keys: usage for the department's admins, keys for anyone signed in
    "shanghai_usage_show": (usage_show, ADMINS_OF_A),
    "page /organization/dept-a/usage": (usage_page, ADMINS_OF_A),
    "shanghai_application_create": (application_create, tuple(role != "anonymous" for role in ROLES)),
    "shanghai_usage_totals": (usage_totals, EVERYONE),
}

CELLS = [
    pytest.param(row, role, expected, id=f"{row}|{role}")
    for row, (_, outcomes) in MATRIX.items()
    for role, expected in zip(ROLES, outcomes)
    if expected is not None
]


@pytest.mark.parametrize("row, role, expected", CELLS)
def test_authorization_matrix(world, row, role, expected):
    check = MATRIX[row][0]
    assert check(world, role) is expected


def test_the_private_product_is_really_there_for_its_department(world):
    """The matrix's False cells mean something only if the product exists
    and is private (a typo in a query would also make them False)."""
    shown = helpers.call_action("package_show", id=world["private"]["id"])
    assert shown["private"] is True and shown["owner_org"] == world["a"]["id"]
    assert len(CELLS) >= 150

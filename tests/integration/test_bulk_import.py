"""The batch import path writes what CKAN's package_create writes: the same
package_show, the same Solr document, one row per new tag, and a record that
fails validation costs only itself."""

import pytest

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.lib import search
from ckan.tests import factories, helpers
from ckanext.shanghai.harvesters.index import bulk as bulk_index
from ckanext.shanghai.harvesters.writer import CatalogWriter

from portal_testing import make_department, site_context

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")

# Differ between any two packages by construction.
VOLATILE = {"id", "name", "metadata_created", "metadata_modified", "package_id", "created",
            "index_id", "_version_", "indexed_ts", "data_dict", "validated_data_dict", "url", "name_ngram",
            "index_source"}


def product(name: str, org_id: str, **fields) -> dict:
    """A health-department data product with resources and tags, as a harvest maps one."""
    return {
        "type": "health", "name": name, "owner_org": org_id,
        "title": "上海市医院床位信息", "notes": "全市医疗机构的床位数，按月更新。",
        "data_domain": "health", "update_frequency": "monthly", "open_condition": "unconditional",
        "national_theme": "culture-health-sports", "first_published": "2019-05-01",
        "last_updated": "2024-03-01", "contact": "sjkf@shanghai.gov.cn",
        "source_identifier": "SH-0001",
        "tag_string": f"医疗,床位-{name[-4:]},新标签",
        "resources": [
            {"url": "https://data.sh.gov.cn/beds.csv", "format": "CSV", "name": "床位表",
             "description": "按医院", "row_count_note": "约 300 行"},
            {"url": "https://data.sh.gov.cn/beds.xlsx", "format": "XLSX", "name": "床位表（Excel）"},
        ],
        **fields,
    }


def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def test_a_batch_writes_what_package_create_writes():
    org = make_department(name="shanghai-health", title="上海市卫生健康委员会")
    writer = CatalogWriter(site_context()["user"])
    stock = helpers.call_action("package_create", context=site_context(),
                                **product("stock-beds-0001", org["id"]))
    ids = writer.create_many([product("batch-beds-0001", org["id"]),
                              product("batch-beds-0002", org["id"], private=True)])
    writer.index_and_record(ids)
    model.Session.commit()
    search.commit()

    ours = helpers.call_action("package_show", context=site_context(), id=ids[0])
    assert strip(ours)["resources"] == strip(stock)["resources"]
    assert strip(ours) == strip(stock)
    assert [r["name"] for r in ours["resources"]] == ["床位表", "床位表（Excel）"]
    assert ours["resources"][0]["row_count_note"] == "约 300 行"
    assert helpers.call_action("package_show", context=site_context(), id=ids[1])["private"] is True

    # The same Solr document, but for what names the package itself.
    stock_doc = search.show(stock["name"])
    our_doc = search.show("batch-beds-0001")
    assert {k: v for k, v in our_doc.items() if k not in VOLATILE and not k.startswith("res_url")} == \
        {k: v for k, v in stock_doc.items() if k not in VOLATILE and not k.startswith("res_url")}
    # Private stays out of public search, as with package_create.
    found = helpers.call_action("package_search", context={"ignore_auth": False, "user": ""},
                                q="床位", rows=10)
    assert {d["name"] for d in found["results"]} == {"stock-beds-0001", "batch-beds-0001"}

    # One row per tag, though three packages (two in one batch) introduced "新标签".
    assert model.Session.query(model.Tag).filter_by(name="新标签").count() == 1
    # The activity stream has the new package, as after package_create (the
    # site user's activities are hidden from the public stream by default).
    activities = helpers.call_action("package_activity_list", context=site_context(), id=ids[0],
                                     include_hidden_activity=True)
    assert [a["activity_type"] for a in activities] == ["new package"]
    assert activities[0]["data"]["package"]["title"] == "上海市医院床位信息"


def test_an_invalid_record_costs_only_itself():
    org = make_department(name="shanghai-health", title="上海市卫生健康委员会")
    writer = CatalogWriter(site_context()["user"])
    results = writer.create_many([
        product("good-beds-0001", org["id"]),
        product("bad-beds-0002", org["id"], update_frequency="每天两次"),
        product("good-beds-0001", org["id"]),  # the same name twice in one batch
        product("good-beds-0003", org["id"]),
    ])
    writer.index_and_record([r for r in results if isinstance(r, str)])
    model.Session.commit()
    assert isinstance(results[0], str) and isinstance(results[3], str)
    assert isinstance(results[1], tk.ValidationError)
    assert "update_frequency" in results[1].error_dict
    assert isinstance(results[2], tk.ValidationError)
    assert "name" in results[2].error_dict
    names = {name for (name,) in model.Session.query(model.Package.name).filter(model.Package.type == "health")}
    assert names == {"good-beds-0001", "good-beds-0003"}


def test_a_batch_refuses_a_taken_name_and_an_unknown_department_as_package_create_does():
    """The batch answers the name and department checks from two queries
    for the whole batch; the answers must be package_create's."""
    org = make_department(name="shanghai-health", title="上海市卫生健康委员会")
    helpers.call_action("package_create", context=site_context(), **product("taken-beds-0001", org["id"]))
    cases = [product("taken-beds-0001", org["id"]),
             product("new-beds-0001", "no-such-department"),
             product("new-beds-0002", "")]
    stock_errors = []
    for case in cases:
        with pytest.raises(tk.ValidationError) as refused:
            helpers.call_action("package_create", context=site_context(), **case)
        stock_errors.append(refused.value.error_dict)
        model.Session.rollback()

    writer = CatalogWriter(site_context()["user"])
    results = writer.create_many(cases + [product("new-beds-0003", org["id"])])
    assert [r.error_dict if isinstance(r, tk.ValidationError) else r for r in results[:3]] == stock_errors
    assert stock_errors[0]["name"] == ["That URL is already in use."]
    assert "owner_org" in stock_errors[1] and "owner_org" in stock_errors[2]
    assert isinstance(results[3], str)


def test_dictize_many_matches_package_dictize_for_every_shape():
    """Groups, resources, tags, extras, private, no organization: the batch
    dictization gives CKAN's own dicts for all of them."""
    from ckan import logic

    org = make_department()
    group = factories.Group()
    core = {"owner_org": org["id"], "data_domain": "road-transport", "open_condition": "unconditional",
            "update_frequency": "daily"}
    plain = factories.Dataset(tag_string="交通,公交", url="https://example.org/a", **core)
    grouped = factories.Dataset(private=True, **core)
    helpers.call_action("member_create", context=site_context(), id=group["id"], object=grouped["id"],
                        object_type="package", capacity="public")
    with_resources = factories.Dataset(**core)
    factories.Resource(package_id=with_resources["id"], name="表一", format="CSV")
    factories.Resource(package_id=with_resources["id"], name="表二", format="XLS")
    ids = [plain["id"], grouped["id"], with_resources["id"]]
    pairs = bulk_index.show_pairs(ids)
    assert pairs[1][0]["groups"][0]["name"] == group["name"]
    assert [r["name"] for r in pairs[2][1]["resources"]] == ["表一", "表二"]
    for package_id, pair in zip(ids, pairs):
        expected = logic.package_show_default_and_custom_schemas(site_context(), package_id)
        assert pair == expected


def test_a_harvested_product_gets_the_document_ckan_itself_would_index(tmp_path):
    """The batch path adds the harvest origin (object, source id and title)
    with one query per batch; CKAN's own index_package, with
    ckanext-harvest's per-package hook, must produce the same document."""
    import json

    from portal_testing import create_source, load_catalog, run_job, write_export

    export = write_export(tmp_path / "shanghai.json", load_catalog("shanghai.json")[:30])
    source = create_source("sh-origin", str(export), {"mapping": "shanghai"})
    assert run_job(source["id"])["added"] > 0
    search.commit()
    ids = [package_id for (package_id,) in model.Session.query(model.Package.id).filter(
        model.Package.type != "harvest", model.Package.state == "active")]

    def document(package_id):
        return next(iter(search.make_connection().search(q=f'id:"{package_id}"', fl="*", rows=1)))

    ours = {package_id: document(package_id) for package_id in ids}
    for package_id in ids:
        search.rebuild(package_id)  # CKAN's own path: package_show, index_package, every hook
    search.commit()
    for package_id in ids:
        stock = document(package_id)
        mine = ours[package_id]
        shown = json.loads(mine["validated_data_dict"])
        origin = shown.get("harvest_source_title") or {e["key"]: e["value"] for e in shown.get("extras", [])}.get(
            "harvest_source_title")
        assert origin == "sh-origin"
        for field in ("data_dict", "validated_data_dict"):
            assert json.loads(mine[field]) == json.loads(stock[field]), field
        # CKAN's own path writes no index_source digest (a rebuild validates its documents again).
        assert mine["index_source"] and "index_source" not in stock
        volatile = {"indexed_ts", "_version_", "data_dict", "validated_data_dict", "index_source"}
        assert {k: v for k, v in mine.items() if k not in volatile} == \
            {k: v for k, v in stock.items() if k not in volatile}


def test_reused_stored_dicts_give_the_documents_validation_gives(tmp_path):
    """A rebuild reuses the validated dicts the index stores beside a
    matching digest: for harvested products (whose stored dicts carry the
    harvest origin) and for a conditional product (whose stored dicts have
    its linked files' addresses gated) the documents are the ones
    validating again builds."""
    from ckanext.shanghai.harvesters.index import reuse

    from portal_testing import create_source, load_catalog, run_job, write_export

    export = write_export(tmp_path / "shanghai.json", load_catalog("shanghai.json")[:20])
    source = create_source("sh-reuse", str(export), {"mapping": "shanghai"})
    assert run_job(source["id"])["added"] > 0
    org = make_department(name="shanghai-health", title="上海市卫生健康委员会")
    writer = CatalogWriter(site_context()["user"])
    conditional = writer.create_many([product("gated-beds-0001", org["id"], open_condition="conditional")])
    writer.index_and_record(conditional)
    model.Session.commit()
    search.commit()
    harvested = [package_id for (package_id,) in model.Session.query(model.Package.id).filter(
        model.Package.type != "harvest", model.Package.state == "active", model.Package.id != conditional[0])]
    ids = harvested + conditional

    gated = search.show("gated-beds-0001")
    assert "beds.csv" not in gated["validated_data_dict"] and gated["index_source"]

    reused = bulk_index.show_pairs(ids, stored=reuse.stored_dicts(ids))
    assert reused.reused == len(ids)
    validated = bulk_index.show_pairs(ids)
    assert validated.reused == 0
    assert bulk_index.build_documents(reused) == bulk_index.build_documents(validated)

"""Department schemas on the live stack: one catalog of many department
types, bilingual validation that stores nothing on failure, facets and
department fields in search."""
import pytest
from bs4 import BeautifulSoup

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from portal_testing import make_department

CORE = dict(data_domain="health", update_frequency="annual", open_condition="unconditional")


def call_as_admin(action: str, **data_dict):
    """Call an action as a sysadmin, as the API would for a signed-in user
    (the activity stream needs a real user behind every change)."""
    admin = model.User.get("schema-test-admin") or model.User.get(
        factories.Sysadmin(name="schema-test-admin")["id"])
    return helpers.call_action(action, context={"user": admin.name}, **data_dict)


def dataset_count() -> int:
    return model.Session.query(model.Package).filter(model.Package.type != "harvest").count()


def test_scheming_lists_the_core_and_ten_department_types(with_plugins):
    types = helpers.call_action("scheming_dataset_schema_list")
    assert "dataset" in types
    departments = set(types) - {"dataset", "harvest", "application"}
    assert len(departments) >= 10
    # Data applications (schemas/application.yaml) are not data products.
    for dataset_type in set(types) - {"application"}:
        schema = helpers.call_action("scheming_dataset_schema_show", type=dataset_type)
        names = {field["field_name"] for field in schema["dataset_fields"]}
        assert {"title", "owner_org", "data_domain", "open_condition", "update_frequency"} <= names


@pytest.mark.usefixtures("clean_db", "clean_index")
class TestValidation:
    def test_open_condition_outside_the_list_is_refused_naming_the_field(self):
        org = make_department()
        before = dataset_count()
        with pytest.raises(tk.ValidationError) as raised:
            call_as_admin("package_create", name="bad-open", title="坏数据",
                                owner_org=org["id"], **dict(CORE, open_condition="half-open"))
        errors = raised.value.error_dict
        assert list(errors) == ["open_condition"]
        message = errors["open_condition"][0]
        assert "开放属性" in message and "Open condition" in message
        assert "unconditional" in message and "half-open" in message
        assert dataset_count() == before
        assert helpers.call_action("package_search", q="name:bad-open")["count"] == 0

    def test_update_date_before_first_published_is_refused(self):
        org = make_department()
        with pytest.raises(tk.ValidationError) as raised:
            call_as_admin("package_create", name="time-travel", title="时间倒流",
                                owner_org=org["id"], first_published="2023-05-01",
                                last_updated="2021-01-01", **CORE)
        assert list(raised.value.error_dict) == ["last_updated"]
        assert "2023-05-01" in raised.value.error_dict["last_updated"][0]
        assert dataset_count() == 0

    def test_a_failed_update_leaves_the_stored_record_as_it_was(self):
        org = make_department()
        dataset = call_as_admin("package_create", name="beds", title="医院床位",
                                      owner_org=org["id"], first_published="2020-01-02", **CORE)
        with pytest.raises(tk.ValidationError):
            call_as_admin("package_patch", id=dataset["id"], title="改了标题",
                                last_updated="2019-12-31")
        stored = helpers.call_action("package_show", id=dataset["id"])
        assert stored["title"] == "医院床位"
        assert stored.get("last_updated") in (None, "")
        indexed = helpers.call_action("package_search", q="name:beds")["results"][0]
        assert indexed["title"] == "医院床位"

    def test_raw_dates_and_theme_variants_are_normalised(self):
        org = make_department()
        dataset = call_as_admin(
            "package_create", name="normalised", title="规范化", owner_org=org["id"],
            first_published="2020年1月2日", last_updated="2023/4/6",
            national_theme="城乡建设与环境保护综合类", **CORE)
        assert dataset["first_published"] == "2020-01-02"
        assert dataset["last_updated"] == "2023-04-06"
        assert dataset["national_theme"] == "urban-construction-environment"


@pytest.mark.usefixtures("clean_db", "clean_index")
class TestOneCatalog:
    def test_department_types_are_searched_with_the_core_and_their_fields_are_text(self):
        env = make_department(name="shanghai-ecology", title="上海市生态环境局")
        water = call_as_admin(
            "package_create", type="ecology-environment", name="dianshan-lake-water",
            title="地表水水质监测数据", owner_org=env["id"], monitoring_station="淀山湖急水港",
            **dict(CORE, data_domain="resources-environment"))
        core = call_as_admin("package_create", name="parks", title="公园名录",
                                   owner_org=env["id"], **CORE)
        everything = helpers.call_action("package_search", q="*:*")
        assert {d["id"] for d in everything["results"]} == {water["id"], core["id"]}
        by_station = helpers.call_action("package_search", q="淀山湖")
        assert [d["id"] for d in by_station["results"]] == [water["id"]]

    def test_the_dataset_search_page_lists_every_department_type(self, app):
        org = make_department()
        call_as_admin("package_create", type="transport", name="metro-flow", title="地铁客流",
                            owner_org=org["id"], **CORE)
        call_as_admin("package_create", name="core-one", title="核心目录", owner_org=org["id"], **CORE)
        page = BeautifulSoup(app.get("/dataset/").body, "html.parser")
        titles = {link.get_text(strip=True) for link in page.select(".dataset-heading a")}
        assert {"地铁客流", "核心目录"} <= titles

    def test_facets_count_what_was_loaded_with_chinese_labels(self, app):
        org = make_department(title="上海市卫生健康委员会")
        plan = [("health", "annual", "unconditional"), ("health", "realtime", "conditional"),
                ("road-transport", "realtime", "unconditional")]
        for number, (domain, frequency, condition) in enumerate(plan):
            call_as_admin("package_create", name=f"facet-{number}", title=f"数据{number}",
                                owner_org=org["id"], data_domain=domain, update_frequency=frequency,
                                open_condition=condition,
                                resources=[{"url": "http://example.com/x.csv", "format": "CSV"}])
        result = helpers.call_action(
            "package_search", q="*:*",
            **{"facet.field": ["organization", "data_domain", "national_theme", "open_condition",
                               "res_format", "update_frequency"]})
        facets = result["facets"]
        assert facets["data_domain"] == {"health": 2, "road-transport": 1}
        assert facets["update_frequency"] == {"annual": 1, "realtime": 2}
        assert facets["open_condition"] == {"unconditional": 2, "conditional": 1}
        assert facets["res_format"] == {"CSV": 3}
        assert facets["organization"] == {org["name"]: 3}
        labels = {item["name"]: item["display_name"] for item in result["search_facets"]["data_domain"]["items"]}
        assert labels == {"health": "卫生健康", "road-transport": "道路交通"}

        page = app.get("/dataset/").body
        for text in ("数据领域", "开放属性", "更新频度", "卫生健康", "即时"):
            assert text in page
        english = app.get("/en/dataset/").body
        for text in ("Data domain", "Open condition", "Update frequency"):
            assert text in english


@pytest.mark.usefixtures("clean_db", "clean_index")
def test_the_form_shows_the_error_beside_the_field_in_chinese(app):
    sysadmin = factories.SysadminWithToken()
    org = make_department()
    headers = {"Authorization": sysadmin["token"]}
    form_page = app.get("/dataset/new", headers=headers)
    soup = BeautifulSoup(form_page.body, "html.parser")
    assert soup.find("label", attrs={"for": "field-data_domain"}).get_text(strip=True).endswith("数据领域")
    token = soup.find("input", attrs={"name": "_csrf_token"})["value"]
    response = app.post("/dataset/new", headers=headers, data={
        "_csrf_token": token, "save": "continue", "name": "form-bad", "title": "表单坏数据",
        "owner_org": org["id"], "data_domain": "health", "update_frequency": "annual",
        "open_condition": "unconditional", "first_published": "2024-02-30",
    })
    assert "日期格式无效" in response.body
    assert dataset_count() == 0


@pytest.mark.usefixtures("clean_db", "clean_index")
def test_a_department_product_page_shows_its_department_fields(app):
    env = make_department(name="shanghai-ecology", title="上海市生态环境局")
    call_as_admin("package_create", type="ecology-environment", name="dianshan-lake-water",
                  title="地表水水质监测数据", owner_org=env["id"], monitoring_station="淀山湖急水港",
                  **dict(CORE, data_domain="resources-environment"))
    page = app.get("/ecology-environment/dianshan-lake-water").body
    assert "地表水水质监测数据" in page
    assert "监测站点" in page and "淀山湖急水港" in page
    assert "数据领域" in page and "资源环境" in page
    english = app.get("/en/ecology-environment/dianshan-lake-water").body
    assert "Monitoring station" in english and "Resources and environment" in english

"""English queries find Chinese products, on the real stack: products written
through the action API and through the harvest's batch writer get a machine-
translated English title and summary, marked as such; English queries find
them through the search API and the English search page, which shows the
English in place of the Chinese; the Chinese pages stay Chinese."""
import pytest

import ckan.plugins.toolkit as tk
from ckan.tests import helpers

from portal_testing import create_source, load_catalog, make_department, run_job, site_context, write_export

# Representative queries of bench/english_queries.yaml (the recall benchmark
# runs all fifty): query -> the catalog's product it must find.
QUERIES = {
    "Xuhui tertiary hospitals": "徐汇区三级医院信息一览表",
    "public car parks Putuo": "普陀区公共停车场库信息",
    "marriage registration offices": "上海婚姻登记机构一览表",
    "emergency shelters": "全市应急避难场所分布",
    "law firms": "上海律师事务所信息",
    "Songjiang museums": "松江区博物馆信息",
}


def first_page_titles(app, query: str, path: str = "/api/3/action/package_search") -> list[str]:
    found = app.get(path, query_string={"q": query, "rows": tk.config.get("ckan.datasets_per_page")}).json
    return [result["title"] for result in found["result"]["results"]]


@pytest.fixture
def harvested(clean_db, clean_index, tmp_path):
    """Part of the Shanghai catalog (its first 300 records and the products
    the queries expect) harvested through the production consumers."""
    catalog = load_catalog("shanghai.json")
    wanted = set(QUERIES.values())
    records = catalog[:300] + [record for record in catalog[300:] if record["数据集名称"].strip() in wanted]
    source = create_source("shanghai", str(write_export(tmp_path / "sh.json", records)), {"mapping": "shanghai"})
    report = run_job(source["id"])
    assert report["outcome"] == "finished" and report["added"] > 200
    return report


@pytest.mark.usefixtures("with_plugins")
class TestHarvestedProducts:
    def test_english_queries_find_their_chinese_products(self, harvested, app):
        for query, expected in QUERIES.items():
            assert expected in first_page_titles(app, query), query

    def test_harvested_products_carry_a_marked_machine_translation(self, harvested):
        found = helpers.call_action("package_search", q="title:婚姻登记机构")["results"]
        product = helpers.call_action("package_show", id=found[0]["name"])
        assert product["title"] == "上海婚姻登记机构一览表"
        assert product["title_en"] == "Shanghai marriage registration offices list"
        assert product["translation_en"].startswith("machine")

    def test_the_english_search_page_shows_english_marked_as_machine_translation(self, harvested, app):
        english = app.get("/en/dataset/", query_string={"q": "marriage registration offices"}).body
        assert "Shanghai marriage registration offices list" in english
        assert "Machine translation" in english
        chinese = app.get("/dataset/", query_string={"q": "婚姻登记机构"}).body
        assert "上海婚姻登记机构一览表" in chinese
        assert "Machine translation" not in chinese and "marriage registration offices list" not in chinese


@pytest.mark.usefixtures("with_plugins")
class TestProductsWrittenThroughTheApi:
    @pytest.fixture
    def department(self, clean_db, clean_index):
        return make_department(name="health-commission", title="上海市卫生健康委员会")

    def create(self, department, **fields):
        return helpers.call_action(
            "package_create", context=site_context(), name="sh-product-1", owner_org=department["id"],
            data_domain="health", update_frequency="annual", open_condition="unconditional", **fields)

    def test_a_created_product_gets_english_and_english_queries_find_it(self, department, app):
        created = self.create(department, title="上海市医院床位信息", notes="全市各级医院的床位数。")
        assert created["title_en"] == "Shanghai hospital beds information"
        assert created["notes_en"].startswith("City-wide") and "hospital beds" in created["notes_en"]
        assert created["translation_en"].startswith("machine")
        assert first_page_titles(app, "hospitals") == ["上海市医院床位信息"]
        page = app.get("/en/dataset/sh-product-1").body
        assert "Shanghai hospital beds information" in page and 'id="sh-machine-translation"' in page
        assert 'id="sh-machine-translation"' not in app.get("/dataset/sh-product-1").body

    def test_the_english_follows_the_chinese_and_cannot_be_set_by_hand(self, department, app):
        self.create(department, title="上海市医院床位信息", title_en="Cheap flights")
        shown = helpers.call_action("package_show", id="sh-product-1")
        assert shown["title_en"] == "Shanghai hospital beds information"
        helpers.call_action("package_patch", context=site_context(), id="sh-product-1", title="上海市公共停车场信息")
        shown = helpers.call_action("package_show", id="sh-product-1")
        assert shown["title_en"] == "Shanghai public car park information"
        assert first_page_titles(app, "hospital beds") == []
        assert first_page_titles(app, "car parks") == ["上海市公共停车场信息"]

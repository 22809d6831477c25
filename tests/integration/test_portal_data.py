"""Data you can query, on the real stack: real tables uploaded as resources
are loaded into the DataStore (GBK with Chinese intact, Excel), answer
datastore_search with filters, full text and paging, show as a preview,
count their downloads; SQL search stays off; bad files get a bilingual
error; the DCAT catalog and sitemap list public products and no private
one; data applications link the products they use."""
import io
import json

import pytest
import rdflib
from werkzeug.datastructures import FileStorage

import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from ckanext.shanghai.datastore import loader as datastore_loader
from data_files import TABLES
from portal_testing import make_department, site_context

SH_NAME = rdflib.URIRef("https://data.sh.gov.cn/ns/core#name")


def product(org, **fields):
    fields.setdefault("title", "房地产开发企业资质")
    fields.setdefault("last_updated", "2021-03-01")
    return factories.Dataset(owner_org=org["id"], data_domain="urban-construction",
                             update_frequency="annual", open_condition="unconditional", **fields)


def upload(dataset, path_or_bytes, filename, fmt="CSV"):
    data = path_or_bytes.read_bytes() if hasattr(path_or_bytes, "read_bytes") else path_or_bytes
    return helpers.call_action("resource_create", context=site_context(), package_id=dataset["id"], name=filename, format=fmt,
                               url=filename, upload=FileStorage(io.BytesIO(data), filename=filename))


@pytest.fixture
def department(clean_db, clean_index):
    return make_department(name="housing-bureau", title="上海市住房和城乡建设管理委员会")


@pytest.mark.usefixtures("with_plugins")
class TestDataStore:
    def test_a_gbk_csv_answers_datastore_search_with_its_chinese_intact(self, department, app):
        dataset = product(department)
        resource = upload(dataset, TABLES / "bj_realestate_developer_qualifications_gbk.csv", "quals.csv")
        assert datastore_loader.load_status(resource["id"])["state"] == "pending"
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "complete" and status["rows"] == 463 and status["encoding"] == "gbk"

        result = helpers.call_action("datastore_search", resource_id=resource["id"], limit=5)
        assert result["total"] == 463
        names = [r["企业名称"] for r in result["records"]]
        assert all(name.endswith("公司") for name in names), names

        filtered = helpers.call_action("datastore_search", resource_id=resource["id"],
                                       filters={"企业名称": names[2]})
        assert [r["企业名称"] for r in filtered["records"]] == [names[2]]
        full_text = helpers.call_action("datastore_search", resource_id=resource["id"], q=names[3])
        assert names[3] in [r["企业名称"] for r in full_text["records"]]
        page_two = helpers.call_action("datastore_search", resource_id=resource["id"], limit=5, offset=5)
        assert page_two["records"][0]["_id"] == 6

        page = app.get(f"/dataset/{dataset['name']}/resource/{resource['id']}").body
        for name in names:
            assert name in page

    def test_sql_search_is_switched_off(self, department, app):
        with pytest.raises(KeyError):
            tk.get_action("datastore_search_sql")
        response = app.get("/api/3/action/datastore_search_sql", query_string={"sql": "select 1"},
                           status=400)
        assert "datastore_search_sql" in response.body and '"records"' not in response.body

    def test_excel_named_csv_and_a_cell_with_a_newline_load(self, department):
        import openpyxl

        book = openpyxl.Workbook()
        book.active.append(["年份", "床位数"])
        book.active.append([2014, 6601214])
        buffer = io.BytesIO()
        book.save(buffer)
        dataset = product(department, title="医疗卫生机构床位")
        excel = upload(dataset, buffer.getvalue(), "beds.csv")
        assert datastore_loader.load_resource(excel["id"])["encoding"] == "xlsx"
        rows = helpers.call_action("datastore_search", resource_id=excel["id"])["records"]
        assert rows[0]["年份"] == 2014 and rows[0]["床位数"] == 6601214

        penalties = upload(dataset, TABLES / "bj_env_bureau_penalties_gbk.csv", "penalties.csv")
        assert datastore_loader.load_resource(penalties["id"])["rows"] == 1906
        hit = helpers.call_action("datastore_search", resource_id=penalties["id"],
                                  filters={"单位名称": "北京市密云县机动车辆检测场"})["records"]
        assert any("\n" in value for record in hit for value in record.values() if isinstance(value, str))

    def test_a_file_that_is_no_table_gets_a_bilingual_error_on_its_page(self, department, app):
        dataset = product(department)
        broken = upload(dataset, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.csv")
        status = datastore_loader.load_resource(broken["id"])
        assert status["state"] == "error"
        page = app.get(f"/dataset/{dataset['name']}").body
        assert "这不是表格文件" in page and "This is not a table file" in page

    def test_a_download_is_counted_on_the_product_page(self, department, app):
        dataset = product(department)
        resource = upload(dataset, TABLES / "nbs_health_institution_beds_1978_2014.csv", "beds.csv")
        before = app.get(f"/dataset/{dataset['name']}").body
        assert '<span id="sh-downloads">0</span>' in before
        app.get(f"/dataset/{dataset['name']}/resource/{resource['id']}/download/beds.csv")
        after = app.get(f"/dataset/{dataset['name']}").body
        assert '<span id="sh-downloads">1</span>' in after

    def test_an_overdue_product_is_flagged(self, department, app):
        dataset = product(department, last_updated="2020-01-01")
        page = app.get(f"/dataset/{dataset['name']}").body
        assert 'id="sh-overdue"' in page and "已逾期" in page
        english = app.get(f"/en/dataset/{dataset['name']}").body
        assert "Overdue (due by 2021-01-01)" in english


@pytest.mark.usefixtures("with_plugins")
class TestCatalogAndApplications:
    def test_catalog_ttl_and_sitemap_list_public_products_only(self, department, app):
        public = [product(department, title=f"公开数据产品{n}") for n in range(3)]
        private = product(department, title="内部数据产品", private=True)
        graph = rdflib.Graph().parse(data=app.get("/catalog.ttl").body, format="turtle")
        names = {str(name) for name in graph.objects(None, SH_NAME)}
        assert names == {p["name"] for p in public}
        titles = {str(t) for t in graph.objects(None, rdflib.namespace.DCTERMS.title)}
        assert "公开数据产品0" in titles and "内部数据产品" not in titles
        sitemap = app.get("/sitemap.xml").body
        assert all(p["name"] in sitemap for p in public) and private["name"] not in sitemap
        found = app.get("/api/3/action/package_search", query_string={"q": "内部数据产品"}).json
        assert private["name"] not in [r["name"] for r in found["result"]["results"]]
        one = rdflib.Graph().parse(data=app.get(f"/dataset/{public[0]['name']}.ttl").body, format="turtle")
        assert any("urban-construction" in str(o) for o in one.objects())

    def test_an_application_must_name_existing_public_products(self, department):
        private = product(department, private=True)
        with pytest.raises(tk.ValidationError) as raised:
            helpers.call_action("package_create", context=site_context(), type="application", name="broken-app", title="应用",
                                owner_org=department["id"],
                                related_datasets=json.dumps(["no-such-product", private["name"]]))
        message = str(raised.value.error_dict["related_datasets"])
        assert "不存在或未公开" in message and "do not exist or are not public" in message

    def test_an_application_shows_on_the_products_it_uses(self, department, app):
        beds = product(department, title="医疗卫生机构床位")
        application = helpers.call_action(
            "package_create", context=site_context(), type="application", name="beds-trends", title="床位变化分析",
            owner_org=department["id"], app_kind="report", related_datasets=json.dumps([beds["name"]]))
        assert application["related_datasets"] == [beds["name"]]
        assert "床位变化分析" in app.get(f"/dataset/{beds['name']}").body
        assert "医疗卫生机构床位" in app.get("/application/beds-trends").body
        search = helpers.call_action("package_search", q="床位")
        assert [r["name"] for r in search["results"]] == [beds["name"]]

    def test_a_department_editor_adds_applications_for_their_department_only(self, department):
        editor = factories.User()
        helpers.call_action("organization_member_create", context=site_context(), id=department["id"],
                            username=editor["name"], role="editor")
        other = make_department(name="transport-bureau")
        beds = product(department, title="医疗卫生机构床位")
        context = {"user": editor["name"], "ignore_auth": False}
        created = helpers.call_action("package_create", context=dict(context), type="application",
                                      name="editor-app", title="编辑添加的应用", owner_org=department["id"],
                                      related_datasets=beds["name"])
        assert created["related_datasets"] == [beds["name"]]
        with pytest.raises(tk.NotAuthorized):
            helpers.call_action("package_create", context=dict(context), type="application",
                                name="foreign-app", title="他部门应用", owner_org=other["id"],
                                related_datasets=beds["name"])

"""Typed tables on the real stack: a real table loads with integer, numeric
and date columns, so datastore_search filters ``beds > 200`` and sorts by
number; its data dictionary (name, type, example, empty count) is in the
API and on the resource page; reloading a file that cannot be read leaves
the table that was there."""
import io

import pytest
from werkzeug.datastructures import FileStorage

from ckan.tests import factories, helpers

from ckanext.shanghai.datastore import loader as datastore_loader
from data_files import TABLES
from portal_testing import make_department, site_context

ELDERLY = TABLES / "sh_elderly_care_institutions_utf8bom.csv"


@pytest.fixture
def dataset(clean_db, clean_index):
    department = make_department(name="civil-affairs", title="上海市民政局")
    return factories.Dataset(owner_org=department["id"], title="上海市养老机构", data_domain="health",
                             update_frequency="annual", open_condition="unconditional",
                             last_updated="2024-03-01")


def upload(dataset, data: bytes, filename: str) -> dict:
    return helpers.call_action("resource_create", context=site_context(), package_id=dataset["id"],
                               name=filename, format="CSV", url=filename,
                               upload=FileStorage(io.BytesIO(data), filename=filename))


def search(resource_id: str, **params) -> dict:
    return helpers.call_action("datastore_search", resource_id=resource_id, **params)


@pytest.mark.usefixtures("with_plugins")
class TestTypedTables:
    def test_the_elderly_care_table_filters_and_sorts_by_number(self, dataset, app):
        resource = upload(dataset, ELDERLY.read_bytes(), "elderly.csv")
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "complete" and status["rows"] == 626

        big = search(resource["id"], filters={"beds": {"gt": 200}}, sort="beds desc", limit=1000)
        source_beds = [int(line.split(",")[4]) for line in
                       ELDERLY.read_text(encoding="utf-8-sig").splitlines()[1:]]
        assert big["total"] == sum(1 for beds in source_beds if beds > 200)
        assert [row["beds"] for row in big["records"]] == sorted(
            (beds for beds in source_beds if beds > 200), reverse=True)
        assert isinstance(big["records"][0]["lng"], (float, int)) or "." in str(big["records"][0]["lng"])

        # The same through the web API, as a company would call it.
        api = app.get("/api/3/action/datastore_search", query_string={
            "resource_id": resource["id"], "filters": '{"beds": {"gt": 1000}}', "sort": "beds asc"}).json
        assert api["result"]["records"] and all(row["beds"] > 1000 for row in api["result"]["records"])

        since = search(resource["id"], filters={"since": {"gte": "2020-01-01"}}, limit=1000)["records"]
        assert since and all(row["since"] >= "2020-01-01" for row in since)

    def test_the_data_dictionary_is_in_the_api_and_on_the_resource_page(self, dataset, app):
        resource = upload(dataset, ELDERLY.read_bytes(), "elderly.csv")
        datastore_loader.load_resource(resource["id"])
        info = helpers.call_action("datastore_info", id=resource["id"])
        fields = {field["id"]: field for field in info["fields"]}
        assert fields["beds"]["type"] == "int8" and fields["lat"]["type"] == "numeric"
        assert fields["since"]["type"] == "date" and fields["phone"]["type"] == "text"
        assert fields["beds"]["info"]["example"] == "247"
        assert fields["zipcode"]["info"]["empty_count"] == 88
        page = app.get(f"/dataset/{dataset['name']}/resource/{resource['id']}").body
        assert 'id="sh-data-dictionary"' in page
        assert "整数" in page and "247" in page and "88" in page

    def test_chinese_column_names_and_a_header_under_generated_labels(self, dataset):
        data = ("Unnamed: 0,Unnamed: 1,Unnamed: 2\n"
                "机构名称,床位数,开业日期\n"
                "上海大场长乐养老院,326,2015/7/22\n"
                "上海宝山区大场镇敬老院,140,1998/12/23\n").encode("gb18030")
        resource = upload(dataset, data, "beds.csv")
        assert datastore_loader.load_resource(resource["id"])["state"] == "complete"
        rows = search(resource["id"], sort="床位数 asc")["records"]
        assert [(row["机构名称"], row["床位数"], row["开业日期"]) for row in rows] == [
            ("上海宝山区大场镇敬老院", 140, "1998-12-23"),
            ("上海大场长乐养老院", 326, "2015-07-22")]

    def test_a_file_that_cannot_be_read_leaves_the_loaded_table_as_it_was(self, dataset):
        resource = upload(dataset, ELDERLY.read_bytes(), "elderly.csv")
        datastore_loader.load_resource(resource["id"])
        helpers.call_action("resource_patch", context=site_context(), id=resource["id"],
                            upload=FileStorage(io.BytesIO(b"\x89PNG\r\n\x1a\n\x00\x00"), filename="elderly.csv"))
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "error" and "不是表格文件" in status["error_zh"]
        assert search(resource["id"])["total"] == 626

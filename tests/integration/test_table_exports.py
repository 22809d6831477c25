"""Coordinates and exports on the real stack: the elderly-care table's
lng/lat columns are found when it loads; once the department declares its
coordinate system, datastore_search and the downloads give the points in
WGS-84, GCJ-02 or BD-09; every table downloads as CSV (UTF-8 with BOM, or
GBK), JSON, XLSX and GeoJSON, streamed with memory flat in the row count."""
import csv
import io
import json
import tracemalloc

import openpyxl
import pytest
from werkzeug.datastructures import FileStorage

import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from ckanext.shanghai.datastore import coordinates, exports
from ckanext.shanghai.datastore import loader as datastore_loader
from data_files import TABLES
from portal_testing import make_department, site_context

ELDERLY = TABLES / "sh_elderly_care_institutions_utf8bom.csv"
SOURCE = list(csv.DictReader(io.StringIO(ELDERLY.read_text(encoding="utf-8-sig"))))


@pytest.fixture
def elderly(clean_db, clean_index):
    department = make_department(name="civil-affairs", title="上海市民政局")
    dataset = factories.Dataset(owner_org=department["id"], title="上海市养老机构", data_domain="health",
                                update_frequency="annual", open_condition="unconditional",
                                last_updated="2024-03-01")
    resource = helpers.call_action("resource_create", context=site_context(), package_id=dataset["id"],
                                   name="上海市养老机构名录", format="CSV", url="elderly.csv",
                                   upload=FileStorage(io.BytesIO(ELDERLY.read_bytes()), filename="elderly.csv"))
    assert datastore_loader.load_resource(resource["id"])["state"] == "complete"
    return dataset, resource


def declare(resource, crs):
    helpers.call_action("resource_patch", context=site_context(), id=resource["id"], coordinate_crs=crs)


def export_url(dataset, resource, fmt, **query):
    url = f"/dataset/{dataset['name']}/resource/{resource['id']}/export/{fmt}"
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.mark.usefixtures("with_plugins")
class TestCoordinates:
    def test_coordinate_columns_are_found_and_converted_once_declared(self, elderly, app):
        dataset, resource = elderly
        assert datastore_loader.load_status(resource["id"])["coordinates"] == {"lng": "lng", "lat": "lat"}
        with pytest.raises(tk.ValidationError) as raised:
            helpers.call_action("datastore_search", resource_id=resource["id"], crs="gcj02")
        assert "尚未声明" in str(raised.value.error_dict) and "not declared" in str(raised.value.error_dict)

        declare(resource, "wgs84")
        first = SOURCE[0]
        wgs = (float(first["lng"]), float(first["lat"]))
        for target in ("gcj02", "bd09", "wgs84"):
            found = helpers.call_action("datastore_search", resource_id=resource["id"], crs=target,
                                        filters={"id": int(first["id"])})
            row = found["records"][0]
            expected = coordinates.convert(*wgs, "wgs84", target)
            assert abs(row["lng"] - expected[0]) < 1e-6 and abs(row["lat"] - expected[1]) < 1e-6
            assert found["crs"] == target
        # Through the web API, with an unknown system refused in both languages.
        api = app.get("/api/3/action/datastore_search", query_string={
            "resource_id": resource["id"], "crs": "bd09", "limit": 1}).json
        assert api.get("result", {}).get("crs") == "bd09", api
        bad = app.get("/api/3/action/datastore_search", query_string={
            "resource_id": resource["id"], "crs": "cgcs2000"}, status=409).json
        assert "未知的坐标系" in json.dumps(bad, ensure_ascii=False)

    def test_the_page_shows_the_coordinates_and_the_downloads(self, elderly, app):
        dataset, resource = elderly
        page = app.get(f"/dataset/{dataset['name']}/resource/{resource['id']}").body
        assert 'id="sh-coordinates"' in page and "lng / lat" in page and 'data-crs=""' in page
        assert export_url(dataset, resource, "geojson") in page
        declare(resource, "gcj02")
        page = app.get(f"/dataset/{dataset['name']}/resource/{resource['id']}").body
        assert 'data-crs="gcj02"' in page and export_url(dataset, resource, "geojson", crs="bd09") in page


@pytest.mark.usefixtures("with_plugins")
class TestExports:
    def test_csv_in_utf8_with_bom_and_in_gbk(self, elderly, app):
        dataset, resource = elderly
        body = app.get(export_url(dataset, resource, "csv")).data
        assert body.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
        assert len(rows) == 626 and rows[0]["name"] == SOURCE[0]["name"] and rows[0]["beds"] == SOURCE[0]["beds"]
        gbk = app.get(export_url(dataset, resource, "csv", encoding="gbk"))
        assert "GB18030" in gbk.headers["Content-Type"]
        assert list(csv.DictReader(io.StringIO(gbk.data.decode("gbk"))))[0]["name"] == SOURCE[0]["name"]
        assert "filename*=UTF-8''" in gbk.headers["Content-Disposition"]

    def test_json_and_xlsx_keep_types(self, elderly, app):
        dataset, resource = elderly
        rows = json.loads(app.get(export_url(dataset, resource, "json")).data)
        assert len(rows) == 626 and rows[0]["beds"] == int(SOURCE[0]["beds"]) and rows[0]["since"] == "2022-01-11"
        book = openpyxl.load_workbook(io.BytesIO(app.get(export_url(dataset, resource, "xlsx")).data), read_only=True)
        sheet_rows = list(book.active.iter_rows(values_only=True))
        assert len(sheet_rows) == 627 and sheet_rows[1][sheet_rows[0].index("beds")] == int(SOURCE[0]["beds"])

    def test_geojson_in_each_coordinate_system(self, elderly, app):
        dataset, resource = elderly
        declare(resource, "wgs84")
        plain = json.loads(app.get(export_url(dataset, resource, "geojson")).data)
        assert plain["type"] == "FeatureCollection" and plain["coordinate_crs"] == "wgs84"
        assert len(plain["features"]) == 626
        point = plain["features"][0]["geometry"]["coordinates"]
        assert point == [float(SOURCE[0]["lng"]), float(SOURCE[0]["lat"])]
        baidu = json.loads(app.get(export_url(dataset, resource, "geojson", crs="bd09")).data)
        moved = baidu["features"][0]["geometry"]["coordinates"]
        back = coordinates.convert(*moved, "bd09", "wgs84")
        assert coordinates.distance_m(*back, *point) < 0.5 and coordinates.distance_m(*moved, *point) > 100
        assert baidu["features"][0]["properties"]["name"] == SOURCE[0]["name"]

    def test_a_table_without_coordinates_has_no_geojson_and_bad_requests_are_clear(self, elderly, app):
        dataset, resource = elderly
        other = helpers.call_action("resource_create", context=site_context(), package_id=dataset["id"],
                                    name="社区卫生服务中心", format="CSV", url="health.csv",
                                    upload=FileStorage(io.BytesIO((TABLES / "sh_community_health_centres_utf8.csv")
                                                                  .read_bytes()), filename="health.csv"))
        datastore_loader.load_resource(other["id"])
        refused = app.get(export_url(dataset, other, "geojson"), status=400).data.decode("utf-8")
        assert "没有坐标列" in refused and "no coordinates" in refused
        assert "未知的坐标系" in app.get(export_url(dataset, resource, "json", crs="xyz"), status=400).data.decode()
        app.get(export_url(dataset, resource, "pdf"), status=404)

    def test_exports_stream_with_memory_flat_in_the_row_count(self, elderly):
        dataset, resource = elderly
        rows = "".join(f"{n},上海市某某养老院第{n}分院,{n % 900},121.{n % 100000:05d},31.{n % 90000:05d}\n"
                       for n in range(150_000))
        big = helpers.call_action("resource_create", context=site_context(), package_id=dataset["id"],
                                  name="big", format="CSV", url="big.csv",
                                  upload=FileStorage(io.BytesIO(("id,name,beds,lng,lat\n" + rows).encode("utf-8")),
                                                     filename="big.csv"))
        assert datastore_loader.load_resource(big["id"])["rows"] == 150_000
        big = helpers.call_action("resource_show", id=big["id"])
        for fmt in ("csv", "json", "geojson"):
            tracemalloc.start()
            try:
                size = sum(len(chunk) for chunk in exports.export_chunks(big, fmt))
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert size > 8 * 1024 * 1024, fmt
            assert peak < 4 * 1024 * 1024, (fmt, peak)  # the file is several times larger


@pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")
def test_the_demo_seed_makes_the_elderly_care_table_a_typed_mapped_product(app):
    from ckanext.shanghai.portal import demo

    department = make_department(name="civil-affairs", title="上海市民政局")
    factories.Dataset(owner_org=department["id"], title="上海市养老机构", data_domain="health",
                      update_frequency="annual", open_condition="unconditional", last_updated="2024-03-01")
    seeded = demo.seed(TABLES)
    assert list(seeded["tables"]) == ["sh_elderly_care_institutions_utf8bom.csv"]
    dataset = helpers.call_action("package_show", id=seeded["tables"]["sh_elderly_care_institutions_utf8bom.csv"])
    resource = dataset["resources"][0]
    assert resource["coordinate_crs"] == "gcj02"
    datastore_loader.load_resource(resource["id"])  # the job the worker runs

    big = app.get("/api/3/action/datastore_search", query_string={
        "resource_id": resource["id"], "filters": '{"beds": {"gt": 200}}', "limit": 1000}).json["result"]
    assert big["total"] == sum(1 for row in SOURCE if int(row["beds"]) > 200)
    page = app.get(f"/dataset/{dataset['name']}/resource/{resource['id']}").body
    assert 'id="sh-data-dictionary"' in page and 'data-crs="gcj02"' in page
    for crs in ("wgs84", "gcj02", "bd09"):
        features = json.loads(app.get(export_url(dataset, resource, "geojson", crs=crs)).data)["features"]
        expected = coordinates.convert(float(SOURCE[0]["lng"]), float(SOURCE[0]["lat"]), "gcj02", crs)
        got = features[0]["geometry"]["coordinates"]
        assert abs(got[0] - expected[0]) < 1e-6 and abs(got[1] - expected[1]) < 1e-6

"""Searching by place on the real stack (PostgreSQL, the DataStore, Solr):
a product gets its extent from its table's coordinates (the real
elderly-care table, declared GCJ-02) or from the district its department
names; package_search and the search page filter by a box or a district;
a bad box answers 400 in Chinese and English."""
import io

import pytest
from werkzeug.datastructures import FileStorage

from ckan.tests import factories, helpers

from ckanext.shanghai.datastore import coordinates
from ckanext.shanghai.datastore import loader as datastore_loader
from data_files import TABLES
from portal_testing import make_department, site_context

ELDERLY = TABLES / "sh_elderly_care_institutions_utf8bom.csv"
# Around the Bund, in 黄浦区's box and east of 静安区's: only the city-wide
# box of the elderly-care table meets it.
BUND = "121.49,31.23,121.50,31.24"
# Open sea east of Chongming: no product's extent reaches it.
EAST_SEA = "122.60,31.00,122.80,31.20"


def product(department: dict, title: str, **fields) -> dict:
    fields.setdefault("open_condition", "unconditional")
    return factories.Dataset(owner_org=department["id"], title=title, data_domain="health",
                             update_frequency="annual", **fields)


@pytest.fixture
def catalog(clean_db, clean_index):
    civil = make_department(name="civil-affairs", title="上海市民政局")
    jingan = make_department(name="jingan-gov", title="上海市静安区人民政府")
    chongming = make_department(name="chongming-gov", title="上海市崇明区人民政府办公室")
    elderly = product(civil, "上海市养老机构")
    with ELDERLY.open("rb") as handle:
        resource = helpers.call_action(
            "resource_create", context=site_context(), package_id=elderly["id"], name="养老机构名录",
            format="CSV", url="elderly.csv", coordinate_crs="gcj02",
            upload=FileStorage(io.BytesIO(handle.read()), filename="elderly.csv"))
    status = datastore_loader.load_resource(resource["id"])
    assert status["state"] == "complete" and status["coordinates"] == {"lng": "lng", "lat": "lat"}
    return {"elderly": elderly, "resource": resource, "status": status,
            "jingan": product(jingan, "静安区养老服务补贴"),
            "chongming": product(chongming, "崇明区农村道路"),
            "nowhere": product(civil, "社会组织登记年报")}


def names(**params) -> set[str]:
    return {p["title"] for p in helpers.call_action("package_search", rows=50, **params)["results"]}


@pytest.mark.usefixtures("with_plugins")
class TestSpatialSearch:
    def test_the_table_extent_is_its_points_moved_from_gcj02_to_wgs84(self, catalog):
        extent = catalog["status"]["extent"]
        rows = [line.split(",") for line in ELDERLY.read_text(encoding="utf-8-sig").splitlines()[1:]]
        lngs, lats = [float(r[-2]) for r in rows], [float(r[-1]) for r in rows]
        assert extent == [min(lngs), min(lats), max(lngs), max(lats)]
        document = helpers.call_action("package_search", q=f"id:{catalog['elderly']['id']}",
                                       fl=["spatial_source", "spatial_bbox"])["results"][0]
        assert document["spatial_source"] == "coordinates"
        west, south = coordinates.gcj02_to_wgs84(extent[0], extent[1])
        assert f"{west:.4f}" in document["spatial_bbox"] and f"{south:.4f}" in document["spatial_bbox"]

    def test_a_box_finds_products_whose_extent_meets_it(self, catalog):
        assert names(ext_bbox=BUND) == {"上海市养老机构"}
        # Chongming island: the department named 崇明区 and the city-wide table.
        assert names(ext_bbox="121.50,31.60,121.60,31.65") == {"崇明区农村道路", "上海市养老机构"}
        assert names(ext_bbox=EAST_SEA) == set()
        assert "社会组织登记年报" in names()

    def test_a_district_finds_its_department_and_tables_with_points_there(self, catalog):
        assert names(ext_district="静安区") == {"静安区养老服务补贴", "上海市养老机构"}
        assert names(ext_district="chongming") == {"崇明区农村道路", "上海市养老机构"}
        assert names(ext_district="静安区", q="补贴") == {"静安区养老服务补贴"}

    def test_bad_input_answers_400_in_chinese_and_english_in_the_api(self, catalog, app):
        response = app.get("/api/3/action/package_search", query_string={"ext_bbox": "121.5,31.2,121.4"},
                           status=400)
        message = str(response.json["error"])
        assert "四个经纬度数值" in message and "four numbers" in message
        response = app.get("/api/3/action/package_search", query_string={"ext_district": "卢湾区"}, status=400)
        assert "未知的行政区" in str(response.json["error"]) and "Unknown district" in str(response.json["error"])

    def test_the_search_page_filters_by_district_and_by_box_keeping_the_query(self, catalog, app):
        page = app.get("/dataset/", query_string={"ext_district": "静安区"}).body
        assert 'id="sh-spatial-filter"' in page and '<option value="静安区" selected' in page
        assert "静安区养老服务补贴" in page and "上海市养老机构" in page and "崇明区农村道路" not in page
        page = app.get("/dataset/", query_string={"ext_bbox": EAST_SEA, "q": "养老"}).body
        assert "静安区养老服务补贴" not in page and "上海市养老机构" not in page
        assert f'value="{EAST_SEA}"' in page and '<input type="hidden" name="q" value="养老">' in page
        assert 'id="sh-spatial-clear"' in page
        refused = app.get("/dataset/", query_string={"ext_bbox": "north of here"}, status=400).body
        assert "四个经纬度数值" in refused

    def test_the_product_page_draws_a_map_of_its_table_in_the_tile_servers_system(self, catalog, app):
        page = app.get(f"/dataset/{catalog['elderly']['name']}").body
        assert "data-sh-map" in page and 'data-label-field="name"' in page
        assert f"/resource/{catalog['resource']['id']}/export/geojson?map=1&amp;crs=wgs84" in page
        page = app.get(f"/dataset/{catalog['jingan']['name']}").body
        assert "data-sh-map" not in page

    def test_a_conditional_products_table_is_not_mapped_before_the_grant(self, catalog, app):
        civil = helpers.call_action("organization_show", id="civil-affairs")
        gated = product(civil, "养老机构（有条件开放）", open_condition="conditional")
        with ELDERLY.open("rb") as handle:
            resource = helpers.call_action(
                "resource_create", context=site_context(), package_id=gated["id"], name="名录",
                format="CSV", url="elderly.csv", coordinate_crs="gcj02",
                upload=FileStorage(io.BytesIO(handle.read()), filename="elderly.csv"))
        assert datastore_loader.load_resource(resource["id"])["coordinates"]
        page = app.get(f"/dataset/{gated['name']}").body
        assert "养老机构（有条件开放）" in page and "data-sh-map" not in page
        app.get(f"/dataset/{gated['name']}/resource/{resource['id']}/export/geojson", status=403)

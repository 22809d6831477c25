"""A product's spatial extent and the search filters that use it
(search/spatial.py), without services: where the extent comes from (a
declared box, the district the metadata names, the whole city), the Solr
filter a box or a district becomes, and the refusals of bad input in
Chinese and English."""
import pytest

from ckanext.shanghai.search import spatial


def test_the_sixteen_districts_each_lie_inside_shanghai_and_hold_their_government():
    assert len(spatial.DISTRICTS) == 16
    west, south, east, north = spatial.CITY_BOX
    # Where each district's government sits (WGS-84, rounded), from its
    # published address; each must fall in its own district's box.
    seats = {"黄浦区": (121.484, 31.231), "静安区": (121.447, 31.228), "浦东新区": (121.544, 31.221),
             "崇明区": (121.397, 31.623), "金山区": (121.341, 30.742), "嘉定区": (121.265, 31.375)}
    for district in spatial.DISTRICTS:
        w, s, e, n = district["bbox"]
        assert west <= w < e <= east and south <= s < n <= north, district
    for name, (lng, lat) in seats.items():
        w, s, e, n = spatial.district_box(name)
        assert w <= lng <= e and s <= lat <= n, name


@pytest.mark.parametrize("name", ["静安区", "静安", "jingan", "Jing'an", "JING'AN"])
def test_a_district_is_found_by_its_chinese_short_pinyin_or_english_name(name):
    assert spatial.district_box(name) == spatial.district_box("静安区")


def test_a_district_government_as_department_gives_its_district_box():
    box, source, districts = spatial.package_extent({"organization": {"title": "上海市普陀区人民政府"}})
    assert (source, districts) == ("district", ["普陀区"])
    assert box == spatial.district_box("普陀区")


def test_the_housing_schema_district_and_the_coverage_text_name_districts():
    assert spatial.package_extent({"district": "pudong"})[2] == ["浦东新区"]
    assert spatial.package_extent({"district": "citywide"})[0] == spatial.CITY_BOX
    box, _source, districts = spatial.package_extent({"spatial_coverage": "徐汇区、长宁区"})
    assert districts == ["徐汇区", "长宁区"]
    assert box == spatial.union([spatial.district_box("徐汇区"), spatial.district_box("长宁区")])
    assert spatial.package_extent({"spatial_coverage": "上海市"})[0] == spatial.CITY_BOX


def test_a_declared_resource_box_wins_over_the_district_and_nothing_gives_no_extent():
    product = {"organization": {"title": "上海市黄浦区人民政府"},
               "resources": [{"spatial_extent": "121.47,31.22,121.49,31.24"}]}
    assert spatial.package_extent(product)[:2] == ([121.47, 31.22, 121.49, 31.24], "declared")
    assert spatial.package_extent({"organization": {"title": "上海市民政局"}}) == (None, None, [])


def test_the_index_fields_are_a_solr_envelope_with_its_source_and_districts():
    document = {"validated_data_dict": '{"organization": {"title": "上海市静安区人民政府"}}'}
    fields = spatial.index_fields(document)
    w, s, e, n = spatial.district_box("静安区")
    assert fields["spatial_bbox"] == f"ENVELOPE({w:.6f}, {e:.6f}, {n:.6f}, {s:.6f})"
    assert fields["spatial_source"] == "district" and fields["spatial_district"] == ["静安区"]


def test_a_box_and_a_district_become_solr_filters():
    assert spatial.filter_query({}) is None
    box = spatial.filter_query({"ext_bbox": "121.4, 31.2，121.5,31.3"})
    assert box == '+spatial_bbox:"Intersects(ENVELOPE(121.400000, 121.500000, 31.300000, 31.200000))"'
    district = spatial.filter_query({"ext_district": "静安区"})
    assert 'spatial_district:"静安区"' in district and "spatial_source:coordinates" in district


@pytest.mark.parametrize("value, zh, en", [
    ("121.4,31.2,121.5", "四个经纬度数值", "four numbers"),
    ("a,b,c,d", "四个经纬度数值", "four numbers"),
    ("121.4,31.2,200,31.3", "经纬度超出范围", "out of range"),
    ("121.5,31.2,121.4,31.3", "西边界应小于东边界", "West must not exceed east"),
])
def test_a_bad_box_is_refused_in_chinese_and_english(value, zh, en):
    with pytest.raises(spatial.SpatialFilterError) as refused:
        spatial.filter_query({"ext_bbox": value})
    assert zh in refused.value.zh and en in refused.value.en


def test_an_unknown_district_is_refused_with_the_choices():
    with pytest.raises(spatial.SpatialFilterError) as refused:
        spatial.filter_query({"ext_district": "卢湾区"})
    assert "卢湾区" in refused.value.zh and "静安区" in refused.value.zh and "Jing'an" in refused.value.en

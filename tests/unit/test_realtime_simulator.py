"""The demo's car-park feed simulator: car parks at the real addresses and
coordinates of the Shanghai elderly-care table (config/demo/tables), and
free spaces that move every interval within each car park's capacity."""
import datetime as dt

from data_files import TABLES

from ckanext.shanghai.realtime.simulator import SECTIONS, FeedState, car_parks

PLACES = TABLES / "sh_elderly_care_institutions_utf8bom.csv"
AT = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.timezone.utc)


def test_a_few_thousand_car_parks_sit_at_real_shanghai_addresses():
    parks = car_parks(PLACES)
    assert len(parks) == 626 * len(SECTIONS)
    assert len({park.carpark_id for park in parks}) == len(parks)
    assert all(120.8 < park.lng < 122.2 and 30.6 < park.lat < 31.9 for park in parks)
    first = parks[0]
    assert (first.district, first.address) == ("宝山区", "上海市场中路4098弄8号")
    assert first.name.startswith("上海信养养老服务有限公司大场分公司") and first.carpark_id == "P0001-1"
    assert all(30 <= park.capacity < 400 for park in parks)


def test_the_first_push_holds_every_car_park_and_later_ones_what_changed():
    parks = car_parks(PLACES)
    feed = FeedState(parks)
    first = feed.tick(AT)
    assert [r["carpark_id"] for r in first] == [p.carpark_id for p in parks]
    before = {r["carpark_id"]: r["free_spaces"] for r in first}
    second = feed.tick(AT + dt.timedelta(minutes=1))
    assert 0 < len(second) < len(parks)
    capacity = {p.carpark_id: p.capacity for p in parks}
    for record in second:
        assert record["free_spaces"] != before[record["carpark_id"]]
        assert 0 <= record["free_spaces"] <= capacity[record["carpark_id"]]
        assert record["observed_at"] == "2026-12-01T02:01:00+00:00"


def test_places_without_coordinates_are_left_out(tmp_path):
    places = tmp_path / "places.csv"
    places.write_text("id,district,name,address,lng,lat\n1,黄浦区,甲,上海市某路1号,121.48,31.23\n"
                      "2,黄浦区,乙,上海市某路2号,,\n", encoding="utf-8")
    assert {park.carpark_id for park in car_parks(places)} == {f"P0001-{s}" for s, _ in SECTIONS}

"""Coordinate systems published in China: WGS-84, GCJ-02 and BD-09.

Reference points: the published outputs of the GCJ-02 and BD-09 reference
formulas for (116.404, 39.915), as printed in the README of
wandergis/coordtransform (the example every Chinese map library repeats);
only the numbers are used here, the conversion is this project's own. The
published inverses (GCJ-02 -> WGS-84, BD-09 -> GCJ-02) are the one-step
approximations; ours iterate to the exact inverse, so they are held to the
same 1e-6 degrees and, more strictly, to a round trip within 0.5 m."""
import itertools

import pytest

from ckanext.shanghai.datastore.coordinates import (
    CRS, bd09_to_gcj02, convert, detect_columns, distance_m, gcj02_to_bd09, gcj02_to_wgs84,
    parse_pair, wgs84_to_gcj02)

TIANANMEN = (116.404, 39.915)
DEGREE = 1e-6


def close(got, want, tolerance=DEGREE):
    return abs(got[0] - want[0]) <= tolerance and abs(got[1] - want[1]) <= tolerance


@pytest.mark.parametrize("function, expected", [
    (wgs84_to_gcj02, (116.41024449916938, 39.91640428150164)),
    (gcj02_to_bd09, (116.41036949371029, 39.92133699351021)),
    (gcj02_to_wgs84, (116.39775550083061, 39.91359571849836)),
    (bd09_to_gcj02, (116.39762729119315, 39.90865673957631)),
])
def test_published_reference_points(function, expected):
    assert close(function(*TIANANMEN), expected)


def test_wgs84_to_bd09_goes_through_gcj02_as_published():
    assert close(convert(*TIANANMEN, "wgs84", "bd09"), (116.41662724378733, 39.922699552216216))


# Shanghai's People's Square, the elderly-care table's first institution,
# Urumqi, Sanya and Harbin: the edges of the offset's range.
POINTS = [(121.4737, 31.2304), (121.415111, 31.300448), (87.6168, 43.8256), (109.5119, 18.2528),
          (126.5349, 45.8038)]


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("source, target", list(itertools.permutations(CRS, 2)))
def test_every_round_trip_returns_within_half_a_metre(point, source, target):
    there = convert(*point, source, target)
    back = convert(*there, target, source)
    assert distance_m(*point, *back) < 0.5
    # And the systems really differ: hundreds of metres in China.
    assert 50 < distance_m(*point, *there) < 2000


def test_points_outside_china_are_not_moved():
    assert wgs84_to_gcj02(2.3522, 48.8566) == (2.3522, 48.8566)
    assert gcj02_to_wgs84(-122.4194, 37.7749) == (-122.4194, 37.7749)


def test_an_unknown_system_is_refused():
    with pytest.raises(ValueError):
        convert(121.47, 31.23, "wgs84", "cgcs2000")


@pytest.mark.parametrize("dictionary, expected", [
    ([{"name": "名称", "type": "text", "example": "甲"}, {"name": "经度", "type": "numeric", "example": "121.47"},
      {"name": "纬度", "type": "numeric", "example": "31.23"}], {"lng": "经度", "lat": "纬度"}),
    ([{"name": "lng", "type": "numeric", "example": "121.415111"},
      {"name": "lat", "type": "numeric", "example": "31.300448"}], {"lng": "lng", "lat": "lat"}),
    ([{"name": "X", "type": "numeric", "example": "121.4"}, {"name": "Y", "type": "numeric", "example": "31.2"}],
     {"lng": "X", "lat": "Y"}),
    # Projected metres in x/y are not degrees.
    ([{"name": "x", "type": "numeric", "example": "3456789.1"}, {"name": "y", "type": "numeric", "example": "12.5"}],
     None),
    ([{"name": "名称", "type": "text", "example": "甲"}, {"name": "坐标", "type": "text", "example": "121.47,31.23"}],
     {"pair": "坐标"}),
    ([{"name": "名称", "type": "text", "example": "甲"}, {"name": "床位", "type": "integer", "example": "120"}], None),
])
def test_coordinate_columns_are_found(dictionary, expected):
    assert detect_columns(dictionary) == expected


def test_a_pair_cell_reads_longitude_first():
    assert parse_pair(" 121.47 ， 31.23 ") == (121.47, 31.23)
    assert parse_pair("上海市黄浦区") is None and parse_pair("") is None

"""Coordinates in a table: finding the columns that hold them, and moving a
point between the three coordinate systems published in China: WGS-84
(GPS), GCJ-02 (the national map datum offset, "Mars coordinates") and BD-09
(Baidu's offset of GCJ-02). Pure functions, no CKAN.

Written from the published formulas: GCJ-02 is WGS-84 shifted by the
polynomial-and-sine offset on the Krasovsky 1940 ellipsoid (a = 6378245 m,
e^2 = 0.00669342162296594323), applied inside mainland China only; BD-09 is
GCJ-02 turned and stretched around the origin and moved by (0.0065, 0.006)
degrees. Neither has a closed inverse: the inverses here iterate the
forward formula until it reproduces the point (to 1e-10 degrees, about
0.01 mm), so a round trip returns within millimetres.
"""
from __future__ import annotations

import math
import re
from typing import Callable

__all__ = ["CRS", "CRS_LABELS", "wgs84_to_gcj02", "gcj02_to_wgs84", "gcj02_to_bd09", "bd09_to_gcj02",
           "convert", "in_china", "detect_columns", "parse_pair", "distance_m"]

CRS = ("wgs84", "gcj02", "bd09")
CRS_LABELS = {"wgs84": ("WGS-84（GPS）", "WGS-84 (GPS)"),
              "gcj02": ("GCJ-02（国测局坐标）", "GCJ-02 (national offset)"),
              "bd09": ("BD-09（百度坐标）", "BD-09 (Baidu)")}

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
_PRECISION = 1e-10
_MAX_STEPS = 30


def in_china(lng: float, lat: float) -> bool:
    """The box the GCJ-02 offset applies in (outside it, points are not moved)."""
    return 72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271


def _offset_lat(x: float, y: float) -> float:
    value = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    value += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    value += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    value += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return value


def _offset_lng(x: float, y: float) -> float:
    value = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    value += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    value += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    value += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return value


def wgs84_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    if not in_china(lng, lat):
        return lng, lat
    d_lat = _offset_lat(lng - 105.0, lat - 35.0)
    d_lng = _offset_lng(lng - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lng = (d_lng * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lng + d_lng, lat + d_lat


def gcj02_to_bd09(lng: float, lat: float) -> tuple[float, float]:
    z = math.sqrt(lng * lng + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lng) + 0.000003 * math.cos(lng * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def _invert(forward: Callable[[float, float], tuple[float, float]], lng: float, lat: float,
            start: tuple[float, float]) -> tuple[float, float]:
    """The point ``forward`` moves to (lng, lat), by fixed-point iteration
    from ``start`` (the offsets vary slowly, so each step gains digits)."""
    guess_lng, guess_lat = start
    for _step in range(_MAX_STEPS):
        got_lng, got_lat = forward(guess_lng, guess_lat)
        miss_lng, miss_lat = got_lng - lng, got_lat - lat
        if abs(miss_lng) < _PRECISION and abs(miss_lat) < _PRECISION:
            break
        guess_lng, guess_lat = guess_lng - miss_lng, guess_lat - miss_lat
    return guess_lng, guess_lat


def gcj02_to_wgs84(lng: float, lat: float) -> tuple[float, float]:
    if not in_china(lng, lat):
        return lng, lat
    return _invert(wgs84_to_gcj02, lng, lat, (lng, lat))


def bd09_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    return _invert(gcj02_to_bd09, lng, lat, (lng - 0.0065, lat - 0.006))


_STEPS: dict[tuple[str, str], Callable[[float, float], tuple[float, float]]] = {
    ("wgs84", "gcj02"): wgs84_to_gcj02,
    ("gcj02", "wgs84"): gcj02_to_wgs84,
    ("gcj02", "bd09"): gcj02_to_bd09,
    ("bd09", "gcj02"): bd09_to_gcj02,
}


def convert(lng: float, lat: float, source: str, target: str) -> tuple[float, float]:
    """(lng, lat) in ``source`` as (lng, lat) in ``target`` (each one of ``CRS``)."""
    if source not in CRS or target not in CRS:
        raise ValueError(f"unknown coordinate system: {source!r} or {target!r} (one of {', '.join(CRS)})")
    if source == target:
        return lng, lat
    if (source, target) in _STEPS:
        return _STEPS[(source, target)](lng, lat)
    # wgs84 <-> bd09 go through gcj02.
    return convert(*convert(lng, lat, source, "gcj02"), "gcj02", target)


def distance_m(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine on a 6,371 km sphere)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(h))


# --- Finding the coordinate columns ---------------------------------------

_LNG_NAMES = re.compile(r"(经度|lng|lon|long|longitude|x|x坐标|坐标x)\Z", re.IGNORECASE)
_LAT_NAMES = re.compile(r"(纬度|lat|latitude|y|y坐标|坐标y)\Z", re.IGNORECASE)
_PAIR_NAMES = re.compile(r".*(坐标|经纬度|location|coord|point|位置|lnglat|latlng).*", re.IGNORECASE)
_PAIR = re.compile(r"\s*(-?\d{1,3}\.\d+)\s*[,，]\s*(-?\d{1,3}\.\d+)\s*\Z")


def _plausible(lng: float, lat: float) -> bool:
    return -180 <= lng <= 180 and -90 <= lat <= 90 and (lng, lat) != (0, 0)


def parse_pair(value: str | None) -> tuple[float, float] | None:
    """(lng, lat) from a ``121.47,31.23`` cell (longitude first, as the
    Chinese map services write it), or None."""
    if not value:
        return None
    match = _PAIR.match(str(value))
    if not match:
        return None
    lng, lat = float(match.group(1)), float(match.group(2))
    return (lng, lat) if _plausible(lng, lat) else None


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def detect_columns(dictionary: list[dict]) -> dict | None:
    """The coordinate columns of a table from its data dictionary (entries
    with ``name``, ``type`` and ``example``): ``{"lng": name, "lat": name}``
    for two number columns (经度/纬度, lng/lat, x/y with degrees in them), or
    ``{"pair": name}`` for one text column of ``121.47,31.23`` pairs; None."""
    numbers = [entry for entry in dictionary if entry.get("type") in ("numeric", "integer")]
    lng = next((e for e in numbers if _LNG_NAMES.match(e["name"].strip())), None)
    lat = next((e for e in numbers if _LAT_NAMES.match(e["name"].strip())), None)
    if lng and lat:
        example = (_number(lng.get("example")), _number(lat.get("example")))
        if None not in example and _plausible(*example) and abs(example[0]) > 1 and abs(example[1]) > 1:
            return {"lng": lng["name"], "lat": lat["name"]}
    for entry in dictionary:
        if entry.get("type") == "text" and parse_pair(entry.get("example")):
            if _PAIR_NAMES.match(entry["name"]) or len(dictionary) <= 3:
                return {"pair": entry["name"]}
    for entry in dictionary:
        if entry.get("type") == "text" and parse_pair(entry.get("example")):
            return {"pair": entry["name"]}
    return None

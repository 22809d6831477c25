"""A product's spatial extent in the index and the searches that use it.

The extent is one WGS-84 rectangle in Solr's own BBoxField
(``spatial_bbox``), taken from the first of: the coordinates of the
product's DataStore tables (their box, found at load time, moved from the
declared coordinate system), a resource's declared ``spatial_extent``, or
the district its metadata names (the housing schema's ``district``, the
``spatial_coverage`` text, or a district government as department).
Searches filter with ``ext_bbox=west,south,east,north`` (the box drawn or
typed on the search page) and ``ext_district=<name>``; both are refused
with a message in Chinese and English when malformed."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ckan.lib.search.common import SearchQueryError

__all__ = ["SpatialFilterError", "DISTRICTS", "district_names", "district_box", "CITY_BOX", "parse_bbox", "union",
           "package_extent", "index_fields", "filter_query", "BBOX_PARAM", "DISTRICT_PARAM"]

BBOX_PARAM = "ext_bbox"
DISTRICT_PARAM = "ext_district"
_DISTRICT_FILE = Path(__file__).with_name("districts.json")


@functools.lru_cache(maxsize=1)
def _districts() -> list[dict]:
    return json.loads(_DISTRICT_FILE.read_text(encoding="utf-8"))["districts"]


DISTRICTS: list[dict] = _districts()
# The housing schema's district codes (``pinyin`` in districts.json) -> names.
_CODES = {district["pinyin"]: district["name"] for district in DISTRICTS}
_CITY_WORDS = ("上海市", "全市", "citywide")


def district_names() -> list[str]:
    return [district["name"] for district in DISTRICTS]


def _district(name: str) -> dict | None:
    """A district by its Chinese name, short name (静安) or English name."""
    wanted = name.strip().lower()
    for district in DISTRICTS:
        if wanted in (district["name"], district["en"].lower(), district["name"].rstrip("区"), district["pinyin"]):
            return district
    return None


def district_box(name: str) -> list[float] | None:
    district = _district(name)
    return list(district["bbox"]) if district else None


def union(boxes: list[list[float]]) -> list[float] | None:
    boxes = [box for box in boxes if box]
    if not boxes:
        return None
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


CITY_BOX = union([district["bbox"] for district in DISTRICTS])


class SpatialFilterError(SearchQueryError):
    """A malformed box or an unknown district: CKAN answers 400 with the
    message, on the search page and in the API alike."""

    def __init__(self, zh: str, en: str):
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


def _refusal(zh: str, en: str) -> SpatialFilterError:
    return SpatialFilterError(zh, en)


def parse_bbox(value: Any) -> list[float]:
    """``west,south,east,north`` in decimal degrees, checked."""
    parts = [part.strip() for part in str(value).replace("，", ",").split(",")]
    try:
        west, south, east, north = (float(part) for part in parts)
    except ValueError:
        raise _refusal(f"范围「{value}」应为“西,南,东,北”四个经纬度数值",
                       f"The box {value!r} must be four numbers: west,south,east,north") from None
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90):
        raise _refusal("经纬度超出范围（经度 -180～180，纬度 -90～90）",
                       "Coordinates out of range (longitude -180 to 180, latitude -90 to 90)")
    if west > east or south > north:
        raise _refusal("西边界应小于东边界、南边界应小于北边界", "West must not exceed east, nor south north")
    return [west, south, east, north]


def _table_boxes(pkg_dict: dict) -> list[list[float]]:
    """The WGS-84 boxes of the product's tables with coordinates."""
    from ckanext.shanghai.datastore import coordinates, geo, loader

    boxes = []
    for resource in pkg_dict.get("resources") or []:
        if not resource.get("datastore_active"):
            continue
        extent = (loader.load_status(resource["id"]) or {}).get("extent")
        if not extent:
            continue
        source = geo.declared_crs(resource) or "wgs84"
        # The shift between the systems is smooth and under a kilometre:
        # moving the corners moves the box.
        west, south = coordinates.convert(extent[0], extent[1], source, "wgs84")
        east, north = coordinates.convert(extent[2], extent[3], source, "wgs84")
        boxes.append([west, south, east, north])
    return boxes


def _declared_boxes(pkg_dict: dict) -> list[list[float]]:
    boxes = []
    for resource in pkg_dict.get("resources") or []:
        if resource.get("spatial_extent"):
            try:
                boxes.append(parse_bbox(resource["spatial_extent"]))
            except SpatialFilterError:
                continue
    return boxes


def _named_districts(pkg_dict: dict) -> list[str]:
    """The districts the metadata names, in the order asked: the
    ``district`` choice, the coverage text, then the department's title;
    ``["上海市"]`` for city-wide data."""
    texts = []
    code = pkg_dict.get("district")
    if code:
        if code == "citywide":
            return ["上海市"]
        if code in _CODES:
            return [_CODES[code]]
    texts.append(pkg_dict.get("spatial_coverage") or "")
    organization = pkg_dict.get("organization")
    if isinstance(organization, dict):
        texts.append(organization.get("title") or "")
    for text in texts:
        found = [name for name in district_names() if name in text]
        if found:
            return found
        if text.strip() in _CITY_WORDS:
            return ["上海市"]
    return []


def package_extent(pkg_dict: dict) -> tuple[list[float] | None, str | None, list[str]]:
    """(WGS-84 box, where it came from: ``coordinates``, ``declared`` or
    ``district``, the districts named)."""
    districts = _named_districts(pkg_dict)
    box = union(_table_boxes(pkg_dict))
    if box:
        return box, "coordinates", districts
    box = union(_declared_boxes(pkg_dict))
    if box:
        return box, "declared", districts
    if districts:
        boxes = [CITY_BOX if name == "上海市" else district_box(name) for name in districts]
        return union(boxes), "district", districts
    return None, None, []


def _envelope(box: list[float]) -> str:
    west, south, east, north = box
    return f"ENVELOPE({west:.6f}, {east:.6f}, {north:.6f}, {south:.6f})"


def index_fields(pkg_dict: dict) -> dict:
    """The product's spatial fields of its Solr document (read from the
    whole product CKAN keeps in it: by now the document has lost its
    resources and its department's title)."""
    whole = pkg_dict.get("validated_data_dict") or pkg_dict.get("data_dict")
    product = json.loads(whole) if isinstance(whole, str) else pkg_dict
    box, source, districts = package_extent(product)
    for key in ("spatial_bbox", "spatial_source", "spatial_district"):
        pkg_dict.pop(key, None)
    if box:
        pkg_dict["spatial_bbox"] = _envelope(box)
        pkg_dict["spatial_source"] = source
    if districts:
        pkg_dict["spatial_district"] = districts
    return pkg_dict


def _district_refusal(value: str) -> SpatialFilterError:
    return SpatialFilterError(f"未知的行政区「{value}」，可选：{'、'.join(district_names())}",
                              f"Unknown district {value!r}: use one of {', '.join(d['en'] for d in DISTRICTS)}")


def filter_query(extras: dict) -> str | None:
    """The Solr filter for a search's ``ext_bbox`` and ``ext_district``, or
    None. A box keeps products whose extent meets it; a district keeps
    products of that district and those whose tables have points in its box
    (a city-wide product counts for every district)."""
    clauses = []
    bbox = extras.get(BBOX_PARAM)
    if bbox not in (None, ""):
        clauses.append(f'spatial_bbox:"Intersects({_envelope(parse_bbox(bbox))})"')
    district = (extras.get(DISTRICT_PARAM) or "").strip()
    if district:
        found = _district(district)
        if found is None:
            raise _district_refusal(district)
        clauses.append(f'(spatial_district:"{found["name"]}" OR spatial_district:"上海市" OR '
                       f'(spatial_source:coordinates AND spatial_bbox:"Intersects({_envelope(found["bbox"])})"))')
    return " ".join(f"+{clause}" for clause in clauses) or None

"""A table's coordinates as a user asks for them: which columns hold them
(found when the table was loaded), which coordinate system the department
declared (the resource's ``coordinate_crs``), and the rows moved into the
system the caller asks for with ``crs=wgs84|gcj02|bd09`` (datastore_search
and the exports)."""
from __future__ import annotations

import json
from typing import Any, Callable

import ckan.plugins.toolkit as tk

from ckanext.shanghai.datastore import coordinates
from ckanext.shanghai.datastore import loader

__all__ = ["CRS_FIELD", "table_coordinates", "declared_crs", "target_crs", "row_converter", "refusal",
           "point_of", "converter", "datastore_search"]

# The resource field holding the declared coordinate system.
CRS_FIELD = "coordinate_crs"


def table_coordinates(resource_id: str) -> dict | None:
    """The coordinate columns found at load time (``{"lng", "lat"}`` or
    ``{"pair"}``), or None."""
    status = loader.load_status(resource_id) or {}
    return status.get("coordinates")


def declared_crs(resource: dict) -> str | None:
    value = (resource.get(CRS_FIELD) or "").strip().lower()
    return value if value in coordinates.CRS else None


def refusal(zh: str, en: str) -> tk.ValidationError:
    return tk.ValidationError({"crs": [f"{zh} / {en}"]})


def target_crs(value: Any) -> str | None:
    """The ``crs`` a caller asked for, checked; None when not asked."""
    if value in (None, ""):
        return None
    text = str(value).strip().lower().replace("-", "")
    if text not in coordinates.CRS:
        raise refusal(f"未知的坐标系「{value}」，可选 wgs84、gcj02、bd09",
                      f"Unknown coordinate system {value!r}: use wgs84, gcj02 or bd09")
    return text


def row_converter(resource: dict, target: str) -> tuple[dict, Callable[[dict], dict]]:
    """The table's coordinate columns and a function moving one record
    (a dict) from the declared system into ``target``; raises
    ValidationError when the table has no coordinates or no declared system."""
    columns = table_coordinates(resource["id"])
    if not columns:
        raise refusal("该表没有识别出坐标列，不能转换坐标系",
                      "This table has no coordinate columns to convert")
    source = declared_crs(resource)
    if source is None:
        raise refusal("提供部门尚未声明该表的坐标系（WGS-84、GCJ-02 或 BD-09），不能转换",
                      "The department has not declared this table's coordinate system "
                      "(WGS-84, GCJ-02 or BD-09), so it cannot be converted")

    return columns, converter(columns, source, target)


def converter(columns: dict, source: str, target: str) -> Callable[[dict], dict]:
    """A function moving one record's point (in ``columns``) from ``source``
    into ``target``, in place."""

    def convert(record: dict) -> dict:
        point = point_of(record, columns)
        if point is None:
            return record
        lng, lat = coordinates.convert(*point, source, target)
        if "pair" in columns:
            record[columns["pair"]] = f"{lng:.6f},{lat:.6f}"
        else:
            record[columns["lng"]], record[columns["lat"]] = round(lng, 7), round(lat, 7)
        return record

    return convert


def point_of(record: dict, columns: dict) -> tuple[float, float] | None:
    """(lng, lat) of a record, or None when its cells hold no point."""
    if "pair" in columns:
        return coordinates.parse_pair(record.get(columns["pair"]))
    try:
        lng, lat = float(record.get(columns["lng"])), float(record.get(columns["lat"]))
    except (TypeError, ValueError):
        return None
    return lng, lat


@tk.chained_action
@tk.side_effect_free
def datastore_search(up_func, context, data_dict):
    """datastore_search, plus ``crs`` (wgs84, gcj02 or bd09): the
    coordinates of the returned records in that system."""
    target = target_crs(data_dict.get("crs"))
    data_dict = {key: value for key, value in data_dict.items() if key != "crs"}
    result = up_func(context, data_dict)
    if target is None:
        return result
    resource = tk.get_action("resource_show")({"ignore_auth": True}, {"id": result["resource_id"]})
    _columns, convert = row_converter(resource, target)
    records = result.get("records")
    if hasattr(records, "encoded_json"):
        # Web API calls get the rows as JSON text straight from PostgreSQL.
        records = json.loads(records.encoded_json)
    if isinstance(records, list) and records and isinstance(records[0], dict):
        result["records"] = [convert(dict(record)) for record in records]
    elif isinstance(records, list) and records:
        names = [field["id"] for field in result["fields"]]
        result["records"] = [[converted[name] for name in names]
                             for converted in (convert(dict(zip(names, row))) for row in records)]
    elif records and not isinstance(records, list):
        raise refusal("坐标转换只支持 objects 和 lists 记录格式",
                      "Coordinate conversion works with the objects and lists record formats only")
    result["crs"] = target
    return result

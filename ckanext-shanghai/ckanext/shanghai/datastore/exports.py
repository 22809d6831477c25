"""Every DataStore table as a file to download: CSV (UTF-8 with a BOM so
Excel opens it; GBK on request), JSON, XLSX and, when the table has
coordinates, GeoJSON; coordinates in the system asked for (``crs``).

Rows come from a server-side cursor a batch at a time and leave as they
are written, so memory stays flat however long the table (XLSX is written
by openpyxl's write-only mode to a temporary file, then sent)."""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import tempfile
from decimal import Decimal
from typing import Any, Callable, Iterator
from urllib.parse import quote

from ckanext.shanghai.datastore import geo

__all__ = ["FORMATS", "MEDIA_TYPES", "table_rows", "csv_chunks", "json_chunks", "geojson_chunks",
           "xlsx_chunks", "export_chunks", "content_disposition"]

FORMATS = ("csv", "json", "geojson", "xlsx")
MEDIA_TYPES = {"csv": "text/csv", "json": "application/json", "geojson": "application/geo+json",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
BATCH_ROWS = 2000
_HIDDEN = ("_id", "_full_text")


def table_rows(resource_id: str) -> tuple[list[str], Iterator[dict]]:
    """The table's column names and its rows in load order, read through a
    server-side cursor (``BATCH_ROWS`` at a time)."""
    import sqlalchemy as sa
    from ckanext.datastore.backend.postgres import get_read_engine, identifier

    connection = get_read_engine().connect()
    try:
        result = connection.execution_options(stream_results=True, max_row_buffer=BATCH_ROWS).execute(
            sa.text(f"select * from {identifier(resource_id)} order by _id"))
        names = [name for name in result.keys() if name not in _HIDDEN]
    except BaseException:
        connection.close()
        raise

    def rows() -> Iterator[dict]:
        try:
            for row in result:
                mapping = row._mapping
                yield {name: mapping[name] for name in names}
        finally:
            connection.close()

    return names, rows()


def _plain(value: Any) -> Any:
    """A cell as JSON has it: exact integers, other numbers as floats, dates
    in ISO 8601."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return str(value)


def csv_chunks(names: list[str], rows: Iterator[dict], encoding: str = "utf-8") -> Iterator[bytes]:
    """CSV bytes: UTF-8 with a BOM, or ``gbk`` (written as GB18030, which is
    GBK for every character GBK has and also holds the rest)."""
    codec = "gb18030" if encoding == "gbk" else "utf-8"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(names)
    if codec == "utf-8":
        yield codecs.BOM_UTF8
    count = 0
    for row in rows:
        writer.writerow([_text(row[name]) for name in names])
        count += 1
        if count % 500 == 0:
            yield buffer.getvalue().encode(codec)
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode(codec)


def json_chunks(names: list[str], rows: Iterator[dict]) -> Iterator[bytes]:
    """A JSON array of row objects."""
    yield b"["
    first = True
    for row in rows:
        text = json.dumps({name: _plain(row[name]) for name in names}, ensure_ascii=False)
        yield (text if first else "," + text).encode("utf-8")
        first = False
    yield b"]"


def geojson_chunks(names: list[str], rows: Iterator[dict], columns: dict, crs: str | None) -> Iterator[bytes]:
    """A GeoJSON FeatureCollection, one Point feature per row with a
    point; ``crs`` names the system the coordinates are in (RFC 7946 wants
    WGS-84; None when the department has not declared one)."""
    head = {"type": "FeatureCollection", "coordinate_crs": crs}
    yield json.dumps(head, ensure_ascii=False)[:-1].encode("utf-8") + b', "features": ['
    first = True
    for row in rows:
        point = geo.point_of(row, columns)
        if point is None:
            continue
        feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [point[0], point[1]]},
                   "properties": {name: _plain(row[name]) for name in names}}
        text = json.dumps(feature, ensure_ascii=False)
        yield (text if first else "," + text).encode("utf-8")
        first = False
    yield b"]}"


def xlsx_chunks(names: list[str], rows: Iterator[dict]) -> Iterator[bytes]:
    """An XLSX workbook, built in openpyxl's write-only mode (rows go to a
    temporary file as they come), then sent in blocks."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("data")
    sheet.append(names)
    for row in rows:
        sheet.append([_plain(row[name]) if not isinstance(row[name], (dt.date, dt.datetime)) else row[name]
                      for name in names])
    with tempfile.TemporaryFile() as spool:
        book.save(spool)
        spool.seek(0)
        while block := spool.read(256 * 1024):
            yield block


def export_chunks(resource: dict, fmt: str, *, crs: str | None = None,
                  encoding: str = "utf-8") -> Iterator[bytes]:
    """The bytes of ``resource``'s table as ``fmt``; with ``crs`` the
    coordinates converted into that system (ValidationError when the table
    has no coordinates or no declared system). GeoJSON goes out in WGS-84
    unless another system is asked for."""
    columns = geo.table_coordinates(resource["id"])
    declared = geo.declared_crs(resource)
    if fmt == "geojson" and not columns:
        raise geo.refusal("该表没有坐标列，不能导出 GeoJSON", "This table has no coordinates to export as GeoJSON")
    if fmt == "geojson" and crs is None and declared is not None:
        crs = "wgs84"
    convert: Callable[[dict], dict] | None = None
    if crs is not None:
        columns, convert = geo.row_converter(resource, crs)
    names, rows = table_rows(resource["id"])
    if convert is not None:
        rows = (convert(row) for row in rows)
    if fmt == "csv":
        return csv_chunks(names, rows, encoding)
    if fmt == "json":
        return json_chunks(names, rows)
    if fmt == "geojson":
        return geojson_chunks(names, rows, columns, crs or declared)
    return xlsx_chunks(names, rows)


def content_disposition(name: str, fmt: str) -> str:
    """An attachment header that keeps a Chinese file name (RFC 6266)."""
    filename = f"{name}.{fmt}"
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_").replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"

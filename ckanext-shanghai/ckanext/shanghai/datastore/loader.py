"""The DataStore loader: reads a tabular resource (CSV in UTF-8, UTF-8 with
BOM, GBK or GB18030; Excel xlsx or xls, also when named .csv) and loads it
into CKAN's DataStore through CKAN's background job queue.

Files are read by the harvest's table reader (``files.readers.iter_rows``:
size and zip-bomb caps, encoding detection, Excel cell text), remote ones
downloaded by the guarded downloader under the operator's fetch limits
(``files.fetching``). A table is read and checked whole before the DataStore
is touched, its rows spooled to a temporary file rather than held in memory,
then written in chunks; a file that cannot be read leaves the DataStore as
it was.

Types: one streamed pass over the whole file reads the header (below title
rows or a row of generated labels, see ``columns.find_header``), infers each
column's type (integer, numeric, date, timestamp, boolean, else text; see
``columns``) and spools the rows as CSV. PostgreSQL then COPYs the spool
into a temporary table of text columns and casts it into typed columns; only
when that has worked is the resource's DataStore table replaced (created
through ``datastore_create`` with the data dictionary in each field's
``info``, filled by one INSERT ... SELECT). A value that does not fit a type
widens its column to text, so types never fail a load.

The load's state (pending, running, complete, error), the data dictionary
and a bilingual error message are kept in CKAN's task_status table, keyed by
resource id."""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import itertools
import json
import logging
import os
import tempfile
from typing import IO, BinaryIO, Iterator

import ckan.plugins.toolkit as tk

from ckanext.shanghai.datastore import columns as column_types
from ckanext.shanghai.datastore import coordinates
from ckanext.shanghai.files import fetching, readers

log = logging.getLogger(__name__)

__all__ = ["LoadError", "Table", "read_table", "enqueue_load", "load_resource", "load_status",
           "is_tabular"]

TASK_TYPE = "shanghai_datastore_load"
TABULAR_FORMATS = {"csv", "tsv", "xls", "xlsx"}
# The loader's own cap; a lower ckanext.shanghai.harvest.max_bytes lowers it.
MAX_BYTES = 100 * 1024 * 1024
CHUNK_ROWS = 1000
# For rebuilding a loaded table's full-text indexes (one transaction's worth).
MAINTENANCE_MEMORY_MB = 256
# PostgreSQL identifiers hold at most 63 bytes (21 Chinese characters).
MAX_COLUMN_BYTES = 63
# NUL bytes this early mean a binary or UTF-16 file, not a table.
_HEAD_BYTES = 4096
_WORKBOOK_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")


class LoadError(Exception):
    """A table that cannot be loaded, with the reason in Chinese and English."""

    def __init__(self, zh: str, en: str):
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


def _not_a_table() -> LoadError:
    return LoadError("这不是表格文件（CSV 或 Excel）", "This is not a table file (CSV or Excel)")


def _too_large(max_bytes: int) -> LoadError:
    size = f"{max_bytes / 1048576:g} MB"
    return LoadError(f"文件超过 {size}，未导入", f"The file is larger than {size} and was not loaded")


def _refusal(error: readers.SourceFormatError, max_bytes: int) -> LoadError:
    """The reader's refusal as the loader words it."""
    if error.code == "empty":
        return LoadError("文件为空，没有可导入的数据", "The file is empty: there are no rows to load")
    if error.code == "undecodable":
        return LoadError("无法识别文件的文字编码（支持 UTF-8、UTF-8 BOM、GBK、GB18030）",
                         "Unknown text encoding (UTF-8, UTF-8 with BOM, GBK and GB18030 are supported)")
    if error.code == "too-large":
        return _too_large(max_bytes)
    if error.code == "unreadable-workbook":
        return LoadError("无法读取 Excel 文件：文件可能已损坏或加密",
                         "Cannot read the Excel file: it may be damaged or encrypted")
    return LoadError(f"无法读取该表：{error.reason_zh}", f"Cannot read the table: {error.reason_en}")


class Table:
    """A table read and checked whole: its column names, encoding and row
    count, each column's profile (type, example, empty cells), its rows
    spooled as CSV to a temporary file. Close it when done (or use it in a
    ``with`` block)."""

    def __init__(self, headers: list[str], encoding: str, row_count: int, spool: IO[str],
                 profiles: list[column_types.ColumnProfile] | None = None):
        self.headers, self.encoding, self.row_count = headers, encoding, row_count
        self.profiles = profiles or [column_types.ColumnProfile(name) for name in headers]
        self._spool = spool

    @property
    def types(self) -> list[str]:
        return [profile.type for profile in self.profiles]

    @property
    def dictionary(self) -> list[dict]:
        """The data dictionary: name, type, example and empty count of each column."""
        return [profile.as_dict() for profile in self.profiles]

    def rows(self) -> Iterator[list[str]]:
        """Every row, as many cells as there are columns."""
        self._spool.seek(0)
        yield from csv.reader(self._spool)

    def spool(self) -> IO[str]:
        """The rows as CSV (no header), from the start."""
        self._spool.seek(0)
        return self._spool

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> "Table":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def is_tabular(resource: dict) -> bool:
    fmt = (resource.get("format") or "").strip().lower().lstrip(".")
    if fmt in TABULAR_FORMATS:
        return True
    url = (resource.get("url") or "").lower().split("?")[0]
    return any(url.endswith(f".{ext}") for ext in TABULAR_FORMATS)


# --------------------------------------------------------------------------
# Reading


def _column_names(header: list[str]) -> list[str]:
    names: list[str] = []
    for position, raw in enumerate(header, start=1):
        name = " ".join(str(raw).split()).replace('"', "").lstrip("_")
        if not name or column_types.is_generated_label(name):
            name = f"column_{position}"
        while len(name.encode("utf-8")) > MAX_COLUMN_BYTES - 4:
            name = name[:-1]
        base, suffix = name, 2
        while name in names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        names.append(name)
    return names


def _filled(cells: list[str]) -> int:
    return sum(1 for cell in cells if cell.strip())


def _rows_with_data(rows: readers.TableRows) -> Iterator[list[str]]:
    """The rows that hold something; a row the reader could not parse, or
    one holding a NUL byte (which PostgreSQL refuses), stops the load."""
    for row in rows:
        if isinstance(row, readers.BadRecord):
            raise LoadError(f"第 {row.position} 行{row.reason_zh}", f"Line {row.position} {row.reason_en}")
        if any("\x00" in cell for cell in row.cells):
            where_en = "Line" if row.unit == "line" else "Row"
            raise LoadError(f"第 {row.position} 行含有 NUL（\\0）字节：这不是表格文件，或文件已损坏",
                            f"{where_en} {row.position} holds a NUL (\\0) byte: this is not a table "
                            "file, or it is damaged")
        if _filled(row.cells):
            yield row.cells


def read_table(stream: BinaryIO, *, max_bytes: int = MAX_BYTES) -> Table:
    """Read a table file, whatever its name says it is, with its rows
    spooled to disk; raises LoadError with the reason.

    :param stream: the file, opened in binary mode (seekable).
    :param max_bytes: refuse the file once more bytes than this are read.
    """
    head = stream.read(_HEAD_BYTES)
    stream.seek(0)
    if b"\x00" in head and not head.startswith(_WORKBOOK_MAGIC):
        raise _not_a_table()
    spool = tempfile.TemporaryFile("w+", encoding="utf-8", newline="", prefix="datastore-")
    try:
        rows = readers.iter_rows(stream, "csv", max_bytes=max_bytes, strict=False)
        with contextlib.closing(rows):
            profiles, count = _spool_rows(_rows_with_data(rows), spool)
        return Table([profile.name for profile in profiles], rows.encoding, count, spool, profiles)
    except readers.SourceFormatError as error:
        spool.close()
        raise _refusal(error, max_bytes) from None
    except BaseException:
        spool.close()
        raise


def _spool_rows(rows: Iterator[list[str]], spool: IO[str]) -> tuple[list[column_types.ColumnProfile], int]:
    """Write the rows under the header to ``spool`` as CSV, profiling each
    column on the way; return the column profiles and the number of rows."""
    first_rows = list(itertools.islice(rows, column_types.HEADER_SEARCH_ROWS))
    if not first_rows:
        raise LoadError("文件中没有数据行", "The file holds no rows")
    at = column_types.find_header(first_rows)
    header = list(first_rows[at])
    while header and not header[-1].strip():
        header.pop()
    if not header:
        raise LoadError("第一行没有列名", "The first row holds no column names")
    width = len(header)
    profiles = [column_types.ColumnProfile(name) for name in _column_names(header)]
    writer = csv.writer(spool, lineterminator="\n")
    count = 0
    for batch in _batches(itertools.chain(first_rows[at + 1:], rows), CHUNK_ROWS):
        batch = [cells if len(cells) == width else (cells + [""] * width)[:width] for cells in batch]
        writer.writerows(batch)
        for profile, cells in zip(profiles, zip(*batch)):
            profile.add_column(cells)
        count += len(batch)
    return profiles, count


# --------------------------------------------------------------------------
# Status


def _site_context() -> dict:
    user = tk.get_action("get_site_user")({"ignore_auth": True}, {})
    return {"user": user["name"], "ignore_auth": True}


def _set_status(resource_id: str, state: str, value: dict | None = None,
                error: LoadError | None = None) -> None:
    tk.get_action("task_status_update")(_site_context(), {
        "entity_id": resource_id, "entity_type": "resource", "task_type": TASK_TYPE,
        "key": "load", "state": state, "value": json.dumps(value or {}, ensure_ascii=False),
        "error": json.dumps({"zh": error.zh, "en": error.en}, ensure_ascii=False) if error else "",
        "last_updated": dt.datetime.utcnow().isoformat(),
    })


def load_status(resource_id: str) -> dict | None:
    """{state, rows, encoding, dictionary, coordinates, extent, error_zh,
    error_en, last_updated} or None; ``coordinates`` names the coordinate
    columns found (see ``coordinates.detect_columns``), ``extent`` is their
    box ``[west, south, east, north]`` as stored (the declared system)."""
    try:
        task = tk.get_action("task_status_show")(_site_context(), {
            "entity_id": resource_id, "task_type": TASK_TYPE, "key": "load"})
    except tk.ObjectNotFound:
        return None
    value = json.loads(task.get("value") or "{}")
    error = json.loads(task["error"]) if task.get("error") else {}
    return {"state": task["state"], "rows": value.get("rows"), "encoding": value.get("encoding"),
            "dictionary": value.get("dictionary") or [], "coordinates": value.get("coordinates"),
            "extent": value.get("extent"), "error_zh": error.get("zh"), "error_en": error.get("en"),
            "last_updated": task.get("last_updated")}


# --------------------------------------------------------------------------
# Loading


def enqueue_load(resource_id: str) -> None:
    _set_status(resource_id, "pending")
    tk.enqueue_job(load_resource, [resource_id], title=f"DataStore load {resource_id}",
                   rq_kwargs={"timeout": 900})


def _max_bytes() -> int:
    return min(MAX_BYTES, tk.config.get("ckanext.shanghai.harvest.max_bytes"))


@contextlib.contextmanager
def _resource_file(resource: dict, max_bytes: int) -> Iterator[BinaryIO]:
    """The resource's file: the upload, or the link downloaded under the
    configured fetch limits (timeouts, deadline, size, allowed hosts)."""
    if resource.get("url_type") == "upload":
        from ckan.lib.uploader import get_resource_uploader

        path = get_resource_uploader(resource).get_path(resource["id"])
        if os.path.getsize(path) > max_bytes:
            raise _too_large(max_bytes)
        with open(path, "rb") as handle:
            yield handle
        return
    limits = dataclasses.replace(fetching.configured_limits(), max_bytes=max_bytes)
    try:
        path = fetching.download(resource["url"], limits)
    except fetching.SourceFetchError as error:
        raise LoadError(f"无法下载该资源：{error.reason_zh}", f"Cannot download the resource: {error.reason_en}")
    try:
        with open(path, "rb") as handle:
            yield handle
    finally:
        path.unlink(missing_ok=True)


def _batches(rows: Iterator[list[str]], size: int) -> Iterator[list[list[str]]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch


def _drop_table(context: dict, resource_id: str) -> None:
    try:
        tk.get_action("datastore_delete")(dict(context), {"resource_id": resource_id, "force": True})
    except tk.ObjectNotFound:
        pass


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fields(table: Table) -> list[dict]:
    """The DataStore fields: each column's type, and its data dictionary
    entry in ``info`` (returned by datastore_search and datastore_info)."""
    return [{"id": profile.name, "type": column_types.PG_TYPES[profile.type],
             "info": {"label": profile.name, "notes": "", "inferred_type": profile.type,
                      "example": profile.example, "empty_count": profile.empty_count}}
            for profile in table.profiles]


def _stage(cursor, table: Table) -> None:
    """COPY the spooled rows into a temporary table of text columns, then
    cast them into a temporary table of typed columns (the previous
    DataStore table is not touched yet); both go when the transaction ends."""
    staging = [f"c{index}" for index in range(len(table.headers))]
    cursor.execute("create temporary table sh_load_text ({}) on commit drop".format(
        ", ".join(f"{column} text" for column in staging)))
    cursor.copy_expert("copy sh_load_text from stdin with (format csv)", table.spool(), size=1 << 18)
    casts = [f"{column_types.cast_sql(column, kind)} as {column}" for column, kind in zip(staging, table.types)]
    text = "concat_ws(' ', {})".format(", ".join(staging))
    cursor.execute("create temporary table sh_load_typed on commit drop as "
                   f"select {', '.join(casts)}, to_tsvector({text}) as full_text from sh_load_text")


def _replace_table(context: dict, resource_id: str, table: Table) -> None:
    """Replace the resource's DataStore table with ``table``. The rows are
    copied and cast before the previous table is dropped, so a table
    PostgreSQL refuses leaves the previous one as it was; a failure after
    that removes the new table again."""
    from ckanext.datastore.backend.postgres import get_write_engine
    import psycopg2

    connection = get_write_engine().raw_connection()
    created = False
    try:
        cursor = connection.cursor()
        try:
            _stage(cursor, table)
        except psycopg2.Error as error:
            connection.rollback()
            detail = (error.pgerror or str(error)).strip()[:160]
            raise LoadError(f"数据库拒绝了该表：{detail}", f"The DataStore refused the table: {detail}") from None
        _drop_table(context, resource_id)
        tk.get_action("datastore_create")(dict(context), {
            "resource_id": resource_id, "force": True, "fields": _fields(table)})
        created = True
        names = ", ".join(_quoted(name) for name in table.headers)
        staging = ", ".join(f"c{index}" for index in range(len(table.headers)))
        # The DataStore's full-text indexes (one GIN index per text column
        # and one on _full_text) cost more kept up row by row than the rest
        # of the load; they are built again, the same, once the rows are in.
        cursor.execute("select c.relname, pg_get_indexdef(i.indexrelid) from pg_index i "
                       "join pg_class c on c.oid = i.indexrelid "
                       "where i.indrelid = %s::regclass and not i.indisprimary and not i.indisunique",
                       (_quoted(resource_id),))
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f"drop index {_quoted(name)}")
        # GIN builds go much faster with room to sort in.
        cursor.execute("set local maintenance_work_mem = %s", (f"{MAINTENANCE_MEMORY_MB}MB",))
        cursor.execute(f"insert into {_quoted(resource_id)} ({names}, _full_text) "
                       f"select {staging}, full_text from sh_load_typed")
        for _name, definition in indexes:
            cursor.execute(definition)
        connection.commit()
        cursor.execute(f"analyze {_quoted(resource_id)}")
        connection.commit()
    except tk.ValidationError as error:
        connection.rollback()
        _drop_table(context, resource_id)
        raise LoadError(f"数据库拒绝了该表：{str(error.error_dict)[:160]}",
                        f"The DataStore refused the table: {str(error.error_dict)[:160]}") from None
    except BaseException:
        connection.rollback()
        # The first error is the one to report, not a failure to clean up after it.
        if created:
            with contextlib.suppress(Exception):
                _drop_table(context, resource_id)
        raise
    finally:
        connection.close()


def load_resource(resource_id: str) -> dict:
    """Load one resource into the DataStore (replacing an earlier load);
    returns its status. Runs in the job worker (``ckan jobs worker``)."""
    context = _site_context()
    resource = tk.get_action("resource_show")(dict(context), {"id": resource_id})
    _set_status(resource_id, "running")
    max_bytes = _max_bytes()
    try:
        with _resource_file(resource, max_bytes) as stream:
            table = read_table(stream, max_bytes=max_bytes)
        with table:
            _replace_table(context, resource_id, table)
    except LoadError as error:
        log.warning("DataStore load of %s failed: %s", resource_id, error)
        _set_status(resource_id, "error", error=error)
        return load_status(resource_id)
    except Exception:
        _set_status(resource_id, "error", error=LoadError(
            "导入时发生内部错误，请联系管理员",
            "An internal error stopped the load; please tell an administrator"))
        raise
    found = coordinates.detect_columns(table.dictionary)
    extent = None
    if found:
        try:
            extent = _table_extent(resource_id, found)
        except Exception:  # a map box is never worth a failed load
            log.exception("could not find the extent of %s", resource_id)
    _set_status(resource_id, "complete", {"rows": table.row_count, "encoding": table.encoding,
                                          "columns": len(table.headers), "dictionary": table.dictionary,
                                          "coordinates": found, "extent": extent})
    log.info("DataStore: loaded %s rows of %s (%s)", table.row_count, resource_id, table.encoding)
    if extent:
        # The product's spatial extent in the search index comes from this box.
        from ckan.lib.search import rebuild

        rebuild(resource["package_id"])
    return load_status(resource_id)


# A ``121.47,31.23`` cell, as PostgreSQL reads it.
_PAIR_PATTERN = r"^\s*(-?[0-9]+(?:\.[0-9]+)?)\s*[,，]\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$"


def _table_extent(resource_id: str, found: dict) -> list[float] | None:
    """The box ``[west, south, east, north]`` of a loaded table's points
    (plausible longitudes and latitudes only), or None when it has none."""
    import sqlalchemy as sa
    from ckanext.datastore.backend.postgres import get_read_engine

    if "pair" in found:
        source = (f"select (m)[1]::float8 as lng, (m)[2]::float8 as lat from "
                  f"(select regexp_match({_quoted(found['pair'])}, :pattern) as m from {_quoted(resource_id)}) p "
                  f"where m is not null")
    else:
        source = (f"select {_quoted(found['lng'])}::float8 as lng, {_quoted(found['lat'])}::float8 as lat "
                  f"from {_quoted(resource_id)}")
    with get_read_engine().connect() as connection:
        row = connection.execute(sa.text(
            f"select min(lng), min(lat), max(lng), max(lat) from ({source}) points "
            f"where lng between -180 and 180 and lat between -90 and 90 and abs(lng) > 1 and abs(lat) > 1"),
            {"pattern": _PAIR_PATTERN}).fetchone()
    if row is None or row[0] is None:
        return None
    return [round(float(number), 7) for number in row]

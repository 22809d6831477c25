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

The load's state (pending, running; indexing: the table is in and
readers have it, its full-text indexes are being built;
complete; error), the data dictionary
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
import re
import tempfile
import time
from typing import IO, BinaryIO, Iterator

import flask

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
    _check_head(stream)
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


class _Clock:
    """Where one load's time goes: seconds per phase, kept in its status."""

    def __init__(self) -> None:
        self._began = self._last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        """The seconds since the last lap (or the start), counted to ``phase``."""
        now = time.perf_counter()
        self.seconds[phase] = round(self.seconds.get(phase, 0.0) + now - self._last, 4)
        self._last = now

    def add(self, phase: str, seconds: float) -> None:
        """``seconds`` counted to ``phase`` (a phase timed apart, e.g. on another thread)."""
        self.seconds[phase] = round(self.seconds.get(phase, 0.0) + seconds, 4)

    def mark(self, moment: str) -> None:
        """The seconds since the load began, under ``moment``."""
        self.seconds[moment] = round(time.perf_counter() - self._began, 4)


def _set_status(resource_id: str, state: str, value: dict | None = None,
                error: LoadError | None = None) -> None:
    tk.get_action("task_status_update")(_site_context(), {
        "entity_id": resource_id, "entity_type": "resource", "task_type": TASK_TYPE,
        "key": "load", "state": state, "value": json.dumps(value or {}, ensure_ascii=False),
        "error": json.dumps({"zh": error.zh, "en": error.en}, ensure_ascii=False) if error else "",
        "last_updated": dt.datetime.utcnow().isoformat(),
    })
    if flask.has_request_context():
        flask.g.pop("sh_load_statuses", None)


def load_status(resource_id: str) -> dict | None:
    """{state, rows, encoding, dictionary, coordinates, extent, path,
    seconds, unindexed, error_zh, error_en, last_updated} or None; ``path`` says how
    the file was read (``copy``: its text straight into COPY; ``reader``:
    row by row in Python, for workbooks and files COPY would read
    otherwise); ``seconds`` is where the load's time went (each phase,
    and ``queryable``: from the job's start to the commit that let
    readers see the table; ``indexed``: to the last index built);
    ``unindexed`` lists the columns whose full-text index could not be
    built after the commit; ``coordinates`` names the coordinate
    columns found (see ``coordinates.detect_columns``), ``extent`` is their
    box ``[west, south, east, north]`` as stored (the declared system).

    Within a web request, the first call reads the statuses of every table
    of the resource's product in one query and the page's later calls
    (preview, data dictionary, map, for each table) reuse them; a job
    always reads afresh."""
    if not flask.has_request_context():
        return _statuses_beside(resource_id).get(resource_id)
    known = flask.g.setdefault("sh_load_statuses", {})
    if resource_id not in known:
        known.update(_statuses_beside(resource_id))
    return known[resource_id]


def _statuses_beside(resource_id: str) -> dict[str, dict | None]:
    """The load status of ``resource_id`` and of the other resources of its
    product, by resource id (None for a resource never loaded)."""
    import ckan.model as model
    import sqlalchemy as sa

    # Through CKAN's public model (Resource, TaskStatus), one query: every
    # resource of the product, with its load status if it has one.
    product = model.Session.query(model.Resource.package_id).filter(
        model.Resource.id == resource_id).scalar_subquery()
    status = model.TaskStatus
    rows = list(model.Session.query(
        model.Resource.id, status.state, status.value, status.error, status.last_updated,
    ).outerjoin(status, sa.and_(status.entity_id == model.Resource.id, status.task_type == TASK_TYPE,
                                status.key == "load")).filter(model.Resource.package_id == product))
    if resource_id not in {row[0] for row in rows}:  # not (or no longer) in the resource table
        rows += list(model.Session.query(status.entity_id, status.state, status.value, status.error,
                                         status.last_updated).filter(
            status.entity_id == resource_id, status.task_type == TASK_TYPE, status.key == "load")) \
            or [(resource_id, None, None, None, None)]
    statuses: dict[str, dict | None] = {}
    for entity_id, state, text, error_text, last_updated in rows:
        if state is None:
            statuses[entity_id] = None
            continue
        value = json.loads(text or "{}")
        error = json.loads(error_text) if error_text else {}
        statuses[entity_id] = {
            "state": state, "rows": value.get("rows"), "encoding": value.get("encoding"),
            "dictionary": value.get("dictionary") or [], "coordinates": value.get("coordinates"),
            "extent": value.get("extent"), "path": value.get("path"), "seconds": value.get("seconds"),
            "unindexed": value.get("unindexed") or [], "error_zh": error.get("zh"), "error_en": error.get("en"),
            "last_updated": last_updated.isoformat() if last_updated else None}
    return statuses


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


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------
# Staging: the rows as text in a temporary table, by one of two ways.
#
# The fast way hands the file's text (transcoded to UTF-8 a megabyte at a
# time) straight to PostgreSQL's COPY: Python reads only the head of the
# file (delimiter, title rows, header, a first look at the types) and never
# splits a row. Types are then found by one SQL scan of the staged text
# (``columns.profile_query``). A file COPY would read differently from the
# reader, or cannot read (an Excel workbook, rows of uneven width, blank
# lines, a quote inside an unquoted cell, a NUL byte), goes the reader's
# way instead: rows read and profiled in Python (``read_table``), spooled,
# then COPYed. Both end in the same typed table.

# The head read in Python: the header is looked for in it, and its rows
# rule out types before the SQL scan, so that a column already seen to be
# text costs no pattern matching there.
HEAD_BYTES = 256 * 1024
HEAD_ROWS = 2000
_COPY_DELIMITERS = {",": "','", "\t": "E'\\t'", ";": "';'", "|": "'|'"}


class _NotFast(Exception):
    """The text is one COPY would read differently from the reader (or not
    at all): it is loaded the reader's way."""


@dataclasses.dataclass
class _Staged:
    """Rows staged as text in the staging table (``_staging``: ``_id`` in
    file order, columns c0, c1 ...; the first ``len(profiles)`` are the
    table's), with what is known of them."""

    headers: list[str]
    encoding: str
    profiles: list[column_types.ColumnProfile]
    row_count: int
    # The staging table's columns (more than the table's when rows carry
    # cells past the header), and whether rows holding nothing are still
    # among the staged ones.
    width: int
    unfiltered: bool = False
    # "copy": the file's text went straight to COPY; "reader": rows read in Python.
    path: str = "reader"

    @property
    def dictionary(self) -> list[dict]:
        return [profile.as_dict() for profile in self.profiles]


class _CopyFeed:
    """The rows under the header as COPY reads them (UTF-8 bytes, a chunk a
    ``read``). It stops the COPY with ``_NotFast`` where PostgreSQL would part
    from the reader: a NUL byte, a quote inside an unquoted cell (the reader
    keeps it as text, COPY would open a quoted cell there), a backslash and a
    point (``\.`` alone on a line ends COPY's data). Line ends at the very
    end are left out (COPY takes a blank line for a row)."""

    def __init__(self, first: bytes, rest: Iterator[bytes], delimiter: str):
        self._chunks = self._checked(itertools.chain([first], rest), delimiter)
        # What stopped the COPY from this side (psycopg2 reports it as a
        # cancelled query): _NotFast, or the reader's refusal of the file.
        self.error: BaseException | None = None

    @staticmethod
    def _checked(chunks: Iterator[bytes], delimiter: str) -> Iterator[bytes]:
        cell = re.escape(delimiter).encode()
        # A quote with text on both sides. Found from the quote, a literal
        # the regex engine skips to (a pattern opening with a class of
        # characters is tried at every byte: 20 times slower on real files).
        quote_then_text = re.compile(rb'"[^' + cell + rb'\r\n"]')
        before = delimiter.encode() + b'\r\n"'

        def stray_quote(probe: bytes) -> bool:
            return any(probe[found.start() - 1] not in before for found in quote_then_text.finditer(probe, 1))

        tail = b""  # the end of the chunk before: a pattern may straddle two
        held = b""  # line ends not yet known to be followed by more text
        for chunk in chunks:
            if not chunk:
                continue
            probe = tail + chunk
            if b"\x00" in chunk or b"\\." in probe or (b'"' in probe and stray_quote(probe)):
                raise _NotFast
            tail = chunk[-2:]
            body = chunk.rstrip(b"\r\n")
            if body:
                yield held + body
                held = chunk[len(body):]
            else:
                held += chunk

    def read(self, size: int = -1) -> bytes:
        try:
            return next(self._chunks, b"")
        except BaseException as error:
            self.error = error
            raise


def _staging(cursor) -> str:
    """The staging table of the load on this connection. Unlogged, and not
    temporary: PostgreSQL's parallel workers read it (they cannot read a
    temporary table); created in the load's transaction and dropped before
    its commit, so it is never seen outside it, and a failed load leaves
    none behind."""
    return f"sh_load_text_{cursor.connection.get_backend_pid()}"


def _create_staging(cursor, width: int) -> list[str]:
    staging = [f"c{index}" for index in range(width)]
    cursor.execute("create unlogged table {} (_id serial, {})".format(
        _staging(cursor), ", ".join(f"{column} text" for column in staging)))
    return staging


def _check_head(stream: BinaryIO) -> None:
    head = stream.read(_HEAD_BYTES)
    stream.seek(0)
    if b"\x00" in head and not head.startswith(_WORKBOOK_MAGIC):
        raise _not_a_table()


def _stage_fast(cursor, stream: BinaryIO, max_bytes: int, clock: _Clock) -> _Staged | None:
    """Stage a CSV file's rows by COPY of its text; None (and the
    transaction rolled back) when it must go the reader's way."""
    import psycopg2

    text = readers.utf8_text(stream, max_bytes=max_bytes)
    if text is None:
        return None  # an Excel workbook
    chunks = text.chunks()
    head = bytearray()
    complete = True
    for chunk in chunks:
        head += chunk
        if len(head) >= HEAD_BYTES:
            complete = False
            break
    head_text = head.decode("utf-8")  # the chunks are whole characters
    parsed = head_text
    if not complete:
        cut = head_text.rfind("\n") + 1 or head_text.rfind("\r") + 1
        if not cut:
            return None  # a line longer than the head
        parsed = head_text[:cut]
    delimiter, rows = readers.head_rows(parsed, limit=HEAD_ROWS)
    if not complete and len(rows) > 1:
        rows.pop()  # it may be cut short by the end of the head
    if delimiter not in _COPY_DELIMITERS:
        return None
    filled = [(cells, end) for cells, end in rows if _filled(cells)]
    if not filled:
        if complete:
            raise LoadError("文件中没有数据行", "The file holds no rows")
        return None
    at = column_types.find_header([cells for cells, _end in filled[:column_types.HEADER_SEARCH_ROWS]])
    raw_header, data_start = filled[at]
    header = list(raw_header)
    while header and not header[-1].strip():
        header.pop()
    if not header:
        raise LoadError("第一行没有列名", "The first row holds no column names")
    names = _column_names(header)
    data_rows = [cells for cells, end in rows if end > data_start and _filled(cells)]
    width = max([len(raw_header)] + [len(cells) for cells in data_rows])
    profiles = [column_types.ColumnProfile(name) for name in names]
    padded = [(cells + [""] * len(names))[:len(names)] for cells in data_rows]
    for profile, cells in zip(profiles, zip(*padded)):
        profile.add_column(list(cells))

    staging = _create_staging(cursor, width)
    feed = _CopyFeed(head_text[data_start:].encode("utf-8"), chunks, delimiter)
    try:
        cursor.copy_expert(f"copy {_staging(cursor)} ({', '.join(staging)}) from stdin with (format csv, "
                           f"delimiter {_COPY_DELIMITERS[delimiter]}, encoding 'UTF8')", feed, size=1 << 20)
    except (_NotFast, psycopg2.Error) as error:
        cursor.connection.rollback()
        if feed.error is not None and not isinstance(feed.error, _NotFast):
            raise feed.error from None  # the file refused (too large, undecodable)
        if feed.error is None and not isinstance(error, (_NotFast, psycopg2.DataError)):
            raise
        return None
    clock.lap("stage")
    columns = staging[:len(names)]
    sql, parameters, read = column_types.profile_query(
        _staging(cursor), columns, staging, [profile.possible for profile in profiles])
    cursor.execute(sql, parameters)
    row_count, blank, found = read(cursor.fetchone())
    for column, profile, (possible, non_empty) in zip(columns, profiles, found):
        profile.possible = possible
        profile.empty_count = row_count - non_empty
        if non_empty and not profile.example:
            cursor.execute(f"select value from (select nullif(btrim({column}, %s), '') as value, ctid "
                           f"from {_staging(cursor)}) cells where value is not null order by ctid limit 1",
                           (column_types.WHITESPACE,))
            profile.example = cursor.fetchone()[0][:200]
    clock.lap("scan")
    return _Staged(names, text.encoding, profiles, row_count, width, unfiltered=bool(blank), path="copy")


def _stage_table(cursor, table: Table) -> _Staged:
    """Stage the rows the reader read and spooled."""
    staging = _create_staging(cursor, len(table.headers))
    cursor.copy_expert(f"copy {_staging(cursor)} ({', '.join(staging)}) from stdin with (format csv)",
                       table.spool(), size=1 << 18)
    return _Staged(table.headers, table.encoding, table.profiles, table.row_count, len(table.headers))


# --------------------------------------------------------------------------
# The typed table, built beside the resource's table and swapped in


def _fields(staged: _Staged) -> list[dict]:
    """The DataStore fields: each column's type, and its data dictionary
    entry in ``info`` (returned by datastore_search and datastore_info)."""
    return [{"id": profile.name, "type": column_types.PG_TYPES[profile.type],
             "info": {"label": profile.name, "notes": "", "inferred_type": profile.type,
                      "example": profile.example, "empty_count": profile.empty_count}}
            for profile in staged.profiles]


def _fts_language() -> str:
    return tk.config.get("ckan.datastore.default_fts_lang") or "english"


# The typed table is computed by the leader and this many parallel workers
# of PostgreSQL (``to_tsvector`` of every row is most of the load's work):
# a DataStore host of two cores. Ordered by ``_id``, the rows are stored in
# file order, as a reader paging without ``sort`` expects.
PARALLEL_WORKERS = 1


def _fill(cursor, table: str, staged: _Staged) -> int:
    """Create ``table`` as datastore_create would (``_id`` serial primary
    key, ``_full_text``, the typed columns, each column's info as its
    comment) from the staged rows cast to their types; returns the row
    count. ``_id`` is the row's place in the file."""
    fields = _fields(staged)
    staging = [f"c{index}" for index in range(len(staged.profiles))]
    casts = [f"{column_types.cast_sql(column, profile.type)} as {_quoted(field['id'])}"
             for column, profile, field in zip(staging, staged.profiles, fields)]
    where = ""
    if staged.unfiltered:
        every = [f"c{index}" for index in range(staged.width)]
        where = cursor.mogrify(" where btrim(concat({}), %s) <> ''".format(", ".join(every)),
                               (column_types.WHITESPACE,)).decode()
    for setting, value in (("max_parallel_workers_per_gather", PARALLEL_WORKERS), ("parallel_setup_cost", 0),
                           ("parallel_tuple_cost", 0), ("min_parallel_table_scan_size", 0)):
        cursor.execute(f"set local {setting} = {value}")
    # Room to sort the rows back into file order in memory.
    cursor.execute("set local work_mem = %s", (f"{MAINTENANCE_MEMORY_MB}MB",))
    cursor.execute(f"create table {_quoted(table)} as select _id, "
                   f"to_tsvector(%s::regconfig, concat_ws(' ', {', '.join(staging)})) as _full_text, "
                   f"{', '.join(casts)} from {_staging(cursor)}{where} order by _id", (_fts_language(),))
    count = cursor.rowcount
    sequence = _quoted(table + "__id_seq")
    cursor.execute(f"alter table {_quoted(table)} add primary key (_id)")
    cursor.execute(f"create sequence {sequence} as integer owned by {_quoted(table)}._id")
    cursor.execute(f"select setval('{sequence}', coalesce(max(_id), 0) + 1, false) from {_quoted(table)}")
    cursor.execute(f"alter table {_quoted(table)} alter column _id set default nextval('{sequence}')")
    for field in fields:
        comment = " " + json.dumps({"_info": field["info"]}, ensure_ascii=False, separators=(",", ":"))
        cursor.execute(f"comment on column {_quoted(table)}.{_quoted(field['id'])} is %s", (comment,))
    return count


def _casts(cursor, column: str, type_name: str) -> bool:
    """Whether every staged value of ``column`` casts to ``type_name``."""
    import psycopg2

    cursor.execute("savepoint sh_cast")
    try:
        cursor.execute(f"select count({column_types.cast_sql(column, type_name)}) from {_staging(cursor)}")
    except psycopg2.DataError:
        cursor.execute("rollback to savepoint sh_cast")
        return False
    cursor.execute("release savepoint sh_cast")
    return True


def _fill_typed(cursor, table: str, staged: _Staged) -> int:
    """``_fill``; a date or timestamp column with a day its month lacks (the
    scan checks the shape, the cast the calendar) becomes text, as the
    reader's inference would have made it."""
    import psycopg2

    cursor.execute("savepoint sh_fill")
    try:
        return _fill(cursor, table, staged)
    except psycopg2.DataError:
        cursor.execute("rollback to savepoint sh_fill")
    for index, profile in enumerate(staged.profiles):
        if profile.type in column_types.TEMPORAL_TYPES and not _casts(cursor, f"c{index}", profile.type):
            profile.possible = 0
    return _fill(cursor, table, staged)


def _swap_in(cursor, resource_id: str, table: str, staged: _Staged, clock: _Clock) -> dict[str, str]:
    """Give ``table`` the resource's ``_full_text`` trigger, then put it in
    the place of the resource's table, in the caller's transaction: until
    it commits, readers see the previous table whole. Returns the
    full-text indexes to build once it is committed, ``_full_text``'s
    first (``_build_column_indexes``)."""
    from ckanext.shanghai import compat

    cursor.execute(f"drop table {_staging(cursor)}")
    fields = [{"id": field["id"], "type": field["type"]} for field in _fields(staged)]
    indexes = compat.datastore_fts_index_sql(resource_id, table, fields)
    cursor.execute(f"create trigger zfulltext before insert or update on {_quoted(table)} "
                   "for each row execute procedure populate_full_text_trigger()")
    cursor.execute("select to_regclass(%s)", (_quoted(resource_id),))
    if cursor.fetchone()[0] is not None:
        # Readers of the previous table finish first; from here until the
        # commit (a few renames) new ones wait.
        cursor.execute(f"drop table {_quoted(resource_id)} cascade")
    cursor.execute(f"alter table {_quoted(table)} rename to {_quoted(resource_id)}")
    cursor.execute(f"alter index {_quoted(table + '_pkey')} rename to {_quoted(resource_id + '_pkey')}")
    cursor.execute(f"alter sequence {_quoted(table + '__id_seq')} rename to {_quoted(resource_id + '__id_seq')}")
    # CKAN's cached row count of the previous table.
    cursor.execute("select to_regclass('_table_stats')")
    if cursor.fetchone()[0] is not None:
        cursor.execute("delete from _table_stats where resource_id = %s", (resource_id,))
    clock.lap("swap")
    ordered = sorted(indexes.items(), key=lambda item: item[0] != "_full_text")
    return {column: statement.replace(_quoted(table), _quoted(resource_id), 1)
            for column, (_name, statement) in ordered}


# Full-text indexes. CKAN's datastore_create makes one GIN index on
# _full_text (q over the whole row) and one per text column (q as
# {"column": "words"}, on to_tsvector of that column: each recomputes the
# column's tsvector). Every one is built after the load's commit (the
# _full_text one first; building it in the load's transaction took a
# quarter of the time before readers saw the table), each in its own short
# transaction, two at a time (one per core of a small host). Until each is
# built, q answers the same, by a scan, and the load's state says
# "indexing". A plain CREATE INDEX, not CONCURRENTLY: it holds a SHARE lock,
# which lets readers in (writes wait) and lets two builds on one table run
# at once; CONCURRENTLY's lock admits one build per table at a time, and it
# scans the table twice.
INDEX_CONNECTIONS = 2


def _build_column_indexes(resource_id: str, statements: dict[str, str], clock: _Clock) -> list[str]:
    """Build the per-column full-text indexes of the resource's committed
    table (``statements``: column to CREATE INDEX), on up to
    ``INDEX_CONNECTIONS`` connections at once; returns the columns whose
    index could not be built (logged: q on them still answers, by a scan)."""
    from concurrent.futures import ThreadPoolExecutor

    from ckanext.datastore.backend.postgres import get_write_engine
    import psycopg2

    engine = get_write_engine()

    def build(column: str) -> str | None:
        began = time.perf_counter()
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("set local maintenance_work_mem = %s", (f"{MAINTENANCE_MEMORY_MB}MB",))
            cursor.execute(statements[column])
            connection.commit()
        except psycopg2.Error as error:
            connection.rollback()
            log.warning("DataStore: no full-text index on column %s of %s: %s", column, resource_id,
                        (error.pgerror or str(error)).strip())
            return column
        finally:
            connection.close()
        clock.add(f"index {column}", time.perf_counter() - began)
        return None

    with ThreadPoolExecutor(max_workers=INDEX_CONNECTIONS, thread_name_prefix="datastore-index") as pool:
        return [column for column in pool.map(build, statements) if column]


def _load_file(resource_id: str, stream: BinaryIO, max_bytes: int,
               clock: _Clock) -> tuple[_Staged, dict[str, str]]:
    """Stage, type and swap in the file's table in one transaction of the
    DataStore's database; a failure at any step rolls it all back and leaves
    the resource's previous table as it was. Returns what was staged and
    the per-column indexes left to build."""
    from ckanext.datastore.backend.postgres import get_write_engine
    import psycopg2

    _check_head(stream)
    connection = get_write_engine().raw_connection()
    try:
        cursor = connection.cursor()
        try:
            staged = _stage_fast(cursor, stream, max_bytes, clock)
        except readers.SourceFormatError as error:
            connection.rollback()
            raise _refusal(error, max_bytes) from None
        if staged is None:
            stream.seek(0)
            clock.lap("stage")
            with read_table(stream, max_bytes=max_bytes) as table:
                clock.lap("read")
                staged = _stage_table(cursor, table)
            clock.lap("stage")
        table_name = f"{resource_id}_load_{os.urandom(3).hex()}"
        try:
            staged.row_count = _fill_typed(cursor, table_name, staged)
            clock.lap("fill")
            later = _swap_in(cursor, resource_id, table_name, staged, clock)
        except psycopg2.Error as error:
            connection.rollback()
            detail = (error.pgerror or str(error)).strip()[:160]
            raise LoadError(f"数据库拒绝了该表：{detail}", f"The DataStore refused the table: {detail}") from None
        # No ANALYZE: building the primary key has recorded the row count,
        # and autovacuum gathers the column statistics within a minute.
        connection.commit()
        clock.lap("commit")
        return staged, later
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()


def _replace_table(context: dict, resource_id: str, table: Table) -> None:
    """Replace the resource's DataStore table with the rows of a table read
    by ``read_table`` (the reader's way), in one transaction."""
    from ckanext.datastore.backend.postgres import get_write_engine

    connection = get_write_engine().raw_connection()
    try:
        cursor = connection.cursor()
        staged = _stage_table(cursor, table)
        table_name = f"{resource_id}_load_{os.urandom(3).hex()}"
        staged.row_count = _fill_typed(cursor, table_name, staged)
        later = _swap_in(cursor, resource_id, table_name, staged, _Clock())
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()
    _build_column_indexes(resource_id, later, _Clock())
    _mark_active(context, tk.get_action("resource_show")(dict(context), {"id": resource_id}))


def _mark_active(context: dict, resource: dict) -> None:
    """Set the resource's datastore_active flag, as datastore_create does
    (which also puts the product in the search index again)."""
    if not resource.get("datastore_active"):
        tk.get_action("resource_patch")(dict(context), {"id": resource["id"], "datastore_active": True})


def load_resource(resource_id: str) -> dict:
    """Load one resource into the DataStore (replacing an earlier load);
    returns its status. Runs in the job worker (``ckan jobs worker``)."""
    clock = _Clock()
    context = _site_context()
    resource = tk.get_action("resource_show")(dict(context), {"id": resource_id})
    _set_status(resource_id, "running")
    max_bytes = _max_bytes()
    try:
        with _resource_file(resource, max_bytes) as stream:
            clock.lap("start")
            table, later = _load_file(resource_id, stream, max_bytes, clock)
        clock.mark("queryable")
        _mark_active(context, resource)
        clock.lap("activate")
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
    clock.lap("extent")
    value = {"rows": table.row_count, "encoding": table.encoding, "columns": len(table.headers),
             "dictionary": table.dictionary, "path": table.path, "coordinates": found, "extent": extent}
    unindexed = []
    if later:
        # Readers have the table; q on one column answers by a scan until its index is built.
        _set_status(resource_id, "indexing", value)
        unindexed = _build_column_indexes(resource_id, later, clock)
    clock.mark("indexed")
    _set_status(resource_id, "complete", {**value, "unindexed": unindexed, "seconds": clock.seconds})
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

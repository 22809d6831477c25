"""The DataStore loader: reads a tabular resource (CSV in UTF-8, UTF-8 with
BOM, GBK or GB18030; Excel xlsx or xls, also when named .csv) and loads it
into CKAN's DataStore through CKAN's background job queue.

The load's state (pending, running, complete, error) and a bilingual error
message are kept in CKAN's task_status table, keyed by resource id."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from dataclasses import dataclass

import ckan.plugins.toolkit as tk

log = logging.getLogger(__name__)

__all__ = ["LoadError", "Table", "read_table", "enqueue_load", "load_resource", "load_status",
           "is_tabular"]

TASK_TYPE = "shanghai_datastore_load"
TABULAR_FORMATS = {"csv", "tsv", "xls", "xlsx"}
MAX_BYTES = 100 * 1024 * 1024
CHUNK_ROWS = 1000
# PostgreSQL identifiers hold at most 63 bytes (21 Chinese characters).
MAX_COLUMN_BYTES = 63


class LoadError(Exception):
    """A table that cannot be loaded, with the reason in Chinese and English."""

    def __init__(self, zh: str, en: str):
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    encoding: str


def is_tabular(resource: dict) -> bool:
    fmt = (resource.get("format") or "").strip().lower().lstrip(".")
    if fmt in TABULAR_FORMATS:
        return True
    url = (resource.get("url") or "").lower().split("?")[0]
    return any(url.endswith(f".{ext}") for ext in TABULAR_FORMATS)


# --------------------------------------------------------------------------
# Reading


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding), "gbk" if encoding == "gb18030" and _is_gbk(data) else encoding
        except UnicodeDecodeError:
            continue
    raise LoadError("无法识别文件的文字编码（支持 UTF-8、UTF-8 BOM、GBK、GB18030）",
                    "Unknown text encoding (UTF-8, UTF-8 with BOM, GBK and GB18030 are supported)")


def _is_gbk(data: bytes) -> bool:
    try:
        data.decode("gbk")
        return True
    except UnicodeDecodeError:
        return False


def _rows_from_text(text: str) -> list[list[str]]:
    sample = text[:20000]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    # newline="" semantics: a quoted cell keeps its embedded newline.
    return [row for row in csv.reader(io.StringIO(text, newline=""), dialect)]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def _rows_from_xlsx(data: bytes) -> list[list[str]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds on a broken file
        raise LoadError(f"无法读取 Excel 文件：{error!s:.80}", f"Cannot read the Excel file: {error!s:.80}")
    sheet = book.worksheets[0]
    return [[_cell(value) for value in row] for row in sheet.iter_rows(values_only=True)]


def _rows_from_xls(data: bytes) -> list[list[str]]:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data)
    except Exception as error:
        raise LoadError(f"无法读取 Excel 文件：{error!s:.80}", f"Cannot read the Excel file: {error!s:.80}")
    sheet = book.sheet_by_index(0)
    return [[_cell(value) for value in sheet.row_values(i)] for i in range(sheet.nrows)]


def _column_names(header: list[str]) -> list[str]:
    names: list[str] = []
    for position, raw in enumerate(header, start=1):
        name = " ".join(str(raw).split()).replace('"', "").lstrip("_") or f"column_{position}"
        while len(name.encode("utf-8")) > MAX_COLUMN_BYTES - 4:
            name = name[:-1]
        base, suffix = name, 2
        while name in names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        names.append(name)
    return names


def read_table(data: bytes) -> Table:
    """The header and rows of a table file, whatever its name says it is."""
    if not data.strip():
        raise LoadError("文件为空，没有可导入的数据", "The file is empty: there are no rows to load")
    if data.startswith(b"PK\x03\x04"):
        rows, encoding = _rows_from_xlsx(data), "xlsx"
    elif data.startswith(b"\xd0\xcf\x11\xe0"):
        rows, encoding = _rows_from_xls(data), "xls"
    else:
        if b"\x00" in data[:4096]:
            raise LoadError("这不是表格文件（CSV 或 Excel）", "This is not a table file (CSV or Excel)")
        text, encoding = _decode(data)
        rows = _rows_from_text(text)
    rows = [row for row in rows if any(str(cell).strip() for cell in row)]
    if not rows:
        raise LoadError("文件中没有数据行", "The file holds no rows")
    # A title row above the header (one filled cell over a wider row).
    if len(rows) > 1 and sum(1 for c in rows[0] if str(c).strip()) == 1 \
            and sum(1 for c in rows[1] if str(c).strip()) > 1:
        rows = rows[1:]
    header = list(rows[0])
    while header and not str(header[-1]).strip():
        header.pop()
    if not header:
        raise LoadError("第一行没有列名", "The first row holds no column names")
    width = len(header)
    body = [[str(cell) for cell in (row + [""] * width)[:width]] for row in rows[1:]]
    return Table(headers=_column_names(header), rows=body, encoding=encoding)


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
    """{state, rows, encoding, error_zh, error_en, last_updated} or None."""
    try:
        task = tk.get_action("task_status_show")(_site_context(), {
            "entity_id": resource_id, "task_type": TASK_TYPE, "key": "load"})
    except tk.ObjectNotFound:
        return None
    value = json.loads(task.get("value") or "{}")
    error = json.loads(task["error"]) if task.get("error") else {}
    return {"state": task["state"], "rows": value.get("rows"), "encoding": value.get("encoding"),
            "error_zh": error.get("zh"), "error_en": error.get("en"),
            "last_updated": task.get("last_updated")}


# --------------------------------------------------------------------------
# Loading


def enqueue_load(resource_id: str) -> None:
    _set_status(resource_id, "pending")
    tk.enqueue_job(load_resource, [resource_id], title=f"DataStore load {resource_id}",
                   rq_kwargs={"timeout": 900})


def _resource_bytes(resource: dict) -> bytes:
    if resource.get("url_type") == "upload":
        from ckan.lib.uploader import get_resource_uploader

        path = get_resource_uploader(resource).get_path(resource["id"])
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    else:
        from ckanext.shanghai.files import fetching

        limits = fetching.FetchLimits(
            max_bytes=MAX_BYTES,
            allowed_hosts=frozenset(h.lower() for h in tk.config.get("ckanext.shanghai.harvest.allowed_hosts") or []))
        try:
            path = fetching.download(resource["url"], limits)
            data = path.read_bytes()
            path.unlink(missing_ok=True)
        except fetching.SourceFetchError as error:
            raise LoadError(f"无法下载该资源：{error.reason_zh}", f"Cannot download the resource: {error.reason_en}")
    if len(data) > MAX_BYTES:
        raise LoadError("文件超过 100 MB，未导入", "The file is larger than 100 MB and was not loaded")
    return data


def load_resource(resource_id: str) -> dict:
    """Load one resource into the DataStore (replacing an earlier load);
    returns its status. Runs in the job worker (``ckan jobs worker``)."""
    context = _site_context()
    resource = tk.get_action("resource_show")(dict(context), {"id": resource_id})
    _set_status(resource_id, "running")
    try:
        table = read_table(_resource_bytes(resource))
    except LoadError as error:
        log.warning("DataStore load of %s failed: %s", resource_id, error)
        _set_status(resource_id, "error", error=error)
        return load_status(resource_id)
    try:
        tk.get_action("datastore_delete")(dict(context), {"resource_id": resource_id, "force": True})
    except tk.ObjectNotFound:
        pass
    fields = [{"id": name, "type": "text"} for name in table.headers]
    records = [dict(zip(table.headers, row)) for row in table.rows]
    try:
        tk.get_action("datastore_create")(dict(context), {
            "resource_id": resource_id, "force": True, "fields": fields,
            "records": records[:CHUNK_ROWS]})
        for start in range(CHUNK_ROWS, len(records), CHUNK_ROWS):
            tk.get_action("datastore_upsert")(dict(context), {
                "resource_id": resource_id, "force": True, "method": "insert",
                "records": records[start:start + CHUNK_ROWS]})
    except tk.ValidationError as error:
        failure = LoadError(f"数据库拒绝了该表：{str(error.error_dict)[:160]}",
                            f"The DataStore refused the table: {str(error.error_dict)[:160]}")
        _set_status(resource_id, "error", error=failure)
        return load_status(resource_id)
    _set_status(resource_id, "complete", {"rows": len(records), "encoding": table.encoding,
                                          "columns": len(fields)})
    log.info("DataStore: loaded %s rows of %s (%s)", len(records), resource_id, table.encoding)
    return load_status(resource_id)

"""Streaming readers of agency exports (JSON array, JSON lines, CSV, Excel):
one record at a time, memory flat in the number of records, bad rows reported.

``iter_records`` yields plain ``dict`` records and, for a record that cannot
be read, a ``BadRecord`` (so one bad row does not stop the source). A problem
with the whole file (wrong format, HTML page instead of data, broken or
truncated JSON, undecodable bytes, too large) raises ``SourceFormatError``.
Records read before such a break have already been yielded: a caller must
not treat records missing from a broken export as withdrawn.

``iter_rows`` is the layer under it for tables (CSV, Excel): every row as
text cells, with the same size, zip-bomb and line caps, encoding detection
and Excel cell text, for a reader that picks the header and names the
columns itself (the DataStore loader).

Choices worth knowing:

- CSV encoding comes from the bytes, not the file name: UTF-8 BOM, UTF-16 BOM,
  else strict UTF-8, else GB18030 (a superset of GBK and GB2312). The choice
  is made at the first non-ASCII chunk, so ASCII-only leading rows stream
  without look-ahead.
- A CSV row holding a NUL byte is reported as a ``BadRecord``, not cleaned:
  NUL is never text (PostgreSQL refuses it) and usually means a broken or
  UTF-16 file, so silently stripping it would hide the real problem.
- Rows whose cells are all empty hold no data and are skipped; cells missing
  at the end of a row are read as empty; extra non-empty cells beyond the
  header make the row a ``BadRecord``.
- Blank header cells at the end of the header are ignored (spreadsheets
  report formatted but empty columns); a blank header cell between named
  ones is called ``column_<n>``; a repeated header name is a file error,
  since a mapping could not tell the two columns apart.
- Excel cells become text: dates as ISO dates (``2023-04-06``, with a time
  only when it is not midnight), whole numbers without ``.0``, booleans as
  ``TRUE``/``FALSE``. xls files (at most 65,536 rows by format) are parsed by
  xlrd in memory; xlsx streams rows with openpyxl in read-only mode.
- JSON numbers with a fraction are ``decimal.Decimal`` (ijson's and, for
  consistency, JSON lines'): exact, and stable when hashed.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import json
import re
import tempfile
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any, BinaryIO, Callable, Iterable, Iterator, NamedTuple, Union

import ijson

from ckanext.shanghai.messages import Message, MessageError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "BadRecord",
    "Row",
    "SourceFormatError",
    "TableRows",
    "iter_records",
    "iter_rows",
    "Utf8Text",
    "utf8_text",
    "head_rows",
    "sniff_format",
]

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
FORMATS = ("json", "jsonl", "csv", "xlsx", "xls")

_CHUNK = 64 * 1024
# No catalog record comes near these; a file that does is broken or hostile,
# and without them one endless line or nesting would be held in memory whole.
MAX_NESTING = 32
MAX_LINE_BYTES = 16 * 1024 * 1024
_SNIFF_BYTES = 64 * 1024
# A zip's members are inflated by openpyxl; an xlsx compresses its XML
# roughly tenfold, so allow that much but not a zip bomb.
_MAX_INFLATION = 16
_XLSX_MAGIC = b"PK\x03\x04"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_WHITESPACE = b" \t\r\n"
_DELIMITER_CANDIDATES = (",", "\t", ";", "|")


class SourceFormatError(MessageError):
    """The export as a whole cannot be read; ``records_read`` says how many
    records were read (and yielded) before the problem, when known, and
    ``code`` which problem it is, for a caller that words it its own way:
    ``empty``, ``markup``, ``too-large``, ``line-too-long``, ``not-workbook``,
    ``undecodable``, ``unknown-encoding``, ``bad-header``, ``repeated-header``,
    ``no-header``, ``zip-bomb``, ``unreadable-workbook``, ``missing-sheet``,
    ``json-utf-16``, ``json-not-array``, ``json-broken``, ``json-not-lines``."""

    def __init__(self, reason_zh: str, reason_en: str, *, records_read: int | None = None,
                 code: str | None = None):
        # One message; the DataStore loader words some problems its own way
        # by the message's ``code``.
        super().__init__(Message(code or "source-unreadable", reason_zh, reason_en))
        self.records_read = records_read


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be read. ``position`` is where a person finds
    it: the item number in a JSON array (``unit="item"``), the line number in
    JSON lines or CSV (``"line"``, the line the row starts on), the row number
    in an Excel sheet (``"row"``)."""

    position: int
    unit: str
    reason_zh: str
    reason_en: str

    @property
    def message(self) -> Message:
        """The problem as a ``bad-record`` message saying where the record is."""
        where_zh = f"第 {self.position} 条记录" if self.unit == "item" else f"第 {self.position} 行"
        where_en = {"item": "record", "line": "line", "row": "row"}.get(self.unit, self.unit)
        return Message("bad-record", f"{where_zh}无法读取：{self.reason_zh}",
                       f"{where_en} {self.position} cannot be read: {self.reason_en}")


Item = Union[dict, BadRecord]


def iter_records(
    stream: BinaryIO,
    fmt: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    header_row: int = 0,
    sheet: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    json_prefix: str = "item",
) -> Iterator[Item]:
    """Read an agency export one record at a time.

    :param stream: the export's bytes (a file opened in binary mode, an HTTP
        response's raw stream); read sequentially, never seeked.
    :param fmt: ``json`` (an array of objects), ``jsonl``, ``csv``, ``xlsx``,
        ``xls``, or None to tell from the first bytes. A declared text format
        whose bytes are an Excel workbook is read as the workbook: portals
        serve Excel files named .csv, and a zip or OLE file is never CSV.
    :param max_bytes: stop with ``SourceFormatError`` once more bytes than
        this have been read.
    :param header_row: CSV and Excel: the 0-based row holding the column
        names; rows above it (titles) are skipped.
    :param sheet: Excel: the sheet's name; the first sheet when None.
    :param delimiter: CSV: the cell separator; None picks the most frequent
        of ``, \\t ; |`` in the header line, preferring the comma.
    :param encoding: CSV: a Python codec name; None detects it.
    :param json_prefix: JSON: the ijson prefix of the records; ``item`` (the
        default) means the file is an array of records, ``data.item`` an
        array under the key ``data`` of a top-level object.
    :returns: an iterator of ``dict`` records and ``BadRecord`` items.
    :raises SourceFormatError: for problems with the whole file; those the
        first 64 KiB show (empty, HTML, wrong magic) by this call itself,
        the others while iterating.
    """
    if fmt is not None and fmt not in FORMATS:
        known = ", ".join(FORMATS)
        raise ValueError(f"未知的格式：{fmt}（可选 {known}） / unknown format {fmt!r} (one of {known})")
    if header_row < 0:
        raise ValueError("header_row 不能为负数 / header_row must not be negative")
    source = _CappedSource(stream, max_bytes)
    head = source.prefetch(_SNIFF_BYTES)
    sniffed = sniff_format(head)
    declared_text = fmt in (None, "json", "jsonl", "csv")
    if fmt is None or (declared_text and sniffed in ("xlsx", "xls")):
        fmt = sniffed
    elif fmt in ("xlsx", "xls") and sniffed != fmt:
        raise _not_a_workbook(fmt, sniffed)
    if fmt in ("json", "jsonl") and head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SourceFormatError(
            "JSON 文件须为 UTF-8 编码，此文件为 UTF-16",
            "JSON must be encoded in UTF-8; this file is UTF-16",
            records_read=0, code="json-utf-16",
        )
    if fmt == "json":
        return _read_json_array(source, json_prefix)
    if fmt == "jsonl":
        return _read_json_lines(source, sniffed=declared_text and sniffed == "jsonl")
    if fmt == "csv":
        return _read_csv(source, header_row=header_row, delimiter=delimiter, encoding=encoding)
    if fmt == "xlsx":
        return _read_xlsx(source, header_row=header_row, sheet=sheet, max_bytes=max_bytes)
    return _read_xls(source, header_row=header_row, sheet=sheet)


def _not_a_workbook(fmt: str, sniffed: str) -> SourceFormatError:
    return SourceFormatError(
        f"文件内容不是 {fmt} 工作簿（按内容判断为 {sniffed}）",
        f"the file is not an {fmt} workbook (its bytes look like {sniffed})",
        code="not-workbook",
    )


def sniff_format(head: bytes) -> str:
    """The format the first bytes of an export show: ``json`` for an array,
    ``jsonl`` for an object per line, ``xlsx`` (zip magic), ``xls`` (OLE
    magic), else ``csv``.

    :raises SourceFormatError: for an empty file, an HTML page or other
        markup.
    """
    if head.startswith(_XLSX_MAGIC):
        return "xlsx"
    if head.startswith(_XLS_MAGIC):
        return "xls"
    first = _first_character(head)
    if first == "":
        raise SourceFormatError("文件为空", "the file is empty", records_read=0, code="empty")
    if first == "<":
        _refuse_markup(head)
    if first == "[":
        return "json"
    if first == "{":
        return "jsonl"
    return "csv"


def _first_character(head: bytes) -> str:
    """The first non-blank character of the head, decoded just enough to
    see past a byte-order mark."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = head[:1024].decode("utf-16", errors="ignore")
    else:
        text = head[:1024].removeprefix(codecs.BOM_UTF8).decode("latin-1")
    stripped = text.lstrip(" \t\r\n\ufeff")
    return stripped[:1]


def _refuse_markup(head: bytes) -> None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = head[:2048].decode("utf-16", errors="ignore").lower()
    else:
        text = head[:2048].decode("latin-1").lower()
    if "<html" in text or "<!doctype html" in text or "<body" in text or "<head" in text:
        raise SourceFormatError(
            "下载到的是网页（HTML），不是数据文件；请检查来源网址是否需要登录或已失效",
            "the download is a web page (HTML), not a data file; check whether the source URL "
            "needs a login or no longer exists",
            records_read=0, code="markup",
        )
    raise SourceFormatError(
        "文件是 XML 或其他标记文档，不是支持的数据格式（JSON、CSV、Excel）",
        "the file is XML or another markup document, not a supported data format "
        "(JSON, CSV, Excel)",
        records_read=0, code="markup",
    )


class _CappedSource:
    """The export's bytes with a running count against the size cap; a head
    read for sniffing is served again before the rest."""

    def __init__(self, stream: IO[bytes], max_bytes: int):
        self._stream = stream
        self._max_bytes = max_bytes
        self._count = 0
        self._head = b""

    def _read_raw(self, size: int) -> bytes:
        chunk = self._stream.read(size)
        if chunk is None:  # a non-blocking stream with nothing ready yet
            chunk = b""
        if not isinstance(chunk, (bytes, bytearray)):
            raise TypeError("iter_records 需要二进制流 / iter_records needs a binary stream")
        self._count += len(chunk)
        if self._count > self._max_bytes:
            raise SourceFormatError(
                f"文件超过大小上限（{self._max_bytes:,} 字节）",
                f"the file is larger than the limit of {self._max_bytes:,} bytes",
                code="too-large",
            )
        return bytes(chunk)

    def prefetch(self, size: int) -> bytes:
        while len(self._head) < size:
            chunk = self._read_raw(size - len(self._head))
            if not chunk:
                break
            self._head += chunk
        return self._head

    def drop_prefix(self, prefix: bytes) -> None:
        if self._head.startswith(prefix):
            self._head = self._head[len(prefix):]

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for 0 bytes to learn the stream's type
            return b""
        if size is None or size < 0:
            return b"".join(self.chunks())
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._read_raw(size)

    def chunks(self, size: int = _CHUNK) -> Iterator[bytes]:
        while True:
            chunk = self.read(size)
            if not chunk:
                return
            yield chunk


# --- JSON ---------------------------------------------------------------

_TOO_DEEP = object()


def _json_values(source: _CappedSource, prefix: str) -> Iterator[tuple[Any, list[str]]]:
    """Each value at ``prefix`` (ijson's prefix syntax: ``item``,
    ``data.item``) with the keys repeated in any object inside it, built
    from ijson's basic events so that nesting is bounded: a value nested
    more than ``MAX_NESTING`` levels comes out as ``_TOO_DEEP`` and is not
    built (ijson's own item builder needs memory quadratic in the depth, and
    recursion over such a value overflows the stack)."""
    target = prefix.split(".")
    frames: list[list] = []   # every open container: [is_object, current key]
    start: int | None = None  # len(frames) when the value being built began
    stack: list[Any] = []     # containers of the value being built
    repeated: list[str] = []
    too_deep = False

    def at_target() -> bool:
        return len(frames) == len(target) and all(
            part == (frame[1] if frame[0] else "item") for part, frame in zip(target, frames))

    def attach(value: Any) -> None:
        top = stack[-1]
        if frames[-1][0]:
            key = frames[-1][1]
            if key in top:
                repeated.append(key)
            top[key] = value
        else:
            top.append(value)

    for event, value in ijson.basic_parse(source):
        if event in ("start_map", "start_array"):
            container = {} if event == "start_map" else []
            if start is None:
                if at_target():
                    start, stack, repeated, too_deep = len(frames), [container], [], False
            elif not too_deep:
                if len(stack) >= MAX_NESTING:
                    too_deep = True
                else:
                    attach(container)
                    stack.append(container)
            frames.append([event == "start_map", None])
        elif event == "map_key":
            frames[-1][1] = value
        elif event in ("end_map", "end_array"):
            frames.pop()
            if start is not None:
                if len(frames) == start:
                    yield (_TOO_DEEP if too_deep else stack[0]), repeated
                    start, stack = None, []
                elif not too_deep:
                    stack.pop()
        elif start is not None:
            if not too_deep:
                attach(value)
        elif at_target():
            yield value, []


_JSON_KIND_ZH = {list: "数组", str: "字符串", bool: "布尔值", type(None): "null"}
_JSON_KIND_EN = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _not_an_object(position: int, unit: str, value: Any) -> BadRecord:
    kind = type(value)
    zh = _JSON_KIND_ZH.get(kind, "数字")
    en = _JSON_KIND_EN.get(kind, "a number")
    return BadRecord(position, unit, f"不是 JSON 对象，而是{zh}", f"is not a JSON object but {en}")


def _repeated_keys(position: int, unit: str, keys: list[str]) -> BadRecord:
    names = "、".join(dict.fromkeys(keys))
    names_en = ", ".join(dict.fromkeys(keys))
    return BadRecord(
        position, unit,
        f"对象中键名重复（{names}），无法确定取哪个值",
        f"an object repeats the key(s) {names_en}, so which value is meant is unclear",
    )


def _read_json_array(source: _CappedSource, prefix: str) -> Iterator[Item]:
    head = source.prefetch(_SNIFF_BYTES)
    source.drop_prefix(codecs.BOM_UTF8)
    first = _first_character(head)
    if first == "<":
        _refuse_markup(head)
    if prefix == "item" and first != "[":
        raise SourceFormatError(
            "JSON 文件的顶层不是数组；若记录在某个键下，请在来源配置中设置 json_prefix（如 data.item）",
            "the JSON file's top level is not an array; if the records are under a key, set "
            "json_prefix in the source configuration (e.g. data.item)",
            records_read=0, code="json-not-array",
        )
    count = 0
    try:
        for value, repeated in _json_values(source, prefix):
            count += 1
            if value is _TOO_DEEP:
                yield _nested_too_deeply(count, "item")
            elif repeated:
                yield _repeated_keys(count, "item", repeated)
            elif not isinstance(value, dict):
                yield _not_an_object(count, "item", value)
            else:
                yield value
    except ijson.JSONError as exc:
        raise _json_break(exc, count) from None
    except SourceFormatError as exc:
        exc.records_read = count
        raise


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels (iteratively)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            pending.extend((child, depth + 1) for child in item.values() if isinstance(child, (dict, list)))
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item if isinstance(child, (dict, list)))
    return False


def _nested_too_deeply(position: int, unit: str) -> BadRecord:
    return BadRecord(position, unit, f"嵌套超过 {MAX_NESTING} 层，不是目录记录",
                     f"is nested more than {MAX_NESTING} levels deep, which no catalog record is")


_NON_FINITE = re.compile(r"(?<![\w\"])-?(NaN|Infinity)\b")


def _json_break(exc: Exception, count: int) -> SourceFormatError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if _NON_FINITE.search(str(exc)):
        return SourceFormatError(
            f"JSON 中第 {count + 1} 条记录含有 NaN 或 Infinity，这不是合法的 JSON 数值；此前已读取 {count} 条记录",
            f"record {count + 1} of the JSON contains NaN or Infinity, which are not valid JSON "
            f"numbers; {count} records were read before it",
            records_read=count, code="json-broken",
        )
    if "invalid bytes in UTF8" in detail:
        return SourceFormatError(
            f"JSON 文件须为 UTF-8 编码，但读取 {count} 条记录后遇到非 UTF-8 字节（可能是 GBK/GB18030 编码）",
            f"JSON must be encoded in UTF-8, but bytes that are not UTF-8 follow the first {count} "
            f"records (perhaps GBK/GB18030)",
            records_read=count, code="json-broken",
        )
    if "premature EOF" in detail:
        return SourceFormatError(
            f"JSON 文件不完整（可能下载中断）：读取 {count} 条记录后文件意外结束",
            f"the JSON file is incomplete (perhaps a broken download): it ends unexpectedly "
            f"after {count} records",
            records_read=count, code="json-broken",
        )
    return SourceFormatError(
        f"JSON 格式错误，读取 {count} 条记录后无法继续（{detail}）",
        f"invalid JSON: reading stopped after {count} records ({detail})",
        records_read=count, code="json-broken",
    )


class _RepeatedKeys(ValueError):
    def __init__(self, keys: list[str]):
        super().__init__(keys)
        self.keys = keys


class _NonFiniteNumber(ValueError):
    pass


def _pairs_without_repeats(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        raise _RepeatedKeys([key for key, _ in pairs if key in seen or seen.add(key)])
    return result


def _refuse_constant(name: str) -> Any:
    raise _NonFiniteNumber(name)


def _too_long_line() -> SourceFormatError:
    return SourceFormatError(
        f"文件中有一行超过 {MAX_LINE_BYTES:,} 字节，不是目录记录（文件可能已损坏）",
        f"a line of the file is longer than {MAX_LINE_BYTES:,} bytes, which no catalog record "
        f"is (the file may be damaged)",
        code="line-too-long",
    )


def _byte_lines(source: _CappedSource) -> Iterator[bytes]:
    pending = b""
    for chunk in source.chunks():
        pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop()
        yield from lines
        if len(pending) > MAX_LINE_BYTES:
            raise _too_long_line()
    if pending:
        yield pending


def _read_json_lines(source: _CappedSource, *, sniffed: bool) -> Iterator[Item]:
    source.drop_prefix(codecs.BOM_UTF8)
    seen_object = False
    for line_number, raw in enumerate(_byte_lines(source), start=1):
        raw = raw.strip(_WHITESPACE)
        if not raw:
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield BadRecord(line_number, "line", "不是 UTF-8 编码的文本", "is not UTF-8 text")
            continue
        try:
            value = json.loads(
                text, object_pairs_hook=_pairs_without_repeats,
                parse_constant=_refuse_constant, parse_float=Decimal,
            )
        except _RepeatedKeys as exc:
            yield _repeated_keys(line_number, "line", exc.keys)
            continue
        except RecursionError:
            yield _nested_too_deeply(line_number, "line")
            continue
        except _NonFiniteNumber as exc:
            yield BadRecord(
                line_number, "line",
                f"含有 {exc}，这不是合法的 JSON 数值",
                f"contains {exc}, which is not a valid JSON number",
            )
            continue
        except json.JSONDecodeError as exc:
            if sniffed and not seen_object:
                # A pretty-printed single object also starts with "{"; saying
                # so beats reporting every line of it as a bad record.
                raise SourceFormatError(
                    "文件首行不是完整的 JSON 对象：文件既不是 JSON 数组，也不是每行一个对象的 JSON lines",
                    "the first line is not a complete JSON object: the file is neither a JSON "
                    "array nor JSON lines (one object per line)",
                    records_read=0, code="json-not-lines",
                ) from None
            yield BadRecord(
                line_number, "line", f"不是合法的 JSON（{exc.msg}）", f"is not valid JSON ({exc.msg})")
            continue
        if not isinstance(value, dict):
            yield _not_an_object(line_number, "line", value)
            continue
        if _depth_exceeds(value, MAX_NESTING):
            yield _nested_too_deeply(line_number, "line")
            continue
        seen_object = True
        yield value


# --- rows of a table: CSV and Excel -------------------------------------------

class _Decoding:
    """The text of a CSV's bytes, decoded chunk by chunk. ``label`` names the
    encoding found: the one asked for, ``utf-8-sig`` or ``utf-16`` by their
    byte-order mark, else ``utf-8``, ``gbk`` (text GB18030 and GBK read
    alike) or ``gb18030`` (characters only GB18030 has), final once every
    chunk has been decoded."""

    def __init__(self, source: _CappedSource, encoding: str | None):
        self._source = source
        self._asked = encoding
        self.name: str | None = None  # the codec in use; None while the text is ASCII
        self.gbk = True  # whether the GB18030 text so far reads the same as GBK

    @property
    def label(self) -> str:
        if self.name is None:
            return "utf-8"  # ASCII reads the same in UTF-8
        if self.name == "gb18030" and not self._asked and self.gbk:
            return "gbk"
        return self.name

    def chunks(self, size: int = _CHUNK) -> Iterator[str]:
        head = self._source.prefetch(_SNIFF_BYTES)
        if self._asked:
            name = self._asked
        elif head.startswith(codecs.BOM_UTF8):
            name = "utf-8-sig"
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            name = "utf-16"
        else:
            name = None  # decided at the first non-ASCII chunk
        try:
            decoder = codecs.getincrementaldecoder(name)("strict") if name else None
        except LookupError:
            raise SourceFormatError(f"未知的字符编码：{name}", f"unknown character encoding: {name}",
                                    code="unknown-encoding") from None
        self.name = name
        gbk = None
        offset = 0
        for chunk in self._source.chunks(size):
            if decoder is None:
                if chunk.isascii():
                    # ASCII reads the same in UTF-8 and GB18030: no need to decide yet.
                    offset += len(chunk)
                    yield chunk.decode("ascii")
                    continue
                name = self.name = "utf-8" if _is_utf8(chunk) else "gb18030"
                decoder = codecs.getincrementaldecoder(name)("strict")
                if name == "gb18030":
                    gbk = codecs.getincrementaldecoder("gbk")("strict")
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise _undecodable(name, offset + max(exc.start, 0)) from None
            if gbk is not None:
                gbk = self._still_gbk(gbk, chunk)
            offset += len(chunk)
            if text:
                yield text
        if decoder is not None:
            try:
                tail = decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise _undecodable(name, offset) from None
            if gbk is not None:
                self._still_gbk(gbk, b"", final=True)
            if tail:
                yield tail

    def _still_gbk(self, decoder, chunk: bytes, final: bool = False):
        """Feed ``chunk`` to the GBK decoder; None once the text is not GBK."""
        try:
            decoder.decode(chunk, final=final)
        except UnicodeDecodeError:
            self.gbk = False
            return None
        return decoder


def _is_utf8(chunk: bytes) -> bool:
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(chunk, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _undecodable(encoding: str, offset: int) -> SourceFormatError:
    label = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "gb18030": "GB18030（GBK）", "utf-16": "UTF-16"}
    shown = label.get(encoding, encoding)
    return SourceFormatError(
        f"文件在约第 {offset:,} 字节处无法按 {shown} 解码；文件可能混用了多种编码或已损坏",
        f"the file cannot be decoded as {shown} near byte {offset:,}; it may mix encodings "
        f"or be damaged",
        code="undecodable",
    )


_LINE_END = re.compile(r"\r\n|\r|\n")


def _text_lines(chunks: Iterable[str]) -> Iterator[str]:
    """Lines with their endings, split only at \\r, \\n and \\r\\n as the csv
    module expects (str.splitlines would also split at \\x1c, \\u2028 ...)."""
    pending = ""
    for chunk in chunks:
        pending += chunk
        start = 0
        for match in _LINE_END.finditer(pending):
            if match.group() == "\r" and match.end() == len(pending):
                break  # the \n of a \r\n may open the next chunk
            yield pending[start:match.end()]
            start = match.end()
        pending = pending[start:]
        if len(pending) > MAX_LINE_BYTES:
            raise _too_long_line()
    if pending:
        yield pending


def _pick_delimiter(line: str) -> str:
    counts = {candidate: line.count(candidate) for candidate in _DELIMITER_CANDIDATES}
    if counts[","]:
        return ","
    best = max(_DELIMITER_CANDIDATES, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


class Row(NamedTuple):
    """One row of a CSV file or an Excel sheet, every cell as text, with
    where a person finds it: the line it starts on (``unit="line"``, CSV) or
    its row number (``"row"``, Excel)."""

    position: int
    unit: str
    cells: list[str]


@dataclass(frozen=True)
class _InvalidCsv:
    """A CSV row the csv module could not parse, and why."""

    position: int
    detail: str

    def bad_record(self) -> BadRecord:
        return BadRecord(
            self.position, "line",
            f"不是合法的 CSV（引号不成对或引号后多出字符：{self.detail}）",
            f"is not valid CSV (unbalanced quotes or text after a closing quote: {self.detail})",
        )


class TableRows:
    """The rows of a CSV file or an Excel sheet, from ``iter_rows``: an
    iterator of ``Row`` items (and of ``BadRecord`` for a CSV row that is not
    valid CSV). ``format`` is ``csv``, ``xlsx`` or ``xls``; ``encoding`` is
    the text encoding of a CSV (see ``_Decoding.label``; final once the rows
    are exhausted) and the format for a workbook."""

    def __init__(self, fmt: str, rows: Iterator, decoding: _Decoding | None = None):
        self.format = fmt
        self._rows = rows
        self._decoding = decoding

    @property
    def encoding(self) -> str:
        return self._decoding.label if self._decoding is not None else self.format

    def __iter__(self) -> "TableRows":
        return self

    def __next__(self) -> Union[Row, BadRecord]:
        item = next(self._rows)
        return item.bad_record() if isinstance(item, _InvalidCsv) else item

    def close(self) -> None:
        """Release the workbook or spool now rather than when collected."""
        self._rows.close()


def iter_rows(
    stream: BinaryIO,
    fmt: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    sheet: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    strict: bool = True,
) -> TableRows:
    """Read a table (CSV or Excel) one row at a time, every row as it stands
    (titles, the header, blank rows), each cell as text: the layer under
    ``iter_records`` for readers that choose the header themselves.

    :param stream: the file's bytes, read sequentially, never seeked.
    :param fmt: ``csv``, ``xlsx``, ``xls``, or None: a workbook by its bytes
        (also when declared ``csv``), else CSV.
    :param max_bytes: stop with ``SourceFormatError`` once more bytes than
        this have been read; an xlsx may inflate to 16 times as many.
    :param sheet: Excel: the sheet's name; the first sheet when None.
    :param delimiter: CSV: the cell separator; None picks it from the first
        line as ``iter_records`` does.
    :param encoding: CSV: a Python codec name; None detects it.
    :param strict: CSV: a row that is not valid CSV (text after a closing
        quote, a quote never closed) comes out as a ``BadRecord``; when
        False the csv module reads it leniently, as spreadsheets do.
    :returns: ``TableRows``.
    :raises SourceFormatError: as ``iter_records``.
    """
    if fmt is not None and fmt not in ("csv", "xlsx", "xls"):
        raise ValueError(f"未知的表格格式：{fmt} / unknown table format {fmt!r} (csv, xlsx, xls)")
    source = _CappedSource(stream, max_bytes)
    sniffed = sniff_format(source.prefetch(_SNIFF_BYTES))
    if sniffed in ("xlsx", "xls") and fmt in (None, "csv"):
        fmt = sniffed
    elif fmt in ("xlsx", "xls") and sniffed != fmt:
        raise _not_a_workbook(fmt, sniffed)
    if fmt == "xlsx":
        return TableRows(fmt, _xlsx_rows(source, sheet=sheet, max_bytes=max_bytes))
    if fmt == "xls":
        return TableRows(fmt, _xls_rows(source, sheet=sheet))
    decoding = _Decoding(source, encoding)
    return TableRows("csv", _csv_rows(source, decoding, delimiter=delimiter, delimiter_line=0,
                                      strict=strict), decoding)


# Text is decoded and re-encoded in pieces this large: few enough calls that
# Python's per-call cost vanishes, small enough that memory stays flat.
_TEXT_CHUNK = 1024 * 1024


class Utf8Text:
    """A CSV file's text as UTF-8 bytes, from ``utf8_text``: ``chunks()``
    yields it (without a byte-order mark) decoded from the encoding found
    and re-encoded, a megabyte at a time, under the same size cap and with
    the same refusals as ``iter_rows``; ``encoding`` names the encoding
    (see ``_Decoding.label``; final once every chunk has been read)."""

    def __init__(self, source: _CappedSource, decoding: _Decoding):
        self._source = source
        self._decoding = decoding

    @property
    def encoding(self) -> str:
        return self._decoding.label

    def chunks(self) -> Iterator[bytes]:
        for text in self._decoding.chunks(_TEXT_CHUNK):
            yield text.encode("utf-8")


def utf8_text(stream: BinaryIO, *, max_bytes: int = DEFAULT_MAX_BYTES,
              encoding: str | None = None) -> Utf8Text | None:
    """A CSV file's text as UTF-8 (for a reader that hands the text to a
    CSV parser of its own, such as PostgreSQL's COPY); None when the bytes
    are an Excel workbook, which only ``iter_rows`` reads.

    :raises SourceFormatError: as ``iter_rows`` (empty file, markup), and
        while iterating (undecodable bytes, too large).
    """
    source = _CappedSource(stream, max_bytes)
    head = source.prefetch(_SNIFF_BYTES)
    if sniff_format(head) in ("xlsx", "xls"):
        return None
    if _first_character(head) == "<":
        _refuse_markup(head)
    return Utf8Text(source, _Decoding(source, encoding))


def head_rows(text: str, *, limit: int, delimiter: str | None = None
              ) -> tuple[str, list[tuple[list[str], int]]]:
    """The delimiter (picked from the first line as ``iter_rows`` picks it)
    and the first ``limit`` rows of a CSV's text, parsed as ``iter_rows``
    parses them (``strict=False``), each with the offset in ``text`` just
    past its last line. ``text`` should end at a line end: a row cut off by
    its end comes out as the csv module reads the rest."""
    if delimiter is None:
        first = next(_text_lines([text]), "")
        delimiter = _pick_delimiter(first)
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        for line in _text_lines([text]):
            consumed += len(line)
            yield line

    rows = []
    for cells in csv.reader(lines(), delimiter=delimiter, strict=False):
        rows.append((cells, consumed))
        if len(rows) >= limit:
            break
    return delimiter, rows


def _header_names(cells: list[str]) -> list[str]:
    names = [cell.replace("\ufeff", "").strip() for cell in cells]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise SourceFormatError(
            "表头行为空，找不到列名", "the header row is empty: no column names found", records_read=0,
            code="bad-header")
    names = [name or f"column_{index}" for index, name in enumerate(names, start=1)]
    seen: set[str] = set()
    repeated = [name for name in names if name in seen or seen.add(name)]
    if repeated:
        shown = "、".join(dict.fromkeys(repeated))
        raise SourceFormatError(
            f"表头中列名重复：{shown}；请改为不同的列名",
            f"the header repeats column name(s): {', '.join(dict.fromkeys(repeated))}; "
            f"give each column its own name",
            records_read=0, code="repeated-header",
        )
    return names


def _row_record(header: list[str], cells: list[str], position: int, unit: str) -> Item | None:
    """The record a row holds, a BadRecord, or None for a row with no data."""
    if not any(cell.strip() for cell in cells):
        return None
    if any("\x00" in cell for cell in cells):
        return BadRecord(
            position, unit, "含有 NUL（\\0）字节：文件可能已损坏或是未标明的 UTF-16 编码",
            "contains a NUL (\\0) byte: the file may be damaged or UTF-16 without a "
            "byte-order mark",
        )
    if len(cells) > len(header):
        extra = cells[len(header):]
        if any(cell.strip() for cell in extra):
            return BadRecord(
                position, unit,
                f"单元格数（{len(cells)}）多于列数（{len(header)}）",
                f"has {len(cells)} cells but the header names {len(header)} columns",
            )
        cells = cells[:len(header)]
    cells = cells + [""] * (len(header) - len(cells))
    return dict(zip(header, cells))


def _records_from_rows(rows: Iterator, header_row: int, where_zh: str, where_en: str) -> Iterator[Item]:
    """The records of a table's rows under the header at ``header_row``."""
    header: list[str] | None = None
    rows_seen = 0
    for row in rows:
        if isinstance(row, _InvalidCsv):
            if header is None:
                raise SourceFormatError(
                    f"表头（第 {row.position} 行）不是合法的 CSV：{row.detail}",
                    f"the header (line {row.position}) is not valid CSV: {row.detail}",
                    records_read=0, code="bad-header",
                )
            yield row.bad_record()
            continue
        if header is None:
            if rows_seen < header_row:
                rows_seen += 1
                continue
            header = _header_names(row.cells)
            continue
        record = _row_record(header, row.cells, row.position, row.unit)
        if record is not None:
            yield record
    if header is None:
        raise SourceFormatError(
            f"{where_zh}中没有第 {header_row + 1} 行作为表头",
            f"the {where_en} has no row {header_row + 1} to use as the header",
            records_read=0, code="no-header",
        )


# --- CSV ----------------------------------------------------------------

def _csv_rows(source: _CappedSource, decoding: _Decoding, *, delimiter: str | None,
              delimiter_line: int, strict: bool) -> Iterator[Union[Row, _InvalidCsv]]:
    head = source.prefetch(_SNIFF_BYTES)
    if _first_character(head) == "<":
        _refuse_markup(head)
    lines = _text_lines(decoding.chunks())
    peeked: list[str] = []
    if delimiter is None:
        for line in lines:
            peeked.append(line)
            if len(peeked) > delimiter_line:
                break
        delimiter = _pick_delimiter(peeked[delimiter_line] if len(peeked) > delimiter_line else "")

    def all_lines() -> Iterator[str]:
        yield from peeked
        yield from lines

    reader = csv.reader(all_lines(), delimiter=delimiter, strict=strict)
    while True:
        start_line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The csv module starts afresh on the next line after an error.
            yield _InvalidCsv(start_line, str(exc))
            continue
        yield Row(start_line, "line", cells)


def _read_csv(source: _CappedSource, *, header_row: int, delimiter: str | None,
              encoding: str | None) -> Iterator[Item]:
    rows = _csv_rows(source, _Decoding(source, encoding), delimiter=delimiter,
                     delimiter_line=header_row, strict=True)
    return _records_from_rows(rows, header_row, "文件", "file")


# --- Excel ----------------------------------------------------------------

def _excel_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _spooled(source: _CappedSource) -> IO[bytes]:
    spool = tempfile.TemporaryFile()
    try:
        for chunk in source.chunks():
            spool.write(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


def _missing_sheet(sheet: str, names: list[str]) -> SourceFormatError:
    return SourceFormatError(
        f"工作簿中没有名为「{sheet}」的工作表；现有：{'、'.join(names)}",
        f"the workbook has no sheet named {sheet!r}; it has: {', '.join(names)}",
        records_read=0, code="missing-sheet",
    )


def _unreadable_workbook(kind: str, exc: Exception) -> SourceFormatError:
    return SourceFormatError(
        f"无法打开 {kind} 工作簿（文件可能已损坏或加密）：{exc}",
        f"cannot open the {kind} workbook (the file may be damaged or encrypted): {exc}",
        records_read=0, code="unreadable-workbook",
    )


def _xlsx_rows(source: _CappedSource, *, sheet: str | None, max_bytes: int) -> Iterator[Row]:
    import openpyxl

    with _spooled(source) as spool:
        try:
            with zipfile.ZipFile(spool) as archive:
                inflated = sum(member.file_size for member in archive.infolist())
        except zipfile.BadZipFile as exc:
            raise _unreadable_workbook("xlsx", exc) from None
        if inflated > max_bytes * _MAX_INFLATION:
            raise SourceFormatError(
                f"xlsx 解压后过大（{inflated:,} 字节）",
                f"the xlsx inflates to too many bytes ({inflated:,})",
                records_read=0, code="zip-bomb",
            )
        spool.seek(0)
        try:
            workbook = openpyxl.load_workbook(spool, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a bad file
            raise _unreadable_workbook("xlsx", exc) from None
        try:
            names = workbook.sheetnames
            if sheet is None:
                worksheet = workbook.worksheets[0]
            elif sheet in names:
                worksheet = workbook[sheet]
            else:
                raise _missing_sheet(sheet, names)
            for number, values in enumerate(worksheet.iter_rows(min_row=1, values_only=True), start=1):
                yield Row(number, "row", [_excel_text(value) for value in values])
        finally:
            workbook.close()


def _xls_rows(source: _CappedSource, *, sheet: str | None) -> Iterator[Row]:
    import xlrd

    with _spooled(source) as spool:
        contents = spool.read()
    try:
        book = xlrd.open_workbook(file_contents=contents, on_demand=True)
    except Exception as exc:  # xlrd raises XLRDError, CompDocError, struct errors ...
        raise _unreadable_workbook("xls", exc) from None
    del contents
    try:
        names = book.sheet_names()
        if sheet is None:
            worksheet = book.sheet_by_index(0)
        elif sheet in names:
            worksheet = book.sheet_by_name(sheet)
        else:
            raise _missing_sheet(sheet, names)
        to_text = _xls_cell_text(book)
        for index in range(worksheet.nrows):
            yield Row(index + 1, "row", [to_text(cell) for cell in worksheet.row(index)])
    finally:
        book.release_resources()


def _read_xlsx(source: _CappedSource, *, header_row: int, sheet: str | None,
               max_bytes: int) -> Iterator[Item]:
    return _records_from_rows(_xlsx_rows(source, sheet=sheet, max_bytes=max_bytes), header_row,
                              "工作表", "sheet")


def _read_xls(source: _CappedSource, *, header_row: int, sheet: str | None) -> Iterator[Item]:
    return _records_from_rows(_xls_rows(source, sheet=sheet), header_row, "工作表", "sheet")


def _xls_cell_text(book) -> Callable[[Any], str]:
    import xlrd

    def to_text(cell) -> str:
        if cell.ctype == xlrd.XL_CELL_DATE:
            try:
                return _excel_text(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
            except (xlrd.xldate.XLDateError, OverflowError, ValueError):
                return _excel_text(cell.value)
        if cell.ctype == xlrd.XL_CELL_BOOLEAN:
            return _excel_text(bool(cell.value))
        if cell.ctype == xlrd.XL_CELL_ERROR:
            return xlrd.error_text_from_code.get(cell.value, "#ERROR")
        if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
            return ""
        return _excel_text(cell.value)

    return to_text

"""Fixtures of the harvester unit tests: a writer of small legacy Excel (.xls)
workbooks, for which no writing library is installed."""
from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import pytest

_END_OF_CHAIN = 0xFFFFFFFE
_FREE = 0xFFFFFFFF
_FAT_SECTOR = 0xFFFFFFFD
_SECTOR = 512
_DATE_XF = 1  # the XF record below that carries Excel's built-in date format 14


def _record(kind: int, data: bytes) -> bytes:
    return struct.pack("<HH", kind, len(data)) + data


def _unicode(text: str, length_bytes: int) -> bytes:
    encoded = text.encode("utf-16-le")
    # BIFF counts UTF-16 code units, so a character outside the BMP counts twice.
    length = struct.pack("<B" if length_bytes == 1 else "<H", len(encoded) // 2)
    return length + b"\x01" + encoded


def _cell(row: int, col: int, value) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bool):
        return _record(0x0205, struct.pack("<HHHBB", row, col, 0, int(value), 0))
    if isinstance(value, dt.date):
        serial = (value - dt.date(1899, 12, 30)).days
        return _record(0x0203, struct.pack("<HHHd", row, col, _DATE_XF, float(serial)))
    if isinstance(value, (int, float)):
        return _record(0x0203, struct.pack("<HHHd", row, col, 0, float(value)))
    return _record(0x0204, struct.pack("<HHH", row, col, 0) + _unicode(str(value), 2))


def _biff8_workbook(sheets: dict[str, list[list]]) -> bytes:
    bof_globals = _record(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 6))
    xfs = b"".join(_record(0x00E0, struct.pack("<HHHBBBBIiH", 0, fmt, *[0] * 8)) for fmt in (0, 14))
    codepage = _record(0x0042, struct.pack("<H", 1200))  # UTF-16 text
    datemode = _record(0x0022, struct.pack("<H", 0))  # dates count from 1900
    head = bof_globals + codepage + datemode + xfs
    bodies = []
    for rows in sheets.values():
        cells = b"".join(
            _cell(r, c, value) for r, row in enumerate(rows) for c, value in enumerate(row))
        width = max((len(row) for row in rows), default=0)
        bodies.append(
            _record(0x0809, struct.pack("<HHHHII", 0x0600, 0x0010, 0x0DBB, 0x07CC, 0, 6))
            + _record(0x0200, struct.pack("<IIHHH", 0, len(rows), 0, width, 0))
            + cells + _record(0x000A, b"")
        )
    names = list(sheets)
    boundsheet_sizes = [4 + 6 + len(_unicode(name, 1)) for name in names]
    offset = len(head) + sum(boundsheet_sizes) + 4  # + the globals' EOF record
    boundsheets = b""
    for name, body in zip(names, bodies):
        boundsheets += _record(0x0085, struct.pack("<IBB", offset, 0, 0) + _unicode(name, 1))
        offset += len(body)
    return head + boundsheets + _record(0x000A, b"") + b"".join(bodies)


def _directory_entry(name: str, kind: int, child: int, start: int, size: int) -> bytes:
    encoded = (name + "\x00").encode("utf-16-le") if name else b""
    return (
        encoded.ljust(64, b"\x00") + struct.pack("<HBB", len(encoded), kind, 1)
        + struct.pack("<III", _FREE, _FREE, child) + b"\x00" * 20 + b"\x00" * 16
        + struct.pack("<III", start, size, 0)
    )


def write_xls(path: Path, sheets: dict[str, list[list]]) -> Path:
    """Write a minimal BIFF8 workbook in an OLE2 container: text, numbers,
    booleans and dates (as date-formatted numbers)."""
    stream = _biff8_workbook(sheets)
    stream = stream.ljust(max(4096, -(-len(stream) // _SECTOR) * _SECTOR), b"\x00")
    stream_sectors = len(stream) // _SECTOR
    assert stream_sectors + 2 <= 128, "test workbooks must fit one FAT sector"
    directory_sector = 1 + stream_sectors
    fat = [_FAT_SECTOR] + [s + 1 for s in range(1, stream_sectors)] + [_END_OF_CHAIN, _END_OF_CHAIN]
    fat += [_FREE] * (128 - len(fat))
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 16
        + struct.pack("<HHHHH", 0x003E, 0x0003, 0xFFFE, 9, 6) + b"\x00" * 6
        + struct.pack("<IIIIIIIII", 0, 1, directory_sector, 0, 4096,
                      _END_OF_CHAIN, 0, _END_OF_CHAIN, 0)
        + struct.pack("<I", 0) + struct.pack("<I", _FREE) * 108
    )
    directory = (
        _directory_entry("Root Entry", 5, 1, _END_OF_CHAIN, 0)
        + _directory_entry("Workbook", 2, _FREE, 1, len(stream))
        + _directory_entry("", 0, _FREE, 0, 0) * 2
    )
    path.write_bytes(header + struct.pack("<128I", *fat) + stream + directory)
    return path


@pytest.fixture
def make_xls(tmp_path):
    def make(name: str, sheets: dict[str, list[list]]) -> Path:
        return write_xls(tmp_path / name, sheets)

    return make

"""Column types and the header row of a table, inferred in one streamed pass
over every row: pure functions and small state, no CKAN, no database.

A column's type is the narrowest of integer, numeric, date, timestamp and
boolean that every non-empty value fits; one value that fits none makes the
column text (a later odd value never fails a load, it widens the column).
What a value must look like is chosen so that PostgreSQL casts it without
error (see ``cast_sql``): integers fit in int8 and have no leading zero (a
code such as ``0101`` or a postcode ``020000`` stays text, zeros intact),
dates are real calendar dates written year first.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Callable

__all__ = ["TYPES", "PG_TYPES", "ColumnProfile", "find_header", "is_generated_label", "cast_sql",
           "infer_value_types", "profile_query", "TEMPORAL_TYPES"]

# In order of preference: a column fitting several takes the first.
TYPES = ("boolean", "integer", "numeric", "date", "timestamp", "text")
# The DataStore (PostgreSQL) type of each.
PG_TYPES = {"boolean": "bool", "integer": "int8", "numeric": "numeric", "date": "date",
            "timestamp": "timestamp", "text": "text"}

_BOOLEAN, _INTEGER, _NUMERIC, _DATE, _TIMESTAMP = 1, 2, 4, 8, 16
_ALL = _BOOLEAN | _INTEGER | _NUMERIC | _DATE | _TIMESTAMP
_BIT_TYPES = ((_BOOLEAN, "boolean"), (_INTEGER, "integer"), (_NUMERIC, "numeric"), (_DATE, "date"),
              (_TIMESTAMP, "timestamp"))

TRUE_WORDS = ("true", "yes", "是")
FALSE_WORDS = ("false", "no", "否")
_BOOLEAN_WORDS = frozenset(TRUE_WORDS + FALSE_WORDS)
# At most 18 digits: always within int8 (9,223,372,036,854,775,807). ASCII
# digits only: PostgreSQL casts no other, so full-width ０１２ stays text.
_INTEGER_RE = re.compile(r"[+-]?(?:0|[1-9]\d{0,17}|[1-9]\d{0,2}(?:,\d{3}){1,5})\Z", re.ASCII)
_NUMERIC_RE = re.compile(r"[+-]?(?:(?:0|[1-9]\d*|[1-9]\d{0,2}(?:,\d{3})+)(?:\.\d+)?|\.\d+)\Z", re.ASCII)
_DATE_RE = re.compile(r"(\d{4})(?:([-/.])(\d{1,2})\2(\d{1,2})|年(\d{1,2})月(\d{1,2})日)", re.ASCII)
_TIME_RE = re.compile(r"[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?\Z", re.ASCII)
_NUMERIC_DIGITS = 30  # beyond this a "number" is an identifier; keep it as written

# Generated column labels a spreadsheet or pandas writes when a file had no
# header: "Unnamed: 0", "Unnamed: 3_level_0", "Column1", "column_2", "F3".
_GENERATED_LABEL = re.compile(r"(?:unnamed: ?\d+(?:_level_\d+)?|column[ _]?\d+|col[ _]?\d+|field[ _]?\d+|"
                              r"f\d+)\Z", re.IGNORECASE)
# Rows looked at for the header: title rows above it are few.
HEADER_SEARCH_ROWS = 10


def _date_fits(match: re.Match) -> bool:
    year = int(match.group(1))
    month, day = (match.group(3), match.group(4)) if match.group(2) else (match.group(5), match.group(6))
    try:
        dt.date(year, int(month), int(day))
    except ValueError:
        return False
    return 1 <= year <= 9999


def infer_value_types(value: str) -> int:
    """The types (a bit set) a stripped, non-empty value fits."""
    fits = 0
    lowered = value.lower()
    if lowered in _BOOLEAN_WORDS:
        return _BOOLEAN
    first = value[0]
    if first.isdigit() or first in "+-.":
        if _INTEGER_RE.match(value):
            fits |= _INTEGER | _NUMERIC
        elif len(value) <= _NUMERIC_DIGITS and _NUMERIC_RE.match(value):
            fits |= _NUMERIC
        date = _DATE_RE.match(value)
        if date and _date_fits(date):
            rest = value[date.end():]
            if not rest:
                fits |= _DATE | _TIMESTAMP
            else:
                time = _TIME_RE.match(rest)
                if time and int(time.group(1)) < 24 and int(time.group(2)) < 60 \
                        and int(time.group(3) or 0) < 60:
                    fits |= _TIMESTAMP
    return fits


@dataclass
class ColumnProfile:
    """What one pass learns of a column: the types all its values fit, the
    first non-empty value (the example) and how many cells are empty."""

    name: str
    possible: int = _ALL
    example: str = ""
    empty_count: int = 0

    def add(self, cell: str) -> None:
        value = cell.strip()
        if not value:
            self.empty_count += 1
            return
        if not self.example:
            self.example = value[:200]
        if self.possible:
            self.possible &= infer_value_types(value)

    @property
    def type(self) -> str:
        """The column's type; text when no value was seen."""
        if self.example:
            for bit, name in _BIT_TYPES:
                if self.possible & bit:
                    return name
        return "text"

    def add_column(self, cells: list[str]) -> None:
        """``add`` for many cells of this column at once (the loader's
        inner loop: a column found to be text only counts empty cells)."""
        possible, example, empty = self.possible, self.example, self.empty_count
        for cell in cells:
            value = cell.strip()
            if not value:
                empty += 1
                continue
            if possible:
                possible &= infer_value_types(value)
            if not example:
                example = value[:200]
        self.possible, self.example, self.empty_count = possible, example, empty

    def as_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "example": self.example,
                "empty_count": self.empty_count}


def cast_sql(column_sql: str, type_name: str) -> str:
    """A SQL expression turning the text ``column_sql`` (a quoted column of
    the staging table) into ``type_name``; empty text becomes NULL. Only
    values ``infer_value_types`` accepted for the type reach it."""
    value = f"nullif(btrim({column_sql}), '')"
    if type_name == "text":
        return column_sql
    if type_name == "boolean":
        words = ", ".join(f"'{word}'" for word in TRUE_WORDS)
        return f"(lower({value}) in ({words}))"
    if type_name in ("integer", "numeric"):
        return f"replace({value}, ',', '')::{PG_TYPES[type_name]}"
    # 2023/6/6, 2023.6.6 and 2023年6月6日 as 2023-6-6, which PostgreSQL
    # reads year first whatever its DateStyle.
    iso = f"rtrim(regexp_replace({value}, '[/.年月]', '-', 'g'), '日')"
    if type_name == "date":
        return f"({iso})::date"
    return (f"regexp_replace(regexp_replace({value}, '^(\\d{{4}})[/.](\\d{{1,2}})[/.](\\d{{1,2}})', "
            f"'\\1-\\2-\\3'), '^(\\d{{4}})年(\\d{{1,2}})月(\\d{{1,2}})日', '\\1-\\2-\\3')::timestamp")


def is_generated_label(cell: str) -> bool:
    return bool(_GENERATED_LABEL.match(cell.strip()))


def _filled(cells: list[str]) -> int:
    return sum(1 for cell in cells if cell.strip())


def find_header(rows: list[list[str]]) -> int:
    """The index of the header among a table's first rows: the first row
    that is about as wide as the table (title rows above a header hold one
    or two cells) and is not a row of generated labels (``Unnamed: 0``...)
    over the real header; 0 when none stands out."""
    widths = [_filled(row) for row in rows[:HEADER_SEARCH_ROWS]]
    if not widths:
        return 0
    widest = max(widths)
    needed = widest if widest <= 2 else max(2, (widest + 1) // 2)
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if widths[index] < needed:
            continue
        labels = [cell for cell in row if cell.strip()]
        if labels and all(is_generated_label(cell) for cell in labels) and index + 1 < len(rows):
            continue
        return index
    return 0


# --------------------------------------------------------------------------
# The same inference as one SQL scan of a table of text columns (the
# loader's staging table, filled by COPY): what ``infer_value_types`` checks,
# as PostgreSQL regular expressions and string functions.

# What str.strip() strips: the same cells are empty in Python and in SQL.
WHITESPACE = "".join(chr(code) for code in range(0x3001) if chr(code).isspace())
_SQL_NUMERIC = r"^[+-]?(?:(?:0|[1-9][0-9]*|[1-9][0-9]{0,2}(?:,[0-9]{3})+)(?:\.[0-9]+)?|\.[0-9]+)$"
# Year first, a real month and day number, an optional time of day. A day
# the month lacks (2023-02-30) passes here and fails the cast (see
# ``TEMPORAL_TYPES``), which makes its column text as in Python.
_SQL_DATETIME = (r"^(?!0000)[0-9]{4}(?:([-/.])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12][0-9]|3[01])"
                 r"|年(?:0?[1-9]|1[0-2])月(?:0?[1-9]|[12][0-9]|3[01])日)"
                 r"(?:[ T](?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?)?$")
# The types whose every value the scan's pattern does not fully check.
TEMPORAL_TYPES = ("date", "timestamp")


def _trimmed(column: str) -> str:
    return f"nullif(btrim({column}, %(ws)s), '')"


def _filled_sql(column: str) -> str:
    """The cell when it holds more than white space, else NULL; a cell
    starting with a letter, digit or CJK character is taken as it is
    (trimming against the whole white-space set costs more than the rest
    of the scan)."""
    return (f"case when ascii({column}) between 33 and 132 or ascii({column}) > 12288 then {column} "
            f"else {_trimmed(column)} end")


def profile_query(table: str, columns: list[str], every_column: list[str],
                  hints: list[int]) -> tuple[str, dict, Callable[[tuple], tuple[int, int, list[tuple[int, int]]]]]:
    """One scan of ``table`` profiling ``columns`` (quoted SQL names) over
    the rows holding something in any of ``every_column``: for each column
    the types all its values fit, as ``ColumnProfile.possible`` would be,
    and its count of non-empty values. ``hints`` are the types each column
    can still have (a ``possible`` from rows already profiled; 0 leaves
    only the empty count to find), so a column already known to be text
    costs no pattern match.

    :returns: the SQL, its parameters, and a function turning the row it
        returns into (rows, rows holding nothing, [(possible, non-empty
        count) per column]).
    """
    words = ", ".join(f"'{word}'" for word in TRUE_WORDS + FALSE_WORDS)
    values = [(_trimmed(column) if bits else _filled_sql(column)) + f" as v{index}"
              for index, (column, bits) in enumerate(zip(columns, hints))]
    # Cells past the header count for whether a row holds anything, as in Python.
    values += [_filled_sql(column) + f" as x{index}" for index, column in enumerate(every_column[len(columns):])]
    has_data = "coalesce({}) is not null".format(", ".join(
        [f"v{index}" for index in range(len(columns))]
        + [f"x{index}" for index in range(len(every_column) - len(columns))]))
    aggregates = [f"count(*) filter (where not ({has_data}))"]
    layout: list[list[int]] = []
    for index, bits in enumerate(hints):
        value = f"v{index}"
        aggregates.append(f"count({value})")
        checks = []
        if bits & _BOOLEAN:
            aggregates.append(f"bool_and(lower({value}) in ({words}))")
            checks.append(_BOOLEAN)
        if bits & (_INTEGER | _NUMERIC):
            aggregates.append(f"bool_and({value} ~ %(numeric)s and length({value}) <= {_NUMERIC_DIGITS})")
            checks.append(_NUMERIC)
            if bits & _INTEGER:
                # A number without a point and with at most 18 digits is an integer.
                aggregates.append(f"bool_and(strpos({value}, '.') = 0 and "
                                  f"length(translate({value}, '+-,', '')) <= 18)")
                checks.append(_INTEGER)
        if bits & (_DATE | _TIMESTAMP):
            aggregates.append(f"bool_and({value} ~ %(datetime)s)")
            checks.append(_TIMESTAMP)
            if bits & _DATE:
                aggregates.append(f"bool_and(strpos({value}, ':') = 0)")  # no time of day
                checks.append(_DATE)
        layout.append(checks)
    sql = (f"select count(*), {', '.join(aggregates)} from "
           f"(select {', '.join(values)} from {table} offset 0) cells")
    parameters = {"ws": WHITESPACE, "numeric": _SQL_NUMERIC, "datetime": _SQL_DATETIME}

    def read(row: tuple) -> tuple[int, int, list[tuple[int, int]]]:
        position = 2
        found = []
        for checks in layout:
            filled = row[position]
            position += 1
            passed = {}
            for check in checks:
                passed[check] = bool(row[position])
                position += 1
            possible = 0
            if passed.get(_BOOLEAN):
                possible |= _BOOLEAN
            if passed.get(_NUMERIC):
                possible |= _NUMERIC | (_INTEGER if passed.get(_INTEGER) else 0)
            if passed.get(_TIMESTAMP):
                possible |= _TIMESTAMP | (_DATE if passed.get(_DATE) else 0)
            found.append((possible, filled))
        return row[0] - row[1], row[1], found

    return sql, parameters, read

"""Checking a pushed batch against a real-time table's columns, before
anything is written: every record's columns known, every value of its
column's type, the key and the observation time present. A batch with any
problem is refused whole, each problem naming the record, the column and
the value in Chinese and English. No CKAN import: a batch in, rows out."""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from ckanext.shanghai.messages import Message

__all__ = ["Observation", "BatchRejected", "check_batch", "parse_time", "DELETE_FLAG", "MAX_PROBLEMS"]

# A record carrying this flag (true) deletes its key as of its observation time.
DELETE_FLAG = "_delete"
# A refused batch names at most this many problems (the first ones).
MAX_PROBLEMS = 50

_INT = re.compile(r"^[+-]?\d+$")
_INT_TYPES = {"int", "int2", "int4", "int8", "integer", "bigint", "smallint"}
_FLOAT_TYPES = {"numeric", "float", "float4", "float8", "double precision", "real"}
_TIME_TYPES = {"timestamp", "timestamptz", "timestamp without time zone"}
_TYPE_NAMES = {"int": ("整数", "a whole number"), "float": ("数值", "a number"),
               "bool": ("布尔值（true/false）", "true or false"), "text": ("文本", "text"),
               "timestamp": ("时间（ISO 8601）", "a time (ISO 8601)"), "date": ("日期（YYYY-MM-DD）", "a date (YYYY-MM-DD)")}


@dataclass(frozen=True)
class Observation:
    """One accepted record: its key (as text), when it was observed (aware,
    UTC), whether it deletes the key, and its values as the table stores them."""

    key: str
    observed: dt.datetime
    deleted: bool
    values: dict[str, Any] = field(default_factory=dict)


class BatchRejected(Exception):
    """The batch is refused whole. ``problems`` is a list of
    ``(record index, Message)``; ``as_dicts()`` is what the API answers."""

    def __init__(self, problems: list[tuple[int | None, Message]]):
        super().__init__("; ".join(f"#{i}: {m}" for i, m in problems[:3]))
        self.problems = problems

    def as_dicts(self) -> list[dict]:
        return [{"record": index, **message.as_dict()} for index, message in self.problems]


def _kind(column_type: str) -> str:
    column_type = (column_type or "text").lower()
    if column_type in _INT_TYPES:
        return "int"
    if column_type in _FLOAT_TYPES:
        return "float"
    if column_type in ("bool", "boolean"):
        return "bool"
    if column_type in _TIME_TYPES:
        return "timestamp"
    if column_type == "date":
        return "date"
    if column_type in ("json", "jsonb"):
        return "json"
    return "text"


def parse_time(value: Any, zone: ZoneInfo) -> dt.datetime:
    """An ISO 8601 time as an aware UTC datetime; a time without an offset
    is on the city's clock (``zone``). Raises ValueError."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(value)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.timezone.utc)


def _convert(kind: str, value: Any, zone: ZoneInfo) -> Any:
    """The value as the table stores it, or ValueError."""
    if value is None or kind == "json":
        return value
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT.match(value.strip()):
            return int(value.strip())
        raise ValueError(value)
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, (int, float)) and math.isfinite(value):
            return value
        if isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                raise ValueError(value)
            if not number.is_finite():
                raise ValueError(value)
            return str(number)
        raise ValueError(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(value)
    if kind == "timestamp":
        # The table keeps times on the city's clock, as people read them.
        return parse_time(value, zone).astimezone(zone).replace(tzinfo=None).isoformat()
    if kind == "date":
        if not isinstance(value, str):
            raise ValueError(value)
        return dt.date.fromisoformat(value.strip()[:10]).isoformat()
    if isinstance(value, (dict, list)):
        raise ValueError(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_batch(records: Any, columns: dict[str, str], key_field: str, time_field: str,
                zone: ZoneInfo, oldest: dt.datetime, newest: dt.datetime) -> list[Observation]:
    """Every record of the batch as an ``Observation``, or ``BatchRejected``.

    :param records: the pushed list of JSON objects.
    :param columns: the table's column names and DataStore types.
    :param key_field: the primary key column.
    :param time_field: the observation time column.
    :param oldest: observations before this are refused (past the retention).
    :param newest: observations after this are refused (a clock far ahead).
    """
    if not isinstance(records, list) or not records:
        raise BatchRejected([(None, Message(
            "bad-batch", "推送内容应为非空的记录列表（records）",
            "The push must be a non-empty list of records (records)", field="records",
            value=records if not isinstance(records, list) else None))])
    problems: list[tuple[int | None, Message]] = []
    observations = []
    kinds = {name: _kind(column_type) for name, column_type in columns.items()}
    for index, record in enumerate(records):
        if len(problems) >= MAX_PROBLEMS:
            break
        if not isinstance(record, dict):
            problems.append((index, Message("bad-record", f"第 {index} 条记录应为 JSON 对象",
                                            f"Record {index} must be a JSON object", value=record)))
            continue
        deleted = record.get(DELETE_FLAG) is True
        values: dict[str, Any] = {}
        record_problems = []
        for name, value in record.items():
            if name == DELETE_FLAG:
                if not isinstance(value, bool):
                    record_problems.append(Message(
                        "bad-value", f"第 {index} 条记录的 {name} 应为 true 或 false，实际为 {value!r}",
                        f"Record {index}: {name} must be true or false, not {value!r}", field=name, value=value))
                continue
            if name not in kinds:
                record_problems.append(Message(
                    "unknown-column", f"第 {index} 条记录有表中没有的列 {name}（值 {value!r}）",
                    f"Record {index} has a column the table does not have: {name} (value {value!r})",
                    field=name, value=value))
                continue
            try:
                values[name] = _convert(kinds[name], value, zone)
            except (ValueError, TypeError, OverflowError):
                zh_type, en_type = _TYPE_NAMES.get(kinds[name], (kinds[name], kinds[name]))
                record_problems.append(Message(
                    "bad-value", f"第 {index} 条记录的 {name} 应为{zh_type}，实际为 {value!r}",
                    f"Record {index}: {name} must be {en_type}, not {value!r}", field=name, value=value))
        for name, zh, en in ((key_field, "主键", "key"), (time_field, "观测时间", "observation time")):
            if name not in _fields(record_problems) and values.get(name) is None:
                record_problems.append(Message(
                    "missing-value", f"第 {index} 条记录缺少{zh}列 {name}",
                    f"Record {index} has no {en} column {name}", field=name, value=record.get(name)))
        if not record_problems:
            observed = parse_time(record[time_field], zone)
            if not oldest <= observed <= newest:
                record_problems.append(Message(
                    "time-out-of-range",
                    f"第 {index} 条记录的观测时间 {record[time_field]} 超出可接受范围（{oldest:%Y-%m-%d} 至 {newest:%Y-%m-%d %H:%M} UTC）",
                    f"Record {index}: observation time {record[time_field]} is outside the accepted range "
                    f"({oldest:%Y-%m-%d} to {newest:%Y-%m-%d %H:%M} UTC)", field=time_field, value=record[time_field]))
        if record_problems:
            problems.extend((index, message) for message in record_problems)
            continue
        observations.append(Observation(key=str(values[key_field]), observed=observed, deleted=deleted,
                                        values={} if deleted else values))
    if problems:
        raise BatchRejected(problems[:MAX_PROBLEMS])
    return observations


def _fields(problems: list[Message]) -> set[str | None]:
    return {message.field for message in problems}

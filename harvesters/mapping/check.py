"""A dry run of a mapping over a whole export: every record through the
functions a harvest's gather runs (``map_records``, then ``first_of_each``),
nothing written. What an operator needs before the first run, in one pass:
how many records would import and why the others would not, every raw value
the mapping does not map, the departments that would be created, the quality
flags by kind. Pure: no CKAN import (the caller says which departments exist)."""
from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ckanext.shanghai.files.readers import BadRecord

from ckanext.shanghai.harvesters.mapping.apply import Mapping, first_of_each, map_records

__all__ = ["MappingCheck", "check_export"]


@dataclass
class MappingCheck:
    """What a harvest of an export would do (counts, largest first where a list)."""

    records_read: int = 0
    would_import: int = 0
    would_reject: collections.Counter = field(default_factory=collections.Counter)
    # field -> raw value -> records, for every value no rule maps (flagged or rejected)
    unmapped: dict[str, collections.Counter] = field(default_factory=dict)
    # department name -> records it would receive
    departments: collections.Counter = field(default_factory=collections.Counter)
    new_departments: list[str] = field(default_factory=list)
    flagged: int = 0
    flags: collections.Counter = field(default_factory=collections.Counter)
    # one example (position, identity, zh, en) of each rejection code
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The check as JSON-ready data (``--json``, the source page)."""
        return {
            "records_read": self.records_read,
            "would_import": self.would_import,
            "would_reject": sum(self.would_reject.values()),
            "rejections_by_code": dict(self.would_reject.most_common()),
            "rejection_examples": self.examples,
            "unmapped_values": {name: dict(values.most_common())
                                for name, values in sorted(self.unmapped.items())},
            "departments_to_create": [{"name": name, "records": self.departments[name]}
                                      for name in self.new_departments],
            "departments": len(self.departments),
            "flagged": self.flagged,
            "flags_by_code": dict(self.flags.most_common()),
            "seconds": round(self.seconds, 2),
        }

    def lines(self) -> list[str]:
        """The check as text for a terminal, each line in both languages."""
        out = [f"读取记录 records read: {self.records_read}",
               f"将导入 would import: {self.would_import}（其中带质量提示 of which flagged: {self.flagged}）",
               f"将拒收 would reject: {sum(self.would_reject.values())}"]
        for code, number in self.would_reject.most_common():
            example = self.examples.get(code, {})
            out.append(f"  {code}: {number}    e.g. {example.get('en', '')}")
        out.append(f"未映射的取值 unmapped values: {sum(len(v) for v in self.unmapped.values())}")
        for name, values in sorted(self.unmapped.items()):
            out.append(f"  {name}:")
            out.extend(f"    {value}: {number}" for value, number in values.most_common())
        out.append(f"将新建的部门 departments to create: {len(self.new_departments)}"
                   f"（共涉及部门 of {len(self.departments)} in all）")
        out.extend(f"  {name}: {self.departments[name]}" for name in self.new_departments)
        out.append(f"质量提示 quality flags: {sum(self.flags.values())}")
        out.extend(f"  {code}: {number}" for code, number in self.flags.most_common())
        out.append(f"用时 seconds: {self.seconds:.2f}")
        return out


def check_export(mapping: Mapping, items: Iterable[dict | BadRecord], *,
                 department_exists: Callable[[str], bool] = lambda name: False) -> MappingCheck:
    """Run ``mapping`` over every item of an export (as ``readers.iter_records``
    yields them) as a harvest's gather would on its first run, and count.

    :param department_exists: whether the portal already has a department of
        that name (the others would be created).
    """
    started = time.monotonic()
    result = MappingCheck()
    counted = _Counting(map_records(mapping, items), result)
    kept, rejected = first_of_each(counted, {})
    result.would_import = len(kept)
    for rejection in rejected:
        result.would_reject[rejection.code] += 1
        result.examples.setdefault(rejection.code, {
            "position": rejection.position, "identity": rejection.identity, "field": rejection.field,
            "value": rejection.value, "zh": rejection.reason_zh, "en": rejection.reason_en})
        if rejection.code == "unmapped-value":
            _count_unmapped(result, rejection.field, rejection.value)
    for _position, record in kept:
        result.departments[record.department] += 1
        if record.warnings:
            result.flagged += 1
        for flag in record.warnings:
            result.flags[flag.code] += 1
            if flag.code == "unmapped-value":
                _count_unmapped(result, flag.field, flag.value)
    result.new_departments = sorted(
        (name for name in result.departments if not department_exists(name)),
        key=lambda name: (-result.departments[name], name))
    result.seconds = time.monotonic() - started
    return result


def _count_unmapped(result: MappingCheck, target: str | None, value: str | None) -> None:
    result.unmapped.setdefault(target or "", collections.Counter())[value or ""] += 1


class _Counting:
    """The mapped items, counting those read as they pass."""

    def __init__(self, items, result: MappingCheck):
        self.items, self.result = items, result

    def __iter__(self):
        for item in self.items:
            self.result.records_read += 1
            yield item

"""Working days for the city's answer deadline: Monday to Friday, minus the
public holidays the State Council announces each year, plus the weekend
days it declares working days (调休). Pure functions, no CKAN import."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Iterable

__all__ = ["Calendar", "parse_dates"]


def parse_dates(values: Iterable[str] | str | None) -> frozenset[dt.date]:
    """ISO dates from a config value (a list, or words separated by spaces
    or commas); an unreadable date is an error, not a silent skip."""
    if values is None:
        return frozenset()
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    dates = set()
    for value in values:
        try:
            dates.add(dt.date.fromisoformat(str(value).strip()))
        except ValueError:
            raise ValueError(f"不是日期（应为 YYYY-MM-DD）：{value!r} / Not a date (YYYY-MM-DD): {value!r}")
    return frozenset(dates)


@dataclass(frozen=True)
class Calendar:
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    extra_workdays: frozenset[dt.date] = field(default_factory=frozenset)

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.extra_workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: dt.date, days: int) -> dt.date:
        """The ``days``-th working day after ``start`` (``start`` itself,
        the day an application arrives, does not count)."""
        day, left = start, days
        while left > 0:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day

    def working_days_between(self, after: dt.date, until: dt.date) -> int:
        """Working days d with after < d <= until (0 when until <= after)."""
        count, day = 0, after
        while day < until:
            day += dt.timedelta(days=1)
            count += self.is_working_day(day)
        return count

    def days_left(self, today: dt.date, deadline: dt.date) -> int:
        """Working days left until the deadline: 0 on the deadline itself,
        negative (working days overdue) after it."""
        if today <= deadline:
            return self.working_days_between(today, deadline)
        return -self.working_days_between(deadline, today)

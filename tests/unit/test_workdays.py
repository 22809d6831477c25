"""The answer deadline in working days: weekends, the State Council's
holidays and its declared working weekends (调休), as in the 2026 schedule."""
import datetime as dt

import pytest

from ckanext.shanghai.access.workdays import Calendar, parse_dates

D = dt.date
# 2026 National Day: 1-7 October off (the weekdays among them listed), with
# Sunday 27 September and Saturday 10 October worked.
NATIONAL_DAY = Calendar(holidays=parse_dates("2026-10-01 2026-10-02 2026-10-05 2026-10-06 2026-10-07"),
                        extra_workdays=parse_dates(["2026-09-27", "2026-10-10"]))


def test_five_working_days_skip_the_weekend():
    # Thursday 26 November 2026 -> Fri, Mon, Tue, Wed, Thu.
    assert Calendar().add_working_days(D(2026, 11, 26), 5) == D(2026, 12, 3)
    # Arriving on a Saturday: the clock starts on Monday.
    assert Calendar().add_working_days(D(2026, 11, 28), 5) == D(2026, 12, 4)


def test_holidays_stop_the_clock_and_declared_working_weekends_run_it():
    # Friday 25 September: Sun 27 (worked), Mon 28, Tue 29, Wed 30, then the
    # holiday to Wed 7 October; Thu 8 is the fifth.
    assert NATIONAL_DAY.add_working_days(D(2026, 9, 25), 5) == D(2026, 10, 8)
    # Arriving on Tue 6 October: Thu 8, Fri 9, Sat 10 (worked), Mon 12, Tue 13.
    assert NATIONAL_DAY.add_working_days(D(2026, 10, 6), 5) == D(2026, 10, 13)
    assert Calendar().add_working_days(D(2026, 9, 25), 5) == D(2026, 10, 2)


def test_days_left_count_down_to_zero_then_overdue():
    calendar = Calendar()
    deadline = calendar.add_working_days(D(2026, 11, 26), 5)
    assert calendar.days_left(D(2026, 11, 26), deadline) == 5
    assert calendar.days_left(D(2026, 11, 28), deadline) == 4  # Saturday: Friday has gone
    assert calendar.days_left(deadline, deadline) == 0
    assert calendar.days_left(D(2026, 12, 7), deadline) == -2  # Fri 4 and Mon 7 late


def test_an_unreadable_date_in_the_configuration_is_an_error():
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_dates("2026-10-01 十月二日")
    assert parse_dates(None) == frozenset() and parse_dates("") == frozenset()

"""A product is flagged overdue when its last update is older than its
declared update frequency allows."""
import datetime as dt

import pytest

from ckanext.shanghai.portal.stats import freshness

TODAY = dt.date(2026, 11, 26)


@pytest.mark.parametrize("frequency, last_updated, state", [
    ("annual", "2025-12-01", "on_time"),
    ("annual", "2025-11-01", "overdue"),
    ("monthly", "2026-11-01", "on_time"),
    ("monthly", "2026-10-01", "overdue"),
    ("daily", "2026-11-25", "on_time"),
    ("daily", "2026-11-20", "overdue"),
    ("quarterly", "2026年9月1日", "on_time"),
    ("static", "2001-01-01", "unscheduled"),
    ("irregular", "2001-01-01", "unscheduled"),
    ("annual", "", "unknown"),
])
def test_freshness_against_the_declared_frequency(frequency, last_updated, state):
    pkg = {"update_frequency": frequency, "last_updated": last_updated}
    assert freshness(pkg, today=TODAY)["state"] == state


def test_an_overdue_product_says_when_it_was_due():
    pkg = {"update_frequency": "annual", "last_updated": "2024-03-01"}
    assert freshness(pkg, today=TODAY) == {"state": "overdue", "due": "2025-03-02"}

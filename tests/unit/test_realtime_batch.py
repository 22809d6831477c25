"""A pushed batch is checked whole before anything is written: unknown
columns and values of the wrong type are named (record, column, value, zh
and en), times without an offset are on the city's clock."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ckanext.shanghai.realtime.batch import BatchRejected, check_batch

SHANGHAI = ZoneInfo("Asia/Shanghai")
COLUMNS = {"carpark_id": "text", "observed_at": "timestamp without time zone", "free_spaces": "integer",
           "price": "numeric", "open": "boolean", "lng": "double precision"}
NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.timezone.utc)


def check(records):
    return check_batch(records, COLUMNS, "carpark_id", "observed_at", SHANGHAI,
                       oldest=NOW - dt.timedelta(days=365), newest=NOW + dt.timedelta(minutes=5))


def test_a_good_batch_becomes_observations_on_the_city_clock():
    observations = check([
        {"carpark_id": "P001", "observed_at": "2026-12-01T10:59:00", "free_spaces": "12", "price": "7.5",
         "open": True, "lng": 121.47},
        {"carpark_id": "P002", "observed_at": "2026-12-01T02:58:00Z", "_delete": True},
    ])
    first, second = observations
    assert first.key == "P001" and first.observed == dt.datetime(2026, 12, 1, 2, 59, tzinfo=dt.timezone.utc)
    assert first.values["free_spaces"] == 12 and first.values["observed_at"] == "2026-12-01T10:59:00"
    assert second.deleted and second.values == {}
    assert second.observed == dt.datetime(2026, 12, 1, 2, 58, tzinfo=dt.timezone.utc)


def test_an_unknown_column_refuses_the_whole_batch_naming_record_column_and_value():
    with pytest.raises(BatchRejected) as refused:
        check([{"carpark_id": "P001", "observed_at": "2026-12-01T10:59:00", "free_spaces": 3},
               {"carpark_id": "P002", "observed_at": "2026-12-01T10:59:00", "colour": "蓝"}])
    [problem] = refused.value.as_dicts()
    assert problem["record"] == 1 and problem["code"] == "unknown-column"
    assert problem["field"] == "colour" and problem["value"] == "蓝"
    assert "colour" in problem["reason_zh"] and "第 1 条" in problem["reason_zh"]
    assert "Record 1" in problem["reason_en"]


@pytest.mark.parametrize("column, value", [("free_spaces", "twelve"), ("free_spaces", 3.5), ("free_spaces", True),
                                           ("price", "七元"), ("open", "yes"), ("lng", [121]),
                                           ("observed_at", "yesterday")])
def test_a_value_of_the_wrong_type_is_named(column, value):
    record = {"carpark_id": "P001", "observed_at": "2026-12-01T10:59:00", column: value}
    with pytest.raises(BatchRejected) as refused:
        check([record])
    problem = refused.value.as_dicts()[0]
    assert (problem["record"], problem["field"], problem["code"]) == (0, column, "bad-value")
    assert problem["reason_zh"] and problem["reason_en"] and problem["value"] is not None


def test_key_and_time_are_required_and_the_time_must_be_in_range():
    with pytest.raises(BatchRejected) as refused:
        check([{"observed_at": "2026-12-01T10:59:00"}, {"carpark_id": "P1"},
               {"carpark_id": "P1", "observed_at": "2024-01-01T00:00:00"},
               {"carpark_id": "P1", "observed_at": "2026-12-02T00:00:00+08:00"}])
    assert [(p["record"], p["field"], p["code"]) for p in refused.value.as_dicts()] == [
        (0, "carpark_id", "missing-value"), (1, "observed_at", "missing-value"),
        (2, "observed_at", "time-out-of-range"), (3, "observed_at", "time-out-of-range")]


@pytest.mark.parametrize("batch", [[], {"carpark_id": "P1"}, None, ["P1"]])
def test_a_batch_that_is_not_a_list_of_records_is_refused(batch):
    with pytest.raises(BatchRejected) as refused:
        check(batch)
    assert refused.value.as_dicts()[0]["code"] in ("bad-batch", "bad-record")

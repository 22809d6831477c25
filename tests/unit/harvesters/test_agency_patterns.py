"""What real agency exports do that the three bundled ones do not, in
exports built here: a publisher named relative to its district, placeholder
publishers, dates going backwards or written as 0000-00-00, English
camelCase keys, values the mapping does not know. Nothing publishable is
lost: such records import with quality flags, and the dry run
(``check_export``) lists every value to map and every department to create
in one pass."""
from __future__ import annotations

import io
import json

import pytest

from ckanext.shanghai.files.readers import iter_records
from agency_exports import CITY_MAPPING, built_export, city
from ckanext.shanghai.harvesters.mapping import (
    MappedRecord, MappingConfigError, RecordRejected, check_export, first_of_each, load_mapping, map_records,
)

def export_of(records: list) -> io.BytesIO:
    return io.BytesIO(json.dumps(records, ensure_ascii=False).encode("utf-8"))


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(CITY_MAPPING)


def flags_of(record: MappedRecord) -> list[tuple[str, str | None, str | None]]:
    return [(flag.code, flag.field, flag.value) for flag in record.warnings]


def test_a_bureau_named_relative_to_its_district_is_one_department_per_district(mapping):
    names = {district: mapping.apply(city(1, districtName=district, publisher="区数据资源局")).department
             for district in ("云岩区", "花溪区", "观山湖区")}
    assert names == {"云岩区": "云岩区区数据资源局", "花溪区": "花溪区区数据资源局", "观山湖区": "观山湖区区数据资源局"}
    # Aliases apply to the composed name.
    assert mapping.apply(city(1, districtName="南明区", publisher="区数据资源局")).department == "贵阳市南明区数据资源局"
    # A publisher that names itself is not prefixed, nor said twice.
    assert mapping.apply(city(1, districtName="云岩区", publisher="新城市交通局")).department == "新城市交通局"
    assert mapping.apply(city(1, districtName="市本级", publisher="区数据资源局")).department == "区数据资源局"
    plain = load_mapping({**CITY_MAPPING, "department": {"from": ["districtName", "publisher"]}})
    assert plain.apply(city(1, districtName="南明区", publisher="南明区教育局")).department == "南明区教育局"


def test_a_placeholder_publisher_goes_to_the_named_department_with_a_flag(mapping):
    record = mapping.apply(city(1, districtName="云岩区", publisher="地区管理员"))
    assert record.department == "新城市大数据管理局"
    [flag] = record.warnings
    assert (flag.code, flag.field) == ("placeholder-department", "owner_org")
    assert "地区管理员" in flag.zh and "地区管理员" in flag.en and "新城市大数据管理局" in flag.en
    stored = json.loads(record.package["quality_flags"])
    assert [item["code"] for item in stored] == ["placeholder-department"]


def test_without_a_fallback_a_placeholder_publisher_is_rejected_with_that_reason():
    config = {**CITY_MAPPING, "department": {"from": "publisher", "placeholders": ["系统管理员"]}}
    with pytest.raises(RecordRejected) as raised:
        load_mapping(config).apply(city(1, publisher="系统管理员"))
    assert raised.value.code == "placeholder-department" and raised.value.value == "系统管理员"
    assert "系统管理员" in raised.value.reason_zh and "placeholder" in raised.value.reason_en


def test_a_date_going_backwards_is_kept_as_the_source_says_and_flagged(mapping):
    record = mapping.apply(city(1, publishTime="2023-06-01", updateTime="2022-01-15"))
    assert (record.package["first_published"], record.package["last_updated"]) == ("2023-06-01", "2022-01-15")
    assert flags_of(record) == [("dates-inverted", "last_updated", "2022-01-15")]
    assert "2023-06-01" in record.warnings[0].zh and "2022-01-15" in record.warnings[0].en


@pytest.mark.parametrize("raw", ["0000-00-00", "1900-01-01", "0000-00-00 00:00:00", "1899-12-30"])
def test_placeholder_dates_are_no_date_with_a_flag(mapping, raw):
    record = mapping.apply(city(1, publishTime=raw))
    assert record.package["first_published"] == ""
    assert flags_of(record) == [("placeholder-date", "first_published", raw)]


def test_a_mapping_may_name_its_own_placeholder_dates():
    own = load_mapping({**CITY_MAPPING, "placeholder_dates": ["2000-01-01"]})
    assert own.apply(city(1, updateTime="2000-01-01")).package["last_updated"] == ""


def test_an_unreadable_date_and_an_impossible_count_cost_only_their_field(mapping):
    record = mapping.apply(city(1, updateTime="上周", dataCount="-5"))
    assert (record.package["last_updated"], record.package["record_count"]) == ("", "")
    assert flags_of(record) == [("bad-date", "last_updated", "上周"), ("impossible-count", "record_count", "-5")]
    assert all("left empty" in flag.en and "留空" in flag.zh for flag in record.warnings)


def test_an_unmapped_value_takes_the_default_when_there_is_one(mapping):
    record = mapping.apply(city(1, domain="气象服务"))
    assert record.package["data_domain"] == "social-development"
    [flag] = record.warnings
    assert (flag.code, flag.field, flag.value) == ("unmapped-value", "data_domain", "气象服务")
    assert "social-development" in flag.en


def test_only_what_cannot_be_published_is_rejected(mapping):
    cases = {
        "missing-identity": city(1, catalogId=""),
        "missing-required": city(2, catalogName=""),
        "missing-department": city(3, districtName="", publisher=""),
        # update_frequency is required and has no default: nothing to publish it with.
        "unmapped-value": city(4, updateCycle="每两年"),
    }
    for code, record in cases.items():
        with pytest.raises(RecordRejected) as raised:
            mapping.apply(record)
        assert raised.value.code == code


def test_bad_department_options_are_refused():
    with pytest.raises(MappingConfigError) as raised:
        load_mapping({**CITY_MAPPING, "department": {
            "from": "publisher", "prefix_if": "(", "placeholder_department": "", "join": 3, "colour": 1}})
    text = str(raised.value)
    for piece in ("prefix_if", "placeholder_department", "join", "colour"):
        assert piece in text


def test_the_dry_run_lists_everything_to_map_in_one_pass():
    records = built_export()
    existing = {"新城市交通局"}
    check = check_export(load_mapping(CITY_MAPPING), iter_records(export_of(records)),
                         department_exists=existing.__contains__)
    result = check.as_dict()
    assert result["records_read"] == len(records) == 41
    assert result["rejections_by_code"] == {"unmapped-value": 2, "duplicate": 1, "missing-required": 1}
    assert result["would_import"] == 41 - 4
    assert result["unmapped_values"] == {
        "data_domain": {"气象服务": 2, "防疫复工": 1},
        "update_frequency": {"每两年": 1, "实时": 1},
    }
    assert result["departments_to_create"] == [
        {"name": "云岩区区数据资源局", "records": 3},
        {"name": "新城市大数据管理局", "records": 3},
        {"name": "花溪区区数据资源局", "records": 2},
    ]
    assert result["flags_by_code"] == {"dates-inverted": 4, "unmapped-value": 3, "placeholder-department": 3,
                                       "placeholder-date": 2}
    assert result["flagged"] == 12
    text = "\n".join(check.lines())
    assert "气象服务: 2" in text and "云岩区区数据资源局: 3" in text and "would reject: 4" in text


def test_the_dry_run_agrees_with_the_gather_functions():
    mapping = load_mapping(CITY_MAPPING)
    records = built_export()
    kept, rejected = first_of_each(map_records(mapping, iter_records(export_of(records))), {})
    check = check_export(mapping, iter_records(export_of(records)))
    assert (check.would_import, sum(check.would_reject.values())) == (len(kept), len(rejected))


def test_ten_thousand_records_are_checked_in_one_pass():
    """The size the dry run is built for (its time is measured by hand, not
    asserted here): every record is read, none lost."""
    records = [city(n, domain="城建住房" if n % 7 else "气象服务") for n in range(10_000)]
    check = check_export(load_mapping(CITY_MAPPING), iter_records(export_of(records)))
    assert check.records_read == 10_000 and check.would_import == 10_000
    assert check.unmapped == {"data_domain": {"气象服务": 1429}}

"""Tests of harvesters/mapping/ and harvesters/mappings/: the three real exports
map record by record through the functions the harvest's gather runs
(map_records, then first_of_each), repeats are counted the same in one batch
or many, and a bad mapping file is refused with every problem listed."""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import pytest

from ckanext.shanghai.harvesters.mapping import (
    MAPPINGS_DIR, Mapping, MappedRecord, MappingConfigError, RecordRejected, department_slug,
    department_type_of, first_of_each, load_mapping, map_records, schema_fields,
)
from ckanext.shanghai.files.readers import BadRecord, iter_records
from data_files import catalog_file

EXPORTS = {
    "shanghai": "shanghai.json",
    "guiyang": "guizhou_guiyang.json",
    "liuzhou": "guangxi_liuzhou.json",
}
PACKAGE_NAME = re.compile(r"^[a-z0-9_-]{2,100}$")
TAG = re.compile(r"^[\w \-.]{2,100}$")
SHANGHAI_TYPES = {
    "上海市公安局": "public-security",
    "上海市市场监督管理局": "market-regulation",
    "上海市交通委员会": "transport",
    "上海市卫生健康委员会（上海市中医药管理局）": "health",
    "上海市住房和城乡建设管理委员会": "housing",
    "上海市规划和自然资源局": "planning-resources",
    "上海市民政局": "civil-affairs",
    "上海市教育委员会": "education",
    "上海市生态环境局": "ecology-environment",
    "上海市统计局": "statistics",
}


@lru_cache(maxsize=None)
def bundled(name: str) -> Mapping:
    return load_mapping(MAPPINGS_DIR / f"{name}.yaml")


@lru_cache(maxsize=None)
def raw_records(name: str) -> tuple[dict, ...]:
    with catalog_file(EXPORTS[name]).open("rb") as stream:
        return tuple(iter_records(stream))


@lru_cache(maxsize=None)
def mapped_items(name: str) -> tuple[tuple[int, MappedRecord | RecordRejected], ...]:
    with catalog_file(EXPORTS[name]).open("rb") as stream:
        return tuple(map_records(bundled(name), iter_records(stream)))


@lru_cache(maxsize=None)
def outcomes(name: str) -> tuple[tuple[int, MappedRecord | RecordRejected], ...]:
    """What the gather makes of a whole export: each record taken or
    rejected, in source order (the whole export as one batch)."""
    kept, rejected = first_of_each(mapped_items(name), {})
    return tuple(sorted([*kept, *((rejection.position, rejection) for rejection in rejected)],
                        key=lambda pair: pair[0]))


def mapped(name: str) -> list[MappedRecord]:
    return [outcome for _, outcome in outcomes(name) if isinstance(outcome, MappedRecord)]


def rejected(name: str) -> list[RecordRejected]:
    return [outcome for _, outcome in outcomes(name) if isinstance(outcome, RecordRejected)]


def choices(field: str, dataset_type: str = "dataset") -> set[str]:
    return set(schema_fields()[dataset_type][field].choices)


# --- the real exports -----------------------------------------------------------

@pytest.mark.parametrize("name, total, mapped_count, rejections", [
    ("shanghai", 4494, 2232, {"duplicate": 2258, "conflicting-duplicate": 4}),
    ("guiyang", 2469, 2469, {}),
    ("liuzhou", 1540, 1540, {}),
])
def test_every_record_of_a_real_export_maps_or_is_rejected_with_a_reason(
        name, total, mapped_count, rejections):
    assert len(outcomes(name)) == total
    assert [position for position, _ in outcomes(name)] == list(range(1, total + 1))
    assert len(mapped(name)) == mapped_count
    assert Counter(rejection.code for rejection in rejected(name)) == rejections
    for rejection in rejected(name):
        assert rejection.reason_zh and rejection.reason_en and rejection.position


@pytest.mark.parametrize("batch_size", [1, 7, 500])
def test_repeats_are_counted_the_same_batch_by_batch(batch_size):
    """The gather sorts a source batch by batch, the identities earlier
    batches met kept in the records table; a dict standing in for it gives
    what the whole export in one batch gives, code, reason and position."""
    items, earlier = mapped_items("shanghai"), {}
    kept, rejected_ = [], []
    for start in range(0, len(items), batch_size):
        batch_kept, batch_rejected = first_of_each(items[start:start + batch_size], earlier)
        kept += batch_kept
        rejected_ += batch_rejected
    assert [position for position, _ in kept] == [position for position, _ in mapped_items_kept()]
    assert [(r.position, r.message) for r in rejected_] == [(r.position, r.message) for r in rejected("shanghai")]


def mapped_items_kept() -> list[tuple[int, MappedRecord]]:
    return [(position, record) for position, record in outcomes("shanghai") if isinstance(record, MappedRecord)]


def test_a_repeat_names_the_record_kept_its_field_and_value():
    first, repeat, conflict = (dict(SHANGHAI_RECORD), dict(SHANGHAI_RECORD),
                               shanghai(摘要="另一版本的摘要"))
    kept, rejected_ = first_of_each(list(map_records(bundled("shanghai"), [first, repeat, conflict])), {})
    identity = bundled("shanghai").identity_of(SHANGHAI_RECORD)
    assert [position for position, _ in kept] == [1]
    assert [(r.position, r.identity, r.code, r.field, r.value) for r in rejected_] == [
        (2, identity, "duplicate", "source_identifier", identity),
        (3, identity, "conflicting-duplicate", "source_identifier", identity),
    ]
    assert "第 1 条" in rejected_[0].reason_zh and "exact repeat of record 1" in rejected_[0].reason_en
    assert "保留第 1 条" in rejected_[1].reason_zh and "record 1 is kept" in rejected_[1].reason_en


@pytest.mark.parametrize("name", list(EXPORTS))
def test_identities_and_package_names_are_unique_and_valid(name):
    records = mapped(name)
    assert len({record.identity for record in records}) == len(records)
    names = [record.package["name"] for record in records]
    assert len(set(names)) == len(names)
    assert all(PACKAGE_NAME.match(package_name) for package_name in names)
    assert all(record.package["source_identifier"] == record.identity for record in records)
    prefix = bundled(name).name_prefix + "-"
    assert all(record.package["name"].startswith(prefix) for record in records)


def test_shanghai_page_addresses_cannot_identify_records():
    """Why shanghai.yaml hashes fields instead of using the id= of 详情页网址."""
    ids = Counter(re.search(r"[?&]id=([^&]+)", record["详情页网址"]).group(1)
                  for record in raw_records("shanghai"))
    assert ids == {"AD4002012016": 4494}
    assert all("url" not in record.package for record in mapped("shanghai"))


def test_shanghai_repeats_are_reported_against_the_record_kept():
    first_kept = {record.identity for record in mapped("shanghai")}
    conflicts = [r for r in rejected("shanghai") if r.code == "conflicting-duplicate"]
    assert [rejection.position for rejection in conflicts] == [1126, 1710, 2297, 3406]
    assert all(rejection.identity in first_kept for rejection in rejected("shanghai"))
    assert "641" in conflicts[0].reason_zh and "record 641 is kept" in conflicts[0].reason_en
    assert raw_records("shanghai")[1125]["数据集名称"] == "上海市崇明区公共建筑能耗监测信息"


@pytest.mark.parametrize("source_field, target", [
    ("数据领域", "data_domain"), ("更新频度", "update_frequency"), ("开放属性", "open_condition"),
])
def test_every_shanghai_controlled_value_maps_to_a_schema_code(source_field, target):
    mapping = bundled("shanghai")
    raw_values = {record[source_field] for record in raw_records("shanghai")}
    assert len(raw_values) == {"数据领域": 12, "更新频度": 9, "开放属性": 2}[source_field]
    codes = {record.package[target] for record in mapped("shanghai")}
    assert codes == choices(target)
    rule = mapping.rule(target)
    assert raw_values <= set(rule.values) and set(rule.values.values()) <= choices(target)


@pytest.mark.parametrize("name, fields", [
    ("guiyang", {"主题名称": "data_domain", "所属行业": "data_domain", "更新频率": "update_frequency",
                 "开放属性": "open_condition"}),
    ("liuzhou", {"重点领域": "data_domain", "所属行业": "data_domain", "更新频率": "update_frequency",
                 "开放条件": "open_condition"}),
])
def test_every_other_portal_value_is_covered_by_the_mapping(name, fields):
    mapping = bundled(name)
    for source_field, target in fields.items():
        rule = mapping.rule(target)
        raw_values = {record[source_field] for record in raw_records(name)}
        uncovered = raw_values - set(rule.values) - rule.empty
        assert not uncovered, (source_field, uncovered)
        assert {record.package[target] for record in mapped(name)} <= choices(target)


def test_placeholder_themes_fall_back_to_the_industry_then_the_default():
    by_identity = {record.identity: record for record in mapped("guiyang")}
    fallbacks = Counter()
    for raw in raw_records("guiyang"):
        identity = raw["详情页网址"].rsplit("/", 1)[1]
        domain = by_identity[identity].package["data_domain"]
        if raw["主题名称"] == "默认主题" and raw["所属行业"] == "默认行业":
            fallbacks["both placeholders"] += 1
            assert domain == "social-development"
        elif raw["主题名称"] == "默认主题":
            fallbacks["industry"] += 1
            assert domain == bundled("guiyang").rule("data_domain").values[raw["所属行业"]]
    assert fallbacks == {"both placeholders": 142, "industry": 216}


def test_shanghai_departments_get_their_dataset_types():
    types = Counter((record.department, record.dataset_type) for record in mapped("shanghai"))
    for department, dataset_type in SHANGHAI_TYPES.items():
        assert types[(department, dataset_type)] > 0, department
    assert {t for (d, t) in types if d not in SHANGHAI_TYPES} == {"dataset"}
    assert Counter(record.dataset_type for record in mapped("shanghai")) == {
        "dataset": 1569, "transport": 97, "housing": 90, "planning-resources": 83,
        "civil-affairs": 79, "statistics": 70, "health": 64, "ecology-environment": 54,
        "education": 47, "public-security": 44, "market-regulation": 35,
    }


def test_tags_ckan_would_refuse_are_dropped_with_a_warning():
    raw = raw_records("shanghai")
    with_one = [record for position, record in outcomes("shanghai")
                if isinstance(record, MappedRecord) and "1" in raw[position - 1]["数据标签"].split(",")]
    assert len(with_one) == 67 == sum(1 for record in mapped("shanghai") if record.warnings)
    assert sum(1 for record in raw if "1" in record["数据标签"].split(",")) == 162
    for record in with_one:
        assert "「1」" in record.warnings[0].zh and "'1'" in record.warnings[0].en
        assert (record.warnings[0].code, record.warnings[0].field, record.warnings[0].value) == (
            "tag-too-short", "tags", "1")
        assert "1" not in record.package["tag_string"].split(",")
    for name in ("shanghai", "liuzhou"):
        tags = [tag for record in mapped(name)
                for tag in record.package["tag_string"].split(",") if tag]
        assert tags and all(TAG.match(tag) for tag in tags)
    liuzhou = next(record for record in mapped("liuzhou")
                   if record.identity == "0a002b0dcc644d62ac2f29e8f2308853")
    assert liuzhou.package["tag_string"] == "公安局,信息,行业,机修,综合政务"
    assert len(liuzhou.warnings) == 4  # 居民服务、修理和其他服务业, 柳, 城, 县


def test_a_shanghai_record_maps_to_the_expected_package():
    record = mapped("shanghai")[0]
    assert record.department == "上海市住房和城乡建设管理委员会" and record.dataset_type == "housing"
    assert record.package == {
        "type": "housing",
        "name": f"sh-{record.identity}",
        "title": "拆除施工企业信息",
        "notes": "包含拆除施工企业信息包括企业名称、法定代表人、资质等级信息。",
        "tag_string": "机构,建筑,SODA2022",
        "data_domain": "urban-construction",
        "national_theme": "城乡建设、环境保护",
        "first_published": "2020-01-02",
        "last_updated": "2023-04-06",
        "update_frequency": "annual",
        "open_condition": "conditional",
        "contact": "sjkf@shanghai.gov.cn",
        "source_identifier": record.identity,
        "quality_flags": "",
        "resources": [],
    }
    assert re.fullmatch(r"[0-9a-f]{20}", record.identity)


def test_formats_become_one_resource_each_upper_cased_unknown_codes_kept():
    shanghai_formats = Counter(
        r["format"] for record in mapped("shanghai") for r in record.package["resources"])
    assert {"CSV", "XLSX", "JSON", "XML", "RDF", "WP", "WT", "MPJ", "WL"} <= set(shanghai_formats)
    assert sum(1 for record in mapped("shanghai") if not record.package["resources"]) > 0
    assert all(r["url"] == "" for record in mapped("shanghai") for r in record.package["resources"])
    liuzhou = mapped("liuzhou")[0].package
    assert [r["format"] for r in liuzhou["resources"]] == ["XLS", "XML", "JSON", "CSV", "RDF"]
    assert liuzhou["resources"][0] == {
        "name": "柳城县公安局机修行业信息（XLS）", "url": liuzhou["url"], "format": "XLS"}
    assert any(r["format"] == "其他"
               for record in mapped("liuzhou") for r in record.package["resources"])
    guiyang_none = [record for record in mapped("guiyang") if not record.package["resources"]]
    assert len(guiyang_none) == 21


def test_liuzhou_counts_contacts_and_aliases():
    records = mapped("liuzhou")
    counts = {record.identity: record.package["record_count"] for record in records}
    raw = {r["详情页网址"].rsplit("/", 1)[1]: r["数据量"] for r in raw_records("liuzhou")}
    assert all(counts[identity] == int(text.replace(",", "")) for identity, text in raw.items())
    assert all(record.package["contact"] == "" for record in records)  # 暂无 throughout
    departments = {record.department for record in records}
    assert "柳城县" not in departments and "柳州市柳城县" in departments
    assert len(departments) == 67


def test_the_bundled_mappings_have_distinct_fingerprints():
    assert len({bundled(name).fingerprint for name in EXPORTS}) == 3


# --- departments ---------------------------------------------------------------------

def test_department_slugs_are_unique_readable_and_short():
    departments = sorted({record["数据提供方"] for record in raw_records("shanghai")})
    assert len(departments) == 56
    slugs = {department_slug(name) for name in departments}
    assert len(slugs) == 56
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug) and len(slug) <= 60 for slug in slugs)
    assert department_slug("上海市公安局") == "shanghai-gongan-ju"
    assert department_slug("上海市杨浦区人民政府") == "shanghai-yangpu-qu-renmin-zhengfu"
    assert department_slug("上海市长宁区人民政府") == "shanghai-changning-qu-renmin-zhengfu"
    assert department_slug("上海市闵行区人民政府") == "shanghai-minhang-qu-renmin-zhengfu"
    long_name = department_slug("上海市卫生健康委员会（上海市中医药管理局）")
    assert len(long_name) == 60 and re.search(r"-[0-9a-f]{6}$", long_name)
    assert department_slug("上海市公安局") == department_slug(" 上海市公安局 ")


def test_department_slugs_stay_apart_across_all_three_portals():
    names = {record["数据提供方"].strip() for record in raw_records("shanghai")}
    names |= {record["数据提供方"].strip() for record in raw_records("guiyang")}
    names |= {record["来源部门"].strip() for record in raw_records("liuzhou")}
    assert len(names) == 56 + 133 + 73
    assert len({department_slug(name) for name in names}) == len(names)


def test_department_types_follow_the_naming_rules():
    departments = {record["数据提供方"] for record in raw_records("shanghai")}
    assert Counter(department_type_of(name) for name in departments) == {
        "municipal-bureau": 35, "district-government": 19, "other": 2}
    assert department_type_of("上海市静安区政府") == "district-government"
    assert department_type_of("上海市崇明区人民政府办公室") == "district-government"
    assert department_type_of("上海市卫生健康委员会（上海市中医药管理局）") == "municipal-bureau"
    assert department_type_of("上海市民防办公室") == "municipal-bureau"
    assert department_type_of("国家税务总局上海市税务局") == "other"
    assert department_type_of("乌当区市场监管局") == "other"


# --- rejections and warnings of single records ---------------------------------------

SHANGHAI_RECORD = {
    "数据集名称": "上海律师事务所信息", "摘要": "本市律师事务所信息", "数据标签": "机构,接口",
    "数据领域": "机构团体", "国家主题分类": "综合政务", "首次发布日期": "2022-10-25", "更新日期": "2023-06-11",
    "更新频度": "每天", "数据提供方": "上海市司法局", "开放属性": "有条件开放",
    "联系方式": "sjkf@shanghai.gov.cn", "数据格式": ["csv", "json"],
    "详情页网址": "https://data.sh.gov.cn/view/detail/index.html?type=cp&&id=AD4002012016",
}


def shanghai(**changes) -> dict:
    return {**SHANGHAI_RECORD, **changes}


def test_an_unknown_controlled_value_is_rejected_naming_field_and_value():
    with pytest.raises(RecordRejected) as raised:
        bundled("shanghai").apply(shanghai(更新频度="每两年"))
    rejection = raised.value
    assert rejection.field == "update_frequency" and rejection.code == "unmapped-value"
    assert rejection.value == "每两年"
    assert "每两年" in rejection.reason_zh and "每两年" in rejection.reason_en
    assert rejection.identity == bundled("shanghai").identity_of(SHANGHAI_RECORD)


@pytest.mark.parametrize("changes, field, code, value", [
    ({"数据集名称": "  "}, "title", "missing-required", "  "),
    ({"数据领域": None}, "data_domain", "missing-required", None),
    ({"数据提供方": ""}, "owner_org", "missing-department", ""),
    ({"数据集名称": {"zh": "甲"}}, "数据集名称", "bad-value", '{"zh": "甲"}'),
])
def test_records_are_rejected_with_the_field_and_raw_value_named(changes, field, code, value):
    with pytest.raises(RecordRejected) as raised:
        bundled("shanghai").apply(shanghai(**changes))
    assert (raised.value.field, raised.value.code, raised.value.value) == (field, code, value)
    assert raised.value.reason_zh and raised.value.reason_en


def test_a_record_without_identity_is_rejected():
    with pytest.raises(RecordRejected) as raised:
        bundled("guiyang").apply({"标题": "甲", "详情页网址": "http://data.guizhou.gov.cn/open-data/"})
    assert raised.value.identity is None and raised.value.code == "missing-identity"


def test_dates_in_chinese_form_are_read_and_an_inverted_pair_is_kept_with_a_warning():
    mapping = load_mapping({**shanghai_config(), "fields": {
        **shanghai_config()["fields"],
        "first_published": {"from": "首次发布日期"}, "last_updated": {"from": "更新日期"},
    }})
    record = mapping.apply(shanghai(首次发布日期="2023年4月6日", 更新日期="2023/1/5"))
    assert record.package["first_published"] == "2023-04-06"
    assert record.package["last_updated"] == "2023-01-05"
    assert [(w.code, w.field, w.value) for w in record.warnings] == [("dates-inverted", "last_updated", "2023-01-05")]
    assert "last_updated (2023-01-05) is before its first_published (2023-04-06)" in record.warnings[0].en
    assert "2023-01-05" in record.warnings[0].zh and "早于" in record.warnings[0].zh


def test_record_counts_accept_thousands_separators_and_refuse_words():
    mapping = bundled("liuzhou")
    raw = dict(raw_records("liuzhou")[0])
    assert mapping.apply({**raw, "数据量": "4,724,212"}).package["record_count"] == 4724212
    assert mapping.apply({**raw, "数据量": "暂无"}).package["record_count"] == ""
    # A count that cannot be read costs the record only its count, flagged.
    words = mapping.apply({**raw, "数据量": "约三百条"})
    assert words.package["record_count"] == ""
    [flag] = [w for w in words.warnings if w.field == "record_count"]
    assert (flag.code, flag.value) == ("bad-number", "约三百条")
    assert "约三百条" in flag.zh and "left empty" in flag.en


def test_names_come_from_identity_not_title():
    mapping = bundled("guiyang")
    raw = dict(raw_records("guiyang")[0])
    upper_case_id = "AAAAAAAA-32df-46fa-b843-59ca708b65e5"
    same_title = {**raw, "详情页网址": f"http://data.guizhou.gov.cn/open-data/{upper_case_id}"}
    first, second = mapping.apply(raw), mapping.apply(same_title)
    assert first.package["title"] == second.package["title"]
    assert first.package["name"] == "gy-2b81cbc4-32df-46fa-b843-59ca708b65e5"
    # An upper-case id is not its own slug: a hash keeps it apart from the lower-case one.
    assert re.fullmatch(rf"gy-{upper_case_id.lower()}-[0-9a-f]{{8}}", second.package["name"])
    assert mapping.package_name("数据集/一") != mapping.package_name("数据集/二")
    assert all(PACKAGE_NAME.match(mapping.package_name(text)) for text in ("数据集/一", "x" * 300, "A"))


def test_content_hash_follows_the_source_record_and_the_mapping():
    mapping = bundled("shanghai")
    record = mapping.apply(SHANGHAI_RECORD)
    reordered = dict(reversed(list(SHANGHAI_RECORD.items())))
    assert mapping.apply(reordered).content_hash == record.content_hash
    assert mapping.apply(shanghai(更新日期="2023-07-01")).content_hash != record.content_hash
    assert mapping.apply(shanghai(更新日期="2023-07-01")).identity == record.identity
    changed_mapping = load_mapping({**shanghai_config(), "description": "another wording"})
    assert changed_mapping.apply(SHANGHAI_RECORD).content_hash != record.content_hash


def test_map_records_turns_unreadable_items_into_rejections():
    unreadable = BadRecord(7, "line", "不是合法的 JSON", "is not valid JSON")
    items = [SHANGHAI_RECORD, unreadable, shanghai(更新频度="每两年")]
    results = list(map_records(bundled("shanghai"), items))
    assert [position for position, _ in results] == [1, 2, 3]
    assert isinstance(results[0][1], MappedRecord)
    assert results[1][1].code == "bad-record" and "line 7" in results[1][1].reason_en
    assert "第 7 行" in results[1][1].reason_zh and results[1][1].position == 2
    assert results[2][1].code == "unmapped-value" and results[2][1].position == 3


def test_a_fixed_department_and_a_constant_field():
    mapping = load_mapping({
        "name_prefix": "tj", "identity": {"from": "编号"}, "department": {"fixed": "上海市统计局"},
        "dataset_type": {"by_department": {"上海市统计局": "statistics"}},
        "fields": {"title": "名称", "data_domain": {"default": "economic-development"},
                   "update_frequency": {"default": "annual"},
                   "open_condition": {"default": "unconditional"},
                   "spatial_coverage": {"default": "上海市"},
                   "statistical_period": {"from": "周期", "values": {"年度": "year"}}},
    })
    record = mapping.apply({"编号": "TJ-001", "名称": "国民经济主要指标", "周期": "年度"})
    assert record.dataset_type == "statistics" and record.department == "上海市统计局"
    assert record.package["spatial_coverage"] == "上海市"
    assert record.package["statistical_period"] == "year"
    assert record.package["name"].startswith("tj-tj-001-")


# --- refusing a bad mapping ---------------------------------------------------------------

def shanghai_config() -> dict:
    return dict(bundled("shanghai").config)


def test_a_bad_mapping_is_refused_with_every_problem_listed():
    config = shanghai_config()
    config["colour"] = "red"
    config["identity"] = {"from": "详情页网址", "pattern": "id=([^&"}
    config["fields"] = {
        **config["fields"],
        "titel": "数据集名称",
        "update_frequency": {"from": "更新频度", "values": {"每天": "everyday"}},
        "tags": {"from": "数据标签", "splitter": ","},
        "tag_string": "数据标签",
    }
    config["dataset_type"] = {"by_department": {"上海市公安局": "police"}}
    with pytest.raises(MappingConfigError) as raised:
        load_mapping(config)
    text = str(raised.value)
    for expected in ("'colour'", "invalid regular expression", "fields.titel", "'everyday'",
                     "'splitter'", "fields.tag_string", "'police'"):
        assert expected in text, expected
    assert len(raised.value.problems) == 7
    assert all(problem.code == "bad-mapping" and problem.zh and problem.en for problem in raised.value.problems)
    assert raised.value.message.code == "bad-mapping"
    assert all(problem.zh in raised.value.message.zh and problem.en in raised.value.message.en
               for problem in raised.value.problems)


def test_a_mapping_missing_required_parts_is_refused():
    with pytest.raises(MappingConfigError) as raised:
        load_mapping({"name_prefix": "Bad Prefix", "fields": {"title": "标题"}})
    text = str(raised.value)
    for expected in ("name_prefix", "identity is missing", "department is missing",
                     "data_domain is not mapped", "update_frequency is not mapped",
                     "open_condition is not mapped"):
        assert expected in text, expected


def test_a_pattern_needs_exactly_one_group():
    with pytest.raises(MappingConfigError, match="capture group"):
        load_mapping({**shanghai_config(), "identity": {"from": "详情页网址", "pattern": "id=[^&]+"}})


def test_repeated_yaml_keys_and_unquoted_yes_are_refused(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text((MAPPINGS_DIR / "shanghai.yaml").read_text(encoding="utf-8").replace(
        "      每天: daily\n", "      每天: daily\n      每天: weekly\n"), encoding="utf-8")
    with pytest.raises(MappingConfigError, match="appears twice"):
        load_mapping(path)
    config = shanghai_config()
    config["fields"] = {
        **config["fields"], "open_condition": {"from": "开放属性", "values": {"是": True}}}
    with pytest.raises(MappingConfigError, match="quote"):
        load_mapping(config)


def test_department_fields_are_known_targets_only_for_their_types():
    config = shanghai_config()
    config["fields"] = {
        **config["fields"], "security_level": {"from": "安全级别", "values": {"一级": "level-1"}}}
    mapping = load_mapping(config)
    police = mapping.apply(shanghai(数据提供方="上海市公安局", 安全级别="一级"))
    assert police.package["security_level"] == "level-1"
    assert "security_level" not in mapping.apply(SHANGHAI_RECORD).package
    guiyang = dict(bundled("guiyang").config)
    guiyang["fields"] = {**guiyang["fields"], "security_level": "安全级别"}
    with pytest.raises(MappingConfigError, match="fields.security_level"):
        load_mapping(guiyang)


# --- records far larger than any catalog record ----------------------------------

def _real_shanghai_record() -> dict:
    return dict(next(r for r in raw_records("shanghai") if r["摘要"] and r["数据格式"]))


@pytest.mark.parametrize("field, value, rejected_field", [
    ("数据集名称", "标" * 1_000_000, "title"),
    ("数据集名称", "x" * 501, "title"),
    ("摘要", "长" * 100_001, "notes"),
    ("数据格式", ",".join(f"F{n}" for n in range(10_000)), "resources"),
])
def test_a_record_far_larger_than_any_real_one_is_rejected_naming_the_field(field, value, rejected_field):
    record = _real_shanghai_record()
    record[field] = value
    with pytest.raises(RecordRejected) as rejected:
        bundled("shanghai").apply(record)
    assert rejected.value.field == rejected_field
    assert rejected.value.code == "too-large"
    assert "上限" in rejected.value.reason_zh and "allowed" in rejected.value.reason_en


def test_a_record_at_the_limits_still_maps():
    record = _real_shanghai_record()
    record["数据集名称"] = "标" * 500
    record["数据格式"] = ",".join(f"F{n}" for n in range(200))
    package = bundled("shanghai").apply(record).package
    assert len(package["title"]) == 500 and len(package["resources"]) == 200


def test_a_record_naming_its_type_gets_that_schema_and_its_fields_by_name():
    """The DCAT mapping: a sibling portal names each product's schema, and
    the department fields come by their field names, codes checked."""
    mapping = bundled("dcat")
    record = {"identifier": "SH-1", "title": "上海市医院床位信息", "publisher": "上海市卫生健康委员会",
              "dataset_type": "health", "hospital_grade": "grade-3a", "reporting_period": "annual",
              "pollutants": ["pm25", "so2"], "distributions": []}
    health = mapping.apply(record)
    assert health.dataset_type == "health"
    assert (health.package["hospital_grade"], health.package["reporting_period"]) == ("grade-3a", "annual")
    assert "pollutants" not in health.package  # the ecology schema's field
    for named in ("application", "no-such-schema", ""):
        plain = mapping.apply({**record, "dataset_type": named})
        assert plain.dataset_type == "dataset" and "hospital_grade" not in plain.package
    flagged = mapping.apply({**record, "hospital_grade": "grade-9"})
    assert flagged.package["hospital_grade"] == ""
    assert [flag.code for flag in flagged.warnings] == ["unmapped-value"]


def test_a_mapping_with_two_ways_to_the_type_or_a_bad_fields_by_name_is_refused():
    config = dict(bundled("dcat").config)
    with pytest.raises(MappingConfigError) as raised:
        load_mapping({**config, "dataset_type": {"from": "dataset_type", "fixed": "dataset"},
                      "fields_by_name": "yes"})
    text = str(raised.value)
    assert "only one of fixed, by_department and from" in text and "fields_by_name must be true or false" in text


def test_flags_another_portal_stored_stay_beside_this_harvests_own():
    import json

    inherited = [{"code": "placeholder-date", "field": "first_published", "value": "1900-01-01",
                  "reason_zh": "占位日期", "reason_en": "a placeholder date"}]
    record = {"identifier": "SH-2", "title": "道路交通事故", "publisher": "上海市公安局", "tags": "交通|x",
              "quality_flags": json.dumps(inherited + [{"code": "no reason"}]), "distributions": []}
    mapped = bundled("dcat").apply(record)
    stored = json.loads(mapped.package["quality_flags"])
    assert [flag["code"] for flag in stored] == ["placeholder-date", "tag-too-short"]
    assert stored[0] == inherited[0]
    assert [flag.code for flag in mapped.warnings] == ["tag-too-short"]


def test_a_flag_raised_again_is_said_once():
    import json

    inherited = [{"code": "dates-inverted", "field": "last_updated", "value": "2019-01-01",
                  "reason_zh": "日期颠倒", "reason_en": "dates inverted"}]
    record = {"identifier": "SH-3", "title": "道路交通事故", "publisher": "上海市公安局",
              "first_published": "2020-01-01", "last_updated": "2019-01-01",
              "quality_flags": json.dumps(inherited), "distributions": []}
    mapped = bundled("dcat").apply(record)
    assert json.loads(mapped.package["quality_flags"]) == inherited
    assert [flag.code for flag in mapped.warnings] == ["dates-inverted"]

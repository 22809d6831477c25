"""The metadata quality score (assessment/score.py): the MQA's five
dimensions and 405 points, its bands, what a product loses and what to fix
(in zh and en) for missing fields, closed formats, harvest quality flags and
broken or unchecked links; and the real Shanghai export scored record by
record as the harvest maps it."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from ckanext.shanghai.assessment import score
from ckanext.shanghai.files.readers import iter_records
from ckanext.shanghai.harvesters.mapping import MAPPINGS_DIR, first_of_each, load_mapping, map_records
from ckanext.shanghai.harvesters.mapping.apply import flags_text
from data_files import catalog_file


def complete_product(**changes) -> dict:
    """A product with every field the score asks for, as package_show gives it."""
    product = {
        "title": "住院床位信息", "notes": "全市医院的住院床位数。", "tags": [{"name": "医疗"}, {"name": "床位"}],
        "data_domain": "health", "national_theme": "culture-health-sports", "spatial_coverage": "上海市",
        "temporal_start": "2020-01-01", "temporal_end": "2023-12-31", "license_id": "cc-by",
        "open_condition": "unconditional", "contact": "sjkf@shanghai.gov.cn", "owner_org": "health-commission",
        "terms_of_use": "注明来源", "record_count": 1200, "first_published": "2020-01-02",
        "last_updated": "2024-01-05", "quality_flags": "",
        "resources": [
            {"id": "r-file", "url": "beds.csv", "url_type": "upload", "format": "CSV", "name": "床位（CSV）"},
            {"id": "r-link", "url": "https://data.example.gov.cn/beds.json", "url_type": "", "format": "JSON",
             "name": "床位（JSON）"},
        ],
    }
    product.update(changes)
    return product


CHECKED_OK = {"r-link": {"status": score.LINK_OK}}


def fix_codes(assessment: score.Assessment) -> dict[str, int]:
    return {check.indicator.code: check.lost for check in assessment.fixes()}


def test_the_dimensions_and_points_are_the_mqa_ones():
    points = Counter()
    for indicator in score.INDICATORS:
        points[indicator.dimension] += indicator.points
    assert dict(points) == {"findability": 100, "accessibility": 100, "interoperability": 110,
                            "reusability": 75, "contextuality": 20}
    assert sum(points.values()) == score.MAX_SCORE == 405
    assert {indicator.code for indicator in score.INDICATORS} == {code for code in fix_codes(score.assess({}))}


@pytest.mark.parametrize("points, band", [(405, "excellent"), (351, "excellent"), (350, "good"), (221, "good"),
                                           (220, "sufficient"), (121, "sufficient"), (120, "bad"), (0, "bad")])
def test_bands_are_the_mqa_bands(points, band):
    assert score.band_of(points) == band


def test_a_complete_product_with_its_link_checked_scores_full_marks_and_has_nothing_to_fix():
    assessment = score.assess(complete_product(), CHECKED_OK)
    assert assessment.score == 405 and assessment.band == "excellent"
    assert assessment.fixes() == []
    assert score.band_label("excellent", "zh_Hans_CN") == "优秀" and score.band_label("excellent", "en") == "Excellent"


def test_a_link_not_yet_checked_costs_its_share_of_the_download_points_and_says_so():
    assessment = score.assess(complete_product())
    assert fix_codes(assessment) == {"download-url-reachable": 15}
    [check] = assessment.fixes()
    assert check.details == ({"zh": "1 个链接尚未检查", "en": "1 link(s) not checked yet"},)


def test_a_broken_link_loses_access_points_and_names_the_resource_and_the_reason():
    broken = {"r-link": {"status": score.LINK_BROKEN, "reason_zh": "返回 HTTP 404", "reason_en": "Answered HTTP 404"}}
    assessment = score.assess(complete_product(), broken)
    assert fix_codes(assessment) == {"access-url": 25, "download-url-reachable": 15}
    assert assessment.score == 365
    details = {d["en"] for check in assessment.fixes() for d in check.details}
    assert "The link of resource “床位（JSON）”: Answered HTTP 404" in details
    assert {d["zh"] for check in assessment.fixes() for d in check.details} >= {"资源“床位（JSON）”的链接：返回 HTTP 404"}


def test_a_check_of_another_resource_does_not_count():
    assessment = score.assess(complete_product(), {"someone-else": {"status": score.LINK_OK}})
    assert fix_codes(assessment) == {"download-url-reachable": 15}


def test_each_kind_of_harvest_quality_flag_costs_ten_points_and_is_listed_to_fix():
    flags = [
        {"code": "dates-inverted", "reason_zh": "更新日期早于首次发布日期", "reason_en": "Last updated before first published"},
        {"code": "dates-inverted", "reason_zh": "时间范围止早于起", "reason_en": "Time covered ends before it starts"},
        {"code": "unmapped-value", "reason_zh": "未映射的更新频度", "reason_en": "Unmapped update frequency"},
    ]
    assessment = score.assess(complete_product(quality_flags=json.dumps(flags, ensure_ascii=False)), CHECKED_OK)
    assert fix_codes(assessment) == {"compliance": 20}
    [check] = assessment.fixes()
    assert [d["en"] for d in check.details] == [flag["reason_en"] for flag in flags]
    assert check.indicator.fix_zh.startswith("填写标题和摘要") and "quality flags" in check.indicator.fix_en


def test_closed_formats_lose_interoperability_points():
    resources = [{"id": "r1", "url": "report.pdf", "url_type": "upload", "format": "PDF"},
                 {"id": "r2", "url": "report.docx", "url_type": "upload", "format": "docx"}]
    assessment = score.assess(complete_product(resources=resources))
    # PDF is open but not machine readable; DOCX is neither.
    assert fix_codes(assessment) == {"machine-readable": 20}
    odd = score.assess(complete_product(resources=[{"id": "r1", "url": "x.dat", "url_type": "upload",
                                                     "format": "私有格式"}]))
    assert fix_codes(odd) == {"media-type": 10, "format-vocabulary": 10, "non-proprietary": 20,
                              "machine-readable": 20}


def test_a_bare_product_is_bad_and_every_fix_is_in_both_languages_most_points_first():
    assessment = score.assess({"title": "只有标题", "notes": "和摘要"})
    assert assessment.band == "bad"
    fixes = assessment.fixes()
    assert [check.lost for check in fixes] == sorted((check.lost for check in fixes), reverse=True)
    assert fixes[0].indicator.code == "access-url"
    for check in fixes:
        assert check.indicator.fix_zh and check.indicator.fix_en and check.indicator.fix_zh != check.indicator.fix_en
    as_dict = assessment.as_dict()
    assert as_dict["score"] == assessment.score == sum(as_dict["dimensions"].values())


def test_the_form_and_the_harvest_shapes_score_alike():
    """tag_string (a form or a harvest mapping) counts as tags do."""
    from_form = complete_product(tags=[], tag_string="医疗,床位")
    assert score.assess(from_form, CHECKED_OK).score == 405


def _shanghai_products() -> list[dict]:
    mapping = load_mapping(MAPPINGS_DIR / "shanghai.yaml")
    with catalog_file("shanghai.json").open("rb") as stream:
        kept, _rejected = first_of_each(map_records(mapping, iter_records(stream)), {})
    return [dict(record.package, owner_org=record.department,
                 quality_flags=flags_text(record.warnings) if record.warnings else "")
            for _position, record in kept]


def test_the_shanghai_export_scores_what_its_records_hold():
    products = _shanghai_products()
    assessments = [score.assess(product) for product in products]
    assert len(assessments) == 2232
    # The export gives no licence, coverage, time range or file links:
    # no product reaches Excellent, and each loses the licence points.
    assert all(a.band != "excellent" for a in assessments)
    assert all(fix_codes(a).get("licence") == 20 for a in assessments)
    # A record without formats has no resource: it loses every access point.
    bare = next(a for p, a in zip(products, assessments) if not p["resources"])
    assert fix_codes(bare)["access-url"] == 50 and fix_codes(bare)["format"] == 20
    # Flagged records lose compliance points; unflagged ones with a title and summary do not.
    for product, assessment in zip(products, assessments):
        flagged = bool(product["quality_flags"])
        assert ("compliance" in fix_codes(assessment)) == (flagged or not product.get("notes")), product["name"]

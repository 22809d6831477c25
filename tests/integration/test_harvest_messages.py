"""What a person sees of a harvest's rejections and warnings: each one, as
the reader, the mapping or the gather raised it (a stable code, the field,
the raw value, the reason in Chinese and in English), in the report API, in
the rejections CSV and on the job page, after a harvest run through the
production queue consumers."""
import csv
import io

import lxml.html
import pytest

from ckan.tests import factories, helpers
from ckanext.shanghai.harvesters.mapping import MAPPINGS_DIR, load_mapping

from portal_testing import create_source, load_catalog, run_job, write_export

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")


@pytest.fixture
def harvested(tmp_path):
    """A Shanghai export of six items: a record, its exact repeat, a second
    version of it, a record with an update frequency the mapping does not
    know, an item that is not a record at all, and a record with a tag CKAN
    would refuse. Returns the job's report and the identities."""
    first = load_catalog("shanghai.json")[0]
    unknown = dict(first, 数据集名称="上海市未知频度数据", 更新频度="每两年")
    tagged = dict(first, 数据集名称="上海市带标签数据", 数据标签="机构,1")
    items = [first, dict(first), dict(first, 摘要="同一数据集的另一版本"), unknown, 42, tagged]
    export = write_export(tmp_path / "messages.json", items)
    source = create_source("messages", str(export), {"mapping": "shanghai"})
    report = run_job(source["id"])
    mapping = load_mapping(MAPPINGS_DIR / "shanghai.yaml")
    return report, mapping.identity_of(first), mapping.identity_of(unknown), mapping.identity_of(tagged)


def expected_rejections(first_id, unknown_id):
    """(position, identity, code, field, value, a piece of the zh text, a piece of the en text)"""
    return [
        (2, first_id, "duplicate", "source_identifier", first_id, "与第 1 条记录完全相同",
         "an exact repeat of record 1"),
        (3, first_id, "conflicting-duplicate", "source_identifier", first_id, "保留第 1 条",
         "record 1 is kept"),
        (4, unknown_id, "unmapped-value", "update_frequency", "每两年", "更新频度「每两年」没有对应",
         "更新频度 value '每两年' has no update_frequency code"),
        (5, None, "bad-record", None, None, "第 5 条记录无法读取：不是 JSON 对象",
         "record 5 cannot be read: is not a JSON object"),
    ]


def test_the_report_api_gives_each_rejection_and_warning_as_raised(harvested):
    report, first_id, unknown_id, tagged_id = harvested
    assert (report["records_read"], report["added"], report["rejected"], report["warnings"]) == (6, 2, 4, 1)
    answer = helpers.call_action("shanghai_harvest_report", id=report["job_id"])
    got = answer["rejections"]
    assert len(got) == 4
    for rejection, (position, identity, code, field, value, zh, en) in zip(
            got, expected_rejections(first_id, unknown_id)):
        assert (rejection["position"], rejection["identity"], rejection["code"], rejection["field"],
                rejection["value"]) == (position, identity, code, field, value)
        assert zh in rejection["reason_zh"] and en in rejection["reason_en"], rejection
        # Each language on its own: no English in the Chinese text, and the reverse.
        assert " / " not in rejection["reason_zh"] and " / " not in rejection["reason_en"]
    [warning] = answer["warnings"]
    assert (warning["position"], warning["identity"], warning["code"], warning["field"], warning["value"]) == (
        6, tagged_id, "tag-too-short", "tags", "1")
    assert "「1」" in warning["reason_zh"] and "shorter than 2 characters" in warning["reason_en"]


def test_the_rejections_csv_has_a_column_for_each_part(app, harvested):
    report, first_id, unknown_id, tagged_id = harvested
    sysadmin = factories.SysadminWithToken()
    response = app.get(f"/harvest/job/{report['job_id']}/rejections.csv",
                       headers={"Authorization": sysadmin["token"]})
    assert response.status_code == 200
    header, *rows = list(csv.reader(io.StringIO(response.body.lstrip("\ufeff"))))
    assert header == ["标识 identity", "位置 position", "类别 kind", "代码 code", "字段 field", "原值 value",
                      "原因 reason (zh)", "reason (en)"]
    expected = [(str(position), identity or "", "rejection", code, field or "", value or "", zh, en)
                for position, identity, code, field, value, zh, en in expected_rejections(first_id, unknown_id)]
    expected.append(("6", tagged_id, "warning", "tag-too-short", "tags", "1", "「1」", "shorter than 2"))
    assert len(rows) == len(expected)
    for row, (position, identity, kind, code, field, value, zh, en) in zip(rows, expected):
        assert row[:6] == [identity, position, kind, code, field, value]
        assert zh in row[6] and en in row[7], row


def table_rows(css_class: str) -> str:
    return f'//table[contains(concat(" ", @class, " "), " {css_class} ")]/tbody/tr'


def test_the_job_page_shows_code_field_value_and_both_texts(app, harvested):
    report, first_id, unknown_id, tagged_id = harvested
    sysadmin = factories.SysadminWithToken()
    response = app.get(f"/harvest/messages/job/{report['job_id']}", headers={"Authorization": sysadmin["token"]})
    assert response.status_code == 200
    page = lxml.html.fromstring(response.body)
    rows = [[cell.text_content().strip() for cell in row.findall("td")]
            for row in page.xpath(table_rows("shanghai-rejections"))]
    assert len(rows) == 4
    for row, (position, identity, code, field, value, zh, en) in zip(
            rows, expected_rejections(first_id, unknown_id)):
        assert row[:5] == [str(position), identity or "", code, field or "", value or ""]
        assert zh in row[5] and en in row[5], row
    [warning] = [[cell.text_content().strip() for cell in row.findall("td")]
                 for row in page.xpath(table_rows("shanghai-warnings"))]
    assert warning[:5] == ["6", tagged_id, "tag-too-short", "tags", "1"]
    counts = [cell.text_content().strip() for cell in page.xpath(table_rows("shanghai-report-counts") + "/td")]
    assert counts == ["6", "2", "0", "0", "0", "4", "1", "1"]


def test_the_migration_keeps_earlier_rejections_and_then_wants_a_code(migrate_db_for):
    """An existing portal upgrades with its reports: rejections recorded
    before codes were kept say so (``unrecorded``); from then on a row
    without its code is refused."""
    import sqlalchemy as sa
    import sqlalchemy.exc

    from ckan import model
    from ckanext.shanghai.harvesters import records

    migrate_db_for("shanghai", "a1c0de5e7b01", forward=False)
    model.Session.execute(sa.text(
        "INSERT INTO shanghai_harvest_report (job_id, source_id) VALUES ('old-job', 'old-source')"))
    model.Session.execute(sa.text(
        "INSERT INTO shanghai_harvest_rejection (job_id, identity, position, field, reason_zh, reason_en)"
        " VALUES ('old-job', 'SH-1', 3, 'title', '缺少标题', 'no title')"))
    model.Session.commit()
    migrate_db_for("shanghai")

    assert records.rejections_for_job("old-job") == [{
        "identity": "SH-1", "position": 3, "kind": "rejection", "code": "unrecorded", "field": "title",
        "value": None, "reason_zh": "缺少标题", "reason_en": "no title"}]
    assert records.report_for_job("old-job")["warnings"] == 0
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        model.Session.execute(sa.text(
            "INSERT INTO shanghai_harvest_rejection (job_id, kind, reason_zh, reason_en)"
            " VALUES ('old-job', 'rejection', '无代码', 'no code')"))
    model.Session.rollback()

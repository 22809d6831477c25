"""A city's export with the patterns real agency exports have (English
camelCase keys, bureaus named relative to their district, placeholder
publishers, dates going backwards or written 0000-00-00, values the mapping
does not know) harvested through the production queue consumers: nothing
publishable is lost; what is wrong is a quality flag on the product (its
page, the search facet, /statistics, the job report), the stock job stats
say what the report says, and the dry run (command and source page) lists
all of it before the first run, writing nothing."""
import json

import lxml.html
import pytest

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers
from ckanext.shanghai.harvesters.mapping import load_mapping

from agency_exports import CITY_MAPPING, built_export, city
from portal_testing import create_source, make_department, run_job, write_export

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")


def package_of(identity: str) -> dict:
    return helpers.call_action("package_show", id=load_mapping(CITY_MAPPING).package_name(identity))


@pytest.fixture
def harvested(tmp_path):
    export = write_export(tmp_path / "city.json", built_export())
    source = create_source("city", str(export), {"mapping": CITY_MAPPING})
    return source, run_job(source["id"])


def test_nothing_publishable_is_lost_and_the_flags_are_counted(harvested):
    source, report = harvested
    assert report["outcome"] == "finished"
    answer = helpers.call_action("shanghai_harvest_report", id=report["job_id"])
    assert (report["records_read"], report["added"], report["rejected"]) == (41, 37, 4), [(r["code"], r["field"], r["reason_en"]) for r in answer["rejections"][4:7]]
    assert report["flagged"] == 12
    assert report["flags"] == {"dates-inverted": 4, "placeholder-department": 3, "unmapped-value": 3,
                               "placeholder-date": 2}
    assert sorted(r["code"] for r in answer["rejections"]) == [
        "duplicate", "missing-required", "unmapped-value", "unmapped-value"]

    # One department per district for the relative bureau; placeholders filed under the named one.
    titles = {title for (title,) in model.Session.query(model.Group.title).filter(
        model.Group.is_organization.is_(True))}
    assert {"云岩区区数据资源局", "花溪区区数据资源局", "新城市大数据管理局", "新城市交通局"} <= titles
    assert "地区管理员" not in titles and "区数据资源局" not in titles


def test_the_stock_job_stats_give_the_reports_counts(harvested):
    source, report = harvested
    job = helpers.call_action("harvest_job_show", id=report["job_id"])
    assert job["stats"] == {"added": 37, "updated": 0, "not modified": 0, "errored": 4, "deleted": 0}
    [listed] = helpers.call_action("harvest_job_list", source_id=source["id"])
    assert listed["stats"] == job["stats"]
    status = helpers.call_action("harvest_source_show_status", id=source["id"])
    assert status["last_job"]["stats"] == job["stats"]

    again = run_job(source["id"])
    assert (again["unchanged"], again["added"], again["rejected"]) == (37, 0, 4)
    assert helpers.call_action("harvest_job_show", id=again["job_id"])["stats"] == {
        "added": 0, "updated": 0, "not modified": 37, "errored": 4, "deleted": 0}


def test_a_backwards_date_is_kept_flagged_and_shown_on_the_page(app, harvested):
    pkg = package_of("C00300")
    assert (pkg["first_published"], pkg["last_updated"]) == ("2023-09-01", "2023-01-01")
    [flag] = json.loads(pkg["quality_flags"])
    assert (flag["code"], flag["field"], flag["value"]) == ("dates-inverted", "last_updated", "2023-01-01")

    for language, expected in (("zh_Hans_CN", "日期先后颠倒"), ("en", "Dates in the wrong order")):
        prefix = "" if language == "zh_Hans_CN" else "/en"
        response = app.get(f"{prefix}/dataset/{pkg['name']}")
        assert response.status_code == 200
        page = lxml.html.fromstring(response.body)
        [section] = page.xpath('//*[@id="sh-quality-flags"]')
        text = section.text_content()
        assert expected in text and "2023-01-01" in text


def test_flags_are_a_search_facet_and_summed_per_department(app, harvested):
    found = helpers.call_action("package_search", q="*:*", rows=0, fq="quality_flag:dates-inverted",
                                **{"facet.field": ["quality_flag"]})
    assert found["count"] == 4
    everything = helpers.call_action("package_search", q="*:*", rows=0, **{"facet.field": ["quality_flag"]})
    assert everything["facets"]["quality_flag"] == {"dates-inverted": 4, "placeholder-department": 3,
                                                    "unmapped-value": 3, "placeholder-date": 2}
    items = {item["name"]: item["display_name"] for item in everything["search_facets"]["quality_flag"]["items"]}
    assert items["placeholder-date"] in ("占位日期", "Placeholder date")

    stats = json.loads(app.get("/statistics.json").body)["quality"]
    by_department = {row["display_name"]: row for row in stats["departments"]}
    assert by_department["新城市大数据管理局"]["flags"]["placeholder-department"] == 3
    assert by_department["新城市交通局"]["flagged"] == 9
    assert sum(row["total"] for row in stats["departments"]) == 12
    page = lxml.html.fromstring(app.get("/statistics").body)
    assert page.xpath('//table[@id="sh-quality-table"]//td[contains(., "新城市大数据管理局")]')


def test_the_form_and_the_api_still_refuse_a_backwards_date_and_cannot_set_flags():
    org = make_department(name="hand-written")
    user = factories.Sysadmin()
    context = {"user": user["name"], "ignore_auth": True}
    fields = {"name": "hand-written-product", "title": "手工录入的数据", "owner_org": org["id"],
              "data_domain": "health", "update_frequency": "annual", "open_condition": "unconditional"}
    with pytest.raises(tk.ValidationError) as refused:
        helpers.call_action("package_create", context, **fields,
                            first_published="2023-06-01", last_updated="2022-01-01")
    assert "last_updated" in refused.value.error_dict
    created = helpers.call_action("package_create", context, **fields, quality_flags=json.dumps(
        [{"code": "dates-inverted", "reason_zh": "假", "reason_en": "fake"}]))
    assert not created.get("quality_flags")


def test_the_dry_run_command_writes_nothing_and_lists_everything(run_ckan, tmp_path):
    mapping_file = tmp_path / "city.yaml"
    mapping_file.write_text(json.dumps(CITY_MAPPING, ensure_ascii=False), encoding="utf-8")
    export = write_export(tmp_path / "city.json", built_export())
    packages_before = model.Session.query(model.Package).count()

    result = run_ckan("shanghai", "mapping-check", str(mapping_file), str(export), "--json")
    assert result.returncode == 0, result.stderr
    check = json.loads(result.stdout)
    assert (check["records_read"], check["would_import"], check["would_reject"]) == (41, 37, 4)
    assert check["unmapped_values"] == {"data_domain": {"气象服务": 2, "防疫复工": 1},
                                        "update_frequency": {"每两年": 1, "实时": 1}}
    assert [d["name"] for d in check["departments_to_create"]] == [
        "新城市交通局", "云岩区区数据资源局", "新城市大数据管理局", "花溪区区数据资源局"]
    model.Session.remove()
    assert model.Session.query(model.Package).count() == packages_before
    assert model.Session.query(model.Group).filter(model.Group.title == "新城市交通局").count() == 0

    text = run_ckan("shanghai", "mapping-check", str(mapping_file), str(export))
    assert "would import: 37" in text.stdout and "气象服务: 2" in text.stdout

    broken = run_ckan("shanghai", "mapping-check", str(mapping_file), str(tmp_path / "missing.json"))
    assert broken.returncode == 1 and broken.stderr.strip()


def test_the_dry_run_of_ten_thousand_records(run_ckan, tmp_path):
    """Measured with pytest --durations, not asserted: the whole command
    (CKAN start included) on a 10,000-record export."""
    mapping_file = tmp_path / "city.yaml"
    mapping_file.write_text(json.dumps(CITY_MAPPING, ensure_ascii=False), encoding="utf-8")
    export = write_export(tmp_path / "big.json", [
        city(n, domain="城建住房" if n % 7 else "气象服务", updateTime="2020-01-01" if n % 9 == 0 else "2023-05-01")
        for n in range(10_000)])
    result = run_ckan("shanghai", "mapping-check", str(mapping_file), str(export), "--json")
    assert result.returncode == 0, result.stderr
    check = json.loads(result.stdout)
    assert (check["records_read"], check["would_import"]) == (10_000, 10_000)
    assert check["flags_by_code"] == {"dates-inverted": 1112, "unmapped-value": 1429}


def test_the_source_page_offers_the_dry_run_to_its_editors_before_the_first_run(app, tmp_path):
    export = write_export(tmp_path / "city.json", built_export())
    source = create_source("city-preview", str(export), {"mapping": CITY_MAPPING})
    sysadmin = factories.SysadminWithToken()
    headers = {"Authorization": sysadmin["token"]}
    page = lxml.html.fromstring(app.get(f"/harvest/{source['name']}", headers=headers).body)
    assert page.xpath('//*[@id="sh-first-run-hint"]') and page.xpath('//*[@id="sh-mapping-check-link"]')

    response = app.get(f"/harvest/{source['name']}/mapping-check", headers=headers)
    assert response.status_code == 200
    page = lxml.html.fromstring(response.body)
    counts = [cell.text_content().strip() for cell in page.xpath('//table[@id="sh-check-counts"]//td')]
    assert counts == ["41", "37", "12", "4"]
    unmapped = page.xpath('//table[@id="sh-check-unmapped"]')[0].text_content()
    assert "气象服务" in unmapped and "每两年" in unmapped
    assert "云岩区区数据资源局" in page.xpath('//table[@id="sh-check-departments"]')[0].text_content()
    assert model.Session.query(model.Package).filter(model.Package.type != "harvest").count() == 0

    assert app.get(f"/harvest/{source['name']}/mapping-check").status_code == 403


def test_a_value_only_ckans_validation_refuses_costs_only_its_optional_field(tmp_path):
    """A national theme no variant names, a page address that is not a web
    address: caught by the schema's validators at import, not by the
    mapping; the record still imports, without that field, flagged."""
    config = {**CITY_MAPPING, "fields": {**CITY_MAPPING["fields"], "national_theme": "theme", "url": "pageUrl"}}
    records = [city(1, theme="火星探索类"), city(2, pageUrl="javascript:alert(1)"),
               city(3, theme="综合政务", pageUrl="https://data.example.cn/c/3")]
    source = create_source("city-validation", str(write_export(tmp_path / "v.json", records)), {"mapping": config})
    report = run_job(source["id"])
    assert (report["added"], report["rejected"], report["flagged"]) == (3, 0, 2)
    themed = package_of("C00001")
    assert not themed.get("national_theme")
    [flag] = json.loads(themed["quality_flags"])
    assert (flag["field"], flag["value"]) == ("national_theme", "火星探索类") and "left empty" in flag["reason_en"]
    linked = package_of("C00002")
    assert not linked.get("url") and json.loads(linked["quality_flags"])[0]["field"] == "url"
    assert package_of("C00003")["url"] == "https://data.example.cn/c/3"
    assert helpers.call_action("harvest_job_show", id=report["job_id"])["stats"]["added"] == 3

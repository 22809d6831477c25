"""Metadata quality scores and link checks on the real stack: a round of
the link checker (the job the worker runs) against a local server of good,
broken, slow and redirecting links stores each link's state, shows it on
the resource page, lists the broken ones for the department and moves the
products' indexed scores; the product page shows the score and what to fix
in zh and en; the search page filters by band and sorts by score; the
harvest's batch writer indexes the score too; /statistics shows the
distribution; the harvest scheduler queues the rounds on the job queue."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.lib import search
from ckan.tests import factories, helpers

from ckanext.shanghai import quality
from ckanext.shanghai.assessment import links as link_checker
from ckanext.shanghai.assessment import score
from ckanext.shanghai.harvesters import scheduler
from ckanext.shanghai.harvesters.index import bulk as bulk_index
from ckanext.shanghai.harvesters.writer import CatalogWriter
from link_server import link_server
from portal_testing import make_department, site_context

pytestmark = pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")


@pytest.fixture
def links(monkeypatch):
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    monkeypatch.setitem(tk.config, "ckanext.shanghai.links.host_delay", 0.0)
    monkeypatch.setitem(tk.config, "ckanext.shanghai.links.timeout", 1.5)
    with link_server() as server:
        yield server


@pytest.fixture
def department():
    return make_department(name="health-commission", title="上海市卫生健康委员会")


def product(org: dict, name: str, resources: list[dict], **fields) -> dict:
    fields = {"title": "医院床位信息", "notes": "全市医院的床位数。", "data_domain": "health",
              "update_frequency": "annual", "open_condition": "unconditional", "tags": [{"name": "医疗"}],
              "license_id": "cc-by", "contact": "sjkf@shanghai.gov.cn", "spatial_coverage": "上海市",
              "temporal_start": "2020-01-01", "first_published": "2020-01-02", "last_updated": "2024-01-05",
              "terms_of_use": "注明来源", "record_count": 1200, **fields}
    return factories.Dataset(owner_org=org["id"], name=name, resources=resources, **fields)


def indexed_scores() -> dict[str, int]:
    result = helpers.call_action("package_search", q="*:*", rows=100, fl=["name", "quality_score"])
    return {row["name"]: row["quality_score"] for row in result["results"]}


def link(url: str, name: str, fmt: str = "CSV") -> dict:
    return {"url": url, "name": name, "format": fmt}


def test_a_round_checks_every_link_stores_shows_and_scores_what_it_found(links, department, app):
    good = product(department, "beds-good", [link(links.url("/good.csv"), "床位表"),
                                             link(links.url("/redirect"), "床位表（跳转）")])
    bad = product(department, "beds-bad", [link(links.url("/gone.csv"), "失效表"),
                                           link(links.url("/slow"), "慢表"),
                                           link(links.url("/no-head"), "不支持HEAD")])
    before = indexed_scores()
    # Nothing checked yet: the download points wait for a check.
    assert before == {"beds-good": 375, "beds-bad": 375}

    assert link_checker.run_round() == {"checked": 5, "broken": 2, "reindexed": 2}

    rows = {row.resource_id: row for row in model.Session.execute(sa.text(
        "select resource_id, status, http_status, method, code, final_url from shanghai_link_check"))}
    by_name = {r["name"]: r["id"] for r in good["resources"] + bad["resources"]}
    assert (rows[by_name["床位表"]].status, rows[by_name["床位表"]].http_status) == ("ok", 200)
    assert rows[by_name["床位表（跳转）"]].final_url == links.url("/good")
    assert (rows[by_name["失效表"]].status, rows[by_name["失效表"]].http_status) == ("broken", 404)
    assert (rows[by_name["慢表"]].status, rows[by_name["慢表"]].code) == ("broken", "timeout")
    assert (rows[by_name["不支持HEAD"]].status, rows[by_name["不支持HEAD"]].method) == ("ok", "GET")

    # The scores in the index moved: all of the good product's links answer;
    # two of the bad one's three do not.
    after = indexed_scores()
    assert after["beds-good"] == 405
    # One link of three answers: a third of the access and download-check points.
    assert after["beds-bad"] == 405 - (50 - 50 * 1 // 3) - (30 - 30 * 1 // 3) == 351
    ascending = helpers.call_action("package_search", q="*:*", sort="quality_score asc", fl=["name"])
    assert [row["name"] for row in ascending["results"]] == ["beds-bad", "beds-good"]

    broken_page = app.get(f"/dataset/beds-bad/resource/{by_name['失效表']}").body
    assert "无法访问" in broken_page and "返回 HTTP 404" in broken_page
    assert "Answered HTTP 404" in app.get(f"/en/dataset/beds-bad/resource/{by_name['失效表']}").body
    assert "No answer within 2s" in app.get(f"/en/dataset/beds-bad/resource/{by_name['慢表']}").body
    assert 'data-state="ok"' in app.get(f"/dataset/beds-good/resource/{by_name['床位表']}").body

    department_page = app.get("/organization/health-commission").body
    listed = department_page.split('id="sh-department-broken-links"')[1].split("</table>")[0]
    assert "失效表" in listed and "慢表" in listed and "床位表" not in listed
    lowest = department_page.split('id="sh-department-lowest"')[1].split("</ol>")[0]
    assert lowest.index("beds-bad") < lowest.index("beds-good")
    average = (after["beds-good"] + after["beds-bad"]) / 2
    assert f'id="sh-department-average">{average:.1f}<' in department_page

    # Checked links are not due again until their interval has passed.
    assert link_checker.run_round()["checked"] == 0
    # A resource given a new address is due at once, and its old check no longer counts.
    helpers.call_action("resource_patch", context=site_context(), id=by_name["失效表"],
                        url=links.url("/good-again.csv"))
    assert indexed_scores()["beds-bad"] < 405 - 50 // 3
    assert link_checker.run_round() == {"checked": 1, "broken": 0, "reindexed": 1}
    assert indexed_scores()["beds-bad"] == 405 - (50 - 50 * 2 // 3) - (30 - 30 * 2 // 3) == 378


def test_the_product_page_shows_the_score_and_what_to_fix_in_each_language(department, app):
    bare = product(department, "beds-bare", [], tags=[], spatial_coverage="", temporal_start="", license_id="",
                   terms_of_use="")
    [indexed] = helpers.call_action("package_search", fq="name:beds-bare", fl=["quality_score"])["results"]
    page = app.get("/dataset/beds-bare").body
    assert f'id="sh-score-value">{indexed["quality_score"]}<' in page
    assert indexed["quality_score"] == score.assess(helpers.call_action("package_show", id=bare["id"])).score
    fixes = page.split('id="sh-score-fixes"')[1].split("</ul>")[0]
    assert "添加数据资源" in fixes and "+50 分" in fixes and "选择许可协议" in fixes
    english = app.get("/en/dataset/beds-bare").body.split('id="sh-score-fixes"')[1].split("</ul>")[0]
    assert "Add a resource" in english and "+50 points" in english and "Choose a licence" in english
    assert "添加" not in english


def test_search_filters_by_band_and_statistics_show_the_distribution(department, app):
    product(department, "beds-full", [{"url": "beds.csv", "name": "床位表", "format": "CSV"}])
    product(department, "beds-bare", [], tags=[], spatial_coverage="", temporal_start="", license_id="",
            terms_of_use="", contact="", record_count="")
    bands = {row["name"]: score.band_of(row["quality_score"]) for row in
             helpers.call_action("package_search", q="*:*", fl=["name", "quality_score"])["results"]}
    assert bands["beds-bare"] == "bad" and bands["beds-full"] != "bad"

    page = app.get("/dataset/", query_string={"quality_band": "bad"}).body
    assert "/dataset/beds-bare" in page and "/dataset/beds-full" not in page
    assert "元数据质量" in page and "较差" in page
    assert "Best metadata quality" in app.get("/en/dataset/").body

    figures = json.loads(app.get("/statistics.json").body)["scores"]
    assert figures["products"] == 2
    assert {band["code"]: band["count"] for band in figures["bands"]}["bad"] == 1
    assert sum(item["value"] for item in figures["bins"]) == 2
    table = app.get("/statistics").body.split('id="sh-score-bands"')[1].split("</table>")[0]
    assert "较差" in table and "优秀" in table


def test_the_harvest_batch_writer_indexes_the_score_with_its_quality_flags(department):
    flag = {"code": "dates-inverted", "field": "last_updated", "value": "2019-01-01",
            "reason_zh": "更新日期早于首次发布日期", "reason_en": "Last updated before first published"}
    base = {"type": "health", "owner_org": department["id"], "title": "医院床位信息", "notes": "全市医院的床位数。",
            "data_domain": "health", "update_frequency": "annual", "open_condition": "unconditional",
            "national_theme": "culture-health-sports", "tag_string": "医疗", "contact": "sjkf@shanghai.gov.cn",
            "first_published": "2020-01-02", "last_updated": "2024-01-05", "source_identifier": "SH-0001",
            "resources": [{"url": "https://data.sh.gov.cn/beds.csv", "format": "CSV", "name": "床位表"}]}
    writer = CatalogWriter(site_context()["user"])
    ids = writer.create_many([dict(base, name="harvested-clean"),
                              dict(base, name="harvested-flagged", quality_flags=json.dumps([flag]))])
    assert all(isinstance(result, str) for result in ids), ids
    # The documents the batch builds (what index_and_record sends to Solr).
    docs = {doc["name"]: doc for doc in bulk_index.build_documents(bulk_index.show_pairs(ids))}
    writer.index_and_record(ids)
    model.Session.commit()
    search.commit()
    shown = helpers.call_action("package_show", id="harvested-clean")
    assert docs["harvested-clean"]["quality_score"] == score.assess(shown).score
    assert docs["harvested-flagged"]["quality_score"] == docs["harvested-clean"]["quality_score"] - 10
    assert docs["harvested-flagged"]["quality_band"] == score.band_of(docs["harvested-flagged"]["quality_score"])
    assert quality.codes(helpers.call_action("package_show", id="harvested-flagged")["quality_flags"]) == [
        "dates-inverted"]
    assert search.show("harvested-flagged")["quality_score"] == docs["harvested-flagged"]["quality_score"]


def test_the_harvest_scheduler_queues_one_round_per_interval_on_the_job_queue():
    from ckan.lib.redis import connect_to_redis

    connect_to_redis().delete("shanghai:linkcheck:round")
    helpers.call_action("job_clear")
    scheduler._queue_link_checks()
    scheduler._queue_link_checks()
    titles = [job["title"] for job in helpers.call_action("job_list")]
    assert titles == ["link check round"]
    helpers.call_action("job_clear")


def test_a_round_started_while_another_runs_checks_nothing(links, department):
    product(department, "beds-good", [link(links.url("/good.csv"), "床位表")])
    with model.meta.engine.connect() as other_round:
        other_round.execute(sa.text("select pg_advisory_lock(:key)"), {"key": link_checker._ROUND_LOCK})
        assert link_checker.run_round() == {"checked": 0, "broken": 0, "reindexed": 0, "running": 1}
        other_round.execute(sa.text("select pg_advisory_unlock(:key)"), {"key": link_checker._ROUND_LOCK})
    assert links.requests == []
    assert link_checker.run_round() == {"checked": 1, "broken": 0, "reindexed": 1}

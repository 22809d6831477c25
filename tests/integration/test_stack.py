"""The stack is real: CKAN 2.12 on PostgreSQL, Redis and a real Apache Solr
9.10.1 whose Chinese analysis segments words."""
import json
import urllib.parse
import urllib.request

import pytest

import ckan.lib.redis as ckan_redis
import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers
from portal_testing import make_department


def solr_get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_solr_is_apache_solr_9_10_1(solr_core_url):
    base = solr_core_url.rsplit("/", 1)[0]
    info = solr_get(f"{base}/admin/info/system?wt=json")
    assert info["lucene"]["solr-spec-version"] == "9.10.1"


def test_solr_segments_chinese_text_into_words(solr_core_url):
    query = urllib.parse.urlencode({
        "analysis.fieldtype": "text", "analysis.fieldvalue": "上海市医院床位信息", "wt": "json",
    })
    analysis = solr_get(f"{solr_core_url}/analysis/field?{query}")
    stages = analysis["analysis"]["field_types"]["text"]["index"]
    tokens = [token["text"] for token in stages[-1]]
    assert tokens == ["上海市", "医院", "床位", "信息"]


def test_ckan_uses_the_projects_solr_schema(solr_core_url):
    schema = solr_get(f"{solr_core_url}/schema?wt=json")["schema"]
    assert schema["name"] == "ckan-2.12"
    text_type = next(t for t in schema["fieldTypes"] if t["name"] == "text")
    assert "HMMChineseTokenizerFactory" in text_type["indexAnalyzer"]["tokenizer"]["class"]


@pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")
class TestChineseSearch:
    def _dataset(self, title, **fields):
        org = make_department()
        return factories.Dataset(
            title=title, owner_org=org["id"], data_domain="health",
            update_frequency="annual", open_condition="unconditional", **fields,
        )

    def test_a_word_inside_a_title_finds_the_dataset(self):
        hospital = self._dataset("上海市医院床位信息")
        self._dataset("上海市公园名录")
        result = helpers.call_action("package_search", q="医院")
        assert [d["id"] for d in result["results"]] == [hospital["id"]]

    def test_two_words_find_a_dataset_holding_both(self):
        beds = self._dataset("上海市医院床位信息")
        self._dataset("上海市医院名录")
        result = helpers.call_action("package_search", q="医院 床位")
        assert [d["id"] for d in result["results"]] == [beds["id"]]

    def test_characters_spanning_two_words_do_not_match(self):
        # 结合服务 is 结合 + 服务; the characters 合服 straddle the two words.
        self._dataset("结合服务指南")
        assert helpers.call_action("package_search", q="合服")["count"] == 0

    def test_a_dataset_is_stored_in_postgresql_and_indexed_in_solr(self, solr_core_url):
        dataset = self._dataset("静安区养老机构")
        assert model.Package.get(dataset["id"]).title == "静安区养老机构"
        found = solr_get(f"{solr_core_url}/select?q=id:{dataset['id']}&fl=title&wt=json")
        assert found["response"]["docs"] == [{"title": "静安区养老机构"}]


def test_redis_is_real_and_answers():
    connection = ckan_redis.connect_to_redis()
    assert connection.ping() is True
    info = connection.info("server")
    assert info["redis_version"]
    assert tk.config["ckan.redis.url"].startswith("redis://127.0.0.1:")


def test_postgresql_is_real():
    version = model.Session.execute(model.sa.text("select version()")).scalar()
    assert version.startswith("PostgreSQL")


@pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")
def test_with_solr_down_a_dataset_is_refused_cleanly_and_nothing_is_stored(app, monkeypatch):
    """Why the stack starts Solr and waits for it before CKAN: without it
    CKAN cannot store datasets. The refusal must keep the database clean and
    must not reveal Solr's address."""
    sysadmin = factories.SysadminWithToken()
    org = make_department()
    before = model.Session.query(model.Package).count()
    monkeypatch.setitem(tk.config, "solr_url", "http://127.0.0.1:9/solr/unreachable")
    response = app.post("/api/3/action/package_create", headers={"Authorization": sysadmin["token"]},
                        json={"name": "during-outage", "title": "停机期间", "owner_org": org["id"],
                              "data_domain": "health", "update_frequency": "annual",
                              "open_condition": "unconditional"}, status=503)
    assert "检索服务暂时不可用" in response.json["error"]["message"]
    assert "search service is unavailable" in response.json["error"]["message"]
    assert "127.0.0.1:9" not in response.body and "solr/unreachable" not in response.body
    model.Session.remove()
    assert model.Session.query(model.Package).count() == before
    assert model.Package.get("during-outage") is None

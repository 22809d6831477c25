"""DCAT harvesting through ckanext-dcat's RDF parser with the portal's
profile and downloader: a Turtle catalog lands on the core schema; a source
naming a local system file or an internal address, or carrying an XML
external entity, yields nothing from it; what a portal running this
software exports at /catalog.ttl is harvested back whole."""
import http.server
import json
import threading
import urllib.request

import pytest
import rdflib
from rdflib import URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF, Namespace

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.tests import helpers

from portal_testing import make_department, run_job, site_context

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")

VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")

CATALOG = """
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix vcard: <http://www.w3.org/2006/vcard/ns#> .
@prefix freq: <http://publications.europa.eu/resource/authority/frequency/> .
@prefix access: <http://publications.europa.eu/resource/authority/access-right/> .

<http://data.example.gov.cn/catalog> a dcat:Catalog ;
    dcat:dataset <http://data.example.gov.cn/dataset/beds>, <http://data.example.gov.cn/dataset/metro> .

<http://data.example.gov.cn/dataset/beds> a dcat:Dataset ;
    dct:identifier "beds-2024" ;
    dct:title "上海市医院床位信息"@zh ;
    dct:description "全市医院床位数，按区统计。"@zh ;
    dcat:keyword "医院", "床位" ;
    dcat:theme <http://data.example.gov.cn/theme/health> ;
    dct:accrualPeriodicity freq:ANNUAL ;
    dct:accessRights access:PUBLIC ;
    dct:issued "2020-01-02"^^<http://www.w3.org/2001/XMLSchema#date> ;
    dct:modified "2024-03-05T08:00:00"^^<http://www.w3.org/2001/XMLSchema#dateTime> ;
    dcat:landingPage <http://data.example.gov.cn/dataset/beds> ;
    dcat:contactPoint [ a vcard:Organization ; vcard:hasEmail <mailto:data@wsjkw.example.gov.cn> ] ;
    dcat:distribution [ a dcat:Distribution ; dct:title "床位表" ;
        dcat:downloadURL <http://data.example.gov.cn/files/beds.csv> ; dct:format "CSV" ] .

<http://data.example.gov.cn/dataset/metro> a dcat:Dataset ;
    dct:identifier "metro-flow" ;
    dct:title "地铁实时客流"@zh ;
    dcat:theme "道路交通" ;
    dct:accrualPeriodicity freq:CONT ;
    dct:accessRights access:RESTRICTED .
"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns:dcat="http://www.w3.org/ns/dcat#" xmlns:dct="http://purl.org/dc/terms/">
  <dcat:Dataset rdf:about="http://evil.example/d1">
    <dct:identifier>xxe</dct:identifier>
    <dct:title>&secret;</dct:title>
  </dcat:Dataset>
</rdf:RDF>
"""


@pytest.fixture
def rdf_server():
    documents = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = documents.get(self.path.split("?", 1)[0])
            if body is None or "page=" in self.path:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/turtle" if self.path.endswith(".ttl") else "application/rdf+xml")
            self.end_headers()
            self.wfile.write(body.encode("utf-8"))

        def do_HEAD(self):
            self.send_response(200 if self.path in documents else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield documents, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def dcat_source(name, url, **config):
    return tk.get_action("harvest_source_create")(site_context(), {
        "name": name, "title": name, "url": url, "source_type": "shanghai_dcat",
        "owner_org": make_department(name=f"{name}-owner", title="上海市卫生健康委员会")["id"],
        "config": json.dumps(config),
    })


def harvest_errors() -> list[str]:
    from ckanext.harvest.model import HarvestGatherError, HarvestObjectError
    return [e.message for e in model.Session.query(HarvestGatherError)] + [
        e.message for e in model.Session.query(HarvestObjectError)]


def datasets() -> list[dict]:
    model.Session.remove()
    return helpers.call_action("package_search", q="*:*", fq="+dataset_type:dataset", rows=100)["results"]


def test_a_dcat_catalog_lands_on_the_core_schema(rdf_server, monkeypatch):
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    documents, base = rdf_server
    documents["/catalog.ttl"] = CATALOG
    run_job(dcat_source("dcat-city", f"{base}/catalog.ttl")["id"])
    found = {d["source_identifier"]: d for d in datasets()}
    assert set(found) == {"beds-2024", "metro-flow"}, harvest_errors()
    beds = found["beds-2024"]
    assert beds["title"] == "上海市医院床位信息"
    assert (beds["data_domain"], beds["update_frequency"], beds["open_condition"]) == ("health", "annual", "unconditional")
    assert (beds["first_published"], beds["last_updated"]) == ("2020-01-02", "2024-03-05")
    assert beds["contact"] == "data@wsjkw.example.gov.cn"
    assert [(r["format"], r["url"]) for r in beds["resources"]] == [("CSV", "http://data.example.gov.cn/files/beds.csv")]
    metro = found["metro-flow"]
    assert (metro["data_domain"], metro["update_frequency"], metro["open_condition"]) == (
        "road-transport", "realtime", "conditional")
    assert helpers.call_action("package_search", q="床位")["count"] == 1


# A DCAT-AP 3.0 record as another European-style portal writes it: only
# the EU vocabularies, no words of this portal's.
EU_ONLY = """
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix eu: <http://publications.europa.eu/resource/authority/> .

<http://data.example.gov.cn/dataset/air> a dcat:Dataset ;
    dct:identifier "air-quality" ;
    dct:title "空气质量月报"@zh, "Monthly air quality"@en ;
    dct:description "各监测站月均值。"@zh ;
    dcat:theme <http://publications.europa.eu/resource/authority/data-theme/ENVI> ;
    dct:accrualPeriodicity <http://publications.europa.eu/resource/authority/frequency/MONTHLY> ;
    dct:accessRights <http://publications.europa.eu/resource/authority/access-right/NON_PUBLIC> ;
    dct:publisher [ a foaf:Agent ; foaf:name "Shanghai Municipal Bureau of Ecology and Environment"@en,
                                              "上海市生态环境局"@zh ] ;
    dcat:distribution [ a dcat:Distribution ; dcat:accessURL <http://data.example.gov.cn/dataset/air> ;
        dcat:downloadURL <http://data.example.gov.cn/files/air.xlsx> ;
        dct:format <http://publications.europa.eu/resource/authority/file-type/XLSX> ],
      [ a dcat:Distribution ; dcat:accessURL <http://data.example.gov.cn/files/air.json> ;
        dcat:mediaType <https://www.iana.org/assignments/media-types/application/json> ] .
"""


def test_a_dcat_ap_record_in_eu_vocabularies_maps_onto_the_portal_codes(rdf_server, monkeypatch):
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    documents, base = rdf_server
    documents["/catalog.ttl"] = EU_ONLY
    run_job(dcat_source("dcat-eu", f"{base}/catalog.ttl")["id"])
    (air,) = datasets()
    assert (air["title"], air["data_domain"], air["update_frequency"], air["open_condition"]) == (
        "空气质量月报", "resources-environment", "monthly", "conditional"), harvest_errors()
    assert helpers.call_action("organization_show", id=air["owner_org"])["title"] == "上海市生态环境局"
    # (Conditional: the public sees gated addresses; the site sees the files.)
    resources = helpers.call_action("package_show", context=site_context(), id=air["id"])["resources"]
    assert sorted((r["format"], r["url"]) for r in resources) == [
        ("JSON", "http://data.example.gov.cn/files/air.json"), ("XLSX", "http://data.example.gov.cn/files/air.xlsx")]


UNTITLED = """
<http://data.example.gov.cn/dataset/untitled> a <http://www.w3.org/ns/dcat#Dataset> ;
    <http://purl.org/dc/terms/identifier> "no-title" .
"""


def test_a_dcat_source_is_reconciled_like_any_other(rdf_server, monkeypatch):
    """Added, unchanged, updated, withdrawn and rejected-with-a-reason, in
    the same job report as every source; datasets without a publisher go to
    the department that owns the source, not a copy of it."""
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    documents, base = rdf_server
    documents["/catalog.ttl"] = CATALOG + UNTITLED
    source = dcat_source("dcat-reconciled", f"{base}/catalog.ttl", max_withdraw_share=0.6)
    first = run_job(source["id"])
    assert (first["added"], first["rejected"]) == (2, 1), harvest_errors()
    rejection = helpers.call_action("shanghai_harvest_report", id=first["job_id"])["rejections"][0]
    assert (rejection["identity"], rejection["field"], rejection["code"]) == ("no-title", "title", "missing-required")
    assert "title" in rejection["reason_zh"] and "the required field title is empty" in rejection["reason_en"]
    owners = {d["organization"]["name"] for d in datasets()}
    assert owners == {"dcat-reconciled-owner"}

    again = run_job(source["id"])
    assert (again["added"], again["updated"], again["unchanged"], again["withdrawn"]) == (0, 0, 2, 0)

    without_metro = CATALOG[:CATALOG.index("<http://data.example.gov.cn/dataset/metro> a dcat:Dataset")]
    documents["/catalog.ttl"] = without_metro.replace("上海市医院床位信息", "上海市医院床位信息（2025年）")
    third = run_job(source["id"])
    assert (third["added"], third["updated"], third["unchanged"], third["withdrawn"]) == (0, 1, 0, 1)
    assert [d["title"] for d in datasets()] == ["上海市医院床位信息（2025年）"]


REFUSED = """
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .

<http://data.example.gov.cn/dataset/undated> a dcat:Dataset ;
    dct:identifier "undated" ; dct:title "发布日期不明的数据" ; dct:issued "下个月" .

<http://data.example.gov.cn/dataset/scripted> a dcat:Dataset ;
    dct:identifier "scripted" ; dct:title "落地页为脚本的数据" ;
    dcat:landingPage <javascript:alert(1)> .
"""


def test_a_dcat_record_with_an_unusable_optional_value_imports_flagged(rdf_server, monkeypatch):
    """An unreadable date (caught by the mapping) and a javascript: address
    (caught by the portal's validators at import) cost the record only that
    optional field: it imports, and its quality flag keeps the code it was
    raised with, the field and the value the catalog gave."""
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    documents, base = rdf_server
    documents["/catalog.ttl"] = CATALOG + REFUSED
    report = run_job(dcat_source("dcat-refused", f"{base}/catalog.ttl")["id"])
    assert (report["added"], report["rejected"], report["flagged"]) == (4, 0, 2), harvest_errors()
    flags = {r["identity"]: r for r in
             helpers.call_action("shanghai_harvest_report", id=report["job_id"])["warnings"]}
    undated, scripted = flags["undated"], flags["scripted"]
    assert (undated["code"], undated["field"], undated["value"]) == ("bad-date", "first_published", "下个月")
    assert "下个月" in undated["reason_zh"] and "is not a date" in undated["reason_en"]
    assert "left empty" in undated["reason_en"]
    assert (scripted["code"], scripted["field"], scripted["value"]) == (
        "bad-url", "url", "javascript:alert(1)")
    # The validator's message, each language in its own text.
    assert scripted["reason_zh"].startswith("校验未通过：网址只能使用 http 或 https，不接受「javascript:」")
    assert scripted["reason_en"].startswith(
        "Failed validation: Only http and https addresses are accepted, not javascript:")
    assert not [d for d in datasets() if d.get("url", "").startswith("javascript")]


@pytest.mark.parametrize("url", ["/etc/passwd", "file:///etc/passwd", "http://169.254.169.254/latest/meta-data/"])
def test_a_source_naming_a_system_file_or_internal_address_reads_nothing(url):
    run_job(dcat_source("dcat-hostile", url)["id"])
    assert datasets() == []
    from ckanext.harvest.model import HarvestGatherError
    messages = [e.message for e in model.Session.query(HarvestGatherError)]
    assert messages and all("root:" not in m for m in messages)
    assert any("拒绝" in m or "不在允许的目录" in m for m in messages)


def test_an_xml_external_entity_is_not_expanded(rdf_server, monkeypatch):
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    documents, base = rdf_server
    documents["/catalog.rdf"] = XXE
    run_job(dcat_source("dcat-xxe", f"{base}/catalog.rdf")["id"])
    assert all("root:" not in (d.get("title") or "") for d in datasets())


# Every field of the core schema, as a department fills it in.
CONDITIONAL_PRODUCT = dict(
    name="hospital-beds", title="上海市医院床位信息", notes="全市医院床位数，按区统计。", tag_string="医院,床位",
    data_domain="health", national_theme="culture-health-sports", first_published="2020-01-02",
    last_updated="2024-03-05", update_frequency="quarterly", open_condition="conditional",
    contact="wsjkw-data@shanghai.gov.cn", url="https://data.sh.gov.cn/view/detail/index.html?type=cp&id=AA1",
    record_count=16, temporal_start="2014-01-01", temporal_end="2023-12-31", spatial_coverage="上海市",
    license_id="cc-by", terms_of_use="仅限卫生政策研究使用，引用时注明来源。", source_identifier="SH-WSJKW-0001",
    resources=[{"name": "各区医院床位数", "description": "按区汇总的床位数", "format": "CSV",
                "url": "https://data.sh.gov.cn/files/beds.csv"},
               {"name": "床位查询接口", "format": "API", "url": "https://data.sh.gov.cn/api/beds"}],
)
OPEN_PRODUCT = dict(
    name="community-health-centres", title="社区卫生服务中心名录", notes="各区社区卫生服务中心的地址与电话。",
    tag_string="社区卫生,名录", data_domain="public-services", first_published="2019-06-01",
    last_updated="2019-06-01", update_frequency="static", open_condition="unconditional",
    contact="社区卫生处 021-23111111 转 2201", spatial_coverage="浦东新区", license_id="odc-odbl",
    resources=[{"name": "名录", "format": "XLSX", "url": "https://data.sh.gov.cn/files/centres.xlsx"}],
)
FIELDS = ("title", "notes", "data_domain", "national_theme", "first_published", "last_updated",
          "update_frequency", "open_condition", "contact", "url", "record_count", "temporal_start",
          "temporal_end", "spatial_coverage", "license_id", "terms_of_use", "owner_org")


def field_values(product: dict) -> dict:
    values = {field: product.get(field) or None for field in FIELDS}
    values["tags"] = sorted(tag["name"] for tag in product["tags"])
    # DCAT's distributions have no order.
    values["resources"] = sorted((r["name"], r.get("description") or "", r["format"]) for r in product["resources"])
    return values


def test_a_product_exported_by_a_sibling_portal_is_harvested_back_whole(served_portal, monkeypatch):
    """A portal running this software exports its products at /catalog.ttl;
    the DCAT harvester of another reads them back: a conditional product
    stays conditional and keeps its contact, and every other field of the
    schema arrives as the department entered it."""
    from ckanext.shanghai.access.policy import gated_url

    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    owner = make_department(name="health-commission", title="上海市卫生健康委员会")
    originals = [helpers.call_action("package_create", context=site_context(), owner_org=owner["id"], **fields)
                 for fields in (CONDITIONAL_PRODUCT, OPEN_PRODUCT)]
    # What any DCAT-AP aggregator reads: the EU access-right concept and a
    # vcard:Kind contact point with the address.
    graph = rdflib.Graph().parse(urllib.request.urlopen(f"{served_portal}/catalog.ttl", timeout=60).read(),
                                 format="turtle")
    by_title = {str(graph.value(dataset, DCTERMS.title)): dataset
                for dataset in graph.subjects(RDF.type, DCAT.Dataset)}
    conditional, open_product = originals
    rights = "http://publications.europa.eu/resource/authority/access-right/"
    assert graph.value(by_title[conditional["title"]], DCTERMS.accessRights) == URIRef(rights + "RESTRICTED")
    assert graph.value(by_title[open_product["title"]], DCTERMS.accessRights) == URIRef(rights + "PUBLIC")
    point = graph.value(by_title[conditional["title"]], DCAT.contactPoint)
    assert (point, RDF.type, VCARD.Kind) in graph
    assert graph.value(point, VCARD.hasEmail) == URIRef("mailto:wsjkw-data@shanghai.gov.cn")
    assert str(graph.value(point, VCARD.fn)) == "上海市卫生健康委员会"

    source = tk.get_action("harvest_source_create")(site_context(), {
        "name": "sibling-portal", "title": "兄弟平台", "url": f"{served_portal}/catalog.ttl",
        "source_type": "shanghai_dcat", "owner_org": owner["id"], "config": "{}"})
    report = run_job(source["id"])
    assert (report["added"], report["rejected"]) == (2, 0), harvest_errors()
    model.Session.remove()
    copies = {}
    for (name,) in model.Session.query(model.Package.name).filter(model.Package.name.like("dcat-%")):
        copy = helpers.call_action("package_show", context=site_context(), id=name)
        copies[copy["title"]] = copy
    assert set(copies) == {original["title"] for original in originals}

    for original in originals:
        assert field_values(copies[original["title"]]) == field_values(original)
    copy = copies[conditional["title"]]
    assert (copy["open_condition"], copy["contact"]) == ("conditional", "wsjkw-data@shanghai.gov.cn")
    assert copy["source_identifier"] == "SH-WSJKW-0001"
    # A conditional product's files are behind its portal's application
    # gate: the copy links there, not to the files themselves.
    assert sorted(r["url"] for r in copy["resources"]) == sorted(gated_url(conditional["id"], r["id"])
                                                                  for r in conditional["resources"])
    copy = copies[open_product["title"]]
    assert [r["url"] for r in copy["resources"]] == [r["url"] for r in open_product["resources"]]
    assert copy["source_identifier"].endswith(f"/dataset/{open_product['id']}")

"""Script in harvested records stays text: records whose every text field,
department name, tag and link carry script and event-handler payloads are
harvested, and the dataset, resource, search and department pages of the
running web app are parsed to show no script, event handler or
javascript: link came from them; payloads that cannot be made inert
(javascript: links, tags with markup) never reach the catalog."""
from __future__ import annotations

import lxml.html
import pytest

import ckan.model as model
from ckan.tests import helpers
from ckanext.shanghai.harvesters.mapping import department_slug

from portal_testing import create_source, run_job, write_export

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")

SCRIPT = '"><script>alert("xss-script")</script>'
HANDLER = "<img src=x onerror=alert('xss-handler')>"
SVG = "<svg/onload=alert('xss-svg')>"
PAYLOAD = SCRIPT + HANDLER + SVG
DEPARTMENT = f"上海市{SCRIPT}测试局"
MARKDOWN = (f"摘要 {PAYLOAD}\n\n[点我](javascript:alert('xss-md-link'))\n\n"
            "<a href=\"javascript:alert('xss-a')\">链接</a> <iframe src=\"javascript:alert('xss-iframe')\"></iframe>")

LINKED = {
    "name_prefix": "xss",
    "identity": {"from": "编号"},
    "department": {"from": "数据提供方"},
    "fields": {
        "title": "数据集名称", "notes": "摘要", "tags": {"from": "数据标签", "split": "[,，]"},
        "data_domain": {"from": "数据领域", "values": {"城市建设": "urban-construction"}},
        "update_frequency": {"from": "更新频度", "values": {"每年": "annual"}},
        "open_condition": {"from": "开放属性", "values": {"有条件开放": "conditional"}},
        "contact": "联系方式", "url": "链接", "spatial_coverage": "空间范围",
    },
    "resources": {"formats_from": "数据格式", "url_from": "链接"},
}


def record(number: str, link: str) -> dict:
    return {
        "编号": number, "数据集名称": f"xss数据{number}{PAYLOAD}", "摘要": MARKDOWN,
        "数据标签": f"安全,{HANDLER},正常标签", "数据领域": "城市建设", "更新频度": "每年",
        "开放属性": "有条件开放", "联系方式": f"sjkf@example.gov.cn{PAYLOAD}", "数据提供方": DEPARTMENT,
        "链接": link, "空间范围": PAYLOAD, "数据格式": f"CSV,{SVG}",
    }


def live_script(html: str) -> list[str]:
    """What in a page would run script that came from the payloads."""
    tree = lxml.html.fromstring(html)
    found = []
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag in ("script", "svg", "iframe") and "xss-" in (element.text_content() or "") + \
                " ".join(element.attrib.values()):
            found.append(lxml.html.tostring(element, encoding="unicode")[:200])
        for name, value in element.attrib.items():
            if name.lower().startswith("on") and "xss-" in value:
                found.append(f"<{element.tag} {name}={value!r}>")
            if name.lower() in ("href", "src", "action", "formaction") and \
                    value.strip().lower().replace("\t", "").startswith(("javascript:", "data:")):
                found.append(f"<{element.tag} {name}={value!r}>")
    return found


def test_payloads_in_every_harvested_field_render_inert_on_every_page(app, tmp_path):
    records = [record("001", "https://data.example.gov.cn/x.csv?q=\"><script>alert('xss-url')</script>"),
               record("002", "javascript:alert('xss-link')")]
    source = create_source("xss", str(write_export(tmp_path / "xss.json", records)), {"mapping": LINKED})
    report = run_job(source["id"])
    # The javascript: link cannot be shown safely: that record is rejected, with why.
    assert (report["added"], report["rejected"]) == (1, 1), report
    rejection = helpers.call_action("shanghai_harvest_report", id=report["job_id"])["rejections"][0]
    assert "Only http and https" in rejection["reason_en"] and "http" in rejection["reason_zh"]
    assert (rejection["identity"], rejection["code"], rejection["value"]) == (
        "002", "bad-url", "javascript:alert('xss-link')")
    assert rejection["field"] in ("url", "resources.url") and rejection["position"] == 2

    model.Session.remove()
    dataset = helpers.call_action("package_search", q="*:*", fq="+dataset_type:dataset")["results"][0]
    assert dataset["title"].endswith(PAYLOAD)  # stored as the source said, as text
    assert {t["name"] for t in dataset["tags"]} == {"安全", "正常标签"}  # markup in a tag: dropped
    resource = dataset["resources"][0]
    org = department_slug(DEPARTMENT)

    pages = {
        "dataset": f"/dataset/{dataset['name']}",
        "resource": f"/dataset/{dataset['name']}/resource/{resource['id']}",
        "search": "/dataset/?q=xss数据001",
        "search by tag": "/dataset/?tags=安全",
        "department": f"/organization/{org}",
        "department list": "/organization/",
        "department about": f"/organization/about/{org}",
        "activity": f"/dataset/activity/{dataset['name']}",
    }
    for what, url in pages.items():
        response = app.get(url)
        assert response.status_code == 200, what
        body = response.body
        assert "xss-script" in body or what in ("department list", "activity", "search by tag"), what
        assert live_script(body) == [], f"{what} page runs harvested script: {live_script(body)}"
        assert SCRIPT not in body and HANDLER not in body and SVG not in body, what


def test_the_checker_sees_live_script():
    """live_script is what the page test rests on: it must find each kind."""
    assert live_script(f"<html><body><p>{SCRIPT}</p></body></html>")
    assert live_script(f"<html><body>{HANDLER}</body></html>")
    assert live_script(f"<html><body>{SVG}</body></html>")
    assert live_script("<html><body><a href=\"java\tscript:alert('xss-a')\">x</a></body></html>")
    assert live_script("<html><body><p>&lt;script&gt;alert('xss-script')&lt;/script&gt;</p></body></html>") == []


def test_payloads_stay_quoted_text_in_the_dcat_output(app, tmp_path):
    """The machine-readable catalog carries the same harvested payloads as
    RDF literals: served as RDF (never as HTML), and read back by an RDF
    parser as exactly the text the source sent, so nothing breaks out."""
    import rdflib

    records = [record("003", "https://data.example.gov.cn/x.csv?q=\"><script>alert('xss-url')</script>")]
    source = create_source("xss-dcat", str(write_export(tmp_path / "xss.json", records)), {"mapping": LINKED})
    assert run_job(source["id"])["added"] == 1
    model.Session.remove()
    dataset = helpers.call_action("package_search", q="*:*", fq="+dataset_type:dataset")["results"][0]
    for url in (f"/dataset/{dataset['name']}.ttl", "/catalog.ttl"):
        response = app.get(url)
        assert response.status_code == 200, url
        assert "html" not in response.headers["Content-Type"], (url, response.headers["Content-Type"])
        graph = rdflib.Graph().parse(data=response.body, format="turtle")
        titles = {str(title) for title in graph.objects(None, rdflib.namespace.DCTERMS.title)}
        assert dataset["title"] in titles, url
        assert dataset["title"].endswith(PAYLOAD)

"""Hostile DCAT sources: rdflib expands internal XML entities (a few hundred
bytes of "billion laughs" keep it busy for minutes) and fetches remote
JSON-LD contexts from the server. The portal's DCAT harvester refuses both
before rdflib sees them, records why on the job, and asks no address."""
import http.server
import json
import threading
import time

import pytest

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.tests import helpers
from ckanext.harvest.model import HarvestGatherError

from portal_testing import make_department, run_job, site_context

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")

RDF_HEAD = ('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns:dcat="http://www.w3.org/ns/dcat#" xmlns:dct="http://purl.org/dc/terms/">')


def billion_laughs(levels: int = 9) -> str:
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{n} "{("&l" + str(n - 1) + ";") * 10}">' for n in range(1, levels + 1))
    return (f'<?xml version="1.0"?><!DOCTYPE rdf:RDF [{entities}]>{RDF_HEAD}'
            f'<dcat:Dataset rdf:about="http://evil.example/d"><dct:identifier>lol</dct:identifier>'
            f"<dct:title>&l{levels};</dct:title></dcat:Dataset></rdf:RDF>")


@pytest.fixture
def server():
    documents, hits = {}, []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = documents.get(self.path.split("?", 1)[0])
            if body is None or "page=" in self.path:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", body[1])
            self.end_headers()
            self.wfile.write(body[0].encode("utf-8"))

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield documents, hits, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def dcat_source(name, url):
    return tk.get_action("harvest_source_create")(site_context(), {
        "name": name, "title": name, "url": url, "source_type": "shanghai_dcat",
        "owner_org": make_department(name=f"{name}-owner")["id"], "config": json.dumps({}),
    })


def gather_errors() -> list[str]:
    model.Session.remove()
    return [e.message for e in model.Session.query(HarvestGatherError)]


def datasets() -> list[dict]:
    return helpers.call_action("package_search", q="*:*", fq="+dataset_type:dataset", rows=100)["results"]


def test_the_dcat_parser_is_refused_an_xml_bomb_and_finishes_fast(server, monkeypatch):
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    documents, _, base = server
    documents["/catalog.rdf"] = (billion_laughs(), "application/rdf+xml")
    started = time.monotonic()
    run_job(dcat_source("dcat-lol", f"{base}/catalog.rdf")["id"])
    assert time.monotonic() - started < 30
    assert datasets() == []
    assert any("XML bomb" in m and "实体声明" in m for m in gather_errors())


@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE rdf:RDF [<!ENTITY x SYSTEM "{base}/general-entity">]>',
    '<!DOCTYPE rdf:RDF [<!ENTITY % p SYSTEM "{base}/parameter-entity"> %p;]>',
])
def test_external_entities_in_dcat_are_refused_and_never_fetched(server, monkeypatch, doctype):
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    documents, hits, base = server
    body = (f'<?xml version="1.0"?>{doctype.format(base=base)}{RDF_HEAD}<dcat:Dataset rdf:about="http://x/d">'
            f"<dct:identifier>xxe</dct:identifier><dct:title>t</dct:title></dcat:Dataset></rdf:RDF>")
    documents["/catalog.rdf"] = (body, "application/rdf+xml")
    run_job(dcat_source("dcat-xxe-http", f"{base}/catalog.rdf")["id"])
    assert hits == ["/catalog.rdf"]
    assert datasets() == []
    assert any("entities" in m for m in gather_errors())


def test_a_remote_json_ld_context_is_never_fetched(server, monkeypatch):
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    documents, hits, base = server
    documents["/context.jsonld"] = (json.dumps({"@context": {"t": "http://purl.org/dc/terms/title"}}),
                                    "application/ld+json")
    documents["/catalog.jsonld"] = (json.dumps({
        "@context": [f"{base}/context.jsonld", {"dcat": "http://www.w3.org/ns/dcat#"}],
        "@id": "http://x/d", "@type": "dcat:Dataset", "t": "远程上下文"}), "application/ld+json")
    run_job(dcat_source("dcat-context", f"{base}/catalog.jsonld")["id"])
    assert "/context.jsonld" not in hits
    assert datasets() == []
    assert any("remote @context" in m for m in gather_errors())

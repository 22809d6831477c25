"""DCAT-AP 3.0 conformance as an aggregator checks it: the portal's catalog
(/catalog.ttl, /catalog.rdf, /catalog.jsonld) and each product's own DCAT,
served by the portal under gunicorn, validated with SEMIC's DCAT-AP 3.0.1
SHACL shapes give no violation, for products of every department schema
under both open conditions; and they use the controlled vocabularies."""
import urllib.request

import pytest
import rdflib
from rdflib import URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS

from ckan.tests import helpers

from dcat_testing import every_field_product, product_types, shapes_graph, violations
from portal_testing import make_department, site_context

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")

EU = "http://publications.europa.eu/resource/authority/"


def fetch(url: str, fmt: str) -> rdflib.Graph:
    with urllib.request.urlopen(url, timeout=60) as response:
        return rdflib.Graph().parse(data=response.read(), format=fmt)


@pytest.fixture
def products():
    department = make_department(name="health-commission", title="上海市卫生健康委员会（上海市中医药管理局）")
    return [helpers.call_action("package_create", context=site_context(), owner_org=department["id"],
                                **every_field_product(kind, condition, number))
            for number, (kind, condition) in enumerate(
                (kind, condition) for kind in product_types() for condition in ("unconditional", "conditional"))]


def test_the_catalog_and_every_product_conform_to_dcat_ap_3(served_portal, products):
    shapes = shapes_graph()
    assert len({product["type"] for product in products}) == len(product_types()) >= 11
    for path, fmt in (("/catalog.ttl", "turtle"), ("/catalog.rdf", "xml"), ("/catalog.jsonld", "json-ld")):
        graph = fetch(served_portal + path, fmt)
        assert len(set(graph.subjects(RDF.type, DCAT.Dataset))) == len(products)
        assert violations(graph, shapes) == [], path
    for product in products:
        graph = fetch(f"{served_portal}/dataset/{product['name']}.ttl", "turtle")
        assert violations(graph, shapes) == [], product["name"]


def test_the_catalog_speaks_the_eu_vocabularies(served_portal, products):
    """What an aggregator's dashboard reads: the EU frequency, access
    rights, data themes and file types, IANA media types, a publisher named
    in zh and en, an access URL on every distribution."""
    graph = fetch(served_portal + "/catalog.ttl", "turtle")
    by_name = {str(graph.value(dataset, URIRef("https://data.sh.gov.cn/ns/core#name"))): dataset
               for dataset in graph.subjects(RDF.type, DCAT.Dataset)}
    for product in products:
        dataset = by_name[product["name"]]
        assert graph.value(dataset, DCTERMS.accrualPeriodicity) == URIRef(EU + "frequency/QUARTERLY")
        rights = "RESTRICTED" if product["open_condition"] == "conditional" else "PUBLIC"
        assert graph.value(dataset, DCTERMS.accessRights) == URIRef(EU + "access-right/" + rights)
        themes = set(graph.objects(dataset, DCAT.theme))
        assert URIRef(EU + "data-theme/HEAL") in themes
        national = URIRef("https://data.sh.gov.cn/ns/core#national-theme/culture-health-sports")
        assert national in themes and (national, RDF.type, SKOS.Concept) in graph
        publisher = graph.value(dataset, DCTERMS.publisher)
        assert (publisher, RDF.type, FOAF.Agent) in graph
        assert {(str(name), name.language) for name in graph.objects(publisher, FOAF.name)} == {
            ("上海市卫生健康委员会（上海市中医药管理局）", "zh"),
            ("Shanghai Municipal Health Commission (Shanghai Administration of Traditional Chinese Medicine)", "en")}
        assert graph.value(dataset, DCTERMS.title).language == "zh"
        distributions = list(graph.objects(dataset, DCAT.distribution))
        assert len(distributions) == 3
        assert all(graph.value(distribution, DCAT.accessURL) for distribution in distributions)
        formats = {graph.value(distribution, DCTERMS["format"]) for distribution in distributions}
        assert URIRef(EU + "file-type/CSV") in formats and URIRef(EU + "file-type/PDF") in formats
        media = {graph.value(distribution, DCAT.mediaType) for distribution in distributions}
        assert URIRef("https://www.iana.org/assignments/media-types/text/csv") in media
    # The PDF without a link: its access URL is the product's page.
    dataset = by_name[products[0]["name"]]
    pdf = next(d for d in graph.objects(dataset, DCAT.distribution)
               if graph.value(d, DCTERMS["format"]) == URIRef(EU + "file-type/PDF"))
    assert str(graph.value(pdf, DCAT.accessURL)) == f"{served_portal}/{products[0]['type']}/{products[0]['name']}"

"""The DCAT-AP 3.0.1 shapes the conformance test validates with catch what
an aggregator would: a distribution without an access URL, a format as a
plain literal, an update frequency outside the EU table, an untyped
publisher; and pass the same product written as the portal now writes it."""
import rdflib

from dcat_testing import violations

PREFIXES = """
@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dct: <http://purl.org/dc/terms/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix freq: <http://publications.europa.eu/resource/authority/frequency/> .
@prefix ft: <http://publications.europa.eu/resource/authority/file-type/> .
"""

OLD_STYLE = PREFIXES + """
<http://portal.example/dataset/1> a dcat:Dataset ;
    dct:title "上海市医院床位信息"@zh ; dct:description "全市医院床位数"@zh ;
    dct:accrualPeriodicity <http://portal.example/ns#quarterly> ;
    dct:publisher [ foaf:name "上海市卫生健康委员会"@zh ] ;
    dcat:distribution <http://portal.example/dataset/1/resource/1> .
<http://portal.example/dataset/1/resource/1> a dcat:Distribution ;
    dct:format "CSV" ; dcat:downloadURL <http://portal.example/files/beds.csv> .
"""

CONFORMANT = PREFIXES + """
<http://portal.example/dataset/1> a dcat:Dataset ;
    dct:title "上海市医院床位信息"@zh ; dct:description "全市医院床位数"@zh ;
    dct:accrualPeriodicity freq:QUARTERLY ;
    dct:publisher <http://portal.example/organization/health> ;
    dcat:distribution <http://portal.example/dataset/1/resource/1> .
<http://portal.example/organization/health> a foaf:Agent ; foaf:name "上海市卫生健康委员会"@zh .
freq:QUARTERLY a skos:Concept, dct:Frequency ; skos:prefLabel "quarterly"@en ;
    skos:inScheme <http://publications.europa.eu/resource/authority/frequency> .
ft:CSV a skos:Concept, dct:MediaTypeOrExtent ; skos:prefLabel "CSV"@en ;
    skos:inScheme <http://publications.europa.eu/resource/authority/file-type> .
<http://portal.example/dataset/1/resource/1> a dcat:Distribution ;
    dct:format ft:CSV ; dcat:accessURL <http://portal.example/files/beds.csv> .
"""


def kinds(document: str) -> set[tuple[str, str]]:
    found = violations(rdflib.Graph().parse(data=document, format="turtle"))
    return {(v["path"].rsplit("/", 1)[-1].rsplit("#", 1)[-1], v["constraint"].rsplit("#", 1)[-1]) for v in found}


def test_the_shapes_find_what_an_aggregator_would_complain_of():
    assert kinds(OLD_STYLE) >= {
        ("accessURL", "MinCountConstraintComponent"), ("format", "NodeKindConstraintComponent"),
        ("format", "ClassConstraintComponent"), ("accrualPeriodicity", "ClassConstraintComponent"),
        ("accrualPeriodicity", "NodeConstraintComponent"), ("publisher", "ClassConstraintComponent")}


def test_the_same_product_with_typed_eu_concepts_conforms():
    assert kinds(CONFORMANT) == set()

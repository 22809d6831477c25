"""DCAT-AP 3.0 serialisation of the portal's products (ckanext-dcat profile
``shanghai_portal``): what /catalog.ttl, /catalog.rdf, /catalog.jsonld and
each product's /dataset/<name>.ttl say. It conforms to the DCAT-AP 3.0.1
SHACL shapes (tests/integration/test_dcat_conformance.py): the EU
vocabularies for frequency, access rights, data themes, file types and
language, IANA media types, foaf:Agent publishers named in zh and en, vcard
contacts, typed landing pages and licences, an accessURL on every
distribution; each concept used is written with its type, label and scheme
(schemas/vocabularies/dcat.yaml), so a validator needs no other file.

Parsing stays with the harvesters' shanghai_core, which reads back every
term written here: the core fields through their DCAT terms, the rest (the
department schema's own fields, the dataset type, the portal's format
names) as ``sh:`` terms, so a product harvested from another portal running
this software arrives whole. Where DCAT-AP needs a value the department
left empty (a description, a landing page, an access URL), one is filled in
and marked ``sh:filledIn`` so that the harvester leaves it out again."""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import yaml
from rdflib import BNode, Literal, Namespace, URIRef
from rdflib.namespace import RDF, RDFS, SKOS, XSD

from ckanext.dcat.profiles import RDFProfile
from ckanext.dcat.profiles.base import DCAT, DCT, FOAF, VCARD
from ckanext.dcat.utils import catalog_uri, resource_uri

import ckanext.shanghai.schemas as schemas_package

__all__ = ["ShanghaiPortalProfile", "SH", "NATIONAL_THEME", "DOMAIN", "vocabularies",
           "contact_parts", "same_contact_detail", "CORE_FIELDS"]

# The portal's own terms for what DCAT has no word for.
SH = Namespace("https://data.sh.gov.cn/ns/core#")
# Concepts of the portal's two classifications (and their schemes, the
# same URIs without the trailing slash).
DOMAIN = "domain/"
NATIONAL_THEME = "national-theme/"
VOCABULARIES_FILE = Path(schemas_package.__file__).resolve().parent / "vocabularies" / "dcat.yaml"
# Fields every schema shares and DCAT terms carry; a department schema's
# other fields are written as sh:<field name>.
CORE_FIELDS = frozenset({
    "title", "name", "notes", "tag_string", "owner_org", "data_domain", "national_theme", "first_published",
    "last_updated", "update_frequency", "open_condition", "contact", "url", "record_count", "temporal_start",
    "temporal_end", "spatial_coverage", "license_id", "terms_of_use", "source_identifier", "quality_flags"})
# Dataset types that are not data products (written as plain datasets).
_NOT_PRODUCTS = frozenset({"application"})

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\d[\d\-(). ]{5,}\d")


@functools.lru_cache(maxsize=2)
def vocabularies(path: str | Path = VOCABULARIES_FILE) -> dict:
    """schemas/vocabularies/dcat.yaml, read once."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _telephone(number: str) -> str:
    """A number as a tel: URI may write it (RFC 3966 visual separators)."""
    return re.sub(r"\s+", "-", number.strip())


def contact_parts(contact: str) -> tuple[list[str], list[str]]:
    """(e-mail addresses, telephone numbers) in a contact text."""
    emails = _EMAIL.findall(contact)
    rest = _EMAIL.sub(" ", contact)
    phones = [_telephone(found) for found in _PHONE.findall(rest) if len(_digits(found)) >= 7]
    return emails, phones


def same_contact_detail(detail: str, text: str) -> bool:
    """Whether ``text`` holds this e-mail address or telephone number."""
    if "@" in detail:
        return detail.lower() in text.lower()
    return len(_digits(detail)) >= 7 and _digits(detail) in _digits(text)


def _uri(text: str) -> URIRef:
    return URIRef(text.strip().replace(" ", "%20"))


class ShanghaiPortalProfile(RDFProfile):
    """The portal's data products as DCAT-AP 3.0 dcat:Dataset."""

    def parse_dataset(self, dataset_dict, dataset_ref):
        return dataset_dict

    # -- concepts --

    def _concept(self, vocabulary: str, code: str, *extra_types) -> URIRef:
        """An EU concept, written with its type, label and scheme."""
        entry = vocabularies()[vocabulary]
        scheme = URIRef(entry["scheme"])
        concept = URIRef(f"{entry['scheme']}/{code}")
        self.g.add((concept, RDF.type, SKOS.Concept))
        for kind in extra_types:
            self.g.add((concept, RDF.type, kind))
        self.g.add((concept, SKOS.prefLabel, Literal(entry["labels"].get(code, code), lang="en")))
        self.g.add((concept, SKOS.inScheme, scheme))
        self.g.add((scheme, RDF.type, SKOS.ConceptScheme))
        self.g.add((scheme, DCT.title, Literal(entry["title"], lang="en")))
        return concept

    def _portal_concept(self, prefix: str, field: dict, code: str) -> URIRef:
        """A concept of one of the portal's classifications (data domain,
        national theme), labelled from the schema's choices in zh and en."""
        scheme = SH[prefix.rstrip("/")]
        concept = SH[prefix + code]
        self.g.add((concept, RDF.type, SKOS.Concept))
        self.g.add((concept, SKOS.inScheme, scheme))
        label = next((choice.get("label") for choice in field.get("choices", []) if choice["value"] == code), None)
        label = label if isinstance(label, dict) else {"zh_Hans_CN": code}
        for lang, key in (("zh", "zh_Hans_CN"), ("en", "en")):
            if label.get(key):
                self.g.add((concept, SKOS.prefLabel, Literal(label[key], lang=lang)))
        self.g.add((scheme, RDF.type, SKOS.ConceptScheme))
        title = field.get("label") if isinstance(field.get("label"), dict) else {}
        for lang, key in (("zh", "zh_Hans_CN"), ("en", "en")):
            if title.get(key):
                self.g.add((scheme, DCT.title, Literal(title[key], lang=lang)))
        return concept

    # -- the dataset --

    def graph_from_dataset(self, dataset_dict, dataset_ref):
        g = self.g
        for prefix, namespace in (("dcat", DCAT), ("dct", DCT), ("shanghai", SH), ("vcard", VCARD), ("foaf", FOAF),
                                  ("skos", SKOS)):
            g.bind(prefix, namespace)
        schema = _schema(dataset_dict.get("type") or "dataset")
        # The product's page on this portal (its URI is the dataset itself).
        product_page = URIRef(f"{catalog_uri().rstrip('/')}/{dataset_dict.get('type') or 'dataset'}/"
                              f"{dataset_dict['name']}")
        g.add((dataset_ref, RDF.type, DCAT.Dataset))
        g.add((dataset_ref, DCT.title, Literal(dataset_dict["title"], lang="zh")))
        if dataset_dict.get("notes"):
            g.add((dataset_ref, DCT.description, Literal(dataset_dict["notes"], lang="zh")))
        else:
            # DCAT-AP requires a description; the title stands in for it.
            g.add((dataset_ref, DCT.description, Literal(dataset_dict["title"], lang="zh")))
            g.add((dataset_ref, SH.filledIn, DCT.description))
        if dataset_dict.get("source_identifier"):
            g.add((dataset_ref, DCT.identifier, Literal(dataset_dict["source_identifier"])))
        g.add((dataset_ref, SH.name, Literal(dataset_dict["name"])))
        if dataset_dict.get("type") and dataset_dict["type"] not in _NOT_PRODUCTS:
            g.add((dataset_ref, SH.datasetType, Literal(dataset_dict["type"])))
        for tag in dataset_dict.get("tags", []):
            g.add((dataset_ref, DCAT.keyword, Literal(tag["name"], lang="zh")))
        g.add((dataset_ref, DCT.language, self._concept("language", "ZHO", DCT.LinguisticSystem)))
        for key, predicate in (("first_published", DCT.issued), ("last_updated", DCT.modified)):
            if dataset_dict.get(key):
                g.add((dataset_ref, predicate, Literal(dataset_dict[key], datatype=XSD.date)))
        frequency = dataset_dict.get("update_frequency")
        if frequency:
            g.add((dataset_ref, SH.updateFrequency, Literal(frequency)))
            code = vocabularies()["frequency"]["from_portal"].get(frequency)
            if code:
                g.add((dataset_ref, DCT.accrualPeriodicity, self._concept("frequency", code, DCT.Frequency)))
        open_condition = dataset_dict.get("open_condition")
        code = vocabularies()["access_right"]["from_portal"].get(open_condition)
        if code:
            g.add((dataset_ref, DCT.accessRights, self._concept("access_right", code, DCT.RightsStatement)))
        if dataset_dict.get("record_count") not in (None, ""):
            g.add((dataset_ref, SH.recordCount, Literal(dataset_dict["record_count"])))
        domain = dataset_dict.get("data_domain")
        if domain:
            g.add((dataset_ref, SH.dataDomain, Literal(domain)))
            g.add((dataset_ref, DCAT.theme, self._portal_concept(DOMAIN, _field(schema, "data_domain"), domain)))
            for theme in vocabularies()["data_theme"]["from_portal"].get(domain, []):
                g.add((dataset_ref, DCAT.theme, self._concept("data_theme", theme)))
        national_theme = dataset_dict.get("national_theme")
        if national_theme:
            g.add((dataset_ref, SH.nationalTheme, Literal(national_theme)))
            g.add((dataset_ref, DCAT.theme, self._portal_concept(
                NATIONAL_THEME, _field(schema, "national_theme"), national_theme)))
        self._temporal(dataset_ref, dataset_dict.get("temporal_start"), dataset_dict.get("temporal_end"))
        if dataset_dict.get("spatial_coverage"):
            location = BNode()
            g.add((dataset_ref, DCT.spatial, location))
            g.add((location, RDF.type, DCT.Location))
            g.add((location, SKOS.prefLabel, Literal(dataset_dict["spatial_coverage"], lang="zh")))
        license_ref = self._license_ref(dataset_dict)
        if license_ref is not None:
            g.add((dataset_ref, DCT.license, license_ref))
        if dataset_dict.get("terms_of_use"):
            rights = BNode()
            g.add((dataset_ref, DCT.rights, rights))
            g.add((rights, RDF.type, DCT.RightsStatement))
            g.add((rights, RDFS.label, Literal(dataset_dict["terms_of_use"], lang="zh")))
        if dataset_dict.get("url"):
            landing_page = _uri(dataset_dict["url"])
        else:
            landing_page = product_page
            g.add((dataset_ref, SH.filledIn, DCAT.landingPage))
        g.add((dataset_ref, DCAT.landingPage, landing_page))
        g.add((landing_page, RDF.type, FOAF.Document))
        org = dataset_dict.get("organization") or {}
        org_name = (org.get("title") or org.get("name")) if org else None
        if org:
            g.add((dataset_ref, DCT.publisher, self._agent(org)))
        if dataset_dict.get("contact"):
            self._contact_point(dataset_ref, dataset_dict["contact"], org_name)
        self._department_fields(dataset_ref, dataset_dict, schema)
        if dataset_dict.get("quality_flags"):
            # What this portal's harvest found in the product's source.
            flags = dataset_dict["quality_flags"]
            g.add((dataset_ref, SH.qualityFlags, Literal(
                flags if isinstance(flags, str) else json.dumps(flags, ensure_ascii=False, sort_keys=True))))
        for resource in dataset_dict.get("resources", []):
            self._distribution(dataset_ref, resource, license_ref, product_page)

    def _department_fields(self, dataset_ref, dataset_dict, schema: dict) -> None:
        """The department schema's own fields as sh:<field name>, one value
        each (a multiple choice: one per code)."""
        for field in schema.get("dataset_fields", []):
            name = field["field_name"]
            value = dataset_dict.get(name)
            if name in CORE_FIELDS or value in (None, "", []):
                continue
            for item in value if isinstance(value, list) else [value]:
                self.g.add((dataset_ref, SH[name], Literal(item)))

    def _agent(self, org: dict) -> URIRef:
        """The department as a foaf:Agent named in zh (and in en when
        schemas/vocabularies/dcat.yaml knows its English name)."""
        agent = URIRef(f"{catalog_uri().rstrip('/')}/organization/{org['name']}")
        name = org.get("title") or org["name"]
        self.g.add((agent, RDF.type, FOAF.Agent))
        self.g.add((agent, RDF.type, FOAF.Organization))
        self.g.add((agent, FOAF.name, Literal(name, lang="zh")))
        english = vocabularies()["publisher_names_en"].get(name)
        if english:
            self.g.add((agent, FOAF.name, Literal(english, lang="en")))
        return agent

    def _distribution(self, dataset_ref, resource: dict, license_ref, product_page: URIRef) -> None:
        g = self.g
        distribution = URIRef(resource_uri(resource))
        g.add((dataset_ref, DCAT.distribution, distribution))
        g.add((distribution, RDF.type, DCAT.Distribution))
        if resource.get("name"):
            g.add((distribution, DCT.title, Literal(resource["name"], lang="zh")))
        if resource.get("description"):
            g.add((distribution, DCT.description, Literal(resource["description"], lang="zh")))
        fmt = (resource.get("format") or "").strip()
        if fmt:
            g.add((distribution, SH["format"], Literal(fmt)))
            known = vocabularies()["file_type"]["formats"].get(fmt.upper())
            if known:
                g.add((distribution, DCT["format"],
                       self._concept("file_type", known["file_type"], DCT.MediaTypeOrExtent)))
                if known.get("media_type"):
                    media_type = URIRef(vocabularies()["file_type"]["media_type_base"] + known["media_type"])
                    g.add((distribution, DCAT.mediaType, media_type))
                    g.add((media_type, RDF.type, DCT.MediaType))
        if resource.get("url"):
            url = _uri(resource["url"])
            g.add((distribution, DCAT.accessURL, url))
            g.add((distribution, DCAT.downloadURL, url))
        else:
            # DCAT-AP requires an access URL: the product's page.
            g.add((distribution, DCAT.accessURL, product_page))
            g.add((distribution, SH.filledIn, DCAT.accessURL))
        if license_ref is not None:
            # DCAT-AP puts the licence on each distribution.
            g.add((distribution, DCT.license, license_ref))

    def _contact_point(self, dataset_ref, contact: str, org_name: str | None) -> None:
        """The contact as a vcard:Kind: its e-mail addresses and telephone
        numbers as vcard:hasEmail / vcard:hasTelephone; vcard:fn is the
        department when the contact is just one address or number, else the
        contact text itself (which then holds them)."""
        g = self.g
        point = BNode()
        g.add((dataset_ref, DCAT.contactPoint, point))
        g.add((point, RDF.type, VCARD.Kind))
        text = contact.strip()
        emails, phones = contact_parts(text)
        only_a_detail = text in emails or text in phones
        g.add((point, VCARD.fn, Literal(org_name if only_a_detail and org_name else text, lang="zh")))
        for email in emails:
            g.add((point, VCARD.hasEmail, URIRef(f"mailto:{email}")))
        for phone in phones:
            g.add((point, VCARD.hasTelephone, URIRef(f"tel:{phone}")))

    def _temporal(self, dataset_ref, start: str | None, end: str | None) -> None:
        if not start and not end:
            return
        period = BNode()
        self.g.add((dataset_ref, DCT.temporal, period))
        self.g.add((period, RDF.type, DCT.PeriodOfTime))
        for value, predicate in ((start, DCAT.startDate), (end, DCAT.endDate)):
            if value:
                self.g.add((period, predicate, Literal(value, datatype=XSD.date)))

    def _license_ref(self, dataset_dict):
        """The licence as a dct:LicenseDocument: its URL, or a blank node
        for a licence without one; titled either way."""
        if not dataset_dict.get("license_id"):
            return None
        document = URIRef(dataset_dict["license_url"]) if dataset_dict.get("license_url") else BNode()
        self.g.add((document, RDF.type, DCT.LicenseDocument))
        self.g.add((document, DCT.title, Literal(dataset_dict.get("license_title") or dataset_dict["license_id"])))
        return document

    # -- the catalog --

    def graph_from_catalog(self, catalog_dict, catalog_ref):
        from ckan.plugins import toolkit as tk

        g = self.g
        config = tk.config
        g.add((catalog_ref, RDF.type, DCAT.Catalog))
        g.add((catalog_ref, DCT.title, Literal(config.get("ckan.site_title"), lang="zh")))
        g.add((catalog_ref, DCT.title, Literal(config.get("ckanext.shanghai.dcat.title_en"), lang="en")))
        for lang in ("zh", "en"):
            g.add((catalog_ref, DCT.description,
                   Literal(config.get(f"ckanext.shanghai.dcat.description_{lang}"), lang=lang)))
        homepage = URIRef(config.get("ckan.site_url"))
        g.add((catalog_ref, FOAF.homepage, homepage))
        g.add((homepage, RDF.type, FOAF.Document))
        publisher = URIRef(f"{catalog_uri().rstrip('/')}#publisher")
        g.add((catalog_ref, DCT.publisher, publisher))
        g.add((publisher, RDF.type, FOAF.Agent))
        g.add((publisher, RDF.type, FOAF.Organization))
        for lang in ("zh", "en"):
            g.add((publisher, FOAF.name, Literal(config.get(f"ckanext.shanghai.dcat.publisher_{lang}"), lang=lang)))
        for code in ("ZHO", "ENG"):
            g.add((catalog_ref, DCT.language, self._concept("language", code, DCT.LinguisticSystem)))
        g.add((catalog_ref, DCAT.themeTaxonomy, URIRef(vocabularies()["data_theme"]["scheme"])))
        for prefix in (DOMAIN, NATIONAL_THEME):
            g.add((catalog_ref, DCAT.themeTaxonomy, SH[prefix.rstrip("/")]))
        schema = _schema("dataset")
        for prefix, name in ((DOMAIN, "data_domain"), (NATIONAL_THEME, "national_theme")):
            field = _field(schema, name)
            for choice in field.get("choices", []):
                self._portal_concept(prefix, field, choice["value"])
        entry = vocabularies()["data_theme"]
        self.g.add((URIRef(entry["scheme"]), RDF.type, SKOS.ConceptScheme))
        self.g.add((URIRef(entry["scheme"]), DCT.title, Literal(entry["title"], lang="en")))


def _schema(dataset_type: str) -> dict:
    from ckan.plugins import toolkit as tk

    return tk.h.scheming_get_dataset_schema(dataset_type) or tk.h.scheming_get_dataset_schema("dataset") or {}


def _field(schema: dict, name: str) -> dict:
    return next((field for field in schema.get("dataset_fields", []) if field["field_name"] == name), {})

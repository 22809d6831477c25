"""DCAT serialisation of the core schema (ckanext-dcat profile
``shanghai_portal``): what /catalog.ttl, /catalog.jsonld and each product's
/dataset/<name>.ttl say. Parsing stays with the harvesters' shanghai_core,
which reads back every term written here (a product harvested from another
portal running this software arrives whole); where DCAT-AP has a term, it
is the one used (dct:accessRights, a vcard:Kind contact point, dct:temporal,
dct:spatial, dct:license, dct:rights)."""
from __future__ import annotations

import re

from rdflib import BNode, Literal, Namespace, URIRef
from rdflib.namespace import RDF, RDFS, SKOS, XSD

from ckanext.dcat.profiles import RDFProfile
from ckanext.dcat.profiles.base import DCAT, DCT, FOAF, VCARD
from ckanext.dcat.utils import resource_uri

__all__ = ["ShanghaiPortalProfile", "SH", "ACCESS_RIGHT", "OPEN_CONDITION_RIGHTS", "NATIONAL_THEME",
           "contact_parts", "same_contact_detail"]

# The portal's own terms for the core fields DCAT has no word for.
SH = Namespace("https://data.sh.gov.cn/ns/core#")
# dcat:theme concepts of the portal's two classifications.
DOMAIN = "domain/"
NATIONAL_THEME = "national-theme/"
FREQUENCY = Namespace("http://publications.europa.eu/resource/authority/frequency/")
FREQUENCIES = {"realtime": "CONT", "daily": "DAILY", "weekly": "WEEKLY", "monthly": "MONTHLY",
               "quarterly": "QUARTERLY", "semiannual": "ANNUAL_2", "annual": "ANNUAL",
               "irregular": "IRREG", "static": "NEVER"}
# The EU access-right vocabulary DCAT-AP names for dct:accessRights: data
# opened on application is "restricted", not public.
ACCESS_RIGHT = Namespace("http://publications.europa.eu/resource/authority/access-right/")
OPEN_CONDITION_RIGHTS = {"unconditional": "PUBLIC", "conditional": "RESTRICTED"}

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\d[\d\-(). ]{5,}\d")


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


class ShanghaiPortalProfile(RDFProfile):
    """The portal's data products as dcat:Dataset with their core fields."""

    def parse_dataset(self, dataset_dict, dataset_ref):
        return dataset_dict

    def graph_from_dataset(self, dataset_dict, dataset_ref):
        g = self.g
        g.bind("dcat", DCAT)
        g.bind("dct", DCT)
        g.bind("sh", SH)
        g.bind("vcard", VCARD)
        g.add((dataset_ref, RDF.type, DCAT.Dataset))
        for key, predicate in (("title", DCT.title), ("notes", DCT.description),
                               ("source_identifier", DCT.identifier)):
            if dataset_dict.get(key):
                g.add((dataset_ref, predicate, Literal(dataset_dict[key], lang="zh")
                       if key != "source_identifier" else Literal(dataset_dict[key])))
        g.add((dataset_ref, SH.name, Literal(dataset_dict["name"])))
        for tag in dataset_dict.get("tags", []):
            g.add((dataset_ref, DCAT.keyword, Literal(tag["name"], lang="zh")))
        for key, predicate in (("first_published", DCT.issued), ("last_updated", DCT.modified)):
            if dataset_dict.get(key):
                g.add((dataset_ref, predicate, Literal(dataset_dict[key], datatype=XSD.date)))
        frequency = dataset_dict.get("update_frequency")
        if frequency:
            g.add((dataset_ref, SH.updateFrequency, Literal(frequency)))
            if frequency in FREQUENCIES:
                g.add((dataset_ref, DCT.accrualPeriodicity, FREQUENCY[FREQUENCIES[frequency]]))
        open_condition = dataset_dict.get("open_condition")
        if open_condition in OPEN_CONDITION_RIGHTS:
            g.add((dataset_ref, DCT.accessRights, ACCESS_RIGHT[OPEN_CONDITION_RIGHTS[open_condition]]))
        for key, predicate in (("data_domain", SH.dataDomain), ("national_theme", SH.nationalTheme),
                               ("record_count", SH.recordCount)):
            value = dataset_dict.get(key)
            if value not in (None, ""):
                g.add((dataset_ref, predicate, Literal(value)))
        for key, prefix in (("data_domain", DOMAIN), ("national_theme", NATIONAL_THEME)):
            if dataset_dict.get(key):
                g.add((dataset_ref, DCAT.theme, SH[prefix + dataset_dict[key]]))
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
            g.add((dataset_ref, DCAT.landingPage, URIRef(dataset_dict["url"].strip().replace(" ", "%20"))))
        org = dataset_dict.get("organization") or {}
        org_name = org.get("title") or org.get("name") if org else None
        if org:
            publisher = BNode()
            g.add((dataset_ref, DCT.publisher, publisher))
            g.add((publisher, RDF.type, FOAF.Organization))
            g.add((publisher, FOAF.name, Literal(org_name, lang="zh")))
        if dataset_dict.get("contact"):
            self._contact_point(dataset_ref, dataset_dict["contact"], org_name)
        for resource in dataset_dict.get("resources", []):
            distribution = URIRef(resource_uri(resource))
            g.add((dataset_ref, DCAT.distribution, distribution))
            g.add((distribution, RDF.type, DCAT.Distribution))
            if resource.get("name"):
                g.add((distribution, DCT.title, Literal(resource["name"], lang="zh")))
            if resource.get("description"):
                g.add((distribution, DCT.description, Literal(resource["description"], lang="zh")))
            if resource.get("format"):
                g.add((distribution, DCT["format"], Literal(resource["format"])))
            if resource.get("url"):
                g.add((distribution, DCAT.downloadURL, URIRef(resource["url"].strip().replace(" ", "%20"))))
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
        g.add((point, VCARD.fn, Literal(org_name, lang="zh") if only_a_detail and org_name else Literal(text)))
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
        """The licence as its URL, or a dct:LicenseDocument with its title
        for a licence without one."""
        if not dataset_dict.get("license_id"):
            return None
        if dataset_dict.get("license_url"):
            return URIRef(dataset_dict["license_url"])
        document = BNode()
        self.g.add((document, RDF.type, DCT.LicenseDocument))
        self.g.add((document, DCT.title, Literal(dataset_dict.get("license_title") or dataset_dict["license_id"])))
        return document

    def graph_from_catalog(self, catalog_dict, catalog_ref):
        g = self.g
        g.add((catalog_ref, RDF.type, DCAT.Catalog))
        from ckan.plugins import toolkit as tk

        g.add((catalog_ref, DCT.title, Literal(tk.config.get("ckan.site_title"), lang="zh")))
        g.add((catalog_ref, FOAF.homepage, URIRef(tk.config.get("ckan.site_url"))))

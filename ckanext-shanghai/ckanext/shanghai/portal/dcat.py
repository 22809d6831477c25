"""DCAT serialisation of the core schema (ckanext-dcat profile
``shanghai_portal``): what /catalog.ttl, /catalog.jsonld and each product's
/dataset/<name>.ttl say. Parsing stays with the harvesters' shanghai_core."""
from __future__ import annotations

from rdflib import BNode, Literal, Namespace, URIRef
from rdflib.namespace import RDF, XSD

from ckanext.dcat.profiles import RDFProfile
from ckanext.dcat.profiles.base import DCAT, DCT, FOAF, VCARD
from ckanext.dcat.utils import resource_uri

__all__ = ["ShanghaiPortalProfile", "SH"]

# The portal's own terms for the core fields DCAT has no word for.
SH = Namespace("https://data.sh.gov.cn/ns/core#")
FREQUENCY = Namespace("http://publications.europa.eu/resource/authority/frequency/")
FREQUENCIES = {"realtime": "CONT", "daily": "DAILY", "weekly": "WEEKLY", "monthly": "MONTHLY",
               "quarterly": "QUARTERLY", "semiannual": "ANNUAL_2", "annual": "ANNUAL",
               "irregular": "IRREG", "static": "NEVER"}


class ShanghaiPortalProfile(RDFProfile):
    """The portal's data products as dcat:Dataset with their core fields."""

    def parse_dataset(self, dataset_dict, dataset_ref):
        return dataset_dict

    def graph_from_dataset(self, dataset_dict, dataset_ref):
        g = self.g
        g.bind("dcat", DCAT)
        g.bind("dct", DCT)
        g.bind("sh", SH)
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
        for key, predicate in (("data_domain", SH.dataDomain), ("open_condition", SH.openCondition),
                               ("national_theme", SH.nationalTheme), ("record_count", SH.recordCount),
                               ("spatial_coverage", DCT.spatial)):
            value = dataset_dict.get(key)
            if value not in (None, ""):
                g.add((dataset_ref, predicate, Literal(value)))
        if dataset_dict.get("data_domain"):
            g.add((dataset_ref, DCAT.theme, SH["domain/" + dataset_dict["data_domain"]]))
        if dataset_dict.get("url"):
            g.add((dataset_ref, DCAT.landingPage, URIRef(dataset_dict["url"].strip().replace(" ", "%20"))))
        org = dataset_dict.get("organization") or {}
        if org:
            publisher = BNode()
            g.add((dataset_ref, DCT.publisher, publisher))
            g.add((publisher, RDF.type, FOAF.Organization))
            g.add((publisher, FOAF.name, Literal(org.get("title") or org.get("name"), lang="zh")))
        if dataset_dict.get("contact"):
            contact = BNode()
            g.add((dataset_ref, DCAT.contactPoint, contact))
            g.add((contact, RDF.type, VCARD.Kind))
            g.add((contact, VCARD.note, Literal(dataset_dict["contact"])))
        for resource in dataset_dict.get("resources", []):
            distribution = URIRef(resource_uri(resource))
            g.add((dataset_ref, DCAT.distribution, distribution))
            g.add((distribution, RDF.type, DCAT.Distribution))
            if resource.get("name"):
                g.add((distribution, DCT.title, Literal(resource["name"], lang="zh")))
            if resource.get("format"):
                g.add((distribution, DCT["format"], Literal(resource["format"])))
            if resource.get("url"):
                g.add((distribution, DCAT.downloadURL, URIRef(resource["url"].strip().replace(" ", "%20"))))

    def graph_from_catalog(self, catalog_dict, catalog_ref):
        g = self.g
        g.add((catalog_ref, RDF.type, DCAT.Catalog))
        from ckan.plugins import toolkit as tk

        g.add((catalog_ref, DCT.title, Literal(tk.config.get("ckan.site_title"), lang="zh")))
        g.add((catalog_ref, FOAF.homepage, URIRef(tk.config.get("ckan.site_url"))))

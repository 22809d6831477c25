"""DCAT harvesting: a DCAT catalog fetched through the portal's bounded,
SSRF-checked downloader (ckanext-dcat's own harvester reads any local path a
source names and has no timeouts), parsed by ckanext-dcat with a profile that
maps DCAT onto the core schema (data domain and national theme, update
frequency, open condition, dates, time covered, area, licence, terms of use,
contact, publisher), then mapped (mappings/dcat.yaml) and reconciled by the
shared stage runner like every other source. It reads every term the
portal's own DCAT export (ckanext.shanghai.portal.dcat) writes."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from typing import Any, Iterator

from urllib.parse import unquote

import rdflib.util
from rdflib import BNode, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDFS, Namespace

import ckan.model as model
import ckan.plugins as plugins
from ckanext.dcat.processors import RDFParser, RDFParserException
from ckanext.dcat.profiles.base import RDFProfile
from ckanext.harvest.interfaces import IHarvester

from ckanext.shanghai.files import fetching
from ckanext.shanghai.files import readers
from ckanext.shanghai.harvesters import pipeline
from ckanext.shanghai.messages import Message
from ckanext.shanghai.portal.dcat import NATIONAL_THEME, SH, same_contact_detail

log = logging.getLogger(__name__)

VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
# A catalog longer than this many pages is cut off as broken (a loop of
# hydra:next links, say): the job then fails closed.
MAX_PAGES = 1000

# EU frequency vocabulary (and our own codes) -> update_frequency codes.
FREQUENCIES = {
    "CONT": "realtime", "UPDATE_CONT": "realtime", "1MIN": "realtime", "HOURLY": "realtime",
    "DAILY": "daily", "WEEKLY": "weekly", "MONTHLY": "monthly", "QUARTERLY": "quarterly",
    "ANNUAL_2": "semiannual", "ANNUAL": "annual", "IRREG": "irregular", "NEVER": "static",
    "realtime": "realtime", "daily": "daily", "weekly": "weekly", "monthly": "monthly",
    "quarterly": "quarterly", "semiannual": "semiannual", "annual": "annual",
    "irregular": "irregular", "static": "static",
}
# EU access-right vocabulary (and a rights statement's words) -> open_condition codes.
ACCESS_RIGHTS = {"PUBLIC": "unconditional", "RESTRICTED": "conditional", "NON_PUBLIC": "conditional",
                 "无条件开放": "unconditional", "有条件开放": "conditional"}
DOMAINS = {
    "urban-construction": "城市建设", "public-services": "民生服务", "economic-development": "经济建设",
    "resources-environment": "资源环境", "education-science": "教育科技", "public-safety": "公共安全",
    "health": "卫生健康", "culture-leisure": "文化休闲", "organisations": "机构团体",
    "road-transport": "道路交通", "credit-services": "信用服务", "social-development": "社会发展",
}


def _last_segment(value: str) -> str:
    return value.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _date(value: str | None) -> str:
    return value[:10] if value else ""


class ShanghaiCoreProfile(RDFProfile):
    """DCAT -> the portal's core dataset schema (parse only)."""

    def parse_dataset(self, dataset_dict, dataset_ref):
        identifier = self._object_value(dataset_ref, DCTERMS.identifier) or str(dataset_ref)
        dataset_dict["title"] = self._object_value(dataset_ref, DCTERMS.title)
        dataset_dict["notes"] = self._object_value(dataset_ref, DCTERMS.description)
        dataset_dict["name"] = "dcat-" + hashlib.sha1(identifier.encode("utf-8")).hexdigest()[:20]
        dataset_dict["source_identifier"] = identifier
        dataset_dict["tags"] = [{"name": k} for k in self._keywords(dataset_ref) if 2 <= len(k) <= 100]
        dataset_dict["data_domain"] = self._domain(dataset_ref)
        frequency = self._object_value(dataset_ref, DCTERMS.accrualPeriodicity)
        dataset_dict["update_frequency"] = FREQUENCIES.get(_last_segment(frequency), "irregular")
        dataset_dict["open_condition"] = self._open_condition(dataset_ref)
        dataset_dict["national_theme"] = self._national_theme(dataset_ref)
        dataset_dict["first_published"] = _date(self._object_value(dataset_ref, DCTERMS.issued))
        dataset_dict["last_updated"] = _date(self._object_value(dataset_ref, DCTERMS.modified))
        start, end = self._time_interval(dataset_ref, DCTERMS.temporal, dcat_ap_version=2)
        dataset_dict["temporal_start"], dataset_dict["temporal_end"] = _date(start), _date(end)
        dataset_dict["spatial_coverage"] = self._spatial(dataset_ref, DCTERMS.spatial)["text"] or ""
        dataset_dict["record_count"] = self._object_value(dataset_ref, SH.recordCount)
        dataset_dict["license_id"] = self._license_id(dataset_ref)
        dataset_dict["terms_of_use"] = self._access_rights(dataset_ref, DCTERMS.rights)
        dataset_dict["url"] = self._object_value(dataset_ref, DCAT.landingPage)
        dataset_dict["contact"] = self._contact(dataset_ref)
        dataset_dict["publisher"] = self._publisher(dataset_ref)
        dataset_dict["resources"] = [self._resource(distribution) for distribution in self._distributions(dataset_ref)]
        # ckanext-dcat's harvester records its guid as an extra.
        dataset_dict.setdefault("extras", [])
        return dataset_dict

    def _open_condition(self, dataset_ref) -> str:
        """dct:accessRights: an EU access-right concept, or a rights
        statement (text, or a dct:RightsStatement's label) naming one."""
        rights = self._object(dataset_ref, DCTERMS.accessRights)
        if rights is None:
            return "unconditional"
        if isinstance(rights, URIRef):
            return ACCESS_RIGHTS.get(_last_segment(str(rights)), "unconditional")
        text = str(rights) if isinstance(rights, Literal) else self._object_value(rights, RDFS.label)
        return ACCESS_RIGHTS.get(_last_segment(text.strip()), "unconditional")

    def _national_theme(self, dataset_ref) -> str:
        prefix = str(SH[NATIONAL_THEME])
        for theme in self._object_value_list(dataset_ref, DCAT.theme):
            if theme.startswith(prefix):
                return theme[len(prefix):]
        return ""

    def _license_id(self, dataset_ref) -> str:
        """The licence of the dataset, else of its first distribution that
        has one known to the portal (by URL, then by title)."""
        by_url, by_title = {}, {}
        for license_id, license in model.Package.get_license_register().items():
            if license.url:
                by_url[license.url] = license_id
            by_title[license.title] = license_id
        for subject in (dataset_ref, *self._distributions(dataset_ref)):
            for license in self.g.objects(subject, DCTERMS.license):
                found = by_url.get(str(license)) if isinstance(license, URIRef) else None
                found = found or by_title.get(self._object_value(license, DCTERMS.title))
                if found:
                    return found
        return ""

    def _domain(self, dataset_ref) -> str:
        for theme in self._object_value_list(dataset_ref, DCAT.theme):
            if theme.startswith(str(SH[NATIONAL_THEME])):
                continue
            segment = _last_segment(theme)
            if segment in DOMAINS:
                return segment
            for code, label in DOMAINS.items():
                if label in theme:
                    return code
        return "social-development"

    def _publisher(self, dataset_ref) -> str:
        for publisher in self.g.objects(dataset_ref, DCTERMS.publisher):
            name = self._object_value(publisher, FOAF.name)
            if name:
                return name
        return ""

    def _contact(self, dataset_ref) -> str:
        """The first contact point as the contact field: its vcard:fn when
        that text holds its e-mail address or telephone number (the portal's
        own export writes a contact that is more than an address so), else
        the address, else the number, else the name."""
        for point in self.g.objects(dataset_ref, DCAT.contactPoint):
            name = self._object_value(point, VCARD.fn)
            details = [*self._vcard_values(point, VCARD.hasEmail, "mailto:"),
                       *self._vcard_values(point, VCARD.hasTelephone, "tel:")]
            if name and any(same_contact_detail(detail, name) for detail in details):
                return name
            if details or name:
                return details[0] if details else name
        return ""

    def _vcard_values(self, point, predicate, scheme: str) -> list[str]:
        """Values of a vcard property: a URI (mailto:, tel:), text, or a
        node with vcard:hasValue."""
        values = []
        for value in self.g.objects(point, predicate):
            if isinstance(value, BNode):
                value = self._object(value, VCARD.hasValue)
                if value is None:
                    continue
            text = str(value).strip()
            if text.lower().startswith(scheme):
                text = unquote(text[len(scheme):])
            if text:
                values.append(text)
        return values

    def _resource(self, distribution) -> dict:
        url = self._object_value(distribution, DCAT.downloadURL) or self._object_value(distribution, DCAT.accessURL)
        media = self._object_value(distribution, DCTERMS.format) or self._object_value(distribution, DCAT.mediaType)
        return {"url": url, "name": self._object_value(distribution, DCTERMS.title) or _last_segment(media or url),
                "description": self._object_value(distribution, DCTERMS.description),
                "format": _last_segment(media).upper() if media else ""}


def flatten(dataset: dict[str, Any], default_publisher: str) -> dict[str, Any]:
    """A dataset parsed by ShanghaiCoreProfile as the flat record
    mappings/dcat.yaml reads (``publisher`` falls back to the department
    that owns the harvest source)."""
    return {
        "identifier": dataset.get("source_identifier"),
        "title": dataset.get("title"),
        "notes": dataset.get("notes"),
        "tags": "|".join(tag["name"] for tag in dataset.get("tags") or []),
        "data_domain": dataset.get("data_domain"),
        "national_theme": dataset.get("national_theme"),
        "update_frequency": dataset.get("update_frequency"),
        "open_condition": dataset.get("open_condition"),
        "first_published": dataset.get("first_published"),
        "last_updated": dataset.get("last_updated"),
        "temporal_start": dataset.get("temporal_start"),
        "temporal_end": dataset.get("temporal_end"),
        "spatial_coverage": dataset.get("spatial_coverage"),
        "record_count": dataset.get("record_count"),
        "license_id": dataset.get("license_id"),
        "terms_of_use": dataset.get("terms_of_use"),
        "url": dataset.get("url"),
        "contact": dataset.get("contact"),
        "publisher": dataset.get("publisher") or default_publisher,
        "distributions": dataset.get("resources") or [],
    }


def catalog_records(url: str, limits: fetching.FetchLimits, default_publisher: str) -> Iterator[dict]:
    """The datasets of a DCAT catalog, page after page (hydra:next), each
    page fetched through the portal's downloader and parsed by ckanext-dcat
    with the portal's profile."""
    seen_pages = set()
    while url and url not in seen_pages and len(seen_pages) < MAX_PAGES:
        seen_pages.add(url)
        path = fetching.local_path(url, limits)
        downloaded = None
        if path is None:
            path = downloaded = fetching.download(url, limits)
        try:
            content = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise fetching.SourceFetchError("RDF 内容不是 UTF-8 编码", "The RDF is not UTF-8", code="bad-rdf")
        finally:
            if downloaded is not None:
                downloaded.unlink()
        unsafe = unsafe_rdf_reason(content)
        if unsafe:
            raise readers.SourceFormatError(unsafe.zh, unsafe.en, code=unsafe.code)
        parser = RDFParser(profiles=["shanghai_core"])
        try:
            parser.parse(content, _format=rdflib.util.guess_format(url.split("?", 1)[0]) or _sniff(content))
        except RDFParserException as error:
            raise readers.SourceFormatError("无法解析 RDF 内容", f"The RDF cannot be parsed: {str(error)[:200]}",
                                            code="bad-rdf")
        for dataset in parser.datasets():
            yield flatten(dataset, default_publisher)
        url = parser.next_page()


class ShanghaiDCATHarvester(pipeline.MappedSourceHarvester, plugins.SingletonPlugin):
    """DCAT RDF (Turtle, RDF/XML, JSON-LD) with safe fetching (DCAT 目录),
    reconciled like every portal source (added, updated, unchanged,
    withdrawn, rejected with reasons; fail closed)."""

    plugins.implements(IHarvester)

    default_mapping = "dcat"

    @contextlib.contextmanager
    def open_records(self, harvest_job, config: dict[str, Any], limits: fetching.FetchLimits):
        owner = model.Group.get(model.Package.get(harvest_job.source.id).owner_org)
        yield catalog_records(harvest_job.source.url.strip(), limits.for_pages(), owner.title if owner else "")

    # IHarvester

    def info(self):
        return {
            "name": "shanghai_dcat",
            "title": "DCAT 目录 DCAT catalog (RDF)",
            "description": "A DCAT catalog in Turtle, RDF/XML or JSON-LD, mapped onto the core schema. "
                           "DCAT 目录（Turtle、RDF/XML、JSON-LD）。",
            "form_config_interface": "Text",
        }


def unsafe_rdf_reason(content: str) -> Message | None:
    """Why RDF text must not reach rdflib (``unsafe-rdf``, or ``bad-rdf``
    for text that is not well-formed), or None. RDF/XML with entity
    declarations is refused: rdflib expands internal entities (a "billion
    laughs" document of a few hundred bytes keeps it busy for minutes).
    JSON-LD naming a remote @context is refused: rdflib would fetch that
    address from the server, past the harvester's address checks."""
    kind = _sniff(content)
    if kind == "xml":
        import defusedxml.ElementTree
        from defusedxml import DefusedXmlException
        from xml.etree.ElementTree import ParseError
        try:
            defusedxml.ElementTree.fromstring(content.encode("utf-8"), forbid_dtd=False,
                                              forbid_entities=True, forbid_external=True)
        except DefusedXmlException:
            return Message("unsafe-rdf", "RDF/XML 含有实体声明（可能是 XML 炸弹或外部实体攻击），已拒绝",
                           "The RDF/XML declares entities (an XML bomb or external entity attack); refused")
        except ParseError as error:
            return Message("bad-rdf", f"RDF/XML 格式错误：{error}", f"The RDF/XML is not well-formed: {error}")
        return None
    if kind == "json-ld":
        try:
            document = json.loads(content)
        except RecursionError:
            return Message("unsafe-rdf", "JSON-LD 嵌套过深，已拒绝", "The JSON-LD is nested too deeply; refused")
        except ValueError as error:
            return Message("bad-rdf", f"JSON-LD 不是合法的 JSON：{error}", f"The JSON-LD is not valid JSON: {error}")
        if _remote_contexts(document):
            return Message("unsafe-rdf", "JSON-LD 引用了远程 @context，服务器不会代为获取，已拒绝",
                           "The JSON-LD names a remote @context, which the server will not fetch; refused")
    return None


def _remote_contexts(document) -> bool:
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "@context" and _names_a_document(value):
                    return True
                if key == "@import":
                    return True
                pending.append(value)
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _names_a_document(context) -> bool:
    if isinstance(context, str):
        return True
    if isinstance(context, list):
        return any(isinstance(entry, str) or (isinstance(entry, dict) and "@import" in entry)
                   for entry in context)
    return isinstance(context, dict) and "@import" in context


def _sniff(content: str) -> str:
    head = content.lstrip()[:200]
    if head.startswith("{") or head.startswith("["):
        return "json-ld"
    if head.startswith("<"):
        return "xml"
    return "turtle"

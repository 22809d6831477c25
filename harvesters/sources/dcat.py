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
from ckanext.shanghai.portal.dcat import NATIONAL_THEME, SH, same_contact_detail, vocabularies

log = logging.getLogger(__name__)

VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
# A catalog longer than this many pages is cut off as broken (a loop of
# hydra:next links, say): the job then fails closed.
MAX_PAGES = 1000

# A rights statement's words -> open_condition codes.
RIGHTS_WORDS = {"无条件开放": "unconditional", "有条件开放": "conditional"}
DOMAINS = {
    "urban-construction": "城市建设", "public-services": "民生服务", "economic-development": "经济建设",
    "resources-environment": "资源环境", "education-science": "教育科技", "public-safety": "公共安全",
    "health": "卫生健康", "culture-leisure": "文化休闲", "organisations": "机构团体",
    "road-transport": "道路交通", "credit-services": "信用服务", "social-development": "社会发展",
}
# The sh: terms the core fields travel in (every other sh: term on a
# dataset is a department schema's own field, by its field name).
_CORE_TERMS = {SH.name, SH.updateFrequency, SH.dataDomain, SH.nationalTheme, SH.recordCount, SH.datasetType,
               SH.filledIn, SH["format"], SH.qualityFlags}


def _to_portal(vocabulary: str) -> dict[str, str]:
    """An EU vocabulary's codes (and the portal's own codes) -> portal codes."""
    entry = vocabularies()[vocabulary]
    codes = {code: code for code in entry.get("from_portal", {})}
    for portal_code, eu in entry.get("from_portal", {}).items():
        for code in eu if isinstance(eu, list) else [eu]:
            codes.setdefault(code, portal_code)
    codes.update(entry.get("to_portal", {}))
    return codes


def _last_segment(value: str) -> str:
    return value.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _date(value: str | None) -> str:
    return value[:10] if value else ""


class ShanghaiCoreProfile(RDFProfile):
    """DCAT -> the portal's core dataset schema (parse only)."""

    def parse_dataset(self, dataset_dict, dataset_ref):
        identifier = self._object_value(dataset_ref, DCTERMS.identifier) or str(dataset_ref)
        filled_in = set(self.g.objects(dataset_ref, SH.filledIn))
        dataset_dict["title"] = self._object_value(dataset_ref, DCTERMS.title)
        dataset_dict["notes"] = (
            "" if DCTERMS.description in filled_in else self._object_value(dataset_ref, DCTERMS.description))
        dataset_dict["name"] = "dcat-" + hashlib.sha1(identifier.encode("utf-8")).hexdigest()[:20]
        dataset_dict["source_identifier"] = identifier
        dataset_dict["tags"] = [{"name": k} for k in self._keywords(dataset_ref) if 2 <= len(k) <= 100]
        dataset_dict["data_domain"] = self._domain(dataset_ref)
        frequency = (self._object_value(dataset_ref, SH.updateFrequency)
                     or self._object_value(dataset_ref, DCTERMS.accrualPeriodicity))
        dataset_dict["update_frequency"] = _to_portal("frequency").get(_last_segment(frequency), "irregular")
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
        dataset_dict["url"] = "" if DCAT.landingPage in filled_in else self._object_value(dataset_ref, DCAT.landingPage)
        dataset_dict["contact"] = self._contact(dataset_ref)
        dataset_dict["publisher"] = self._publisher(dataset_ref)
        dataset_dict["resources"] = [self._resource(distribution) for distribution in self._distributions(dataset_ref)]
        dataset_dict["dataset_type"] = self._object_value(dataset_ref, SH.datasetType)
        dataset_dict["department_fields"] = self._department_fields(dataset_ref)
        dataset_dict["quality_flags"] = self._object_value(dataset_ref, SH.qualityFlags)
        # ckanext-dcat's harvester records its guid as an extra.
        dataset_dict.setdefault("extras", [])
        return dataset_dict

    def _department_fields(self, dataset_ref) -> dict[str, Any]:
        """Every other sh: term of the dataset by its local name (a
        department schema's field): its text, or a list of several."""
        fields: dict[str, Any] = {}
        for predicate, value in self.g.predicate_objects(dataset_ref):
            if not str(predicate).startswith(str(SH)) or predicate in _CORE_TERMS:
                continue
            name = str(predicate)[len(str(SH)):]
            if name in fields:
                fields[name] = sorted([*(fields[name] if isinstance(fields[name], list) else [fields[name]]),
                                       str(value)])
            else:
                fields[name] = str(value)
        return fields

    def _open_condition(self, dataset_ref) -> str:
        """dct:accessRights: an EU access-right concept, or a rights
        statement (text, or a dct:RightsStatement's label) naming one."""
        rights = self._object(dataset_ref, DCTERMS.accessRights)
        codes = {**_to_portal("access_right"), **RIGHTS_WORDS}
        if rights is None:
            return "unconditional"
        if isinstance(rights, URIRef):
            return codes.get(_last_segment(str(rights)), "unconditional")
        text = str(rights) if isinstance(rights, Literal) else self._object_value(rights, RDFS.label)
        return codes.get(_last_segment(text.strip()), "unconditional")

    def _national_theme(self, dataset_ref) -> str:
        own = self._object_value(dataset_ref, SH.nationalTheme)
        if own:
            return own
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
        """The portal's own domain (sh:dataDomain), else a theme ending in a
        domain's code or naming it, else the domain of the first EU data
        theme, else the broadest."""
        own = self._object_value(dataset_ref, SH.dataDomain)
        if own in DOMAINS:
            return own
        themes = sorted(self._object_value_list(dataset_ref, DCAT.theme))
        for theme in themes:
            if theme.startswith(str(SH[NATIONAL_THEME])):
                continue
            if _last_segment(theme) in DOMAINS:
                return _last_segment(theme)
            for code, label in DOMAINS.items():
                if label in theme:
                    return code
        eu_themes = _to_portal("data_theme")
        for theme in themes:
            if theme.startswith(vocabularies()["data_theme"]["scheme"]) and _last_segment(theme) in eu_themes:
                return eu_themes[_last_segment(theme)]
        return "social-development"

    def _publisher(self, dataset_ref) -> str:
        """The publisher's name in Chinese (else in no language, else any)."""
        for publisher in self.g.objects(dataset_ref, DCTERMS.publisher):
            names = [name for name in self.g.objects(publisher, FOAF.name) if isinstance(name, Literal)]
            names.sort(key=lambda name: (name.language != "zh", name.language is not None, str(name)))
            if names:
                return str(names[0])
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
        """A distribution as a resource: its download URL, else its access
        URL (unless that is only the product page the exporting portal
        filled in); its format as the portal named it (sh:format), else the
        EU file type's or the media type's."""
        url = self._object_value(distribution, DCAT.downloadURL)
        if not url and (distribution, SH.filledIn, DCAT.accessURL) not in self.g:
            url = self._object_value(distribution, DCAT.accessURL)
        fmt = self._object_value(distribution, SH["format"]) or self._format(distribution)
        return {"url": url, "name": self._object_value(distribution, DCTERMS.title) or fmt or _last_segment(url),
                "description": self._object_value(distribution, DCTERMS.description), "format": fmt}

    def _format(self, distribution) -> str:
        formats = vocabularies()["file_type"]["formats"]
        by_file_type = {entry["file_type"]: name for name, entry in reversed(formats.items())}
        by_media_type = {entry.get("media_type"): name for name, entry in reversed(formats.items())}
        for value in self.g.objects(distribution, DCTERMS.format):
            code = _last_segment(str(value))
            if isinstance(value, URIRef) and code in by_file_type:
                return by_file_type[code]
            return (self._object_value(value, RDFS.label) if isinstance(value, BNode) else code).upper()
        media = self._object_value(distribution, DCAT.mediaType)
        if media:
            kind = media.split("/media-types/", 1)[-1]
            return by_media_type.get(kind) or _last_segment(media).upper()
        return ""


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
        "dataset_type": dataset.get("dataset_type"),
        "quality_flags": dataset.get("quality_flags"),
        # A department schema's own fields, by their field names.
        **{name: value for name, value in (dataset.get("department_fields") or {}).items()
           if name not in _FLAT_KEYS},
    }


_FLAT_KEYS = frozenset({"identifier", "title", "notes", "tags", "data_domain", "national_theme", "update_frequency",
                        "open_condition", "first_published", "last_updated", "temporal_start", "temporal_end",
                        "spatial_coverage", "record_count", "license_id", "terms_of_use", "url", "contact",
                        "publisher", "distributions", "dataset_type", "quality_flags"})


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

"""The metadata quality score of a data product, after the EU data portal's
Metadata Quality Assessment (MQA): five dimensions, 405 points, four bands.
Each MQA indicator is adapted to the portal's metadata (see INDICATORS);
harvest quality flags and the link checker's results count in it.

A pure function of a package dict (as package_show, the validated dict of a
write, or a harvest mapping gives it) and the last link check of its
resources: no CKAN import, no database, no clock."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

__all__ = ["MAX_SCORE", "DIMENSIONS", "BANDS", "INDICATORS", "Indicator", "Check", "Assessment",
           "assess", "band_of", "band_label", "dimension_label", "LINK_OK", "LINK_BROKEN"]

MAX_SCORE = 405

# Dimension -> (maximum, label in each language), in the MQA's order.
DIMENSIONS: dict[str, tuple[int, dict[str, str]]] = {
    "findability": (100, {"zh_Hans_CN": "可发现性", "en": "Findability"}),
    "accessibility": (100, {"zh_Hans_CN": "可访问性", "en": "Accessibility"}),
    "interoperability": (110, {"zh_Hans_CN": "互操作性", "en": "Interoperability"}),
    "reusability": (75, {"zh_Hans_CN": "可重用性", "en": "Reusability"}),
    "contextuality": (20, {"zh_Hans_CN": "情境信息", "en": "Contextuality"}),
}

# The MQA's bands: (code, lowest score, label), best first.
BANDS: tuple[tuple[str, int, dict[str, str]], ...] = (
    ("excellent", 351, {"zh_Hans_CN": "优秀", "en": "Excellent"}),
    ("good", 221, {"zh_Hans_CN": "良好", "en": "Good"}),
    ("sufficient", 121, {"zh_Hans_CN": "合格", "en": "Sufficient"}),
    ("bad", 0, {"zh_Hans_CN": "较差", "en": "Bad"}),
)

# Link check outcomes as the checker stores them (assessment/links.py).
LINK_OK = "ok"
LINK_BROKEN = "broken"


@dataclass(frozen=True)
class Indicator:
    code: str
    dimension: str
    points: int
    # The MQA indicator it adapts, and what the portal checks instead.
    mqa: str
    # What to do to gain the points, in each language.
    fix_zh: str
    fix_en: str


INDICATORS: tuple[Indicator, ...] = (
    # Findability (100)
    Indicator("keywords", "findability", 30, "dcat:keyword",
              "添加数据标签（关键词）", "Add tags (keywords)"),
    Indicator("categories", "findability", 30, "dcat:theme",
              "填写数据领域或国家主题分类", "Give a data domain or a national theme"),
    Indicator("spatial", "findability", 20, "dct:spatial",
              "填写空间范围（如“上海市”或所属区）", "Give the geographic coverage (e.g. 上海市 or a district)"),
    Indicator("temporal", "findability", 20, "dct:temporal",
              "填写数据的时间范围（起或止）", "Give the time the data covers (from or to)"),
    # Accessibility (100)
    Indicator("access-url", "accessibility", 50, "dcat:accessURL, answered with HTTP 2xx/3xx",
              "添加数据资源，并修复无法访问的资源链接", "Add a resource, and repair resource links that do not answer"),
    Indicator("download-url", "accessibility", 20, "dcat:downloadURL",
              "为资源上传文件或填写下载链接", "Upload a file or give a download link for each resource"),
    Indicator("download-url-reachable", "accessibility", 30, "dcat:downloadURL, answered with HTTP 2xx/3xx",
              "确保下载链接可访问（链接检查通过后得分）",
              "Make the download links answer (points come once a link check succeeds)"),
    # Interoperability (110)
    Indicator("format", "interoperability", 20, "dct:format",
              "为每个资源填写数据格式", "Give every resource a format"),
    Indicator("media-type", "interoperability", 10, "dcat:mediaType",
              "使用有 IANA 媒体类型的格式（如 CSV、JSON、XLSX）",
              "Use formats with an IANA media type (CSV, JSON, XLSX ...)"),
    Indicator("format-vocabulary", "interoperability", 10, "dct:format from the EU file-type vocabulary",
              "使用欧盟文件类型表中的格式名称（如 CSV、XLSX）",
              "Name formats as the EU file-type table does (CSV, XLSX ...)"),
    Indicator("non-proprietary", "interoperability", 20, "non-proprietary format",
              "至少提供一种开放格式（CSV、JSON、XML 等）", "Offer at least one open format (CSV, JSON, XML ...)"),
    Indicator("machine-readable", "interoperability", 20, "machine-readable format",
              "至少提供一种机器可读格式（CSV、JSON、XLSX 等，而非 PDF 或图片）",
              "Offer at least one machine-readable format (CSV, JSON, XLSX ..., not PDF or images)"),
    Indicator("compliance", "interoperability", 30,
              "DCAT-AP compliance: its mandatory title and description, and no harvest quality flag",
              "填写标题和摘要，并修正采集时在源数据中发现的问题（见质量提示）",
              "Give a title and a description, and correct what the harvest found wrong in the source "
              "record (see the quality flags)"),
    # Reusability (75)
    Indicator("licence", "reusability", 20, "dct:license",
              "选择许可协议", "Choose a licence"),
    Indicator("licence-vocabulary", "reusability", 10, "dct:license from a known vocabulary",
              "使用平台许可协议列表中的协议", "Use a licence from the portal's list"),
    Indicator("access-rights", "reusability", 10, "dct:accessRights",
              "填写开放属性", "Give the open condition"),
    Indicator("access-rights-vocabulary", "reusability", 5, "dct:accessRights from its vocabulary",
              "开放属性使用“无条件开放”或“有条件开放”", "Use an open condition from the list"),
    Indicator("contact-point", "reusability", 20, "dcat:contactPoint",
              "填写联系方式", "Give a contact"),
    Indicator("publisher", "reusability", 10, "dct:publisher",
              "指定数据提供方", "Give the department that provides the data"),
    # Contextuality (20)
    Indicator("rights", "contextuality", 5, "dct:rights",
              "填写使用条款", "Give the terms of use"),
    Indicator("byte-size", "contextuality", 5, "dcat:byteSize",
              "填写数据量（条）或资源文件大小", "Give the number of records or the resources' file sizes"),
    Indicator("issued", "contextuality", 5, "dct:issued",
              "填写首次发布日期", "Give the date first published"),
    Indicator("modified", "contextuality", 5, "dct:modified",
              "填写更新日期", "Give the date last updated"),
)

# Formats (as the portal writes them, upper case) -> IANA media type.
MEDIA_TYPES = {
    "CSV": "text/csv", "JSON": "application/json", "XML": "application/xml",
    "XLSX": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "XLS": "application/vnd.ms-excel", "ODS": "application/vnd.oasis.opendocument.spreadsheet",
    "PDF": "application/pdf", "TXT": "text/plain", "HTML": "text/html",
    "GEOJSON": "application/geo+json", "KML": "application/vnd.google-earth.kml+xml",
    "RDF": "application/rdf+xml", "TTL": "text/turtle", "JSONLD": "application/ld+json",
    "DOC": "application/msword", "DOCX": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "ZIP": "application/zip", "JPG": "image/jpeg", "JPEG": "image/jpeg", "PNG": "image/png",
    "SHP": "application/vnd.shp", "GML": "application/gml+xml",
}
# Names of the EU file-type vocabulary (publications office "file-type").
EU_FILE_TYPES = frozenset(MEDIA_TYPES) | {"API", "WMS_SRVC", "WFS_SRVC", "RSS", "ATOM"}
NON_PROPRIETARY = frozenset({"CSV", "JSON", "XML", "ODS", "TXT", "HTML", "GEOJSON", "KML", "RDF", "TTL",
                             "JSONLD", "GML", "PDF", "PNG", "RSS", "ATOM"})
MACHINE_READABLE = frozenset({"CSV", "JSON", "XML", "XLSX", "XLS", "ODS", "GEOJSON", "KML", "RDF", "TTL",
                              "JSONLD", "GML", "SHP", "API", "WMS_SRVC", "WFS_SRVC", "RSS", "ATOM"})
# Spellings of the formats met in catalogs -> the name above.
_FORMAT_ALIASES = {"JSON-LD": "JSONLD", "TURTLE": "TTL", "EXCEL": "XLSX", "GEO-JSON": "GEOJSON",
                   "接口": "API", "API接口": "API", "TEXT": "TXT", "HTM": "HTML"}

# CKAN's own licence register (ckan/config/licenses, the ids a portal
# offers by default); a licence outside it gains "licence" but not
# "licence-vocabulary".
KNOWN_LICENCES = frozenset({
    "notspecified", "odc-pddl", "odc-odbl", "odc-by", "cc-zero", "cc-by", "cc-by-sa", "gfdl", "other-open",
    "other-pd", "other-at", "uk-ogl", "cc-nc", "other-nc", "other-closed",
})
_OPEN_CONDITIONS = frozenset({"unconditional", "conditional"})


@dataclass(frozen=True)
class Check:
    """One indicator's outcome for a product."""
    indicator: Indicator
    points: int
    # Why points were lost, beyond the indicator's fix (a broken link, a flag).
    details: tuple[dict[str, str], ...] = ()

    @property
    def lost(self) -> int:
        return self.indicator.points - self.points


@dataclass(frozen=True)
class Assessment:
    score: int
    band: str
    dimensions: dict[str, int]
    checks: tuple[Check, ...] = field(repr=False)

    def fixes(self) -> list[Check]:
        """What to fix, the most points first."""
        return sorted((check for check in self.checks if check.lost), key=lambda c: -c.lost)

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "band": self.band, "max": MAX_SCORE, "dimensions": dict(self.dimensions),
                "fixes": [{"code": c.indicator.code, "dimension": c.indicator.dimension, "points": c.lost,
                           "fix_zh": c.indicator.fix_zh, "fix_en": c.indicator.fix_en,
                           "details": list(c.details)} for c in self.fixes()]}


def band_of(score: int) -> str:
    for code, lowest, _labels in BANDS:
        if score >= lowest:
            return code
    return BANDS[-1][0]


def _label(labels: dict[str, str], language: str) -> str:
    return labels["zh_Hans_CN"] if language.startswith("zh") else labels["en"]


def band_label(band: str, language: str) -> str:
    for code, _lowest, labels in BANDS:
        if code == band:
            return _label(labels, language)
    return band


def dimension_label(dimension: str, language: str) -> str:
    return _label(DIMENSIONS[dimension][1], language) if dimension in DIMENSIONS else dimension


def _filled(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, tuple, dict)):
        return bool(value)
    return value is not None


def _tags(package: Mapping[str, Any]) -> list[str]:
    tags = [t.get("name") if isinstance(t, dict) else t for t in package.get("tags") or []]
    if not tags and isinstance(package.get("tag_string"), str):
        tags = package["tag_string"].split(",")
    return [t for t in tags if isinstance(t, str) and t.strip()]


def _format(resource: Mapping[str, Any]) -> str:
    text = str(resource.get("format") or "").strip().lstrip(".")
    upper = text.upper()
    return _FORMAT_ALIASES.get(upper, _FORMAT_ALIASES.get(text, upper))


def _flags(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError:
            return []
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict) and isinstance(item.get("code"), str)]


def _share(points: int, passed: int, total: int) -> int:
    return points * passed // total if total else 0


def _link_detail(resource: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, str]:
    name = str(resource.get("name") or resource.get("url") or resource.get("id") or "")
    reason_zh = state.get("reason_zh") or "无法访问"
    reason_en = state.get("reason_en") or "does not answer"
    return {"zh": f"资源“{name}”的链接：{reason_zh}", "en": f"The link of resource “{name}”: {reason_en}"}


def assess(package: Mapping[str, Any], links: Mapping[str, Mapping[str, Any]] | None = None,
           known_licences: Iterable[str] = KNOWN_LICENCES) -> Assessment:
    """The product's score.

    :param package: a package dict (``tags`` or ``tag_string``; resources
        with ``url``, ``url_type``, ``format``, ``size``; ``quality_flags``
        as JSON text or a list)
    :param links: the last link check of its resources, by resource id:
        ``{"status": "ok"|"broken", "reason_zh": ..., "reason_en": ...}``;
        a resource missing here has not been checked
    :returns: the score, its band, the points per dimension and every check
    """
    links = links or {}
    licences = frozenset(known_licences)
    resources = [r for r in package.get("resources") or [] if isinstance(r, Mapping)]
    formats = [_format(r) for r in resources]
    given_formats = [f for f in formats if f]
    uploads = [r for r in resources if r.get("url_type") == "upload" and _filled(r.get("url"))]
    linked = [r for r in resources if r.get("url_type") != "upload" and _filled(r.get("url"))]
    broken = [(r, links[r["id"]]) for r in linked
              if r.get("id") in links and links[r["id"]].get("status") == LINK_BROKEN]
    verified = [r for r in linked if r.get("id") in links and links[r["id"]].get("status") == LINK_OK]
    broken_details = tuple(_link_detail(r, state) for r, state in broken)
    unchecked = len(linked) - len(verified) - len(broken)
    flags = _flags(package.get("quality_flags"))
    flag_codes = list(dict.fromkeys(flag["code"] for flag in flags))
    licence = str(package.get("license_id") or "").strip()
    open_condition = str(package.get("open_condition") or "").strip()

    passed: dict[str, tuple[int, tuple[dict[str, str], ...]]] = {
        "keywords": (30 if _tags(package) else 0, ()),
        "categories": (30 if _filled(package.get("data_domain")) or _filled(package.get("national_theme"))
                       else 0, ()),
        "spatial": (20 if _filled(package.get("spatial_coverage")) else 0, ()),
        "temporal": (20 if _filled(package.get("temporal_start")) or _filled(package.get("temporal_end"))
                     else 0, ()),
        # Every resource has an access URL in the portal's DCAT (its own
        # link, or the product page); it is lost where a check found it broken.
        "access-url": (_share(50, len(resources) - len(broken), len(resources)), broken_details),
        "download-url": (_share(20, len(uploads) + len(linked), len(resources)), ()),
        # Files the portal serves itself are reachable; a link only once a check found it so.
        "download-url-reachable": (
            _share(30, len(uploads) + len(verified), len(uploads) + len(linked)),
            broken_details + (({"zh": f"{unchecked} 个链接尚未检查", "en": f"{unchecked} link(s) not checked yet"},)
                              if unchecked else ())),
        "format": (_share(20, len(given_formats), len(resources)), ()),
        "media-type": (_share(10, sum(f in MEDIA_TYPES for f in given_formats), len(resources)), ()),
        "format-vocabulary": (_share(10, sum(f in EU_FILE_TYPES for f in given_formats), len(resources)), ()),
        "non-proprietary": (20 if any(f in NON_PROPRIETARY for f in given_formats) else 0, ()),
        "machine-readable": (20 if any(f in MACHINE_READABLE for f in given_formats) else 0, ()),
        # Without a title or description nothing; each kind of harvest flag costs 10 of the 30.
        "compliance": ((max(0, 30 - 10 * len(flag_codes))
                        if _filled(package.get("title")) and _filled(package.get("notes")) else 0), tuple(
            {"zh": flag.get("reason_zh") or flag["code"], "en": flag.get("reason_en") or flag["code"]}
            for flag in flags)),
        "licence": (20 if licence else 0, ()),
        "licence-vocabulary": (10 if licence in licences else 0, ()),
        "access-rights": (10 if open_condition else 0, ()),
        "access-rights-vocabulary": (5 if open_condition in _OPEN_CONDITIONS else 0, ()),
        "contact-point": (20 if _filled(package.get("contact")) else 0, ()),
        "publisher": (10 if _filled(package.get("owner_org")) or _filled(package.get("organization")) else 0, ()),
        "rights": (5 if _filled(package.get("terms_of_use")) else 0, ()),
        "byte-size": (5 if _filled(package.get("record_count")) or (
            resources and all(_filled(r.get("size")) for r in resources)) else 0, ()),
        "issued": (5 if _filled(package.get("first_published")) else 0, ()),
        "modified": (5 if _filled(package.get("last_updated")) else 0, ()),
    }
    checks = []
    dimensions = dict.fromkeys(DIMENSIONS, 0)
    for indicator in INDICATORS:
        points, details = passed[indicator.code]
        checks.append(Check(indicator, points, details if points < indicator.points else ()))
        dimensions[indicator.dimension] += points
    score = sum(dimensions.values())
    return Assessment(score, band_of(score), dimensions, tuple(checks))

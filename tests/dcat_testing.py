"""What the DCAT tests share: the DCAT-AP 3.0.1 SHACL shapes SEMIC publishes
(tests/data/dcat-ap-3.0.1, provenance in tests/data/README.md) and the
violations pyshacl finds with them; products of every department schema
with every field filled in, as a department would."""
from __future__ import annotations

from pathlib import Path

import pyshacl
import rdflib
from rdflib.namespace import SH

SHAPES_DIR = Path(__file__).resolve().parent / "data" / "dcat-ap-3.0.1"
# The core shapes, the class of each property's values, and the controlled
# vocabularies (EU frequency, file type, data theme, access right, language).
SHAPE_FILES = ("dcat-ap-SHACL.ttl", "ranges.ttl", "mdr-vocabularies.shape.ttl")


def shapes_graph() -> rdflib.Graph:
    """The three shape files as one graph. The 3.0.1 release names a few
    property shapes it defines nowhere (tests/data/README.md lists them);
    pyshacl refuses to run with them, so those references go."""
    graph = rdflib.Graph()
    for name in SHAPE_FILES:
        graph.parse(SHAPES_DIR / name, format="turtle")
    for shape, reference in list(graph.subject_objects(SH.property)):
        if (reference, SH.path, None) not in graph:
            graph.remove((shape, SH.property, reference))
    return graph


def violations(data: rdflib.Graph, shapes: rdflib.Graph | None = None) -> list[dict]:
    """Each sh:Violation the report lists as {focus, path, constraint,
    value, message} (the details of a failed sh:node are not counted again;
    warnings are not violations)."""
    _, report, _ = pyshacl.validate(data, shacl_graph=shapes or shapes_graph(), inference="none",
                                    allow_warnings=True, advanced=True)
    found = []
    for result in report.objects(None, SH.result):
        if report.value(result, SH.resultSeverity) != SH.Violation:
            continue
        found.append({key: str(report.value(result, predicate) or "") for key, predicate in (
            ("focus", SH.focusNode), ("path", SH.resultPath), ("constraint", SH.sourceConstraintComponent),
            ("value", SH.value), ("message", SH.resultMessage))})
    return found


# --- products with every field ------------------------------------------------

CORE_VALUES = dict(
    notes="全市医院床位数，按区统计。", tag_string="医院,床位", data_domain="health",
    national_theme="culture-health-sports", first_published="2020-01-02", last_updated="2024-03-05",
    update_frequency="quarterly", contact="数据处 wsjkw-data@shanghai.gov.cn 021-23111111",
    url="https://data.sh.gov.cn/view/detail/index.html?type=cp&id=AA1", record_count=16,
    temporal_start="2014-01-01", temporal_end="2023-12-31", spatial_coverage="上海市", license_id="cc-by",
    terms_of_use="仅限研究使用，引用时注明来源。",
)
# Values for the kinds of department fields that are neither choices nor text.
SPECIAL_VALUES = {"refresh_interval": 30, "spatial_extent": "120.85,30.67,122.2,31.88"}


def product_types() -> list[str]:
    """Every dataset type whose schema is a department's (all but the
    data applications)."""
    from ckanext.scheming.helpers import scheming_dataset_schemas

    return sorted(name for name in scheming_dataset_schemas() if name != "application")


def every_field_product(dataset_type: str, open_condition: str, number: int) -> dict:
    """package_create fields for a product of ``dataset_type`` with every
    field of its schema filled in: the core ones as above, a department
    field with one of its choices (two of a multiple choice) or a text."""
    from ckanext.scheming.helpers import scheming_get_dataset_schema

    fields = dict(CORE_VALUES, type=dataset_type, open_condition=open_condition,
                  name=f"{dataset_type}-{open_condition}-{number}",
                  title=f"{dataset_type} 数据产品 {number}（{'有条件' if open_condition == 'conditional' else '无条件'}）",
                  source_identifier=f"SH-{dataset_type.upper()}-{number:04d}")
    for field in scheming_get_dataset_schema(dataset_type)["dataset_fields"]:
        name = field["field_name"]
        if name in fields or name in ("name", "owner_org", "quality_flags", "tag_string", "title"):
            continue
        choices = [choice["value"] for choice in field.get("choices") or []]
        if "multiple_choice" in str(field.get("validators", "")):
            fields[name] = choices[-2:]
        elif choices:
            fields[name] = choices[number % len(choices)]
        else:
            fields[name] = SPECIAL_VALUES.get(name, f"{field['label']['zh_Hans_CN']}示例 {number}")
    fields["resources"] = [
        {"name": "数据表", "description": "按区汇总", "format": "CSV", "url": f"https://data.sh.gov.cn/files/{number}.csv"},
        {"name": "查询接口", "format": "API", "url": f"https://data.sh.gov.cn/api/{number}"},
        {"name": "年报", "format": "PDF", "url": ""},
    ]
    return fields

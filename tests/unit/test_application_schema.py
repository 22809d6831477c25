"""The data application schema (schemas/application.yaml): bilingual labels
and help text on every field, the department it belongs to, and the data
products it uses, required."""
from pathlib import Path

import yaml

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _schema():
    return yaml.safe_load((SCHEMAS / "application.yaml").read_text(encoding="utf-8"))


def _presets():
    doc = yaml.safe_load((SCHEMAS / "presets.yaml").read_text(encoding="utf-8"))
    return {p["preset_name"]: p["values"] for p in doc["presets"]}


def _fields():
    presets = _presets()
    schema = _schema()
    for grouping in ("dataset_fields", "resource_fields"):
        for field in schema[grouping]:
            yield dict(presets.get(field.get("preset"), {}), **field)


def test_application_is_its_own_dataset_type():
    assert _schema()["dataset_type"] == "application"


def test_every_field_has_chinese_and_english_label_and_help():
    for field in _fields():
        for key in ("label", "help_text"):
            assert set(field[key]) == {"en", "zh_Hans_CN"}, (field["field_name"], key)
            assert all(text.strip() for text in field[key].values()), field["field_name"]


def test_an_application_names_its_department_and_the_products_it_uses():
    fields = {field["field_name"]: field for field in _fields()}
    assert fields["owner_org"]["required"] is True
    related = fields["related_datasets"]
    assert related["required"] is True
    assert "shanghai_data_product_names" in related["validators"].split()

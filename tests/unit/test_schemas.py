"""Checks of the scheming YAML in schemas/ against each other and the real Shanghai catalogue.

Pure Python (PyYAML, no CKAN import, no services): loads the presets, the core
and department dataset schemas, the organization schema and the national theme
list, expands presets the way ckanext-scheming does, and checks that every
schema carries the core fields, that every label is bilingual, that choices are
well formed, and that the controlled values found in data.sh.gov.cn's export
(config/demo/catalogs/shanghai.json) are all representable.
"""
from __future__ import annotations

import importlib.util
import ast
import json
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "schemas"
CATALOG = REPO_ROOT / "config" / "demo" / "catalogs" / "shanghai.json"

LANGUAGES = {"en", "zh_Hans_CN"}
VALIDATORS_MODULE = REPO_ROOT / "ckanext-shanghai" / "ckanext" / "shanghai" / "logic" / "validators.py"


def _declared_validators(path: Path) -> set[str]:
    """The names in the extension's validators module __all__ (read, not imported)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


CUSTOM_VALIDATORS = _declared_validators(VALIDATORS_MODULE)
# Core fields every dataset must fill in.
REQUIRED_CORE_FIELDS = {
    "title", "name", "owner_org", "data_domain", "update_frequency", "open_condition",
}
# Real catalogue column -> core field whose choices must cover its values.
CONTROLLED_COLUMNS = {
    "数据领域": "data_domain",
    "更新频度": "update_frequency",
    "开放属性": "open_condition",
}


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _load_all() -> dict[str, object]:
    """File name -> parsed YAML, for every YAML file in schemas/."""
    return {
        path.name: yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMA_DIR.glob("*.yaml"))
    }


def _documents_with(key: str) -> dict[str, dict]:
    """File name -> YAML mapping, for the files whose top level has `key`."""
    return {
        name: doc for name, doc in _load_all().items() if isinstance(doc, dict) and key in doc
    }


def _presets_document() -> dict:
    documents = list(_documents_with("scheming_presets_version").values())
    assert len(documents) == 1, "expected exactly one presets file in schemas/"
    return documents[0]


def _presets() -> dict[str, dict]:
    return {preset["preset_name"]: preset["values"] for preset in _presets_document()["presets"]}


def _dataset_schemas() -> dict[str, dict]:
    """File name -> dataset schema of a data product (data applications,
    application.yaml, are not data products; test_application_schema.py)."""
    return {name: doc for name, doc in _documents_with("dataset_type").items()
            if doc["dataset_type"] != "application"}


def _organization_schema() -> dict:
    documents = list(_documents_with("organization_type").values())
    assert len(documents) == 1, "expected exactly one organization schema in schemas/"
    return documents[0]


def _national_themes() -> list[dict]:
    return _load_all()["national_themes.yaml"]


def _core() -> dict:
    return _load_all()["core.yaml"]


def _expand(field: dict) -> dict:
    """Expand `preset` as ckanext-scheming does: the preset's values, overridden by the
    field's own keys."""
    if "preset" not in field:
        return field
    presets = _presets()
    assert field["preset"] in presets, f"{field['field_name']}: unknown preset {field['preset']!r}"
    return dict(presets[field["preset"]], **field)


def _expanded(schema: dict, grouping: str) -> list[dict]:
    return [_expand(field) for field in schema.get(grouping, [])]


def _all_expanded_fields():
    """(where, field) for every dataset, resource and organization field."""
    for file_name, schema in _dataset_schemas().items():
        for grouping in ("dataset_fields", "resource_fields"):
            for field in _expanded(schema, grouping):
                yield f"{file_name}:{grouping}:{field['field_name']}", field
    for field in _expanded(_organization_schema(), "fields"):
        yield f"organization.yaml:fields:{field['field_name']}", field


def _core_field(field_name: str) -> dict:
    fields = _expanded(_core(), "dataset_fields")
    return next(field for field in fields if field["field_name"] == field_name)


def _validator_names(validators: str) -> list[str]:
    return [part.split("(", 1)[0] for part in validators.split()]


@lru_cache(maxsize=None)
def _catalog() -> list[dict]:
    assert CATALOG.is_file(), f"real catalogue export not found at {CATALOG}"
    return json.loads(CATALOG.read_text(encoding="utf-8"))


def _distinct(column: str) -> set[str]:
    return {record[column] for record in _catalog() if record.get(column)}


def _is_language_text(value: object) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == LANGUAGES
        and all(isinstance(text, str) and text.strip() for text in value.values())
    )


# --------------------------------------------------------------------------
# File structure
# --------------------------------------------------------------------------

def test_every_yaml_file_is_a_known_kind():
    kinds = Counter()
    for name, doc in _load_all().items():
        if isinstance(doc, dict) and "scheming_presets_version" in doc:
            kinds["presets"] += 1
        elif isinstance(doc, dict) and "dataset_type" in doc:
            assert doc.get("scheming_version") == 2, name
            about = doc.get("about")
            assert isinstance(about, str) and about.strip(), f"{name}: about must be a string"
            assert doc.get("dataset_fields") and doc.get("resource_fields"), name
            kinds["dataset"] += 1
        elif isinstance(doc, dict) and "organization_type" in doc:
            assert doc.get("scheming_version") == 2, name
            assert doc["organization_type"] == "organization", name
            kinds["organization"] += 1
        elif name == "national_themes.yaml":
            assert isinstance(doc, list) and doc, name
            kinds["themes"] += 1
        else:
            pytest.fail(f"schemas/{name} is not presets, a schema or the theme list")
    assert (kinds["presets"], kinds["organization"], kinds["themes"]) == (1, 1, 1)
    assert kinds["dataset"] >= 11


def test_package_marker_is_docstring_only():
    source = (SCHEMA_DIR / "__init__.py").read_text(encoding="utf-8").strip()
    assert source.startswith('"""') and source.endswith('"""') and source.count('"""') == 2
    assert "ckanext.shanghai.schemas" in source


def test_presets_are_prefixed_unique_and_all_used():
    names = [preset["preset_name"] for preset in _presets_document()["presets"]]
    assert len(names) == len(set(names)), Counter(names).most_common(3)
    assert all(name.startswith("sh_") for name in names), names
    used = {
        field["preset"]
        for schema in [*_dataset_schemas().values(), _organization_schema()]
        for grouping in ("dataset_fields", "resource_fields", "fields")
        for field in schema.get(grouping, [])
        if "preset" in field
    }
    assert set(names) - used == set(), "presets nobody uses"
    assert used - set(names) == set(), "schemas name presets that presets.yaml does not define"


def test_core_fields_are_defined_only_by_presets():
    """core.yaml lists `field_name` + `preset: sh_<field>` and nothing else."""
    for field in _core()["dataset_fields"]:
        assert set(field) == {"field_name", "preset"}, field
        assert field["preset"] == f"sh_{field['field_name']}", field
    for field in _core()["resource_fields"]:
        assert set(field) == {"field_name", "preset"}, field
        assert field["preset"] == f"sh_resource_{field['field_name']}", field


def test_core_has_the_expected_fields():
    names = [field["field_name"] for field in _core()["dataset_fields"]]
    assert names[:5] == ["title", "name", "notes", "tag_string", "owner_org"]
    assert set(names) >= {
        "data_domain", "national_theme", "first_published", "last_updated", "update_frequency",
        "open_condition", "contact", "url", "record_count", "temporal_start", "temporal_end",
        "spatial_coverage", "license_id", "terms_of_use", "source_identifier",
    }
    resource_names = [field["field_name"] for field in _core()["resource_fields"]]
    assert resource_names == ["url", "name", "description", "format"]


# --------------------------------------------------------------------------
# Dataset types and departments
# --------------------------------------------------------------------------

def test_dataset_types_unique_with_at_least_ten_departments():
    types = [schema["dataset_type"] for schema in _dataset_schemas().values()]
    assert len(types) == len(set(types)), Counter(types)
    assert _core()["dataset_type"] == "dataset"
    departments = set(types) - {"dataset"}
    assert len(departments) >= 10, sorted(departments)
    for file_name, schema in _dataset_schemas().items():
        if schema["dataset_type"] != "dataset":
            slug = schema["dataset_type"]
            assert file_name == f"{slug}.yaml", "department schemas are named by their slug"
            assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", schema["dataset_type"]), file_name


def test_every_dataset_schema_starts_with_every_core_field():
    core_fields = _core()["dataset_fields"]
    core_resources = _core()["resource_fields"]
    for file_name, schema in _dataset_schemas().items():
        assert schema["dataset_fields"][: len(core_fields)] == core_fields, file_name
        assert schema["resource_fields"] == core_resources, file_name


def test_department_schemas_add_their_own_optional_fields():
    core_names = {field["field_name"] for field in _core()["dataset_fields"]}
    for file_name, schema in _dataset_schemas().items():
        if schema["dataset_type"] == "dataset":
            continue
        extra = [
            field for field in schema["dataset_fields"] if field["field_name"] not in core_names
        ]
        assert len(extra) >= 2, f"{file_name}: a department schema adds fields of its own"
        for field in extra:
            where = f"{file_name}:{field['field_name']}"
            assert field.get("validators", "").split()[0] == "ignore_missing", where
            assert not field.get("required"), where


def test_field_names_unique_within_each_schema():
    for file_name, schema in _dataset_schemas().items():
        for grouping in ("dataset_fields", "resource_fields"):
            names = [field["field_name"] for field in schema[grouping]]
            duplicates = [name for name, count in Counter(names).items() if count > 1]
            assert not duplicates, (file_name, grouping, duplicates)
    names = [field["field_name"] for field in _organization_schema()["fields"]]
    assert len(names) == len(set(names)), names


def test_department_about_names_a_real_provider():
    providers = _distinct("数据提供方")
    named = {}
    for file_name, schema in _dataset_schemas().items():
        if schema["dataset_type"] == "dataset":
            continue
        matches = [provider for provider in providers if provider in schema["about"]]
        assert matches, f"{file_name}: about names no department of the real catalogue"
        named[file_name] = max(matches, key=len)
    duplicated = [name for name, count in Counter(named.values()).items() if count > 1]
    assert not duplicated, f"two schemas for the same department: {duplicated}"


# --------------------------------------------------------------------------
# Labels, help text, choices, validators
# --------------------------------------------------------------------------

def test_every_field_has_bilingual_label_and_help_text():
    problems = [
        f"{where}: {key}"
        for where, field in _all_expanded_fields()
        for key in ("label", "help_text")
        if not _is_language_text(field.get(key))
    ]
    assert not problems, problems


def test_choices_have_values_and_bilingual_labels_unique_per_field():
    checked = 0
    for where, field in _all_expanded_fields():
        if "choices" not in field:
            continue
        checked += 1
        choices = field["choices"]
        assert choices, where
        for choice in choices:
            assert set(choice) == {"value", "label"}, (where, choice)
            assert isinstance(choice["value"], str) and choice["value"].strip(), (where, choice)
            assert _is_language_text(choice["label"]), (where, choice)
        for key in ("value", "en", "zh_Hans_CN"):
            seen = [
                choice["value"] if key == "value" else choice["label"][key] for choice in choices
            ]
            assert len(seen) == len(set(seen)), (where, key, Counter(seen).most_common(2))
    assert checked >= 20


def test_choice_fields_validate_their_choices():
    for where, field in _all_expanded_fields():
        names = _validator_names(field.get("validators", ""))
        if "choices" in field:
            assert {"shanghai_choices", "scheming_multiple_choice"} & set(names), where
        if "scheming_multiple_choice" in names:
            assert field.get("output_validators") == "scheming_multiple_choice_output", where
            multiple_snippets = {"multiple_checkbox.html", "multiple_select.html"}
            assert field.get("form_snippet") in multiple_snippets, where
        elif "choices" in field:
            assert field.get("form_snippet") in {"select.html", "radio.html"}, where


def test_required_fields():
    for field_name in REQUIRED_CORE_FIELDS:
        field = _core_field(field_name)
        names = _validator_names(field["validators"])
        assert field.get("required") is True, field_name
        assert {"scheming_required", "not_empty", "shanghai_owner_org"} & set(names), field_name
    allowed = REQUIRED_CORE_FIELDS | {"department_type"}  # plus the organization's title
    for where, field in _all_expanded_fields():
        names = _validator_names(field.get("validators", ""))
        if "scheming_required" in names and field.get("required"):
            assert where.split(":")[-1] in allowed, where


def test_date_order_checks_name_a_date_field_of_the_same_schema():
    for file_name, schema in _dataset_schemas().items():
        fields = {field["field_name"]: field for field in _expanded(schema, "dataset_fields")}
        pairs = 0
        for name, field in fields.items():
            for other in re.findall(r"shanghai_not_before\((\w+)\)", field.get("validators", "")):
                assert other in fields and other != name, (file_name, name, other)
                other_validators = _validator_names(fields[other]["validators"])
                assert "shanghai_date" in other_validators, (file_name, other)
                pairs += 1
        # last_updated >= first_published and temporal_end >= temporal_start
        assert pairs == 2, file_name


def _installed_package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec and spec.origin else None


def _defined_functions(path: Path) -> set[str]:
    return set(re.findall(r"^def (\w+)\(", path.read_text(encoding="utf-8"), flags=re.M))


def test_validators_exist_in_ckan_scheming_or_our_extension():
    ckan_dir = _installed_package_dir("ckan")
    if ckan_dir is None:
        pytest.skip("CKAN is not installed in this environment")
    scheming_validation = ckan_dir.parent / "ckanext" / "scheming" / "validation.py"
    assert scheming_validation.is_file(), "ckanext-scheming is not installed next to CKAN"
    scheming_source = scheming_validation.read_text(encoding="utf-8")
    known = (
        _defined_functions(ckan_dir / "lib" / "navl" / "validators.py")
        | _defined_functions(ckan_dir / "logic" / "validators.py")
        | _defined_functions(ckan_dir / "logic" / "converters.py")
        | set(re.findall(r"@register_validator\n(?:@\w+\n)*def (\w+)\(", scheming_source))
        | CUSTOM_VALIDATORS
    )
    unknown = {
        (where, name)
        for where, field in _all_expanded_fields()
        for key in ("validators", "output_validators")
        for name in _validator_names(field.get(key, ""))
        if name not in known
    }
    assert not unknown, sorted(unknown)


def test_snippets_exist_in_scheming():
    ckan_dir = _installed_package_dir("ckan")
    if ckan_dir is None:
        pytest.skip("CKAN is not installed in this environment")
    templates = ckan_dir.parent / "ckanext" / "scheming" / "templates" / "scheming"
    missing = [
        (where, key, field[key])
        for where, field in _all_expanded_fields()
        for key, folder in (
            ("form_snippet", "form_snippets"),
            ("display_snippet", "display_snippets"),
        )
        if field.get(key) and not (templates / folder / field[key]).is_file()
    ]
    assert not missing, missing


# --------------------------------------------------------------------------
# National themes
# --------------------------------------------------------------------------

def test_national_theme_file_matches_core_choices():
    themes = _national_themes()
    for theme in themes:
        assert set(theme) == {"value", "label", "variants"}, theme
        assert _is_language_text(theme["label"]), theme
        assert theme["variants"], theme["value"]
        assert theme["variants"][0] == theme["label"]["zh_Hans_CN"], theme["value"]
    field = _core_field("national_theme")
    assert "shanghai_national_theme" in _validator_names(field["validators"])
    assert [(theme["value"], theme["label"]) for theme in themes] == [
        (choice["value"], choice["label"]) for choice in field["choices"]
    ]


def test_every_theme_variant_maps_to_exactly_one_core_choice():
    choice_values = {choice["value"] for choice in _core_field("national_theme")["choices"]}
    owner: dict[str, str] = {}
    for theme in _national_themes():
        assert theme["value"] in choice_values, theme["value"]
        for variant in theme["variants"]:
            assert isinstance(variant, str) and variant.strip(), theme["value"]
            assert owner.setdefault(variant, theme["value"]) == theme["value"], (
                f"{variant!r} maps to both {owner[variant]} and {theme['value']}"
            )


def test_every_real_theme_string_is_a_variant():
    variants = {variant for theme in _national_themes() for variant in theme["variants"]}
    real = _distinct("国家主题分类")
    assert len(real) >= 50
    assert sorted(real - variants) == []
    value_of = {
        variant: theme["value"] for theme in _national_themes() for variant in theme["variants"]
    }
    assert value_of["城乡建设与环境保护综合类"] == value_of["城乡建设、环境保护"] == value_of["环境保护"]
    assert value_of["综合类"] != value_of["综合政务"]


# --------------------------------------------------------------------------
# Real controlled values
# --------------------------------------------------------------------------

@pytest.mark.parametrize("column, field_name", sorted(CONTROLLED_COLUMNS.items()))
def test_real_controlled_values_are_choice_labels(column, field_name):
    choices = _core_field(field_name)["choices"]
    labels = {choice["label"]["zh_Hans_CN"] for choice in choices}
    real = _distinct(column)
    assert real, column
    assert sorted(real - labels) == [], f"{column} values without a {field_name} choice"


def test_real_catalogue_has_the_documented_shape():
    """Guards the fixtures the other tests rely on against a truncated or replaced file."""
    records = _catalog()
    assert len(records) == 4494
    assert len(_distinct("数据领域")) == 12
    assert len(_distinct("更新频度")) == 9
    assert _distinct("开放属性") == {"无条件开放", "有条件开放"}


# --------------------------------------------------------------------------
# Organization schema
# --------------------------------------------------------------------------

def test_organization_schema_fields():
    fields = {field["field_name"]: field for field in _expanded(_organization_schema(), "fields")}
    assert set(fields) >= {
        "title", "name", "description", "image_url", "department_type", "department_code",
        "contact_phone", "contact_email", "address", "website",
    }
    assert fields["title"].get("required") is True
    assert "group_name_validator" in _validator_names(fields["name"]["validators"])
    assert fields["department_type"].get("required") is True
    assert {choice["value"] for choice in fields["department_type"]["choices"]} == {
        "municipal-bureau", "district-government", "other",
    }
    assert "email_validator" in _validator_names(fields["contact_email"]["validators"])

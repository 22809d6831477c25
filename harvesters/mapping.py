"""Declarative field mapping of agency export records onto the portal's dataset
schemas: pure functions, a source record in, a CKAN package dict out.

A mapping is a YAML file (see harvesters/mappings/README.md, which shows the
three real ones) loaded by ``load_mapping``; every problem in it is reported
at once in a ``MappingConfigError``. Keys:

``version``
    1 (the format of this file). Optional.
``description``
    Free text for people. Optional.
``name_prefix``
    Required; lower-case letters, digits and ``-``, at most 20 characters.
    Package names are ``<name_prefix>-<identity as a slug>``, never derived
    from titles (portals repeat titles).
``identity``
    How a record is recognised from one run to the next (stored as
    ``source_identifier``). ``from``: a source field; ``pattern``: a regular
    expression with one group that extracts the id from that field (e.g. the
    ``id=`` of a page address); ``hash_of``: a list of fields whose values,
    hashed, identify the record, used when ``from`` is absent or yields
    nothing. Choose fields that do not change when the data is updated.
``department``
    ``from: <field>`` or ``fixed: <Chinese name>``; ``aliases`` maps variant
    spellings found in the source to one name.
``dataset_type``
    ``fixed: <type>``, or ``by_department: {<Chinese name>: <type>}`` with
    ``default`` (``dataset`` when not given). Types are the ``dataset_type``
    of the schemas in schemas/.
``empty_values``
    Source values meaning "no value" for every field (e.g. ``暂无``); blank
    text always is.
``fields``
    Target field -> rule, or -> a source field name as a shorthand for
    ``{from: <name>}``. Targets are the schemas' dataset fields, plus ``tags``
    (written as ``tag_string``); ``name``, ``owner_org``, ``source_identifier``
    and ``tag_string`` are filled in by the harvest and cannot be mapped. A
    rule has ``from`` (a field, or a list of fields tried in order: the first
    non-empty one is used), and optionally ``values`` (raw value -> code),
    ``default``, ``required``, ``empty_values`` (more "no value" markers for
    this rule), ``type`` (``str``, ``int``, ``date``; implied by the target's
    schema), ``date_formats`` (strptime formats; ``2023年4月6日`` is always
    understood) and ``split`` (a regular expression cutting a text into tags
    or into several choices). A rule without ``from`` gives every record its
    ``default``.
``resources``
    One resource per format listed in ``formats_from`` (a list, or a text cut
    by ``split`` or picked out by ``findall``, a regular expression with at
    most one group), each linking to ``url_from`` (a field; empty when not
    given), named after the title and format; formats are upper-cased,
    unknown codes kept as given. Or, for sources that list their files,
    ``from``: a field holding a list of ``{url, format, name, description}``
    (one resource each; a missing name is made from the title and format).

What is decided where:

- A record is rejected (``RecordRejected``, naming the field and the raw
  value) for a missing identity, department or required value, a value of a
  choice field that neither the value map nor the schema's codes know, and a
  date or number that cannot be read. A rejection is a recorded error, never a
  silent skip.
- Tags CKAN would refuse (shorter than 2 or longer than 100 characters, or
  with characters other than letters, digits, CJK, space and ``-_.``) are
  dropped and listed in ``MappedRecord.warnings``; the record still maps.
- A ``last_updated`` before ``first_published`` is left as the source says
  (with a warning): CKAN's validator rejects it and the harvest reports it.
- ``content_hash`` is the SHA-256 of the mapping's fingerprint and the
  canonical JSON of the source record (keys sorted), so an unchanged record is
  recognised before it is mapped, and a changed mapping re-imports everything.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from collections.abc import Mapping as AbstractMapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from .readers import BadRecord

__all__ = [
    "ENGINE_VERSION",
    "SCHEMA_DIR",
    "MAPPINGS_DIR",
    "FieldRule",
    "Mapping",
    "MappedRecord",
    "MappingConfigError",
    "RecordRejected",
    "SchemaField",
    "department_slug",
    "department_type_of",
    "load_mapping",
    "map_records",
    "schema_fields",
]

# Part of every mapping's fingerprint: bump when this module maps the same
# record and config differently, so the next harvest re-imports.
ENGINE_VERSION = 1
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"

GENERATED_FIELDS = ("name", "owner_org", "source_identifier", "tag_string", "type")
DEFAULT_DATE_FORMATS = (
    "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S",
)
CHINESE_DATE_FORMAT = "%Y年%m月%d日"
DEFAULT_TAG_SPLIT = r"[,，;；]"
DEFAULT_CHOICES_SPLIT = r"[,，;；、\s]+"
DEFAULT_FORMAT_SPLIT = r"[,，;；/\s]+"
_TAG_ALLOWED = re.compile(r"^[\w \-.]+$")
_NAME_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")
MAX_NAME_LENGTH = 100
# Far beyond any real catalog record (the longest Shanghai title is under
# 100 characters); a record past them is broken or hostile, and would make
# every page and search result that shows it unusable.
MAX_TITLE_LENGTH = 500
MAX_TEXT_LENGTH = 100_000
MAX_RESOURCES = 200


# --- errors and results ---------------------------------------------------

class MappingConfigError(ValueError):
    """A mapping file that cannot be used; ``problems`` lists every problem
    found, each in Chinese and English."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("映射配置有误 / the mapping configuration is invalid:\n" + "\n".join(
            f"- {problem}" for problem in self.problems))


class RecordRejected(Exception):
    """A record that cannot become a dataset. ``code`` names the kind of
    problem for counting (``missing-identity``, ``missing-department``,
    ``missing-required``, ``unmapped-value``, ``bad-date``, ``bad-number``,
    ``bad-value``, ``bad-record``, ``too-large``, ``duplicate``, ``conflicting-duplicate``);
    ``position`` is the record's 1-based place in the source when known."""

    def __init__(self, identity: str | None, field: str | None, reason_zh: str, reason_en: str,
                 *, code: str = "rejected", position: int | None = None):
        super().__init__(f"{reason_zh} / {reason_en}")
        self.identity = identity
        self.field = field
        self.reason_zh = reason_zh
        self.reason_en = reason_en
        self.code = code
        self.position = position

    @property
    def message(self) -> str:
        return f"{self.reason_zh} / {self.reason_en}"


@dataclass(frozen=True)
class MappedRecord:
    """A source record as a CKAN package dict for one of the schemas.

    ``package`` holds ``type``, ``name``, ``source_identifier`` and every
    mapped field (empty ones as ``""``, so an update clears them); it has no
    ``owner_org``: the harvest resolves ``department`` to an organisation."""

    identity: str
    department: str
    dataset_type: str
    package: dict
    content_hash: str
    warnings: list[str] = field(default_factory=list)


# --- the schemas ------------------------------------------------------------

@dataclass(frozen=True)
class SchemaField:
    """What a mapping needs to know of a dataset field: ``kind`` is ``text``,
    ``date``, ``int``, ``tags``, ``choice`` (one code of ``choices``) or
    ``choices`` (a list of codes)."""

    name: str
    kind: str
    required: bool = False
    choices: tuple[str, ...] | None = None


def _field_kind(definition: dict) -> str:
    validators = str(definition.get("validators", ""))
    if definition.get("field_name") == "tag_string":
        return "tags"
    if "shanghai_date" in validators:
        return "date"
    if "int_validator" in validators:
        return "int"
    if "shanghai_national_theme" in validators:
        return "text"  # the validator normalises the raw Chinese themes
    if definition.get("choices"):
        return "choices" if "multiple_choice" in validators else "choice"
    return "text"


@functools.lru_cache(maxsize=4)
def schema_fields(schema_dir: str | Path = SCHEMA_DIR) -> dict[str, dict[str, SchemaField]]:
    """Dataset type -> field name -> ``SchemaField``, read from the scheming
    YAML (presets expanded as ckanext-scheming does)."""
    schema_dir = Path(schema_dir)
    presets_doc = yaml.safe_load((schema_dir / "presets.yaml").read_text(encoding="utf-8")) or {}
    presets = {preset["preset_name"]: preset.get("values", {})
               for preset in presets_doc.get("presets", [])}
    result: dict[str, dict[str, SchemaField]] = {}
    for path in sorted(schema_dir.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or "dataset_type" not in document:
            continue
        fields: dict[str, SchemaField] = {}
        for definition in document.get("dataset_fields", []):
            merged = {**presets.get(definition.get("preset"), {}), **definition}
            kind = _field_kind(merged)
            codes = None
            if kind in ("choice", "choices"):
                codes = tuple(str(choice["value"]) for choice in merged["choices"])
            fields[merged["field_name"]] = SchemaField(
                name=merged["field_name"], kind=kind, required=bool(merged.get("required")),
                choices=codes)
        result[document["dataset_type"]] = fields
    return result


# --- loading a mapping --------------------------------------------------------

class _StrictLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word; in a value map
    that silently changes a code, so a repeated key is an error here."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise MappingConfigError([
                f"第 {key_node.start_mark.line + 1} 行：键「{key}」重复出现 / "
                f"line {key_node.start_mark.line + 1}: the key {key!r} appears twice"
            ])
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_mapping(source: str | Path | AbstractMapping, *,
                 schema_dir: str | Path = SCHEMA_DIR) -> "Mapping":
    """A validated ``Mapping`` from a YAML file's path, or from the already
    parsed configuration.

    :raises MappingConfigError: listing every problem found.
    """
    if isinstance(source, AbstractMapping):
        config = dict(source)
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingConfigError([
                f"无法读取映射文件 {path}：{exc} / cannot read the mapping file {path}: {exc}"]) from None
        try:
            config = yaml.load(text, Loader=_StrictLoader)
        except yaml.YAMLError as exc:
            raise MappingConfigError([
                f"映射文件不是合法的 YAML：{exc} / the mapping file is not valid YAML: {exc}"]) from None
        if not isinstance(config, dict):
            raise MappingConfigError([
                "映射文件的顶层应为键值映射 / the mapping file's top level must be a mapping of keys"])
    return Mapping(config, schema_fields(str(schema_dir)))


@dataclass(frozen=True)
class FieldRule:
    """One validated entry of a mapping's ``fields``; ``empty`` holds the
    values meaning "no value" for it, ``values`` the value map."""

    target: str
    sources: tuple[str, ...]
    kind: str
    values: dict[str, str]
    default: Any
    required: bool
    empty: frozenset[str]
    choices: tuple[str, ...] | None
    split: re.Pattern | None
    date_formats: tuple[str, ...]


class _Problems(list):
    def add(self, zh: str, en: str) -> None:
        self.append(f"{zh} / {en}")


_TOP_KEYS = {"version", "description", "name_prefix", "identity", "department", "dataset_type",
             "empty_values", "fields", "resources"}
_RULE_KEYS = {
    "from", "values", "default", "required", "empty_values", "type", "date_formats", "split"}
_TYPES = {"str": "text", "int": "int", "date": "date"}


def _unknown_keys(problems: _Problems, where: str, given: AbstractMapping,
                  allowed: set[str]) -> None:
    for key in given:
        if key not in allowed:
            problems.add(
                f"{where}：未知的配置项「{key}」（可用：{'、'.join(sorted(allowed))}）",
                f"{where}: unknown option {key!r} (allowed: {', '.join(sorted(allowed))})",
            )


def _compile(problems: _Problems, where: str, pattern: Any, *,
             groups: tuple[int, ...] | None = None) -> re.Pattern | None:
    if not isinstance(pattern, str) or not pattern:
        problems.add(f"{where}：正则表达式应为非空文本",
                     f"{where}: the regular expression must be non-empty text")
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        problems.add(f"{where}：正则表达式「{pattern}」无效（{exc}）",
                     f"{where}: invalid regular expression {pattern!r} ({exc})")
        return None
    if groups is not None and compiled.groups not in groups:
        problems.add(
            f"{where}：正则表达式「{pattern}」应有 {' 或 '.join(map(str, groups))} 个捕获组，"
            f"实有 {compiled.groups} 个",
            f"{where}: the regular expression {pattern!r} must have "
            f"{' or '.join(map(str, groups))} capture group(s), it has {compiled.groups}",
        )
        return None
    return compiled


def _field_names(problems: _Problems, where: str, value: Any) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names \
            or not all(isinstance(name, str) and name for name in names):
        problems.add(f"{where}：应为来源字段名或字段名列表",
                     f"{where}: must be a source field name or a list of them")
        return ()
    return tuple(names)


def _string_list(problems: _Problems, where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.add(f"{where}：应为文本列表（数字或 yes/no 等请加引号）",
                     f"{where}: must be a list of texts (quote numbers and words like yes/no)")
        return ()
    return tuple(value)


def _text_map(problems: _Problems, where: str, value: Any) -> dict[str, str]:
    if not isinstance(value, AbstractMapping):
        problems.add(f"{where}：应为「原值: 新值」的映射", f"{where}: must be a mapping of raw value to value")
        return {}
    result = {}
    for raw, mapped in value.items():
        if isinstance(raw, bool) or isinstance(mapped, bool) or not isinstance(mapped, (str, int)) \
                or not isinstance(raw, (str, int)):
            problems.add(
                f"{where}：「{raw}: {mapped}」不是文本（yes/no/on/off、数字等请加引号，空值请用 empty_values）",
                f"{where}: {raw!r}: {mapped!r} is not text (quote yes/no/on/off and numbers; "
                f"use empty_values for 'no value')",
            )
            continue
        result[str(raw).strip()] = str(mapped)
    return result


class Mapping:
    """A validated mapping of one source's records onto the schemas; see the
    module docstring for the configuration."""

    def __init__(self, config: dict, schemas: dict[str, dict[str, SchemaField]]):
        problems = _Problems()
        self.config = config
        self._schemas = schemas
        _unknown_keys(problems, "映射 / mapping", config, _TOP_KEYS)
        if config.get("version", 1) != 1:
            version = config.get("version")
            problems.add(f"version 应为 1，而不是 {version!r}", f"version must be 1, not {version!r}")

        prefix = config.get("name_prefix")
        if not isinstance(prefix, str) or not _NAME_PREFIX.match(prefix):
            problems.add(
                f"name_prefix「{prefix}」无效：应为 1–20 个小写字母、数字或“-”",
                f"name_prefix {prefix!r} is invalid: use 1-20 lower-case letters, digits or '-'",
            )
        self.name_prefix = prefix if isinstance(prefix, str) else ""

        self._empty = frozenset({""} | {text.strip() for text in _string_list(
            problems, "empty_values", config.get("empty_values", []))})
        self._read_identity(problems, config.get("identity"))
        self._read_department(problems, config.get("department"))
        self._read_dataset_type(problems, config.get("dataset_type", {"fixed": "dataset"}))
        self.rules: tuple[FieldRule, ...] = tuple(self._read_fields(problems, config.get("fields")))
        self._read_resources(problems, config.get("resources"))
        if problems:
            raise MappingConfigError(problems)
        self.fingerprint = hashlib.sha256(
            _canonical({"engine": ENGINE_VERSION, "config": config}).encode("utf-8")).hexdigest()

    # -- reading the configuration --

    def _read_identity(self, problems: _Problems, spec: Any) -> None:
        self._identity_from: str | None = None
        self._identity_pattern: re.Pattern | None = None
        self._identity_hash_of: tuple[str, ...] = ()
        if not isinstance(spec, AbstractMapping):
            problems.add("缺少 identity（如何识别同一条记录）",
                         "identity is missing (how a record is recognised)")
            return
        _unknown_keys(problems, "identity", spec, {"from", "pattern", "hash_of"})
        if "from" in spec:
            names = _field_names(problems, "identity.from", spec["from"])
            if len(names) > 1:
                problems.add("identity.from 只能是一个字段", "identity.from must name one field")
            self._identity_from = names[0] if names else None
        if "pattern" in spec:
            if "from" not in spec:
                problems.add("identity.pattern 需要同时给出 identity.from",
                             "identity.pattern needs identity.from")
            self._identity_pattern = _compile(
                problems, "identity.pattern", spec["pattern"], groups=(1,))
        if "hash_of" in spec:
            self._identity_hash_of = _field_names(problems, "identity.hash_of", spec["hash_of"])
        if "from" not in spec and "hash_of" not in spec:
            problems.add("identity 需要 from 或 hash_of", "identity needs from or hash_of")

    def _read_department(self, problems: _Problems, spec: Any) -> None:
        self._department_from: str | None = None
        self._department_fixed: str | None = None
        self._department_aliases: dict[str, str] = {}
        if not isinstance(spec, AbstractMapping):
            problems.add("缺少 department（数据提供部门）",
                         "department is missing (the providing department)")
            return
        _unknown_keys(problems, "department", spec, {"from", "fixed", "aliases"})
        if ("from" in spec) == ("fixed" in spec):
            problems.add("department 需要 from 与 fixed 二者之一",
                         "department needs exactly one of from and fixed")
        if "from" in spec:
            names = _field_names(problems, "department.from", spec["from"])
            self._department_from = names[0] if len(names) == 1 else None
        if "fixed" in spec:
            if not isinstance(spec["fixed"], str) or not spec["fixed"].strip():
                problems.add("department.fixed 应为部门名称",
                             "department.fixed must be a department name")
            else:
                self._department_fixed = spec["fixed"].strip()
        if "aliases" in spec:
            self._department_aliases = _text_map(problems, "department.aliases", spec["aliases"])

    def _read_dataset_type(self, problems: _Problems, spec: Any) -> None:
        self._type_fixed: str | None = None
        self._type_by_department: dict[str, str] = {}
        self._type_default = "dataset"
        if not isinstance(spec, AbstractMapping):
            problems.add("dataset_type 应为键值映射", "dataset_type must be a mapping")
            return
        _unknown_keys(problems, "dataset_type", spec, {"fixed", "by_department", "default"})
        if "fixed" in spec and "by_department" in spec:
            problems.add("dataset_type 不能同时有 fixed 与 by_department",
                         "dataset_type cannot have both fixed and by_department")
        known = sorted(self._schemas)

        def check(where: str, value: Any) -> str | None:
            if value not in self._schemas:
                problems.add(f"{where}：未知的数据集类型「{value}」（可用：{'、'.join(known)}）",
                             f"{where}: unknown dataset type {value!r} (known: {', '.join(known)})")
                return None
            return value

        if "fixed" in spec:
            self._type_fixed = check("dataset_type.fixed", spec["fixed"])
        if "by_department" in spec:
            mapping = _text_map(problems, "dataset_type.by_department", spec["by_department"])
            self._type_by_department = {
                department: kind for department, kind in mapping.items()
                if check(f"dataset_type.by_department.{department}", kind)
            }
        if "default" in spec:
            self._type_default = check("dataset_type.default", spec["default"]) or "dataset"
        self.dataset_types = frozenset(
            [self._type_fixed] if self._type_fixed
            else [*self._type_by_department.values(), self._type_default])

    def _target_fields(self) -> dict[str, SchemaField]:
        """Every field some dataset type of this mapping has (core fields
        first); a department field applies only to records of its type."""
        targets: dict[str, SchemaField] = {}
        for dataset_type in sorted(self.dataset_types, key=lambda name: name != "dataset"):
            for name, schema_field in self._schemas.get(dataset_type, {}).items():
                targets.setdefault(name, schema_field)
        return targets

    def _read_fields(self, problems: _Problems, spec: Any) -> list[FieldRule]:
        if not isinstance(spec, AbstractMapping) or not spec:
            problems.add("缺少 fields（字段映射）", "fields is missing (the field mapping)")
            return []
        targets = self._target_fields()
        rules = []
        for target, rule_spec in spec.items():
            where = f"fields.{target}"
            if target in GENERATED_FIELDS:
                hint_zh = "（标签请映射到 tags）" if target == "tag_string" else ""
                hint_en = " (map tags to 'tags')" if target == "tag_string" else ""
                problems.add(
                    f"{where}：该字段由采集程序生成，不能映射{hint_zh}",
                    f"{where}: this field is filled in by the harvest and cannot be mapped"
                    f"{hint_en}")
                continue
            schema_field = targets.get("tag_string") if target == "tags" else targets.get(target)
            if schema_field is None:
                known = ["tags", *(name for name in targets if name not in GENERATED_FIELDS)]
                problems.add(f"{where}：未知的目标字段（可用：{'、'.join(known)}）",
                             f"{where}: unknown target field (known: {', '.join(known)})")
                continue
            if isinstance(rule_spec, str):
                rule_spec = {"from": rule_spec}
            if not isinstance(rule_spec, AbstractMapping):
                problems.add(f"{where}：应为来源字段名或规则",
                             f"{where}: must be a source field name or a rule")
                continue
            rule = self._read_rule(problems, where, target, schema_field, rule_spec)
            if rule is not None:
                rules.append(rule)
        for name, schema_field in self._schemas.get("dataset", targets).items():
            if schema_field.required and name not in GENERATED_FIELDS \
                    and name not in spec and name in targets:
                problems.add(f"必填字段 {name} 没有映射", f"the required field {name} is not mapped")
        return rules

    def _read_rule(self, problems: _Problems, where: str, target: str, schema_field: SchemaField,
                   spec: AbstractMapping) -> FieldRule | None:
        before = len(problems)
        _unknown_keys(problems, where, spec, _RULE_KEYS)
        kind = schema_field.kind
        if "type" in spec:
            if spec["type"] not in _TYPES:
                problems.add(f"{where}.type：未知的类型「{spec['type']}」（可用：str、int、date）",
                             f"{where}.type: unknown type {spec['type']!r} (known: str, int, date)")
            elif kind in ("text",):
                kind = _TYPES[spec["type"]]
            elif _TYPES[spec["type"]] != kind \
                    and not (kind in ("choice", "choices", "tags") and spec["type"] == "str"):
                problems.add(f"{where}.type：{target} 的类型由模式决定为 {kind}",
                             f"{where}.type: the schema makes {target} a {kind} field")
        sources = _field_names(problems, f"{where}.from", spec["from"]) if "from" in spec else ()
        if "from" not in spec and "default" not in spec:
            problems.add(f"{where}：需要 from 或 default", f"{where}: needs from or default")
        values = _text_map(problems, f"{where}.values", spec["values"]) if "values" in spec else {}
        choices = schema_field.choices
        if choices is not None:
            for raw, code in values.items():
                if code not in choices:
                    problems.add(f"{where}.values：「{raw}」对应的「{code}」不是可选值（可用：{'、'.join(choices)}）",
                                 f"{where}.values: {raw!r} maps to {code!r}, which is not a choice "
                                 f"(choices: {', '.join(choices)})")
        default = spec.get("default")
        if default is not None:
            if isinstance(default, bool) or not isinstance(default, (str, int)):
                problems.add(f"{where}.default：应为文本或整数",
                             f"{where}.default: must be text or a whole number")
            elif choices is not None and str(default) not in choices:
                problems.add(
                    f"{where}.default：「{default}」不是可选值（可用：{'、'.join(choices)}）",
                    f"{where}.default: {default!r} is not a choice (choices: {', '.join(choices)})")
        required = spec.get("required", False)
        if not isinstance(required, bool):
            problems.add(f"{where}.required：应为 true 或 false",
                         f"{where}.required: must be true or false")
        split = None
        if "split" in spec:
            if kind not in ("tags", "choices"):
                problems.add(f"{where}.split：只适用于 tags 和多选字段",
                             f"{where}.split: only applies to tags and multiple-choice fields")
            split = _compile(problems, f"{where}.split", spec["split"])
        elif kind == "tags":
            split = re.compile(DEFAULT_TAG_SPLIT)
        elif kind == "choices":
            split = re.compile(DEFAULT_CHOICES_SPLIT)
        date_formats: tuple[str, ...] = DEFAULT_DATE_FORMATS
        if "date_formats" in spec:
            if kind != "date":
                problems.add(f"{where}.date_formats：只适用于日期字段",
                             f"{where}.date_formats: only applies to date fields")
            date_formats = _string_list(problems, f"{where}.date_formats", spec["date_formats"])
            for fmt in date_formats:
                if "%" not in fmt:
                    problems.add(
                        f"{where}.date_formats：「{fmt}」不是 strptime 格式（如 %Y-%m-%d）",
                        f"{where}.date_formats: {fmt!r} is not a strptime format (e.g. %Y-%m-%d)")
        empty = self._empty | {text.strip() for text in _string_list(
            problems, f"{where}.empty_values", spec.get("empty_values", []))}
        if len(problems) > before:
            return None
        return FieldRule(
            target=target, sources=sources, kind=kind, values=values,
            default=None if default is None else str(default),
            required=required or schema_field.required, empty=frozenset(empty), choices=choices,
            split=split, date_formats=tuple(dict.fromkeys((*date_formats, CHINESE_DATE_FORMAT))),
        )

    def _read_resources(self, problems: _Problems, spec: Any) -> None:
        self._formats_from: str | None = None
        self._resources_from: str | None = None
        self._resource_url_from: str | None = None
        self._formats_split = re.compile(DEFAULT_FORMAT_SPLIT)
        self._formats_findall: re.Pattern | None = None
        if spec is None:
            return
        if not isinstance(spec, AbstractMapping):
            problems.add("resources 应为键值映射", "resources must be a mapping")
            return
        _unknown_keys(problems, "resources", spec, {"formats_from", "url_from", "split", "findall", "from"})
        if "from" in spec:
            names = _field_names(problems, "resources.from", spec["from"])
            self._resources_from = names[0] if len(names) == 1 else None
            if set(spec) != {"from"}:
                problems.add("resources 的 from 不能与其他键同用",
                             "resources.from cannot be combined with other keys")
            return
        if "formats_from" not in spec:
            problems.add("resources 需要 formats_from 或 from", "resources needs formats_from or from")
        else:
            names = _field_names(problems, "resources.formats_from", spec["formats_from"])
            self._formats_from = names[0] if len(names) == 1 else None
        if "url_from" in spec:
            names = _field_names(problems, "resources.url_from", spec["url_from"])
            self._resource_url_from = names[0] if len(names) == 1 else None
        if "split" in spec and "findall" in spec:
            problems.add("resources 不能同时有 split 与 findall",
                         "resources cannot have both split and findall")
        if "split" in spec:
            self._formats_split = (
                _compile(problems, "resources.split", spec["split"]) or self._formats_split)
        if "findall" in spec:
            self._formats_findall = _compile(
                problems, "resources.findall", spec["findall"], groups=(0, 1))

    # -- mapping a record --

    def identity_of(self, record: dict) -> str:
        """The record's stable id in its source.

        :raises RecordRejected: when the configured fields yield none.
        """
        if self._identity_from is not None:
            text = self._text(record, self._identity_from, None)
            if text in self._empty:
                text = ""
            if text and self._identity_pattern is not None:
                match = self._identity_pattern.search(text)
                text = match.group(1).strip() if match and match.group(1) else ""
            if text:
                return text
        if self._identity_hash_of:
            values = [self._text(record, name, None) for name in self._identity_hash_of]
            if any(values):
                return hashlib.sha256(_canonical(values).encode("utf-8")).hexdigest()[:20]
        fields_zh = "、".join(filter(None, [self._identity_from, *self._identity_hash_of]))
        fields_en = ", ".join(filter(None, [self._identity_from, *self._identity_hash_of]))
        raise RecordRejected(
            None, "source_identifier",
            f"无法确定记录标识：{fields_zh} 为空或不含标识", f"no identity: {fields_en} empty or without an id",
            code="missing-identity",
        )

    def content_hash(self, record: dict) -> str:
        """SHA-256 of this mapping's fingerprint and the canonical source record."""
        canonical = _canonical({"mapping": self.fingerprint, "record": record})
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def rule(self, target: str) -> FieldRule:
        """The rule filling ``target`` (``tags`` for the tags)."""
        for rule in self.rules:
            if rule.target == target:
                return rule
        raise KeyError(target)

    def package_name(self, identity: str) -> str:
        """``<name_prefix>-<identity as a slug>``; an 8-hex hash of the
        identity is added whenever the slug is not the identity itself (case
        folded, characters replaced, cut to fit 100), so distinct identities
        keep distinct names."""
        slug = re.sub(r"[^a-z0-9_-]+", "-", identity.lower()).strip("-_")
        room = MAX_NAME_LENGTH - len(self.name_prefix) - 1
        if slug != identity or len(slug) > room:
            digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:8]
            slug = f"{slug[:room - 9].rstrip('-_')}-{digest}".lstrip("-")
        return f"{self.name_prefix}-{slug}"

    def apply(self, record: dict) -> MappedRecord:
        """Map one source record.

        :raises RecordRejected: naming the field and the raw value.
        """
        identity = self.identity_of(record)
        department = self._department(record, identity)
        dataset_type = (
            self._type_fixed or self._type_by_department.get(department, self._type_default))
        schema = self._schemas[dataset_type]
        warnings: list[str] = []
        package: dict[str, Any] = {"type": dataset_type, "name": self.package_name(identity)}
        for rule in self.rules:
            if rule.target != "tags" and rule.target not in schema:
                continue  # a department field; this record's type has no such field
            value = self._value(record, rule, identity, warnings)
            package["tag_string" if rule.target == "tags" else rule.target] = value
        package["source_identifier"] = identity
        if self._formats_from is not None:
            package["resources"] = self._resources(record, package.get("title", ""))
        elif self._resources_from is not None:
            package["resources"] = self._listed_resources(record, package.get("title", ""))
        _check_sizes(package, identity)
        first, last = package.get("first_published"), package.get("last_updated")
        if first and last and last < first:
            warnings.append(
                f"更新日期 {last} 早于首次发布日期 {first}（按来源原样保留） / last_updated {last} "
                f"is before first_published {first} (kept as the source says)")
        return MappedRecord(
            identity=identity, department=department, dataset_type=dataset_type,
            package=package, content_hash=self.content_hash(record), warnings=warnings,
        )

    def _text(self, record: dict, name: str, identity: str | None) -> str:
        value = record.get(name)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float, Decimal)):
            return str(value).strip()
        if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], (list, dict)):
            return self._text({name: value[0]}, name, identity)
        raise RecordRejected(
            identity, name, f"字段「{name}」的值应为文本，而不是 {type(value).__name__}",
            f"field {name!r} should hold text, not {type(value).__name__}", code="bad-value",
        )

    def _department(self, record: dict, identity: str) -> str:
        if self._department_fixed:
            return self._department_fixed
        name = self._text(record, self._department_from, identity)
        name = self._department_aliases.get(name, name)
        if name in self._empty:
            raise RecordRejected(
                identity, "owner_org", f"缺少数据提供部门（{self._department_from}）",
                f"no providing department ({self._department_from})", code="missing-department",
            )
        return name

    def _raw(self, record: dict, rule: FieldRule, identity: str) -> tuple[str, Any]:
        """The first source field with a value, and that value (a list for
        tags and multiple choices, else text)."""
        for name in rule.sources:
            value = record.get(name)
            if rule.kind in ("tags", "choices") and isinstance(value, list):
                items = [self._text({name: item}, name, identity) for item in value]
                items = [item for item in items if item not in rule.empty]
                if items:
                    return name, items
                continue
            text = self._text(record, name, identity)
            if text not in rule.empty:
                return name, text
        return "", None

    def _value(self, record: dict, rule: FieldRule, identity: str, warnings: list[str]) -> Any:
        source, raw = self._raw(record, rule, identity)
        if raw is None:
            if rule.default is not None:
                source, raw = "default", rule.default
            elif rule.required:
                names = "、".join(rule.sources) or "default"
                raise RecordRejected(
                    identity, rule.target, f"缺少必填字段 {rule.target}（来源：{names}）",
                    f"the required field {rule.target} is empty "
                    f"(source: {', '.join(rule.sources)})",
                    code="missing-required",
                )
            else:
                return [] if rule.kind == "choices" else ""
        if rule.kind == "tags":
            return _tag_string(raw if isinstance(raw, list) else rule.split.split(raw), warnings)
        if rule.kind == "choices":
            parts = raw if isinstance(raw, list) else rule.split.split(raw)
            codes = (self._code(rule, source, part.strip(), identity)
                     for part in parts if part.strip())
            return list(dict.fromkeys(codes))
        if rule.kind == "choice":
            return self._code(rule, source, raw, identity)
        raw = rule.values.get(raw, raw)
        if rule.kind == "date":
            return _parse_date(raw, rule, source, identity)
        if rule.kind == "int":
            return _parse_int(raw, rule, source, identity)
        return raw

    def _code(self, rule: FieldRule, source: str, raw: str, identity: str) -> str:
        if raw in rule.values:
            return rule.values[raw]
        if rule.choices is not None and raw in rule.choices:
            return raw
        raise RecordRejected(
            identity, rule.target,
            f"{source}「{raw}」没有对应的 {rule.target} 取值（映射中无此项；可选：{'、'.join(rule.choices or ())}）",
            f"{source} value {raw!r} has no {rule.target} code (not in the value map; "
            f"choices: {', '.join(rule.choices or ())})",
            code="unmapped-value",
        )

    def _resources(self, record: dict, title: str) -> list[dict]:
        value = record.get(self._formats_from)
        if isinstance(value, list):
            formats = [self._text({"format": item}, "format", None) for item in value]
        else:
            text = self._text(record, self._formats_from, None)
            if self._formats_findall is not None:
                formats = [match if isinstance(match, str) else match[0]
                           for match in self._formats_findall.findall(text)]
            else:
                formats = self._formats_split.split(text)
        url = self._text(record, self._resource_url_from, None) if self._resource_url_from else ""
        resources, seen = [], set()
        for fmt in formats:
            fmt = fmt.strip()
            code = fmt.upper() if fmt.isascii() else fmt
            if not fmt or fmt in self._empty or code in seen:
                continue
            seen.add(code)
            name = f"{title}（{code}）" if title else code
            resources.append({"name": name, "url": url, "format": code})
        return resources


    def _listed_resources(self, record: dict, title: str) -> list[dict]:
        resources = []
        for item in record.get(self._resources_from) or []:
            if not isinstance(item, AbstractMapping):
                continue
            fmt = str(item.get("format") or "").strip()
            code = fmt.upper() if fmt.isascii() else fmt
            resource = {"url": str(item.get("url") or ""), "format": code,
                        "name": str(item.get("name") or "").strip() or (f"{title}（{code}）" if code else title)}
            if item.get("description"):
                resource["description"] = str(item["description"])
            resources.append(resource)
        return resources


# --- value conversions ----------------------------------------------------------

def _check_sizes(package: dict, identity: str) -> None:
    """Reject a record whose title, texts or resource list are far larger
    than any catalog record's."""
    title = package.get("title") or ""
    if len(title) > MAX_TITLE_LENGTH:
        raise RecordRejected(
            identity, "title", f"标题长达 {len(title):,} 个字符，超过上限 {MAX_TITLE_LENGTH}",
            f"the title is {len(title):,} characters long, more than the {MAX_TITLE_LENGTH} allowed",
            code="too-large")
    for key, value in package.items():
        if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
            raise RecordRejected(
                identity, key, f"字段 {key} 长达 {len(value):,} 个字符，超过上限 {MAX_TEXT_LENGTH:,}",
                f"{key} is {len(value):,} characters long, more than the {MAX_TEXT_LENGTH:,} allowed",
                code="too-large")
    resources = package.get("resources") or []
    if len(resources) > MAX_RESOURCES:
        raise RecordRejected(
            identity, "resources", f"记录含 {len(resources):,} 个资源，超过上限 {MAX_RESOURCES}",
            f"the record has {len(resources):,} resources, more than the {MAX_RESOURCES} allowed",
            code="too-large")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def _tag_string(parts: Iterable[str], warnings: list[str]) -> str:
    tags: list[str] = []
    for part in parts:
        tag = part.strip()
        if not tag or tag in tags:
            continue
        if len(tag) < 2:
            warnings.append(f"标签「{tag}」少于 2 个字符，已忽略 / "
                            f"tag {tag!r} is shorter than 2 characters and was dropped")
        elif len(tag) > 100:
            warnings.append(f"标签「{tag[:20]}…」超过 100 个字符，已忽略 / "
                            f"tag {tag[:20]!r}… is longer than 100 characters and was dropped")
        elif not _TAG_ALLOWED.match(tag):
            warnings.append(
                f"标签「{tag}」含有不允许的字符（只能用文字、数字、空格和 -_.），已忽略 / "
                f"tag {tag!r} has characters other than letters, digits, space and -_. "
                f"and was dropped")
        else:
            tags.append(tag)
    return ",".join(tags)


def _parse_date(raw: str, rule: FieldRule, source: str, identity: str) -> str:
    for fmt in rule.date_formats:
        try:
            return dt.datetime.strptime(raw, fmt).date().isoformat()
        except ValueError:
            continue
    raise RecordRejected(
        identity, rule.target,
        f"{source}「{raw}」不是可识别的日期（可用格式：{'、'.join(rule.date_formats)}）",
        f"{source} value {raw!r} is not a date in a known format ({', '.join(rule.date_formats)})",
        code="bad-date",
    )


def _parse_int(raw: str, rule: FieldRule, source: str, identity: str) -> int:
    digits = re.sub(r"(?<=\d)[,，\s](?=\d{3}\b)", "", raw)
    try:
        number = Decimal(digits)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number != number.to_integral_value():
        raise RecordRejected(
            identity, rule.target,
            f"{source}「{raw}」不是整数", f"{source} value {raw!r} is not a whole number",
            code="bad-number",
        )
    return int(number)


# --- a whole source -------------------------------------------------------------

def map_records(mapping: Mapping, items: Iterable[dict | BadRecord],
                ) -> Iterator[tuple[int, MappedRecord | RecordRejected]]:
    """Map every item ``readers.iter_records`` yields, with its 1-based
    position in the source; unreadable records and repeated identities come
    out as ``RecordRejected`` too, so every record is accounted for.

    The first record of an identity wins. A later one with the same content
    is a ``duplicate``; with different content a ``conflicting-duplicate``
    (the source holds two versions of one dataset; which one is right cannot
    be known here).
    """
    first_seen: dict[str, tuple[int, str]] = {}
    for position, item in enumerate(items, start=1):
        if isinstance(item, BadRecord):
            where_zh = f"第 {item.position} 条记录" if item.unit == "item" else f"第 {item.position} 行"
            yield position, RecordRejected(
                None, None, f"{where_zh}无法读取：{item.reason_zh}",
                f"{item.unit} {item.position} cannot be read: {item.reason_en}",
                code="bad-record", position=position,
            )
            continue
        try:
            mapped = mapping.apply(item)
        except RecordRejected as rejection:
            rejection.position = position
            yield position, rejection
            continue
        earlier = first_seen.get(mapped.identity)
        if earlier is None:
            first_seen[mapped.identity] = (position, mapped.content_hash)
            yield position, mapped
        elif earlier[1] == mapped.content_hash:
            yield position, RecordRejected(
                mapped.identity, "source_identifier",
                f"与第 {earlier[0]} 条记录完全相同（来源中的重复记录），已跳过",
                f"an exact repeat of record {earlier[0]} (a duplicate in the source), skipped",
                code="duplicate", position=position,
            )
        else:
            yield position, RecordRejected(
                mapped.identity, "source_identifier",
                f"与第 {earlier[0]} 条记录标识相同但内容不同；保留第 {earlier[0]} 条",
                f"has the identity of record {earlier[0]} but different content; "
                f"record {earlier[0]} is kept",
                code="conflicting-duplicate", position=position,
            )


# --- departments ------------------------------------------------------------------

# pypinyin reads some place names by their everyday word (长 as in 市长,
# 行 as in 行走); a department slug should read as the place is called.
_PLACE_READINGS = {
    "长宁": "changning",
    "闵行": "minhang",
    "长江": "changjiang",
    "六安": "luan",
    "蚌埠": "bengbu",
    "丽水": "lishui",
    "番禺": "panyu",
}
_REGION = re.compile(r"^(?P<place>[^区县市省]{2,3}?)[市省]")
_DISTRICT = re.compile(r"^(?P<place>.{1,6}?)(?P<kind>新区|自治县|区|县)")
_SUFFIXES = {
    "人民政府办公室": "renmin-zhengfu-bangongshi",
    "人民政府办公厅": "renmin-zhengfu-bangongting",
    "人民政府": "renmin-zhengfu",
    "政府办公室": "zhengfu-bangongshi",
    "政府": "zhengfu",
    "委员会": "weiyuanhui",
    "办公室": "bangongshi",
    "办公厅": "bangongting",
    "中心": "zhongxin",
    "局": "ju",
    "委": "wei",
    "办": "ban",
}
_SUFFIX = re.compile("(" + "|".join(sorted(_SUFFIXES, key=len, reverse=True)) + ")$")
_DISTRICT_KINDS = {"新区": "xinqu", "自治县": "zizhixian", "区": "qu", "县": "xian"}
_PLACE_SPLIT = re.compile("(" + "|".join(_PLACE_READINGS) + ")")
SLUG_MAX_LENGTH = 60


def _pinyin(text: str) -> tuple[str, bool]:
    """Toneless pinyin of a text run together, and whether anything could
    not be spelled (rare characters, punctuation)."""
    from pypinyin import lazy_pinyin

    spelled, lossy = [], False
    for piece in _PLACE_SPLIT.split(text):
        if not piece:
            continue
        if piece in _PLACE_READINGS:
            spelled.append(_PLACE_READINGS[piece])
            continue
        for syllable in lazy_pinyin(piece):
            clean = re.sub(r"[^a-z0-9]", "", syllable.lower())
            lossy = lossy or clean != syllable.lower()
            spelled.append(clean)
    return "".join(spelled), lossy


def _part_words(part: str) -> tuple[list[str], bool]:
    words, lossy = [], False

    def spell(text: str) -> None:
        nonlocal lossy
        word, lost = _pinyin(text)
        lossy = lossy or lost
        if word:
            words.append(word)

    region = _REGION.match(part)
    if region:
        spell(region.group("place"))
        part = part[region.end():]
    district = _DISTRICT.match(part)
    if district:
        spell(district.group("place"))
        words.append(_DISTRICT_KINDS[district.group("kind")])
        part = part[district.end():]
    suffix = _SUFFIX.search(part)
    if suffix and suffix.start() > 0:
        spell(part[:suffix.start()])
        words.append(_SUFFIXES[suffix.group()])
    elif suffix:
        words.append(_SUFFIXES[suffix.group()])
    elif part:
        spell(part)
    return words, lossy


def department_slug(chinese_name: str) -> str:
    """A short, readable ASCII slug for a department's Chinese name, e.g.
    上海市公安局 -> ``shanghai-gongan-ju``, 上海市杨浦区人民政府 ->
    ``shanghai-yangpu-qu-renmin-zhengfu``.

    A pure function of the name: lower-case a-z, 0-9 and ``-``, at most 60
    characters. A 6-hex hash of the full name is appended when the slug would
    be longer (it is cut first) or when the name has characters the slug
    cannot spell, so such names stay apart. Names spelled the same in
    toneless pinyin would share a slug, and a pypinyin upgrade may respell a
    rare character: look departments up by their Chinese name, and use the
    slug only to name a new organisation.
    """
    name = unicodedata.normalize("NFKC", chinese_name or "").strip()
    if not name:
        raise ValueError("部门名称为空 / the department name is empty")
    parts = [part for part in re.split(r"[()]", name) if part.strip()]
    words, lossy = [], bool(re.search(r"[^\w()]", name))
    for part in parts:
        part_words, part_lossy = _part_words(part.strip())
        words.extend(part_words)
        lossy = lossy or part_lossy
    slug = "-".join(word for word in words if word)
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    if not slug:
        return f"dept-{digest}"
    if len(slug) > SLUG_MAX_LENGTH:
        return f"{slug[:SLUG_MAX_LENGTH - 7].rstrip('-')}-{digest}"
    if lossy:
        return f"{slug[:SLUG_MAX_LENGTH - 7].rstrip('-')}-{digest}"
    return slug


_DISTRICT_GOVERNMENT = re.compile(r"(区|县)(人民政府|政府)(办公室)?$")
_BUREAU_ENDING = re.compile(r"(局|委员会|办公室|办公厅|委|办)$")


def department_type_of(chinese_name: str) -> str:
    """The organisation schema's department_type for a department name, by
    rule: a district (or county) people's government or its office ->
    ``district-government``; a city's (上海市…) bureau, commission or office
    -> ``municipal-bureau``; anything else, including a district's own
    bureaus and central-government branches -> ``other``. Written for
    Shanghai's names; for other cities' names it is a best guess."""
    name = unicodedata.normalize("NFKC", chinese_name or "").strip()
    core = re.sub(r"\([^()]*\)$", "", name).strip()
    if _DISTRICT_GOVERNMENT.search(core):
        return "district-government"
    region = _REGION.match(core)
    if region:
        rest = core[region.end():]
        if not _DISTRICT.match(rest) and _BUREAU_ENDING.search(rest):
            return "municipal-bureau"
    return "other"

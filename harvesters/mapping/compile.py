"""Compiling a mapping file: reading its YAML strictly, checking every key,
rule and pattern against the portal's schemas, and reporting every problem
at once (``MappingConfigError``). See the package docstring for the format."""
from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping as AbstractMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ckanext.shanghai.messages import Message, MessageError


# Part of every mapping's fingerprint: bump when this module maps the same
# record and config differently, so the next harvest re-imports.
ENGINE_VERSION = 2
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
MAPPINGS_DIR = Path(__file__).resolve().parents[1] / "mappings"

GENERATED_FIELDS = ("name", "owner_org", "source_identifier", "tag_string", "type")
DEFAULT_DATE_FORMATS = (
    "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S",
)
CHINESE_DATE_FORMAT = "%Y年%m月%d日"
# What exports write for "no date": all zeros, the spreadsheet and system
# epochs, the first day of the calendar. A mapping's ``placeholder_dates``
# adds its own; any date before 1900 is one too.
PLACEHOLDER_DATES = ("0000-00-00", "0000-00-00 00:00:00", "00000000", "0000/00/00", "0000年00月00日",
                     "1900-01-01", "1900-01-01 00:00:00", "1899-12-30", "1899-12-31", "0001-01-01",
                     "1970-01-01", "1970-01-01 00:00:00")
EARLIEST_REAL_YEAR = 1900
# A count (record_count ...) beyond this is a broken export, not a table.
MAX_PLAUSIBLE_COUNT = 10 ** 12
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


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


# --- errors and results ---------------------------------------------------

class MappingConfigError(MessageError, ValueError):
    """A mapping file that cannot be used; ``problems`` lists every problem
    found (``bad-mapping`` messages), ``message`` all of them in one."""

    def __init__(self, problems: list[Message]):
        self.problems = list(problems)
        super().__init__(Message(
            "bad-mapping",
            "映射配置有误：\n" + "\n".join(f"- {problem.zh}" for problem in self.problems),
            "the mapping configuration is invalid:\n" + "\n".join(f"- {problem.en}" for problem in self.problems),
        ))

    def __str__(self) -> str:
        # Shown on the harvest source form, one problem a line in both languages.
        return "映射配置有误 / the mapping configuration is invalid:\n" + "\n".join(
            f"- {problem}" for problem in self.problems)


class RecordRejected(MessageError):
    """A record that cannot become a dataset, and why (``message``). Codes:
    ``missing-identity``, ``missing-department``, ``missing-required``,
    ``unmapped-value``, ``bad-date``, ``bad-number``, ``bad-value``,
    ``too-large`` (from ``Mapping.apply``), ``bad-record`` (unreadable, from
    the reader), ``duplicate`` and ``conflicting-duplicate`` (from
    ``first_of_each``). ``identity`` is the record's when known,
    ``position`` its 1-based place in the source when known."""

    def __init__(self, identity: str | None, message: Message, *, position: int | None = None):
        super().__init__(message)
        self.identity = identity
        self.position = position


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
    warnings: list[Message] = field(default_factory=list)


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
    # The field this date may not precede (``shanghai_not_before(...)``).
    not_before: str | None = None


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


_NOT_BEFORE = re.compile(r"shanghai_not_before\((\w+)\)")


def _not_before(definition: dict) -> str | None:
    match = _NOT_BEFORE.search(str(definition.get("validators", "")))
    return match.group(1) if match else None


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
                choices=codes, not_before=_not_before(merged))
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
            raise MappingConfigError([Message(
                "bad-mapping", f"第 {key_node.start_mark.line + 1} 行：键「{key}」重复出现",
                f"line {key_node.start_mark.line + 1}: the key {key!r} appears twice")])
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_mapping_config(source: str | Path | AbstractMapping) -> dict:
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
            raise MappingConfigError([Message(
                "bad-mapping", f"无法读取映射文件 {path}：{exc}", f"cannot read the mapping file {path}: {exc}")]) from None
        try:
            config = yaml.load(text, Loader=_StrictLoader)
        except yaml.YAMLError as exc:
            raise MappingConfigError([Message(
                "bad-mapping", f"映射文件不是合法的 YAML：{exc}", f"the mapping file is not valid YAML: {exc}")]) from None
        if not isinstance(config, dict):
            raise MappingConfigError([Message(
                "bad-mapping", "映射文件的顶层应为键值映射", "the mapping file's top level must be a mapping of keys")])
    return config


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
        self.append(Message("bad-mapping", zh, en))


# Dataset types that are not data products: never a harvested record's type.
NOT_PRODUCT_TYPES = frozenset({"application"})
_TOP_KEYS = {"version", "description", "name_prefix", "identity", "department", "dataset_type",
             "empty_values", "placeholder_dates", "fields", "fields_by_name", "flags_from", "resources"}
_DEPARTMENT_KEYS = {"from", "fixed", "aliases", "join", "prefix_if", "empty_values", "placeholders",
                    "placeholder_department"}
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


class CompiledMapping:
    """A validated mapping of one source's records onto the schemas; see the
    module docstring for the configuration."""

    def __init__(self, config: dict, schemas: dict[str, dict[str, SchemaField]]):
        problems = _Problems()
        self.config = config
        self._schemas = schemas
        _unknown_keys(problems, "mapping", config, _TOP_KEYS)
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
        self._placeholder_dates = frozenset(PLACEHOLDER_DATES) | frozenset(
            text.strip() for text in _string_list(problems, "placeholder_dates", config.get("placeholder_dates", [])))
        self._read_identity(problems, config.get("identity"))
        self._read_department(problems, config.get("department"))
        self._read_dataset_type(problems, config.get("dataset_type", {"fixed": "dataset"}))
        self.rules: tuple[FieldRule, ...] = tuple(self._read_fields(problems, config.get("fields")))
        self._read_resources(problems, config.get("resources"))
        self._flags_from: str | None = None
        if "flags_from" in config:
            names = _field_names(problems, "flags_from", config["flags_from"])
            self._flags_from = names[0] if len(names) == 1 else None
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
        self._department_from: tuple[str, ...] = ()
        self._department_fixed: str | None = None
        self._department_aliases: dict[str, str] = {}
        self._department_join = ""
        self._department_prefix_if: re.Pattern | None = None
        self._department_empty: frozenset[str] = self._empty
        self._department_placeholders: frozenset[str] = frozenset()
        self._placeholder_department: str | None = None
        if not isinstance(spec, AbstractMapping):
            problems.add("缺少 department（数据提供部门）",
                         "department is missing (the providing department)")
            return
        _unknown_keys(problems, "department", spec, _DEPARTMENT_KEYS)
        if ("from" in spec) == ("fixed" in spec):
            problems.add("department 需要 from 与 fixed 二者之一",
                         "department needs exactly one of from and fixed")
        if "from" in spec:
            self._department_from = _field_names(problems, "department.from", spec["from"])
        if "fixed" in spec:
            if not isinstance(spec["fixed"], str) or not spec["fixed"].strip():
                problems.add("department.fixed 应为部门名称",
                             "department.fixed must be a department name")
            else:
                self._department_fixed = spec["fixed"].strip()
        if "aliases" in spec:
            self._department_aliases = _text_map(problems, "department.aliases", spec["aliases"])
        if "join" in spec:
            if not isinstance(spec["join"], str):
                problems.add("department.join 应为文本（各字段之间的连接符）",
                             "department.join must be text (put between the fields)")
            else:
                self._department_join = spec["join"]
        if "prefix_if" in spec:
            if len(self._department_from) < 2:
                problems.add("department.prefix_if 需要 department.from 列出多个字段",
                             "department.prefix_if needs several fields in department.from")
            self._department_prefix_if = _compile(problems, "department.prefix_if", spec["prefix_if"])
        if "empty_values" in spec:
            self._department_empty = self._empty | {text.strip() for text in _string_list(
                problems, "department.empty_values", spec["empty_values"])}
        if "placeholders" in spec:
            self._department_placeholders = frozenset(text.strip() for text in _string_list(
                problems, "department.placeholders", spec["placeholders"]))
        if "placeholder_department" in spec:
            fallback = spec["placeholder_department"]
            if not isinstance(fallback, str) or not fallback.strip():
                problems.add("department.placeholder_department 应为部门名称",
                             "department.placeholder_department must be a department name")
            else:
                self._placeholder_department = fallback.strip()
                if self._placeholder_department in self._department_placeholders:
                    problems.add("department.placeholder_department 不能是占位名称之一",
                                 "department.placeholder_department cannot be one of the placeholders")
            if "placeholders" not in spec:
                problems.add("department.placeholder_department 需要同时给出 department.placeholders",
                             "department.placeholder_department needs department.placeholders")

    def _read_dataset_type(self, problems: _Problems, spec: Any) -> None:
        self._type_fixed: str | None = None
        self._type_by_department: dict[str, str] = {}
        self._type_from: str | None = None
        self._type_default = "dataset"
        if not isinstance(spec, AbstractMapping):
            problems.add("dataset_type 应为键值映射", "dataset_type must be a mapping")
            return
        _unknown_keys(problems, "dataset_type", spec, {"fixed", "by_department", "from", "default"})
        if len({"fixed", "by_department", "from"} & set(spec)) > 1:
            problems.add("dataset_type 的 fixed、by_department、from 只能有一个",
                         "dataset_type takes only one of fixed, by_department and from")
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
        if "from" in spec:
            names = _field_names(problems, "dataset_type.from", spec["from"])
            self._type_from = names[0] if len(names) == 1 else None
        if "default" in spec:
            self._type_default = check("dataset_type.default", spec["default"]) or "dataset"
        if self._type_from:
            # The record names its type: any department schema may come.
            self.dataset_types = frozenset(name for name in self._schemas if name not in NOT_PRODUCT_TYPES)
        else:
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
        by_name = self.config.get("fields_by_name", False)
        if not isinstance(by_name, bool):
            problems.add("fields_by_name 应为 true 或 false", "fields_by_name must be true or false")
        elif by_name:
            # Every other field of the schemas, from the source field of its name.
            for name, schema_field in targets.items():
                if name in spec or name in GENERATED_FIELDS or name == "quality_flags" \
                        or (name == "tag_string" and "tags" in spec):
                    continue
                rule = self._read_rule(problems, f"fields_by_name.{name}", name, schema_field, {"from": name})
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

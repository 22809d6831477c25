"""Applying a compiled mapping: a source record in, a CKAN package dict
out (or a ``RecordRejected`` naming the field and the raw value); a whole
source in, each record mapped or rejected, and its repeats told apart
(``map_records``, ``first_of_each``: what the harvest's gather runs). Pure
functions, no CKAN import."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from collections.abc import Mapping as AbstractMapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ckanext.shanghai.files.readers import BadRecord
from ckanext.shanghai.messages import Message

from ckanext.shanghai.harvesters.mapping.compile import (
    EARLIEST_REAL_YEAR, MAX_NAME_LENGTH, MAX_PLAUSIBLE_COUNT, MAX_RESOURCES, MAX_TEXT_LENGTH,
    MAX_TITLE_LENGTH, CompiledMapping, FieldRule, MappedRecord, RecordRejected, _canonical, _TAG_ALLOWED,
)

# The dataset field holding a product's quality flags (see ckanext.shanghai.quality).
FLAGS_FIELD = "quality_flags"
# Codes of a field's problem that the record survives when the field is
# optional or has a default: the value is left out (or defaulted) and flagged.
_FLAGGABLE = frozenset({"unmapped-value", "bad-date", "bad-number", "bad-value", "impossible-count",
                        "placeholder-date"})


def _flag(problem: Message, zh_outcome: str, en_outcome: str) -> Message:
    """A field's problem as the quality flag of a record that still imports:
    what the source said, and what was done about it."""
    return Message(problem.code, f"{problem.zh}；{zh_outcome}", f"{problem.en}; {en_outcome}",
                   field=problem.field, value=problem.value)


class Mapping(CompiledMapping):
    """A compiled mapping that maps records."""

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
        raise RecordRejected(None, Message(
            "missing-identity", f"无法确定记录标识：{fields_zh} 为空或不含标识",
            f"no identity: {fields_en} empty or without an id", field="source_identifier",
            value=record.get(self._identity_from) if self._identity_from else None,
        ))

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
        flags: list[Message] = []
        department = self._department(record, identity, flags)
        dataset_type = (
            self._type_fixed or self._type_by_department.get(department, self._type_default))
        if self._type_from:
            named = self._text(record, self._type_from, identity)
            dataset_type = named if named in self.dataset_types else self._type_default
        schema = self._schemas[dataset_type]
        package: dict[str, Any] = {"type": dataset_type, "name": self.package_name(identity)}
        for rule in self.rules:
            if rule.target != "tags" and rule.target not in schema:
                continue  # a department field; this record's type has no such field
            value = self._field(record, rule, identity, flags)
            package["tag_string" if rule.target == "tags" else rule.target] = value
        package["source_identifier"] = identity
        if self._formats_from is not None:
            package["resources"] = self._resources(record, package.get("title", ""))
        elif self._resources_from is not None:
            package["resources"] = self._listed_resources(record, package.get("title", ""))
        _check_sizes(package, identity)
        for name, schema_field in schema.items():
            earlier = package.get(schema_field.not_before) if schema_field.not_before else None
            later = package.get(name)
            if earlier and later and later < earlier:
                flags.append(Message(
                    "dates-inverted",
                    f"来源的 {name}（{later}）早于 {schema_field.not_before}（{earlier}）；按来源原样保留",
                    f"the source's {name} ({later}) is before its {schema_field.not_before} ({earlier}); "
                    "kept as the source says",
                    field=name, value=later))
        if FLAGS_FIELD in schema:
            # A flag this harvest raises again (the same dates still inverted) is said once.
            inherited = self._inherited_flags(record)
            said = {(flag.code, flag.field, flag.value) for flag in inherited}
            package[FLAGS_FIELD] = flags_text(
                [*inherited, *(flag for flag in flags if (flag.code, flag.field, flag.value) not in said)])
        return MappedRecord(
            identity=identity, department=department, dataset_type=dataset_type,
            package=package, content_hash=self.content_hash(record), warnings=flags,
        )

    def _inherited_flags(self, record: dict) -> list[Message]:
        """The flags the source's own portal stored on the product
        (``flags_from``: its quality_flags, a JSON list), kept beside the
        ones this harvest raises; an entry that is no message is left out."""
        if not self._flags_from or not record.get(self._flags_from):
            return []
        try:
            rows = json.loads(record[self._flags_from])
        except (TypeError, ValueError):
            return []
        inherited = []
        for row in rows if isinstance(rows, list) else []:
            try:
                inherited.append(Message(str(row["code"]), str(row["reason_zh"]), str(row["reason_en"]),
                                         field=row.get("field"), value=row.get("value")))
            except (KeyError, TypeError, ValueError):
                continue
        return inherited

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
        raise RecordRejected(identity, Message(
            "bad-value", f"字段「{name}」的值应为文本，而不是 {type(value).__name__}",
            f"field {name!r} should hold text, not {type(value).__name__}", field=name, value=value,
        ))

    def _department(self, record: dict, identity: str, flags: list[Message]) -> str:
        """The department's name: one source field, or several put together
        (a district and its bureau), aliases applied. A placeholder (an
        account role such as 地区管理员) sends the record to the mapping's
        ``placeholder_department`` with a flag, or rejects it."""
        if self._department_fixed:
            return self._department_fixed
        parts = [self._text(record, name, identity) for name in self._department_from]
        parts = [part for part in parts if part not in self._department_empty]
        placeholder = next((part for part in parts if part in self._department_placeholders), None)
        if parts and self._department_prefix_if is not None \
                and not self._department_prefix_if.search(parts[-1]):
            parts = parts[-1:]  # the last field names the department on its own
        # A part a later one already says (南明区 + 南明区教育局) is said once.
        parts = [part for index, part in enumerate(parts)
                 if not any(part in later for later in parts[index + 1:])]
        name = self._department_join.join(parts)
        name = self._department_aliases.get(name, name)
        if placeholder is None and name in self._department_placeholders:
            placeholder = name
        fields_zh = "、".join(self._department_from)
        fields_en = ", ".join(self._department_from)
        raw = (record.get(self._department_from[0]) if len(self._department_from) == 1
               else [record.get(field) for field in self._department_from])
        if placeholder is not None:
            fallback = self._placeholder_department
            if fallback:
                flags.append(Message(
                    "placeholder-department",
                    f"来源的提供方「{placeholder}」是占位名称，不是部门（{fields_zh}）；归入「{fallback}」",
                    f"the source's provider {placeholder!r} is a placeholder, not a department "
                    f"({fields_en}); filed under {fallback!r}",
                    field="owner_org", value=raw))
                return fallback
            raise RecordRejected(identity, Message(
                "placeholder-department",
                f"来源的提供方「{placeholder}」是占位名称，不是部门（{fields_zh}），映射未指定归属部门",
                f"the source's provider {placeholder!r} is a placeholder, not a department "
                f"({fields_en}), and the mapping names no department for such records",
                field="owner_org", value=raw))
        if name in self._department_empty:
            raise RecordRejected(identity, Message(
                "missing-department", f"缺少数据提供部门（{fields_zh}）",
                f"no providing department ({fields_en})", field="owner_org", value=raw,
            ))
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

    def _field(self, record: dict, rule: FieldRule, identity: str, flags: list[Message]) -> Any:
        """The value of one target field. A value the field cannot take
        (unmapped, unreadable, impossible) costs the record only that field:
        the rule's default is used, or an optional field is left empty, and
        the record is flagged. A required field with neither a usable value
        nor a default rejects the record."""
        try:
            return self._value(record, rule, identity, flags)
        except RecordRejected as problem:
            if problem.code not in _FLAGGABLE:
                raise
            if rule.default is not None:
                value = self._convert(rule, "default", rule.default, identity, flags)
                flags.append(_flag(problem.message, f"改用默认值「{rule.default}」",
                                   f"the default {rule.default!r} is used instead"))
                return value
            if rule.required:
                raise
            flags.append(_flag(problem.message, "该字段留空", "the field is left empty"))
            return [] if rule.kind == "choices" else ""

    def _value(self, record: dict, rule: FieldRule, identity: str, flags: list[Message]) -> Any:
        source, raw = self._raw(record, rule, identity)
        if raw is not None and rule.kind == "date" and self._placeholder_date(raw):
            flags.append(Message(
                "placeholder-date", f"{source}「{raw}」是占位日期（表示“无”），按无日期处理",
                f"{source} value {raw!r} is a placeholder date (meaning none) and is taken as no date",
                field=rule.target, value=raw))
            source, raw = "", None
        if raw is None:
            if rule.default is not None:
                source, raw = "default", rule.default
            elif rule.required:
                names = "、".join(rule.sources) or "default"
                raise RecordRejected(identity, Message(
                    "missing-required", f"缺少必填字段 {rule.target}（来源：{names}）",
                    f"the required field {rule.target} is empty (source: {', '.join(rule.sources)})",
                    field=rule.target, value=next((record[name] for name in rule.sources
                                                   if record.get(name) is not None), None),
                ))
            else:
                return [] if rule.kind == "choices" else ""
        return self._convert(rule, source, raw, identity, flags)

    def _convert(self, rule: FieldRule, source: str, raw: Any, identity: str, flags: list[Message]) -> Any:
        if rule.kind == "tags":
            return _tag_string(raw if isinstance(raw, list) else rule.split.split(raw), flags)
        if rule.kind == "choices":
            parts = raw if isinstance(raw, list) else rule.split.split(raw)
            codes, unmapped = [], []
            for part in (part.strip() for part in parts if part.strip()):
                try:
                    codes.append(self._code(rule, source, part, identity))
                except RecordRejected as problem:
                    unmapped.append(problem)
            if unmapped and not codes:
                raise unmapped[0]
            flags.extend(_flag(problem.message, "该值已忽略", "the value was dropped") for problem in unmapped)
            return list(dict.fromkeys(codes))
        if rule.kind == "choice":
            return self._code(rule, source, raw, identity)
        raw = rule.values.get(raw, raw)
        if rule.kind == "date":
            return _parse_date(raw, rule, source, identity)
        if rule.kind == "int":
            return _parse_int(raw, rule, source, identity)
        return raw

    def _placeholder_date(self, raw: str) -> bool:
        if raw in self._placeholder_dates or not raw.strip("0-/.年月日 :T"):
            return True
        year = re.match(r"^(\d{4})", raw)
        return bool(year) and int(year.group(1)) < EARLIEST_REAL_YEAR

    def _code(self, rule: FieldRule, source: str, raw: str, identity: str) -> str:
        if raw in rule.values:
            return rule.values[raw]
        if rule.choices is not None and raw in rule.choices:
            return raw
        raise RecordRejected(identity, Message(
            "unmapped-value",
            f"{source}「{raw}」没有对应的 {rule.target} 取值（映射中无此项；可选：{'、'.join(rule.choices or ())}）",
            f"{source} value {raw!r} has no {rule.target} code (not in the value map; "
            f"choices: {', '.join(rule.choices or ())})",
            field=rule.target, value=raw,
        ))

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
        raise RecordRejected(identity, Message(
            "too-large", f"标题长达 {len(title):,} 个字符，超过上限 {MAX_TITLE_LENGTH}",
            f"the title is {len(title):,} characters long, more than the {MAX_TITLE_LENGTH} allowed",
            field="title", value=title))
    for key, value in package.items():
        if isinstance(value, str) and len(value) > MAX_TEXT_LENGTH:
            raise RecordRejected(identity, Message(
                "too-large", f"字段 {key} 长达 {len(value):,} 个字符，超过上限 {MAX_TEXT_LENGTH:,}",
                f"{key} is {len(value):,} characters long, more than the {MAX_TEXT_LENGTH:,} allowed",
                field=key, value=value))
    resources = package.get("resources") or []
    if len(resources) > MAX_RESOURCES:
        raise RecordRejected(identity, Message(
            "too-large", f"记录含 {len(resources):,} 个资源，超过上限 {MAX_RESOURCES}",
            f"the record has {len(resources):,} resources, more than the {MAX_RESOURCES} allowed",
            field="resources", value=len(resources)))


def flags_text(flags: Iterable[Message]) -> str:
    """A record's flags as the product stores them: a JSON list of the
    messages' dicts (``Message.as_dict``), or "" when there are none."""
    rows = [flag.as_dict() for flag in flags]
    return json.dumps(rows, ensure_ascii=False, sort_keys=True) if rows else ""


def _tag_string(parts: Iterable[str], warnings: list[Message]) -> str:
    tags: list[str] = []
    for part in parts:
        tag = part.strip()
        if not tag or tag in tags:
            continue
        if len(tag) < 2:
            warnings.append(Message(
                "tag-too-short", f"标签「{tag}」少于 2 个字符，已忽略",
                f"tag {tag!r} is shorter than 2 characters and was dropped", field="tags", value=tag))
        elif len(tag) > 100:
            warnings.append(Message(
                "tag-too-long", f"标签「{tag[:20]}…」超过 100 个字符，已忽略",
                f"tag {tag[:20]!r}… is longer than 100 characters and was dropped", field="tags", value=tag))
        elif not _TAG_ALLOWED.match(tag):
            warnings.append(Message(
                "tag-characters", f"标签「{tag}」含有不允许的字符（只能用文字、数字、空格和 -_.），已忽略",
                f"tag {tag!r} has characters other than letters, digits, space and -_. and was dropped",
                field="tags", value=tag))
        else:
            tags.append(tag)
    return ",".join(tags)


def _parse_date(raw: str, rule: FieldRule, source: str, identity: str) -> str:
    for fmt in rule.date_formats:
        try:
            return dt.datetime.strptime(raw, fmt).date().isoformat()
        except ValueError:
            continue
    raise RecordRejected(identity, Message(
        "bad-date", f"{source}「{raw}」不是可识别的日期（可用格式：{'、'.join(rule.date_formats)}）",
        f"{source} value {raw!r} is not a date in a known format ({', '.join(rule.date_formats)})",
        field=rule.target, value=raw,
    ))


def _parse_int(raw: str, rule: FieldRule, source: str, identity: str) -> int:
    digits = re.sub(r"(?<=\d)[,，\s](?=\d{3}\b)", "", raw)
    try:
        number = Decimal(digits)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number != number.to_integral_value():
        raise RecordRejected(identity, Message(
            "bad-number", f"{source}「{raw}」不是整数", f"{source} value {raw!r} is not a whole number",
            field=rule.target, value=raw,
        ))
    if number < 0 or number > MAX_PLAUSIBLE_COUNT:
        raise RecordRejected(identity, Message(
            "impossible-count", f"{source}「{raw}」不可能是 {rule.target} 的值（负数或大得不可能）",
            f"{source} value {raw!r} cannot be a {rule.target} (negative or impossibly large)",
            field=rule.target, value=raw,
        ))
    return int(number)


# --- a whole source -------------------------------------------------------------

def map_records(mapping: Mapping, items: Iterable[dict | BadRecord],
                ) -> Iterator[tuple[int, MappedRecord | RecordRejected]]:
    """Map every item ``readers.iter_records`` yields, with its 1-based
    position in the source; an unreadable record comes out as the
    ``bad-record`` rejection its reader made, a record the mapping refuses as
    its ``RecordRejected``, so every record is accounted for. Repeats are
    told apart afterwards, by ``first_of_each``."""
    for position, item in enumerate(items, start=1):
        if isinstance(item, BadRecord):
            yield position, RecordRejected(None, item.message, position=position)
            continue
        try:
            mapped = mapping.apply(item)
        except RecordRejected as rejection:
            rejection.position = position
            yield position, rejection
            continue
        yield position, mapped


@dataclass(frozen=True)
class FirstSeen:
    """Where a run of a source first met an identity, and the content hash
    the record had there."""

    position: int
    content_hash: str


def first_of_each(items: Iterable[tuple[int, MappedRecord | RecordRejected]], earlier: dict[str, FirstSeen],
                  ) -> tuple[list[tuple[int, MappedRecord]], list[RecordRejected]]:
    """Sort mapped records (as ``map_records`` yields them, in source order)
    into those to take and those rejected. The first record of an identity
    wins; a later one with the same content is a ``duplicate``, with
    different content a ``conflicting-duplicate`` (the source holds two
    versions of one dataset; which one is right cannot be known here).

    The harvest's gather calls this for each batch of a source, with the
    identities earlier batches met (from the records table); the whole
    source in one call with ``{}`` gives the same result.

    :param earlier: identity -> where it was first met before ``items``;
        the identities ``items`` meet first are added to it.
    :returns: the records to take, with their positions, and every
        rejection among ``items`` (those passed in included), in source order.
    """
    kept: list[tuple[int, MappedRecord]] = []
    rejected: list[RecordRejected] = []
    for position, item in items:
        if isinstance(item, RecordRejected):
            rejected.append(item)
            continue
        first = earlier.get(item.identity)
        if first is None:
            earlier[item.identity] = FirstSeen(position, item.content_hash)
            kept.append((position, item))
        elif first.content_hash == item.content_hash:
            rejected.append(RecordRejected(item.identity, Message(
                "duplicate", f"与第 {first.position} 条记录完全相同（来源中的重复记录），已跳过",
                f"an exact repeat of record {first.position} (a duplicate in the source), skipped",
                field="source_identifier", value=item.identity), position=position))
        else:
            rejected.append(RecordRejected(item.identity, Message(
                "conflicting-duplicate", f"与第 {first.position} 条记录标识相同但内容不同；保留第 {first.position} 条",
                f"has the identity of record {first.position} but different content; "
                f"record {first.position} is kept",
                field="source_identifier", value=item.identity), position=position))
    return kept, rejected

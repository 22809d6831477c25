"""Applying a compiled mapping: a source record in, a CKAN package dict
out (or a ``RecordRejected`` naming the field and the raw value); a whole
source in, each record mapped or rejected, and its repeats told apart
(``map_records``, ``first_of_each``: what the harvest's gather runs). Pure
functions, no CKAN import."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Iterator
from collections.abc import Mapping as AbstractMapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ckanext.shanghai.files.readers import BadRecord
from ckanext.shanghai.messages import Message

from ckanext.shanghai.harvesters.mapping.compile import (
    MAX_NAME_LENGTH, MAX_RESOURCES, MAX_TEXT_LENGTH, MAX_TITLE_LENGTH, CompiledMapping, FieldRule,
    MappedRecord, RecordRejected, _canonical, _TAG_ALLOWED,
)


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
        department = self._department(record, identity)
        dataset_type = (
            self._type_fixed or self._type_by_department.get(department, self._type_default))
        schema = self._schemas[dataset_type]
        warnings: list[Message] = []
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
            warnings.append(Message(
                "dates-inverted", f"更新日期 {last} 早于首次发布日期 {first}（按来源原样保留）",
                f"last_updated {last} is before first_published {first} (kept as the source says)",
                field="last_updated", value=last))
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
        raise RecordRejected(identity, Message(
            "bad-value", f"字段「{name}」的值应为文本，而不是 {type(value).__name__}",
            f"field {name!r} should hold text, not {type(value).__name__}", field=name, value=value,
        ))

    def _department(self, record: dict, identity: str) -> str:
        if self._department_fixed:
            return self._department_fixed
        name = self._text(record, self._department_from, identity)
        name = self._department_aliases.get(name, name)
        if name in self._empty:
            raise RecordRejected(identity, Message(
                "missing-department", f"缺少数据提供部门（{self._department_from}）",
                f"no providing department ({self._department_from})", field="owner_org",
                value=record.get(self._department_from),
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

    def _value(self, record: dict, rule: FieldRule, identity: str, warnings: list[Message]) -> Any:
        source, raw = self._raw(record, rule, identity)
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

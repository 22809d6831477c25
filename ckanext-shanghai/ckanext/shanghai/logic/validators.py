"""Validators named by the scheming schemas in schemas/: dates, date order,
national theme normalisation, counts, bounding boxes and credit codes.

Every error is a ``Message`` (a code, the Chinese and the English text)
given to CKAN as a ``MessageText``: the API and the forms show it as one
bilingual string to people of both languages, and the harvest report reads
its parts; the field it belongs to is named by the key of the error, as
CKAN's ValidationError does.
"""
from __future__ import annotations

import datetime as dt
import functools
import importlib
import json
import os
import re
from typing import Any

import yaml

import ckan.plugins.toolkit as tk
from ckan.lib.navl.dictization_functions import Invalid, StopOnError, missing
from ckan.logic import validators as ckan_validators
from ckanext.scheming.validation import scheming_validator

from ckanext.shanghai import quality
from ckanext.shanghai.messages import Message, MessageText

__all__ = [
    "shanghai_choices",
    "shanghai_date",
    "shanghai_not_before",
    "shanghai_national_theme",
    "shanghai_non_negative_int",
    "shanghai_bbox",
    "shanghai_unified_credit_code",
    "shanghai_web_url",
    "shanghai_package_name_unique",
    "shanghai_owner_org",
    "shanghai_quality_flags",
    "shanghai_machine_translation",
]

# Context keys a batch writer sets once for a whole batch of new packages
# (harvesters/writer.py), so the two validators below answer from them
# instead of one database query per package; without them they are CKAN's.
BATCH_TAKEN_NAMES = "shanghai_batch_taken_names"
BATCH_DEPARTMENTS = "shanghai_batch_departments"

_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)


def parse_date(value: Any) -> dt.date | None:
    """The calendar date a value names, or None where it names none.

    Accepts date and datetime objects and the forms Chinese portals export:
    2023-04-06, 2023/4/6, 2023.04.06, 2023年4月6日, 20230406 and ISO
    date-times.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            try:
                return dt.date(year, month, day)
            except ValueError:
                return None
    return None


def _label(text: Any, lang: str) -> str:
    if isinstance(text, dict):
        return str(text.get(lang) or text.get("en") or next(iter(text.values()), ""))
    return str(text or "")


@scheming_validator
def shanghai_choices(field: dict, schema: dict):
    """Like scheming_choices, with an error that names the field and lists
    the allowed values with their labels, in Chinese and English."""
    allowed = {choice["value"]: choice for choice in field.get("choices", [])}
    zh_field, en_field = _label(field.get("label"), "zh_Hans_CN"), _label(field.get("label"), "en")

    def validator(value):
        if value is missing or value is None or value == "":
            return value
        if value in allowed:
            return value
        zh_allowed = "、".join(f"{code}（{_label(c.get('label'), 'zh_Hans_CN')}）" for code, c in allowed.items())
        en_allowed = ", ".join(f"{code} ({_label(c.get('label'), 'en')})" for code, c in allowed.items())
        raise Invalid(MessageText(Message(
            "bad-choice", f"「{value!s:.60}」不是{zh_field}的可选值；可选值：{zh_allowed}",
            f'"{value!s:.60}" is not a valid {en_field}; allowed: {en_allowed}'
        )))

    return validator


def shanghai_date(value: Any) -> Any:
    """Normalise a date to ISO ``YYYY-MM-DD``; reject what is not a date."""
    if value is missing or value is None or value == "":
        return value
    parsed = parse_date(value)
    if parsed is None:
        raise Invalid(MessageText(Message(
            "bad-date", f"日期格式无效（应为 YYYY-MM-DD）：{value!s:.40}",
            f"Invalid date (expected YYYY-MM-DD): {value!s:.40}"
        )))
    return parsed.isoformat()


def shanghai_not_before(other_field: str):
    """A validator that rejects a date earlier than the date in ``other_field``
    of the same record (an update before first publication, an end before a
    start). A harvest stores a source's backwards dates as the source gave
    them, with a quality flag saying so (see ckanext.shanghai.quality); the
    web form and the API keep refusing them."""

    def validator(key, data, errors, context):
        if context.get(quality.HARVEST_CONTEXT):
            return
        value = parse_date(data.get(key))
        other = parse_date(data.get(key[:-1] + (other_field,)))
        if value and other and value < other:
            errors[key].append(MessageText(Message(
                "dates-inverted", f"不能早于 {other_field}（{other.isoformat()}）",
                f"must not be earlier than {other_field} ({other.isoformat()})"
            )))

    return validator


def shanghai_quality_flags(key, data, errors, context):
    """A product's quality flags (a JSON list of messages): written by the
    harvest only. From anyone else (the form, the API) the field is dropped,
    so nobody can flag, or unflag, a product by hand; a hand edit of a
    harvested product clears them (the person answering for it has seen it)."""
    flags = quality.parse(data.get(key)) if context.get(quality.HARVEST_CONTEXT) else []
    if not flags:
        # As ignore_missing does: no value, and no further validator for it.
        data.pop(key, None)
        raise StopOnError
    data[key] = json.dumps(flags, ensure_ascii=False, sort_keys=True)


# The last product's translation, for the three fields of one validation.
_TRANSLATION_CACHE = "shanghai_translation"


def shanghai_machine_translation(key, data, errors, context):
    """The English title, summary and their mark (title_en, notes_en,
    translation_en): machine translations of the product's title and summary
    (ckanext.shanghai.translation), made on every write, whoever writes
    (form, API, harvest batch), so they always follow the Chinese; anything
    sent for them is replaced."""
    from ckanext.shanghai import translation

    title, notes = data.get(("title",)), data.get(("notes",))
    title = title if isinstance(title, str) else ""
    notes = notes if isinstance(notes, str) else ""
    cached = context.get(_TRANSLATION_CACHE)
    if not cached or cached[0] != (title, notes):
        cached = ((title, notes), translation.translate_product(title, notes))
        context[_TRANSLATION_CACHE] = cached
    value = cached[1].get(key[-1])
    if not value:
        data.pop(key, None)
        raise StopOnError
    data[key] = value


@functools.lru_cache(maxsize=4)
def _load_national_themes(location: str) -> dict[str, str]:
    if ":" in location and not os.path.isabs(location):
        module_name, relative = location.split(":", 1)
        module = importlib.import_module(module_name)
        path = os.path.join(os.path.dirname(module.__file__), relative)
    else:
        path = location
    with open(path, encoding="utf-8") as themes_file:
        entries = yaml.safe_load(themes_file)
    if isinstance(entries, dict):
        entries = entries.get("themes", [])
    variants: dict[str, str] = {}
    for entry in entries:
        variants[entry["value"]] = entry["value"]
        for label in entry.get("label", {}).values():
            variants[_theme_key(label)] = entry["value"]
        for variant in entry.get("variants", []):
            variants[_theme_key(variant)] = entry["value"]
    return variants


def _theme_key(text: str) -> str:
    return re.sub(r"\s+", "", str(text))


def national_theme_variants() -> dict[str, str]:
    """Raw theme strings (and clean values) mapped to clean values."""
    return _load_national_themes(tk.config.get("ckanext.shanghai.national_themes_file"))


def shanghai_national_theme(value: Any) -> Any:
    """Map a raw national theme string (for example 城乡建设与环境保护综合类) to
    its clean value; unknown strings pass through for ``scheming_choices`` to
    reject."""
    if value is missing or value is None or value == "":
        return value
    return national_theme_variants().get(_theme_key(value), value)


def shanghai_non_negative_int(value: Any) -> Any:
    """Reject a negative count."""
    if value is missing or value is None or value == "":
        return value
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Invalid(MessageText(Message(
            "bad-number", f"应为整数：{value!s:.40}", f"Must be a whole number: {value!s:.40}")))
    if number < 0:
        raise Invalid(MessageText(Message("bad-number", f"不能为负数：{number}", f"Must not be negative: {number}")))
    return number


def shanghai_bbox(value: Any) -> Any:
    """A bounding box ``west,south,east,north`` in decimal degrees."""
    if value is missing or value is None or value == "":
        return value
    parts = [part.strip() for part in str(value).replace("，", ",").split(",")]
    try:
        west, south, east, north = (float(part) for part in parts)
    except ValueError:
        raise Invalid(MessageText(Message(
            "bad-bbox", "空间范围应为“西,南,东,北”四个经纬度数值",
            "Spatial extent must be four numbers: west,south,east,north")))
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90):
        raise Invalid(MessageText(Message("bad-bbox", "经纬度超出范围", "Coordinates out of range")))
    if west > east or south > north:
        raise Invalid(MessageText(Message(
            "bad-bbox", "西边界应小于东边界、南边界应小于北边界", "West must not exceed east, nor south north")))
    return ",".join(f"{number:g}" for number in (west, south, east, north))


_CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def unified_credit_code_is_valid(code: str) -> bool:
    """Check an 18-character unified social credit code (GB 32100-2015)."""
    code = code.strip().upper()
    if len(code) != 18 or any(char not in _CREDIT_CODE_CHARS for char in code):
        return False
    total = sum(_CREDIT_CODE_CHARS.index(char) * weight for char, weight in zip(code, _CREDIT_CODE_WEIGHTS))
    check = (31 - total % 31) % 31
    return _CREDIT_CODE_CHARS[check] == code[17]


def shanghai_unified_credit_code(value: Any) -> Any:
    """Reject a malformed unified social credit code."""
    if value is missing or value is None or value == "":
        return value
    if not unified_credit_code_is_valid(str(value)):
        raise Invalid(MessageText(Message(
            "bad-credit-code", f"统一社会信用代码无效：{value!s:.40}",
            f"Invalid unified social credit code: {value!s:.40}")))
    return str(value).strip().upper()


# What browsers ignore inside and around a URL, so "java\tscript:" and
# " javascript:" are both javascript: to them.
_URL_IGNORED_INSIDE = re.compile(r"[\t\n\r]")
_URL_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
WEB_SCHEMES = ("http", "https")


def shanghai_web_url(value: Any) -> Any:
    """A link shown to the public: http(s), or no scheme at all (the file
    name of an uploaded resource, a relative link). javascript:, data:,
    file:, vbscript: and other schemes are refused: a link with them runs
    script in the reader's browser or points into the server, and escaping
    the page does not make it inert."""
    if value is missing or value is None or value == "":
        return value
    if not isinstance(value, str):
        raise Invalid(MessageText(Message("bad-url", "网址应为文本", "The address must be text")))
    seen = _URL_IGNORED_INSIDE.sub("", value).lstrip("".join(chr(c) for c in range(0x21)))
    scheme = _URL_SCHEME.match(seen)
    if scheme and scheme.group(1).lower() not in WEB_SCHEMES:
        raise Invalid(MessageText(Message(
            "bad-url", f"网址只能使用 http 或 https，不接受「{scheme.group(1)}:」",
            f"Only http and https addresses are accepted, not {scheme.group(1)}:"
        )))
    # Characters a URI may not hold are percent-encoded, as a browser would
    # send them: the address then stays one link in HTML and a valid IRI in
    # the DCAT catalog (where one bad address would break the whole page).
    return _URI_UNSAFE.sub(lambda found: f"%{ord(found.group()):02X}", value)


_URI_UNSAFE = re.compile(r'[\x00-\x20"<>\\^`{|}\x7f]')


def shanghai_package_name_unique(key, data, errors, context):
    """CKAN's package_name_validator (a name no other undeleted package
    uses). A batch writer passes, in the context, its packages' names looked
    up in one query (name -> the id of the undeleted package using it, or
    None); for those names no query is made here."""
    taken = context.get(BATCH_TAKEN_NAMES)
    value = data[key]
    if taken is None or context.get("package") is not None or not isinstance(value, str) \
            or value not in taken:
        return ckan_validators.package_name_validator(key, data, errors, context)
    own_id = data.get(key[:-1] + ("id",))
    if taken[value] is not None and taken[value] != own_id:
        errors[key].append(tk._("That URL is already in use."))
    if len(value) < ckan_validators.PACKAGE_NAME_MIN_LENGTH:
        raise Invalid(tk._("Name \"%s\" length is less than minimum %s")
                      % (value, ckan_validators.PACKAGE_NAME_MIN_LENGTH))
    if len(value) > ckan_validators.PACKAGE_NAME_MAX_LENGTH:
        raise Invalid(tk._("Name \"%s\" length is more than maximum %s")
                      % (value, ckan_validators.PACKAGE_NAME_MAX_LENGTH))


def shanghai_owner_org(key, data, errors, context):
    """CKAN's owner_org_validator. For a new package whose department is
    among the ids a batch writer looked up for its batch (in the context),
    the department is known to exist and no query is made; anything else
    (an update, a name, an unknown id) goes to CKAN's validator."""
    departments = context.get(BATCH_DEPARTMENTS)
    value = data.get(key)
    if departments is None or context.get("package") is not None or not isinstance(value, str) \
            or value not in departments:
        return ckan_validators.owner_org_validator(key, data, errors, context)
    return value

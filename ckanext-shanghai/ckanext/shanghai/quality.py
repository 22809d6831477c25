"""Quality flags of data products: what a harvest found wrong in a source
record that was still publishable (a date going backwards, a placeholder
date, an unmapped optional value, a dropped tag ...). Each flag is a
``Message`` the mapping raised, stored on the product as JSON, shown on its
page, counted in the job report, indexed as ``quality_flag`` (a facet) and
summed per department on /statistics. No CKAN import: the harvest mapping
and the extension both read it."""
from __future__ import annotations

import json
from typing import Any

__all__ = ["FIELD", "INDEX_FIELD", "HARVEST_CONTEXT", "LABELS", "parse", "codes", "label"]

# The dataset field holding the flags (a JSON list of Message.as_dict()).
FIELD = "quality_flags"
# The Solr field (the schema's dynamic "*" string field) with one code per flag kind.
INDEX_FIELD = "quality_flag"
# Context key the harvest's catalog writer sets: only a harvest writes flags,
# and only a harvest may store a source's backwards dates as it gave them.
HARVEST_CONTEXT = "shanghai_harvest"

# Flag code -> label in each language (facet items, statistics, the page).
LABELS: dict[str, dict[str, str]] = {
    "dates-inverted": {"zh_Hans_CN": "日期先后颠倒", "en": "Dates in the wrong order"},
    "placeholder-date": {"zh_Hans_CN": "占位日期", "en": "Placeholder date"},
    "bad-date": {"zh_Hans_CN": "无法识别的日期", "en": "Unreadable date"},
    "bad-number": {"zh_Hans_CN": "无法识别的数字", "en": "Unreadable number"},
    "impossible-count": {"zh_Hans_CN": "不可能的数量", "en": "Impossible count"},
    "unmapped-value": {"zh_Hans_CN": "未映射的取值", "en": "Unmapped value"},
    "bad-value": {"zh_Hans_CN": "无法使用的取值", "en": "Unusable value"},
    "placeholder-department": {"zh_Hans_CN": "占位提供方", "en": "Placeholder provider"},
    "tag-too-short": {"zh_Hans_CN": "标签过短已忽略", "en": "Tag too short, dropped"},
    "tag-too-long": {"zh_Hans_CN": "标签过长已忽略", "en": "Tag too long, dropped"},
    "tag-characters": {"zh_Hans_CN": "标签含不允许的字符已忽略", "en": "Tag with disallowed characters, dropped"},
    # Not from a harvest: the department accepted a citizen's error report
    # on the product (desk/quality.py), until the product next changes.
    "public-error-report": {"zh_Hans_CN": "公众报错已受理", "en": "Error report accepted"},
}


def parse(value: Any) -> list[dict[str, Any]]:
    """A product's flags as a list of dicts (code, field, value, reason_zh,
    reason_en), from the stored JSON text or an already parsed list;
    anything else is no flags."""
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict) and isinstance(item.get("code"), str)]


def codes(value: Any) -> list[str]:
    """The distinct flag codes of a product, in the order first met."""
    return list(dict.fromkeys(item["code"] for item in parse(value)))


def label(code: str, language: str) -> str:
    labels = LABELS.get(code)
    if not labels:
        return code
    return labels["zh_Hans_CN"] if language.startswith("zh") else labels["en"]

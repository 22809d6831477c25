"""Every code the public desk stores or shows (kinds, states, closing
reasons, error types, steps, update frequencies, notices) has its words in
Chinese and in English, and the closing reasons are the issue's list."""
from __future__ import annotations

from ckanext.shanghai.desk import store
from ckanext.shanghai.desk.labels import LABELS
from ckanext.shanghai.desk.notify import EVENTS


def _complete(group: str, codes) -> None:
    for code in codes:
        zh, en = LABELS[group][code]
        assert zh and en and zh != en, (group, code)
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), (group, code, zh)


def test_every_code_has_chinese_and_english_words():
    _complete("kind", store.KINDS)
    _complete("status", store.STATUSES)
    _complete("close_reason", {code for reasons in store.CLOSE_REASONS.values() for code in reasons})
    _complete("error_type", store.ERROR_TYPES)
    _complete("frequency", LABELS["frequency"])
    _complete("event", EVENTS)
    _complete("action", ("file", "acknowledge", "answer", "extend", "transfer", "accept", "close", "reopen",
                          "remind", "notify_email"))


def test_a_data_request_closes_with_the_reasons_the_rules_name():
    assert store.CLOSE_REASONS["request"] == {
        "released": "link", "exists": "link", "partly_released": "link", "later": "date",
        "elsewhere": "link", "not_suitable": "basis", "cannot_compile": None, "withdrawn": None}

"""The one message type: a code, the field, the raw value and both texts,
kept apart; nothing in the portal splits a text back into its languages."""
import re
from pathlib import Path

import pytest

from ckanext.shanghai.files.fetching import SourceFetchError
from ckanext.shanghai.files.readers import BadRecord, SourceFormatError
from ckanext.shanghai.messages import MAX_VALUE_LENGTH, Message, MessageError, MessageText, raw_text

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "ckanext-shanghai" / "ckanext" / "shanghai").rglob("*.py"),
                  *(ROOT / "harvesters").rglob("*.py")])
# Cutting a text at " / " to get its Chinese and English halves back.
SPLITTING = re.compile(r"""\.(partition|rpartition|split|rsplit)\(\s*["'] / ["']""")


def test_a_message_keeps_code_field_value_and_both_texts_apart():
    message = Message("bad-number", "数据量「约三百条」不是整数", "数据量 value '约三百条' is not a whole number",
                      field="record_count", value="约三百条")
    assert message.as_dict() == {
        "code": "bad-number", "field": "record_count", "value": "约三百条",
        "reason_zh": "数据量「约三百条」不是整数", "reason_en": "数据量 value '约三百条' is not a whole number"}
    # Both languages in a log line; the parts stay attributes.
    assert str(message) == f"{message.zh} / {message.en}"


@pytest.mark.parametrize("code, zh, en", [
    ("Bad Number", "不是整数", "not a number"),
    ("bad_number", "不是整数", "not a number"),
    ("bad-number", "", "not a number"),
    ("bad-number", "不是整数", ""),
])
def test_a_message_needs_a_stable_code_and_both_texts(code, zh, en):
    with pytest.raises(ValueError):
        Message(code, zh, en)


def test_raw_values_are_text_and_bounded():
    assert raw_text(None) is None
    assert raw_text(3) == "3" and raw_text(True) == "true"
    assert raw_text(["csv", "json"]) == '["csv", "json"]' and raw_text({"zh": "甲"}) == '{"zh": "甲"}'
    long = raw_text("标" * 1_000_000)
    assert len(long) == MAX_VALUE_LENGTH + 1 and long.endswith("…")
    assert Message("too-large", "太长", "too long", value="x" * 10_000).value == "x" * MAX_VALUE_LENGTH + "…"


def test_errors_raised_by_the_file_readers_and_the_downloader_carry_a_message():
    for error, code in ((SourceFetchError("超时", "timed out", code="timeout"), "timeout"),
                        (SourceFetchError("无法连接", "cannot connect"), "source-unreachable"),
                        (SourceFormatError("文件为空", "the file is empty"), "source-unreadable")):
        assert isinstance(error, MessageError)
        assert error.message.code == code and error.code == code
        assert (error.reason_zh, error.reason_en) == (error.message.zh, error.message.en)
    bad = BadRecord(7, "line", "不是合法的 JSON", "is not valid JSON").message
    assert (bad.code, bad.zh, bad.en) == ("bad-record", "第 7 行无法读取：不是合法的 JSON",
                                          "line 7 cannot be read: is not valid JSON")


def test_no_module_cuts_a_text_back_into_its_two_languages():
    offenders = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                 for path in SOURCES
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if SPLITTING.search(line)]
    assert offenders == []


def test_the_check_finds_a_split():
    assert SPLITTING.search('zh, _, en = message.partition(" / ")')
    assert SPLITTING.search("parts = text.split(' / ')")
    assert not SPLITTING.search('url.split("?", 1)') and not SPLITTING.search('url.rsplit("/", 1)')


def test_a_validator_message_reads_as_one_string_to_ckan_and_keeps_its_parts():
    import copy

    from ckan.lib.navl.dictization_functions import validate
    from ckanext.shanghai.logic.validators import shanghai_web_url

    data, errors = validate({"url": "javascript:alert(1)", "resources": [{"url": "https://a.example/x.csv"},
                                                                          {"url": "data:text/html,x"}]},
                            {"url": [shanghai_web_url], "resources": {"url": [shanghai_web_url]}}, {})
    first, second = errors["url"][0], errors["resources"][1]["url"][0]
    assert first == ("网址只能使用 http 或 https，不接受「javascript:」 / "
                     "Only http and https addresses are accepted, not javascript:")
    assert isinstance(first, MessageText) and first.message.code == "bad-url"
    assert (first.message.zh, first.message.en) == (
        "网址只能使用 http 或 https，不接受「javascript:」", "Only http and https addresses are accepted, not javascript:")
    assert second.message.en == "Only http and https addresses are accepted, not data:"
    assert copy.deepcopy(first).message == first.message

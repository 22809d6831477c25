"""A real-time pull source's configuration: the product, an interval of at
least 10 seconds, the format and where the records are, each mistake
refused in Chinese and English."""
import pytest

from ckanext.shanghai.harvesters.source_config import SourceConfigError
from ckanext.shanghai.harvesters.sources.realtime_pull import parse_config


def test_a_good_configuration_is_read_with_its_defaults():
    assert parse_config('{"resource_id": " abc "}') == {"resource_id": "abc", "poll_seconds": 60, "format": None,
                                                        "records": None}
    assert parse_config('{"resource_id": "abc", "poll_seconds": 10, "format": "json", "records": "data"}')[
        "poll_seconds"] == 10


@pytest.mark.parametrize("text, zh, en", [
    ('{"poll_seconds": 30}', "resource_id", "resource_id"),
    ('{"resource_id": "a", "poll_seconds": 9}', "不小于 10", "at least 10"),
    ('{"resource_id": "a", "poll_seconds": "30"}', "整数", "whole number"),
    ('{"resource_id": "a", "poll_seconds": true}', "整数", "whole number"),
    ('{"resource_id": "a", "format": "xml"}', "json 或 csv", "json or csv"),
    ('{"resource_id": "a", "format": "csv", "records": "data"}', "仅用于 JSON", "JSON only"),
    ('{"resource_id": "a", "every": 30}', "未知的配置项：every", "Unknown settings: every"),
    ('[1]', "JSON 对象", "JSON object"),
    ('{"resource_id": ', "不是有效的 JSON", "not valid JSON"),
])
def test_a_bad_configuration_is_refused_in_both_languages(text, zh, en):
    with pytest.raises(SourceConfigError) as refused:
        parse_config(text)
    assert zh in refused.value.reason_zh and en in refused.value.reason_en

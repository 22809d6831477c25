"""The machine translation of products into English (no CKAN, no services):
the glossary of government terms wins over the dictionary, the longest term
wins, Latin text and numbers pass through, and the glossary file is sound."""
import re
from collections import Counter
from pathlib import Path

import yaml

from ckanext.shanghai import translation
from ckanext.shanghai.translation import dictionary

GLOSSARY = Path(__file__).resolve().parents[2] / "schemas" / "glossary"
_HAN = re.compile(r"[\u3400-\u9fff]")


def test_a_title_reads_as_english_with_the_glossary_s_words():
    english = translation.translate_product("上海市医院床位信息", "")
    assert english["title_en"] == "Shanghai hospital beds information"
    assert english["translation_en"].startswith("machine")


def test_the_longest_term_wins_so_a_department_keeps_its_official_name():
    assert translation.translate("上海市卫生健康委员会").english == "Shanghai Municipal Health Commission"
    assert translation.translate("普陀区卫生健康委员会").english == "Putuo District Health Commission"


def test_a_search_finds_a_word_by_the_dictionary_s_other_senses_too():
    terms = translation.translate("停车场").search_terms
    assert terms[0] == "car park" and "parking lot" in terms


def test_latin_words_numbers_and_punctuation_pass_through():
    english = translation.translate("2020年闵行区幼儿园（AQI）").english
    assert english == "2020 year Minhang District kindergarten (AQI)"


def test_no_chinese_is_left_in_a_translated_catalog_title():
    titles = ["城市设施-生活垃圾收集点", "空气质量指数AQI（公安）", "本市典当行基本情况_法人", "黄浦区地区生产总值"]
    for title in titles:
        assert not _HAN.search(translation.translate(title).english), title


def test_an_empty_product_has_no_translation():
    english = translation.translate_product("", None)
    assert english["title_en"] == english["notes_en"] == "" and english["text_en"] == []


def test_the_glossary_is_chinese_to_english_with_no_term_twice():
    for path in GLOSSARY.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        keys = re.findall(r"^\s+([^#\s][^:]*):", text, flags=re.MULTILINE)
        assert [k for k, n in Counter(keys).items() if n > 1] == [], path.name
        terms = yaml.safe_load(text)["terms"]
        assert terms and all(_HAN.search(zh) for zh in terms), path.name
        assert all(isinstance(en, str) and not _HAN.search(en) for en in terms.values()), path.name
    assert dictionary.read_glossary() == {
        zh: en for path in sorted(GLOSSARY.glob("*.yaml"))
        for zh, en in yaml.safe_load(path.read_text(encoding="utf-8"))["terms"].items()}

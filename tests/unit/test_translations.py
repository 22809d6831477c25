"""The portal's zh_Hans_CN catalog (CKAN's strings that CKAN's own catalog
leaves English): the compiled .mo is the .po as written, and no
translation loses or invents a placeholder CKAN fills in."""
import io
import re
from pathlib import Path

from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

FOLDER = Path(__file__).resolve().parents[2] / "ckanext-shanghai" / "ckanext" / "shanghai" / "i18n" / \
    "zh_Hans_CN" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"\{\w*\}|%\(\w+\)s")


def catalog():
    with open(FOLDER / "ckanext-shanghai.po", "rb") as po:
        return read_po(po, locale="zh_Hans_CN")


def entries(messages) -> dict:
    def key(value):
        return tuple(value) if isinstance(value, (list, tuple)) else value

    return {key(m.id): key(m.string) for m in messages if m.id}


def test_the_compiled_catalog_is_the_written_one():
    written = io.BytesIO()
    write_mo(written, catalog())
    with open(FOLDER / "ckanext-shanghai.mo", "rb") as mo:
        compiled = read_mo(mo)
    expected = read_mo(io.BytesIO(written.getvalue()))
    assert entries(compiled) == entries(expected), \
        "ckanext-shanghai.mo is stale: run pybabel compile -d ckanext-shanghai/ckanext/shanghai/i18n " \
        "-D ckanext-shanghai -l zh_Hans_CN"


def test_every_string_is_chinese_and_keeps_only_known_placeholders():
    for message in catalog():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, (list, tuple)) else (message.id,)
        strings = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
        allowed = set(PLACEHOLDER.findall(" ".join(ids)))
        for string in strings:
            assert re.search(r"[\u4e00-\u9fff]", string), message.id
            assert set(PLACEHOLDER.findall(string)) <= allowed, message.id


def test_the_javascript_catalog_answers_every_spelling_of_a_locale():
    """CKAN's scripts ask /api/i18n/ with the page's BCP-47 tag
    (zh-Hans-CN); CKAN itself knows only zh_Hans_CN."""
    from ckanext.shanghai.web.i18n import spellings

    assert {"zh_Hans_CN", "zh-Hans-CN", "zh_Hans-CN", "zh-hans-cn"} <= spellings("zh_Hans_CN")
    assert spellings("en") == {"en"}

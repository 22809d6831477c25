"""Tests of files/readers.py: each export format, the broken files agencies
really send, the real example files, and flat memory on a large export."""
from __future__ import annotations

import codecs
import datetime as dt
import io
import json
import tracemalloc
from decimal import Decimal

import openpyxl
import pytest

from ckanext.shanghai.files.readers import (
    BadRecord, Row, SourceFormatError, iter_records, iter_rows, sniff_format,
)

from data_files import TABLES, catalog_file


def read(data: bytes, fmt: str | None = None, **options) -> list:
    return list(iter_records(io.BytesIO(data), fmt, **options))


def records(items: list) -> list[dict]:
    return [item for item in items if isinstance(item, dict)]


def bad(items: list) -> list[BadRecord]:
    return [item for item in items if isinstance(item, BadRecord)]


# --- format sniffing and refusals ---------------------------------------------

@pytest.mark.parametrize("head, expected", [
    (b'[{"a": 1}]', "json"),
    (b'\xef\xbb\xbf  \n[{"a": 1}]', "json"),
    (b'{"a": 1}\n{"a": 2}\n', "jsonl"),
    (b"PK\x03\x04rest-of-zip", "xlsx"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "xls"),
    ("名称,数量\n上海,1\n".encode("gb18030"), "csv"),
])
def test_format_is_told_from_the_first_bytes(head, expected):
    assert sniff_format(head) == expected


@pytest.mark.parametrize("fmt", [None, "csv", "json", "jsonl"])
@pytest.mark.parametrize("page", [
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head></html>",
    b"\xef\xbb\xbf\r\n  <html lang='zh'><body>\xe8\xaf\xb7\xe7\x99\xbb\xe5\xbd\x95</body></html>",
])
def test_an_html_page_instead_of_data_is_refused(fmt, page):
    with pytest.raises(SourceFormatError) as raised:
        read(page, fmt)
    assert "HTML" in raised.value.reason_zh and "HTML" in raised.value.reason_en


def test_xml_is_refused_rather_than_read_as_csv():
    with pytest.raises(SourceFormatError, match="XML"):
        read(b'<?xml version="1.0"?><catalog><dataset/></catalog>')


def test_an_empty_file_is_refused():
    with pytest.raises(SourceFormatError, match="empty"):
        read(b"")


def test_an_html_page_or_csv_declared_as_excel_is_refused_for_what_it_is():
    with pytest.raises(SourceFormatError, match="HTML"):
        read(b"<html><body>Not found</body></html>", "xlsx")
    with pytest.raises(SourceFormatError, match="not an xls workbook"):
        read(b"a,b\n1,2\n", "xls")


def test_an_unknown_declared_format_is_a_caller_error():
    with pytest.raises(ValueError, match="unknown format"):
        read(b"a,b\n", "parquet")


# --- JSON arrays ------------------------------------------------------------

def test_json_array_yields_objects_and_reports_bad_items_without_stopping():
    items_in_file = [{"标题": "甲"}, 3, {"标题": "乙", "数量": 1.5}, ["x"], {"标题": "丙"}]
    data = json.dumps(items_in_file, ensure_ascii=False)
    items = read(data.encode("utf-8"))
    assert records(items) == [{"标题": "甲"}, {"标题": "乙", "数量": Decimal("1.5")}, {"标题": "丙"}]
    assert [(b.position, b.unit) for b in bad(items)] == [(2, "item"), (4, "item")]
    assert "不是 JSON 对象" in bad(items)[0].reason_zh and "a number" in bad(items)[0].reason_en
    assert bad(items)[1].message.zh.startswith("第 4 条记录无法读取：")
    assert bad(items)[1].message.en.startswith("record 4 cannot be read: ")
    assert bad(items)[1].message.code == "bad-record"


def test_a_repeated_key_makes_that_record_bad_not_silently_last_wins():
    data = b'[{"a": 1}, {"a": 1, "b": 2, "a": 3}, {"c": {"d": 1, "d": 2}}, {"e": 5}]'
    items = read(data)
    assert records(items) == [{"a": 1}, {"e": 5}]
    assert [b.position for b in bad(items)] == [2, 3]
    assert "a" in bad(items)[0].reason_en and "d" in bad(items)[1].reason_en


def test_truncated_json_is_refused_saying_how_many_records_were_read():
    whole = json.dumps([{"id": n, "标题": f"数据集{n}"} for n in range(10)], ensure_ascii=False)
    whole = whole.encode("utf-8")
    cut = whole[: whole.index(b'"id": 7') + 3]
    seen = []
    with pytest.raises(SourceFormatError) as raised:
        for item in iter_records(io.BytesIO(cut)):
            seen.append(item)
    assert raised.value.records_read == 7 == len(seen)
    assert "7 条" in raised.value.reason_zh and "after 7 records" in raised.value.reason_en


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_refused_clearly(literal):
    data = b'[{"a": 1}, {"a": 2}, {"a": ' + literal + b"}]"
    with pytest.raises(SourceFormatError) as raised:
        read(data)
    assert "NaN" in raised.value.reason_en and "record 3" in raised.value.reason_en
    assert raised.value.records_read == 2


def test_a_top_level_object_needs_a_prefix_and_reads_with_one():
    data = json.dumps({"total": 2, "data": [{"id": 1}, {"id": 2}]}).encode()
    with pytest.raises(SourceFormatError, match="json_prefix"):
        read(data, "json")
    assert read(data, "json", json_prefix="data.item") == [{"id": 1}, {"id": 2}]


def test_json_in_utf16_is_refused():
    with pytest.raises(SourceFormatError, match="UTF-8"):
        read(codecs.BOM_UTF16_LE + '[{"a": 1}]'.encode("utf-16-le"))


# --- JSON lines ------------------------------------------------------------

def test_json_lines_skip_blank_lines_and_report_bad_lines_by_number():
    data = (
        '{"标题": "甲"}\n'
        "\n"
        '{"标题": "乙"\n'             # line 3: broken
        '[1, 2]\n'                    # line 4: not an object
        '{"a": NaN}\n'                # line 5: not JSON's
        '{"a": 1, "a": 2}\r\n'        # line 6: repeated key
        '{"标题": "丙", "x": 0.1}\r\n'
    ).encode("utf-8")
    items = read(data)
    assert records(items) == [{"标题": "甲"}, {"标题": "丙", "x": Decimal("0.1")}]
    assert [(b.position, b.unit) for b in bad(items)] == [(n, "line") for n in (3, 4, 5, 6)]
    assert "NaN" in bad(items)[2].reason_en
    assert bad(items)[0].message.zh.startswith("第 3 行无法读取：")
    assert bad(items)[0].message.en.startswith("line 3 cannot be read: ")


def test_a_pretty_printed_single_object_is_not_read_as_json_lines():
    with pytest.raises(SourceFormatError, match="neither a JSON array nor JSON lines"):
        read(b'{\n  "data": [1, 2]\n}\n')


# --- CSV ----------------------------------------------------------------------

def test_gb18030_four_byte_characters_survive():
    text = "名称,地址\n㐀记商行,上海市𠮷祥路1号\n€ 兑换点,黄浦区\n"
    assert len("𠮷".encode("gb18030")) == 4 and len("㐀".encode("gb18030")) == 4
    assert records(read(text.encode("gb18030"))) == [
        {"名称": "㐀记商行", "地址": "上海市𠮷祥路1号"},
        {"名称": "€ 兑换点", "地址": "黄浦区"},
    ]


def test_gbk_after_a_long_ascii_stretch_is_still_detected():
    rows = "".join(f"{n},plain ascii row\n" for n in range(20_000))  # well past the first chunk
    data = ("id,name\n" + rows + "20000,上海市民政局\n").encode("gbk")
    items = read(data)
    assert len(items) == 20_001 and items[-1] == {"id": "20000", "name": "上海市民政局"}


@pytest.mark.parametrize("encoding, bom", [
    ("utf-8", codecs.BOM_UTF8),
    ("utf-16-le", codecs.BOM_UTF16_LE),
    ("utf-16-be", codecs.BOM_UTF16_BE),
])
def test_a_byte_order_mark_sets_the_encoding_and_leaves_the_header_clean(encoding, bom):
    data = bom + "区县, 机构名称 \r\n浦东新区,上海市第一养老院\r\n".encode(encoding)
    assert read(data, "csv") == [{"区县": "浦东新区", "机构名称": "上海市第一养老院"}]


def test_quoted_cells_keep_their_newlines_and_commas():
    data = '处罚机关,处罚事由\n北京市生态环境局,"责令改正，\n处一万元罚款, 并公示"\n甲,乙\n'.encode("utf-8")
    assert read(data) == [
        {"处罚机关": "北京市生态环境局", "处罚事由": "责令改正，\n处一万元罚款, 并公示"},
        {"处罚机关": "甲", "处罚事由": "乙"},
    ]


def test_ragged_rows_too_many_cells_are_bad_too_few_read_as_empty():
    data = b"a,b,c\n1,2,3\n1,2\n1,2,3,4\n1,2,3,,\n\n,,\n"
    items = read(data)
    assert records(items) == [
        {"a": "1", "b": "2", "c": "3"},
        {"a": "1", "b": "2", "c": ""},
        {"a": "1", "b": "2", "c": "3"},  # trailing empty cells carry nothing
    ]
    assert [(b.position, b.unit) for b in bad(items)] == [(4, "line")]
    assert "4 cells" in bad(items)[0].reason_en and "3 columns" in bad(items)[0].reason_en


def test_a_row_with_a_nul_byte_is_reported_not_cleaned():
    items = read(b"a,b\n1,2\n3,x\x00y\n5,6\n")
    assert records(items) == [{"a": "1", "b": "2"}, {"a": "5", "b": "6"}]
    assert bad(items)[0].position == 3 and "NUL" in bad(items)[0].reason_en


def test_title_rows_above_the_header_are_skipped_with_header_row():
    data = "上海市养老机构名录\n（截至2023年6月）\n名称,床位\n甲,10\n".encode("utf-8")
    assert read(data, header_row=2) == [{"名称": "甲", "床位": "10"}]


def test_header_names_blank_in_the_middle_get_a_place_name_repeated_ones_are_refused():
    assert read(b",beds,,\n1978,2.5,,\n") == [{"column_1": "1978", "beds": "2.5"}]
    with pytest.raises(SourceFormatError) as raised:
        read("名称,备注,备注\n甲,1,2\n".encode("utf-8"))
    assert "备注" in raised.value.reason_zh


def test_the_delimiter_is_taken_from_the_header_line():
    assert read("名称;数量\n甲;1\n".encode("utf-8")) == [{"名称": "甲", "数量": "1"}]
    assert read(b"a\tb\n1\t2\n") == [{"a": "1", "b": "2"}]
    assert read(b"a|b\n1|2\n", delimiter="|") == [{"a": "1", "b": "2"}]


def test_an_unterminated_quote_is_a_bad_record_not_a_swallowed_file():
    items = read(b'a,b\n1,2\n3,"never closed\n4,5\n6,7\n')
    assert records(items) == [{"a": "1", "b": "2"}]
    assert bad(items)[0].position == 3


def test_text_after_a_closing_quote_spoils_only_that_row():
    items = read(b'a,b\n1,"x"y\n2,3\n')
    assert records(items) == [{"a": "2", "b": "3"}]
    assert bad(items)[0].position == 2


def test_mixed_encodings_are_refused_with_the_place():
    utf8_rows = "".join(f"上海市第{n}号\n" for n in range(10_000))  # decided as UTF-8 on the first chunk
    data = ("名称\n" + utf8_rows).encode("utf-8") + "北京\n".encode("gbk")
    with pytest.raises(SourceFormatError) as raised:
        read(data)
    assert "UTF-8" in raised.value.reason_en and "byte" in raised.value.reason_en


def test_no_header_row_is_refused():
    with pytest.raises(SourceFormatError, match="no row 3"):
        read(b"a,b\n", header_row=2)


# --- size cap -------------------------------------------------------------------

@pytest.mark.parametrize("fmt, data", [
    ("json", json.dumps([{"n": n} for n in range(2000)]).encode()),
    ("csv", b"n\n" + b"".join(b"%d\n" % n for n in range(20_000))),
])
def test_reading_stops_past_the_size_cap(fmt, data):
    with pytest.raises(SourceFormatError) as raised:
        read(data, fmt, max_bytes=len(data) // 2)
    assert "larger than the limit" in raised.value.reason_en
    assert len(read(data, fmt, max_bytes=len(data))) > 0


# --- Excel -------------------------------------------------------------------------

def write_xlsx(path, sheets: dict[str, list[list]]):
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def test_xlsx_rows_become_text_records(tmp_path):
    path = write_xlsx(tmp_path / "机构.xlsx", {"机构": [
        ["上海市养老机构名录"],
        [],
        ["名称", "床位", "开业日期", "评估时间", "单价", "公办", None, None],
        ["甲养老院", 247, dt.datetime(2022, 1, 11), dt.datetime(2023, 5, 6, 9, 30), 12.5, True],
        [None, None, None],
        ["乙养老院", 326.0, dt.date(2015, 7, 22), None, None, False],
    ]})
    with path.open("rb") as stream:
        items = list(iter_records(stream, header_row=2))
    assert items == [
        {"名称": "甲养老院", "床位": "247", "开业日期": "2022-01-11", "评估时间": "2023-05-06T09:30:00",
         "单价": "12.5", "公办": "TRUE"},
        {"名称": "乙养老院", "床位": "326", "开业日期": "2015-07-22", "评估时间": "", "单价": "", "公办": "FALSE"},
    ]


def test_xlsx_sheet_is_chosen_by_name_and_a_missing_one_is_named(tmp_path):
    path = write_xlsx(tmp_path / "book.xlsx", {"说明": [["本表说明"]], "数据": [["a"], ["1"]]})
    assert read(path.read_bytes(), sheet="数据") == [{"a": "1"}]
    with pytest.raises(SourceFormatError) as raised:
        read(path.read_bytes(), sheet="统计")
    assert "说明" in raised.value.reason_zh and "数据" in raised.value.reason_en


def test_an_excel_file_named_csv_is_read_by_its_bytes(tmp_path):
    path = write_xlsx(tmp_path / "really.csv", {"Sheet": [["a", "b"], ["1", "2"]]})
    assert read(path.read_bytes(), "csv") == [{"a": "1", "b": "2"}]


def test_a_damaged_xlsx_is_refused(tmp_path):
    with pytest.raises(SourceFormatError, match="cannot open the xlsx"):
        read(b"PK\x03\x04" + b"\x00" * 200)


def test_xls_rows_become_text_records(make_xls):
    path = make_xls("许可.xls", {"许可": [
        ["许可证信息表"],
        ["企业名称", "床位", "许可日期", "有效"],
        ["上海𠮷祥公司", 30, dt.date(2023, 6, 6), True],
        ["北京公司", 1.5, None, False],
    ], "其他": [["x"], ["y"]]})
    assert read(path.read_bytes(), header_row=1) == [
        {"企业名称": "上海𠮷祥公司", "床位": "30", "许可日期": "2023-06-06", "有效": "TRUE"},
        {"企业名称": "北京公司", "床位": "1.5", "许可日期": "", "有效": "FALSE"},
    ]
    assert read(path.read_bytes(), "xls", sheet="其他") == [{"x": "y"}]


def test_a_damaged_xls_is_refused():
    with pytest.raises(SourceFormatError, match="cannot open the xls"):
        read(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)


# --- the real example files ------------------------------------------------------

@pytest.mark.parametrize("name, rows, first_column", [
    ("sh_elderly_care_institutions_utf8bom.csv", 626, "id"),
    ("sh_community_health_centres_utf8.csv", 249, "id"),
    ("bj_realestate_developer_qualifications_gbk.csv", 463, "序号"),
    ("bj_env_bureau_penalties_gbk.csv", 1906, "项目ID"),
    ("bj_new_housing_presale_permits_utf8bom.csv", 6960, "项目名称"),
    ("nbs_health_institution_beds_1978_2014.csv", 37, "column_1"),
    ("nbs_admin_divisions_counties.csv", 2978, "code"),
])
def test_real_tables_read_every_row(name, rows, first_column):
    with (TABLES / name).open("rb") as stream:
        items = list(iter_records(stream))
    assert not bad(items)
    assert len(items) == rows
    assert next(iter(items[0])) == first_column


def test_real_gbk_table_keeps_its_chinese_and_its_cell_with_a_newline():
    with (TABLES / "bj_env_bureau_penalties_gbk.csv").open("rb") as stream:
        items = list(iter_records(stream))
    assert items[0]["单位名称"] == "北京井庄柳沟胡素平农家餐厅"
    multi_line = [item for item in items if any("\n" in value for value in item.values())]
    assert len(multi_line) == 1
    assert all(item["处罚机关单位"].startswith("北京市") for item in items)


@pytest.mark.parametrize("name, count", [
    ("shanghai.json", 4494), ("guizhou_guiyang.json", 2469), ("guangxi_liuzhou.json", 1540),
])
def test_real_catalogs_read_every_record(name, count):
    with catalog_file(name).open("rb") as stream:
        items = list(iter_records(stream))
    assert len(records(items)) == count and not bad(items)


# --- memory -------------------------------------------------------------------------

def _peak_while_iterating(path) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = 0
        with path.open("rb") as stream:
            for _ in iter_records(stream):
                count += 1
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_50000_record_json_array_is_read_in_flat_memory(tmp_path):
    path = tmp_path / "big.json"
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for n in range(50_000):
            record = {"数据集名称": f"数据集{n}", "摘要": "包含企业名称、法定代表人、资质等级信息。",
                      "数据标签": "机构,建筑", "数据格式": ["csv", "xlsx"],
                      "详情页网址": f"https://data.sh.gov.cn/{n}"}
            out.write(("," if n else "") + json.dumps(record, ensure_ascii=False))
        out.write("]")
    assert path.stat().st_size > 10_000_000
    count, peak = _peak_while_iterating(path)
    assert count == 50_000
    assert peak < 20 * 1024 * 1024


def test_a_50000_row_gbk_csv_is_read_in_flat_memory(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="gbk", newline="") as out:
        out.write("序号,企业名称,地址\r\n")
        for n in range(50_000):
            out.write(f'{n},上海某某有限公司第{n}分公司,"上海市黄浦区人民大道{n}号"\r\n')
    count, peak = _peak_while_iterating(path)
    assert count == 50_000
    assert peak < 20 * 1024 * 1024


# --- hostile shapes: nesting, endless lines, wrong encodings --------------------

@pytest.mark.parametrize("opening, closing", [(b'{"a":', b"}"), (b"[", b"]")])
def test_a_record_nested_100000_deep_is_rejected_and_the_next_one_read(opening, closing):
    deep = b'{"x":' + opening * 100_000 + b"1" + closing * 100_000 + b"}"
    tracemalloc.start()
    try:
        items = read(b"[" + deep + b', {"title": "next"}]')
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [item.reason_en for item in bad(items)] == [
        "is nested more than 32 levels deep, which no catalog record is"]
    assert bad(items)[0].position == 1
    assert records(items) == [{"title": "next"}]
    assert peak < 50_000_000


def test_a_json_lines_record_nested_too_deeply_is_rejected():
    very_deep = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    just_too_deep = b'{"a":' * 40 + b"1" + b"}" * 40
    items = read(very_deep + b"\n" + just_too_deep + b'\n{"title": "ok"}\n', "jsonl")
    assert [(item.position, "32 levels" in item.reason_en) for item in bad(items)] == [(1, True), (2, True)]
    assert records(items) == [{"title": "ok"}]


@pytest.mark.parametrize("fmt, data", [
    ("jsonl", b'{"title": "' + b"x" * (17 * 1024 * 1024)),
    ("csv", b"title\n" + b"x" * (17 * 1024 * 1024)),
])
def test_an_endless_line_stops_the_file_instead_of_filling_memory(fmt, data):
    with pytest.raises(SourceFormatError) as stopped:
        read(data, fmt)
    assert "longer than" in stopped.value.reason_en and "超过" in stopped.value.reason_zh


def test_gbk_json_is_refused_with_the_encoding_named_not_raw_bytes():
    with pytest.raises(SourceFormatError) as refused:
        read('[{"数据集名称": "医院床位"}]'.encode("gbk"))
    assert "GBK" in refused.value.reason_en and "UTF-8" in refused.value.reason_zh
    assert "\\x" not in str(refused.value)


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig", "utf-16"])
def test_csv_text_is_read_by_its_bytes_whatever_it_is_labelled(encoding):
    title = "上海市医院床位" + ("𠀀𪚥" if encoding in ("gb18030", "utf-8", "utf-8-sig", "utf-16") else "")
    data = f"数据集名称,数据提供方\n{title},上海市卫生健康委员会\n".encode(encoding)
    assert records(read(data, "csv")) == [{"数据集名称": title, "数据提供方": "上海市卫生健康委员会"}]


# --- rows of a table (iter_rows, the layer the DataStore loader reads) ---------------

@pytest.mark.parametrize("encoding, label", [
    ("gbk", "gbk"), ("gb18030", "gb18030"), ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"),
])
def test_rows_come_as_they_stand_with_the_encoding_found(encoding, label):
    title = "上海市医院床位" + ("𠀀" if label == "gb18030" else "")
    data = f"床位统计表\n\n名称,名称,备注\n{title},1\n".encode(encoding)
    rows = iter_rows(io.BytesIO(data))
    assert [(row.position, row.cells) for row in rows] == [
        (1, ["床位统计表"]), (2, []), (3, ["名称", "名称", "备注"]), (4, [title, "1"])]
    assert rows.format == "csv" and rows.encoding == label


def test_rows_read_malformed_quoting_leniently_only_when_asked():
    data = b'a,b\n1,"x"y\n2,3\n'
    strict = list(iter_rows(io.BytesIO(data)))
    assert isinstance(strict[1], BadRecord) and strict[1].position == 2
    assert [row.cells for row in iter_rows(io.BytesIO(data), strict=False)] == [
        ["a", "b"], ["1", "xy"], ["2", "3"]]


def test_rows_of_a_workbook_and_the_refusals_carry_a_code(tmp_path):
    path = write_xlsx(tmp_path / "beds.csv", {"Sheet": [["年份", "床位数"], [2014, 6601214]]})
    rows = iter_rows(io.BytesIO(path.read_bytes()), "csv")
    assert list(rows) == [Row(1, "row", ["年份", "床位数"]), Row(2, "row", ["2014", "6601214"])]
    assert rows.encoding == "xlsx"
    for data, code in [
        (b"", "empty"),
        (b"<html><body>x</body></html>", "markup"),
        (b"n\n" + b"1\n" * 100_000, "too-large"),
        (bytes([0x81, 0x30, 0xFF, 0xFE]) * 9, "undecodable"),
        (b"PK\x03\x04" + b"\x00" * 200, "unreadable-workbook"),
    ]:
        with pytest.raises(SourceFormatError) as raised:
            list(iter_rows(io.BytesIO(data), max_bytes=100_000))
        assert raised.value.code == code

"""The DataStore loader reads the real tables of config/demo/tables as a
person would expect to see them: Chinese intact whatever the encoding, a
cell with a newline kept whole, Excel read even when named .csv, and clear
bilingual errors for what is not a table."""
import io

import openpyxl
import pytest

from ckanext.shanghai.datastore.loader import LoadError, is_tabular, read_table
from data_files import TABLES



def table(name: str):
    return read_table((TABLES / name).read_bytes())


def test_gbk_csv_reads_with_its_chinese_intact():
    result = table("bj_realestate_developer_qualifications_gbk.csv")
    assert result.encoding == "gbk"
    assert result.headers[:3] == ["序号", "企业名称", "行政相对人代码"]
    assert len(result.rows) == 463
    assert result.rows[0][1].endswith("公司")


def test_utf8_bom_csv_has_no_bom_in_its_first_column_name():
    result = table("sh_elderly_care_institutions_utf8bom.csv")
    assert result.encoding == "utf-8-sig"
    assert result.headers[0] == "id"
    assert len(result.rows) == 626


def test_a_quoted_cell_with_a_newline_stays_one_cell_of_one_row():
    result = table("bj_env_bureau_penalties_gbk.csv")
    assert len(result.rows) == 1906
    with_newline = [row for row in result.rows if any("\n" in cell for cell in row)]
    assert len(with_newline) == 1
    assert len(with_newline[0]) == len(result.headers)
    assert "第三十五条" in "".join(with_newline[0])


def test_gb18030_only_characters_decode():
    text = "名称,地址\n𠀀记商行,上海市黄浦区\n"  # U+20000 is in GB18030, not in GBK
    result = read_table(text.encode("gb18030"))
    assert result.encoding == "gb18030"
    assert result.rows == [["𠀀记商行", "上海市黄浦区"]]


def test_excel_named_csv_is_read_as_excel_with_a_title_row_skipped():
    source = table("sh_community_health_centres_utf8.csv")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["上海市社区卫生服务中心一览表"])
    sheet.append(source.headers)
    for row in source.rows[:30]:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    result = read_table(buffer.getvalue())
    assert result.encoding == "xlsx"
    assert result.headers == source.headers
    assert result.rows == source.rows[:30]


def test_duplicate_and_empty_column_names_become_distinct():
    result = read_table("名称,名称,,备注\n甲,乙,丙,丁\n".encode("utf-8"))
    assert result.headers == ["名称", "名称_2", "column_3", "备注"]


@pytest.mark.parametrize("data, zh, en", [
    (b"", "文件为空", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "不是表格文件", "not a table"),
    ("名称\n".encode("utf-16"), "不是表格文件", "not a table"),
    (bytes([0x81, 0x30, 0xFF, 0xFE, 0x41]) * 20, "编码", "encoding"),
    (b"PK\x03\x04broken-zip", "Excel", "Excel"),
])
def test_bad_input_has_a_clear_error_in_chinese_and_english(data, zh, en):
    with pytest.raises(LoadError) as raised:
        read_table(data)
    assert zh in raised.value.zh
    assert en in raised.value.en


def test_only_tabular_resources_are_loaded():
    assert is_tabular({"format": "CSV", "url": "x"})
    assert is_tabular({"format": "", "url": "https://example.org/beds.xlsx?download=1"})
    assert not is_tabular({"format": "PDF", "url": "https://example.org/report.pdf"})

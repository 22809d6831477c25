"""The DataStore loader reads the real tables of config/demo/tables as a
person would expect to see them: Chinese intact whatever the encoding, a
cell with a newline kept whole, Excel read even when named .csv, and clear
bilingual errors for what is not a table. It reads through the harvest's
table reader, so a zip bomb or an oversized file is refused before it is
inflated or read whole, and a large file never sits in memory."""
import io
import tracemalloc
import zipfile

import openpyxl
import pytest

from ckanext.shanghai.datastore.loader import LoadError, is_tabular, read_table
from data_files import TABLES


def read(data: bytes, **options) -> tuple[list[str], list[list[str]], str]:
    """The column names, rows and encoding the loader reads from ``data``."""
    with read_table(io.BytesIO(data), **options) as table:
        rows = list(table.rows())
        assert table.row_count == len(rows)
        return table.headers, rows, table.encoding


def table(name: str):
    return read((TABLES / name).read_bytes())


def xlsx(rows: list[list], padding: int = 0) -> bytes:
    """A workbook of ``rows``; ``padding`` bytes of zeros in an extra member
    make it a zip bomb that openpyxl itself would never open."""
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    if padding:
        with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            with archive.open("xl/media/padding.bin", "w", force_zip64=True) as member:
                block = b"\0" * (1024 * 1024)
                for _ in range(padding // len(block)):
                    member.write(block)
    return buffer.getvalue()


def test_gbk_csv_reads_with_its_chinese_intact():
    headers, rows, encoding = table("bj_realestate_developer_qualifications_gbk.csv")
    assert encoding == "gbk"
    assert headers[:3] == ["序号", "企业名称", "行政相对人代码"]
    assert len(rows) == 463
    assert rows[0][1].endswith("公司")


def test_utf8_bom_csv_has_no_bom_in_its_first_column_name():
    headers, rows, encoding = table("sh_elderly_care_institutions_utf8bom.csv")
    assert encoding == "utf-8-sig"
    assert headers[0] == "id"
    assert len(rows) == 626


def test_a_quoted_cell_with_a_newline_stays_one_cell_of_one_row():
    headers, rows, _ = table("bj_env_bureau_penalties_gbk.csv")
    assert len(rows) == 1906
    with_newline = [row for row in rows if any("\n" in cell for cell in row)]
    assert len(with_newline) == 1
    assert len(with_newline[0]) == len(headers)
    assert "第三十五条" in "".join(with_newline[0])


def test_doubled_quotes_in_a_quoted_cell_read_as_one_quote():
    # Line 482 of the real file: "朝阳路十里堡""方恒家园""一期A2-7B.A2-9地块"
    _, rows, _ = table("bj_new_housing_presale_permits_utf8bom.csv")
    assert len(rows) == 6960
    assert rows[480][1] == '朝阳路十里堡"方恒家园"一期A2-7B.A2-9地块'


def test_gb18030_only_characters_decode():
    text = "名称,地址\n𠀀记商行,上海市黄浦区\n"  # U+20000 is in GB18030, not in GBK
    _, rows, encoding = read(text.encode("gb18030"))
    assert encoding == "gb18030"
    assert rows == [["𠀀记商行", "上海市黄浦区"]]


def test_excel_named_csv_is_read_as_excel_with_a_title_row_skipped():
    source_headers, source_rows, _ = table("sh_community_health_centres_utf8.csv")
    headers, rows, encoding = read(xlsx([["上海市社区卫生服务中心一览表"], source_headers, *source_rows[:30]]))
    assert encoding == "xlsx"
    assert headers == source_headers
    assert rows == source_rows[:30]


def test_duplicate_and_empty_column_names_become_distinct():
    headers, _, _ = read("名称,名称,,备注\n甲,乙,丙,丁\n".encode("utf-8"))
    assert headers == ["名称", "名称_2", "column_3", "备注"]


def test_short_rows_are_padded_and_long_column_names_cut_to_63_bytes():
    long_name = "上海市各区社区卫生服务中心床位数及每千人口床位数统计"  # 26 characters, 78 bytes
    headers, rows, _ = read(f"{long_name},备注\n甲\n".encode("utf-8"))
    assert len(headers[0].encode("utf-8")) <= 63 and long_name.startswith(headers[0])
    assert rows == [["甲", ""]]


@pytest.mark.parametrize("data, zh, en", [
    (b"", "文件为空", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "不是表格文件", "not a table"),
    ("名称\n".encode("utf-16"), "不是表格文件", "not a table"),
    (bytes([0x81, 0x30, 0xFF, 0xFE, 0x41]) * 20, "编码", "encoding"),
    (b"PK\x03\x04broken-zip", "Excel", "Excel"),
])
def test_bad_input_has_a_clear_error_in_chinese_and_english(data, zh, en):
    with pytest.raises(LoadError) as raised:
        read(data)
    assert zh in raised.value.zh
    assert en in raised.value.en


def test_a_web_page_is_refused_rather_than_loaded_as_a_table():
    with pytest.raises(LoadError) as raised:
        read(b"<!DOCTYPE html>\n<html><head><title>Login</title></head><body>a,b</body></html>\n")
    assert "网页" in raised.value.zh and "HTML" in raised.value.en


def test_a_nul_byte_deep_in_a_file_is_refused_with_its_line():
    data = b"a,b\n" + b"1,2\n" * 2000 + b"3,x\x00y\n"
    with pytest.raises(LoadError) as raised:
        read(data)
    assert "第 2002 行" in raised.value.zh and "Line 2002" in raised.value.en


def test_a_zip_bomb_disguised_as_a_workbook_is_refused_before_it_is_inflated():
    bomb = xlsx([["年份", "床位数"], [2014, 6601214]], padding=40 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024
    with pytest.raises(LoadError) as raised:
        read(bomb, max_bytes=2 * 1024 * 1024)
    assert "解压后过大" in raised.value.zh and "inflates" in raised.value.en
    assert read(xlsx([["年份", "床位数"], [2014, 6601214]]), max_bytes=2 * 1024 * 1024)[1] == [
        ["2014", "6601214"]]


class CountingStream(io.BytesIO):
    """A file that counts the bytes read from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def test_a_file_over_the_size_cap_is_refused_before_it_is_read_whole():
    data = b"n,name\n" + b"".join(b"%d,row %d\n" % (n, n) for n in range(400_000))
    assert len(data) > 6 * 1024 * 1024
    stream = CountingStream(data)
    with pytest.raises(LoadError) as raised:
        read_table(stream, max_bytes=1024 * 1024)
    assert "超过 1 MB" in raised.value.zh and "larger than 1 MB" in raised.value.en
    assert stream.bytes_read < 2 * 1024 * 1024


def test_a_large_table_is_read_without_holding_it_in_memory(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="gbk", newline="") as out:
        out.write("序号,企业名称,地址\r\n")
        for n in range(130_000):
            out.write(f'{n},上海某某有限公司第{n}分公司,"上海市黄浦区人民大道{n}号"\r\n')
    assert path.stat().st_size > 8 * 1024 * 1024
    tracemalloc.start()
    try:
        with path.open("rb") as stream, read_table(stream) as loaded:
            rows = sum(1 for _ in loaded.rows())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows == 130_000 and loaded.encoding == "gbk"
    assert peak < 4 * 1024 * 1024  # the file is over 8 MB; its text and rows would be several times that


def test_only_tabular_resources_are_loaded():
    assert is_tabular({"format": "CSV", "url": "x"})
    assert is_tabular({"format": "", "url": "https://example.org/beds.xlsx?download=1"})
    assert not is_tabular({"format": "PDF", "url": "https://example.org/report.pdf"})

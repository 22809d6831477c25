"""Column types and the header, as the DataStore loader reads them from the
real tables of config/demo/tables and from the shapes real files take (a
title row, a row of generated labels over the real header): numbers become
numbers a query can compare, dates dates, codes with leading zeros stay
text, and one odd value late in a file widens its column to text instead
of failing the load."""
import io

import pytest

from ckanext.shanghai.datastore.columns import ColumnProfile, find_header, infer_value_types
from ckanext.shanghai.datastore.loader import read_table
from data_files import TABLES


def dictionary(data: bytes) -> dict[str, dict]:
    with read_table(io.BytesIO(data)) as table:
        return {entry["name"]: entry for entry in table.dictionary}


def types_of(name: str) -> dict[str, str]:
    return {column: entry["type"] for column, entry in dictionary((TABLES / name).read_bytes()).items()}


def test_the_elderly_care_table_has_numbers_dates_and_coordinates_typed():
    types = types_of("sh_elderly_care_institutions_utf8bom.csv")
    assert types["beds"] == "integer"
    assert types["since"] == "date"
    assert types["lng"] == types["lat"] == "numeric"
    # 021-56555322 next to 66610336: a phone number is text, not a number.
    assert types["phone"] == "text"
    assert types["name"] == types["district"] == "text"


def test_a_gbk_table_keeps_chinese_column_names_and_reads_slashed_dates():
    types = types_of("bj_realestate_developer_qualifications_gbk.csv")
    assert types["许可日期"] == types["有效期至"] == "date"
    assert types["序号"] == "integer"
    assert types["行政相对人代码"] == "text"  # 18-character credit codes, some ending in a letter


def test_statistics_with_decimals_are_numeric_and_gaps_are_counted():
    entries = dictionary((TABLES / "nbs_health_institution_beds_1978_2014.csv").read_bytes())
    assert entries["卫生机构床位数"]["type"] == "numeric"
    assert entries["卫生机构床位数"]["example"] == "204.17"
    assert entries["卫生机构床位数"]["empty_count"] == 0
    assert entries["专业公共卫生机构床位数"]["empty_count"] == 22
    # The file's first header cell is blank (a pandas index): named, and its years stay text.
    assert entries["column_1"]["type"] == "text"


def test_one_odd_value_at_the_end_of_a_long_column_makes_it_text_not_a_failure():
    rows = "".join(f"{n},{n * 1.5},2024-01-{n % 28 + 1:02d}\n" for n in range(5000))
    entries = dictionary(("序号,金额,日期\n" + rows + "待定,约 3 万,2024年2月30日\n").encode("utf-8"))
    assert [entries[name]["type"] for name in ("序号", "金额", "日期")] == ["text", "text", "text"]
    entries = dictionary(("序号,金额,日期\n" + rows).encode("utf-8"))
    assert [entries[name]["type"] for name in ("序号", "金额", "日期")] == ["integer", "numeric", "date"]


@pytest.mark.parametrize("values, expected", [
    (["0101", "0202"], "text"),              # leading zeros are part of a code
    (["１２３", "４５"], "text"),             # full-width digits: PostgreSQL casts none
    (["1", "-2", "+3"], "integer"),
    (["1,234", "5"], "integer"),             # thousands separators
    (["1.5", "2"], "numeric"),
    (["12345678901234567890"], "numeric"),   # beyond int8, still a number
    (["2023-04-06", "2023/4/7", "2023年4月8日"], "date"),
    (["2023-02-29"], "text"),                # no such day
    (["2023-04-06 08:30", "2023-04-07"], "timestamp"),
    (["2023-04-06T08:30:15"], "timestamp"),
    (["2023-04-06 25:00"], "text"),
    (["是", "否", "TRUE"], "boolean"),
    (["", "  "], "text"),                    # nothing seen: text
])
def test_column_types(values, expected):
    profile = ColumnProfile("c")
    profile.add_column(values)
    assert profile.type == expected


def test_empty_cells_do_not_decide_a_type_but_are_counted():
    profile = ColumnProfile("床位")
    profile.add_column(["", "120", " ", "80"])
    assert (profile.type, profile.empty_count, profile.example) == ("integer", 2, "120")


def test_a_value_fits_only_what_postgresql_can_cast():
    assert infer_value_types("1e5") == 0
    assert infer_value_types("NaN") == 0
    assert infer_value_types("9" * 19) != infer_value_types("9" * 18)


def test_a_header_under_title_rows_is_found():
    rows = [["上海市养老机构名录"], ["单位：张", ""], ["名称", "区", "床位数"], ["甲", "黄浦区", "12"]]
    assert find_header(rows) == 2


def test_a_row_of_generated_labels_over_the_real_header_is_skipped():
    data = ("Unnamed: 0,Unnamed: 1,Unnamed: 2,Unnamed: 3\n"
            "名称,区,床位数,开业日期\n"
            "上海大场长乐养老院,宝山区,326,2015-07-22\n"
            "上海宝山区大场镇敬老院,宝山区,140,1998-12-23\n").encode("utf-8")
    with read_table(io.BytesIO(data)) as table:
        assert table.headers == ["名称", "区", "床位数", "开业日期"]
        assert table.types == ["text", "text", "integer", "date"]
        assert list(table.rows())[0] == ["上海大场长乐养老院", "宝山区", "326", "2015-07-22"]


def test_generated_labels_in_a_real_header_are_renamed():
    data = "Unnamed: 0,名称,床位数\n0,甲,12\n1,乙,30\n".encode("utf-8")
    with read_table(io.BytesIO(data)) as table:
        assert table.headers == ["column_1", "名称", "床位数"]


def test_a_one_column_table_keeps_its_first_row_as_header():
    assert find_header([["名称"], ["甲"], ["乙"]]) == 0

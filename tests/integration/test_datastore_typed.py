"""Typed tables on the real stack: a real table loads with integer, numeric
and date columns, so datastore_search filters ``beds > 200`` and sorts by
number; its data dictionary (name, type, example, empty count) is in the
API and on the resource page; reloading a file that cannot be read, or a
load that fails in the database, leaves the table that was there. A CSV's
text goes straight to PostgreSQL's COPY and its types come from one SQL
scan; every real table reads the same that way as through the row reader,
and a file COPY would read otherwise goes the reader's way."""
import io

import pytest
from werkzeug.datastructures import FileStorage

import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from ckanext.shanghai import compat
from ckanext.shanghai.datastore import columns as column_types
from ckanext.shanghai.datastore import loader as datastore_loader
from data_files import TABLES
from portal_testing import make_department, site_context

ELDERLY = TABLES / "sh_elderly_care_institutions_utf8bom.csv"


@pytest.fixture
def dataset(clean_db, clean_index):
    department = make_department(name="civil-affairs", title="上海市民政局")
    return factories.Dataset(owner_org=department["id"], title="上海市养老机构", data_domain="health",
                             update_frequency="annual", open_condition="unconditional",
                             last_updated="2024-03-01")


def upload(dataset, data: bytes, filename: str) -> dict:
    return helpers.call_action("resource_create", context=site_context(), package_id=dataset["id"],
                               name=filename, format="CSV", url=filename,
                               upload=FileStorage(io.BytesIO(data), filename=filename))


def search(resource_id: str, **params) -> dict:
    return helpers.call_action("datastore_search", resource_id=resource_id, **params)


def index_names(resource_id: str) -> set[str]:
    from ckanext.datastore.backend.postgres import get_write_engine

    connection = get_write_engine().raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("select indexname from pg_indexes where tablename = %s", (resource_id,))
        return {name for (name,) in cursor.fetchall()}
    finally:
        connection.close()


def ckan_index_sql(resource_id: str) -> dict[str, tuple[str, str]]:
    """The full-text indexes CKAN's datastore_create makes for the table's fields."""
    fields = [{"id": field["id"], "type": field["type"]}
              for field in helpers.call_action("datastore_info", id=resource_id)["fields"]]
    return compat.datastore_fts_index_sql(resource_id, resource_id, fields)


def seen_before_indexes(monkeypatch, look) -> dict:
    """Filled, at the next load, with what ``look(resource_id, statements)``
    finds between the load's commit and its full-text index builds."""
    seen: dict = {}
    build = datastore_loader._build_column_indexes

    def watched(resource_id, statements, clock):
        seen.update(look(resource_id, statements))
        return build(resource_id, statements, clock)

    monkeypatch.setattr(datastore_loader, "_build_column_indexes", watched)
    return seen


@pytest.mark.usefixtures("with_plugins")
class TestTypedTables:
    def test_the_elderly_care_table_filters_and_sorts_by_number(self, dataset, app):
        resource = upload(dataset, ELDERLY.read_bytes(), "elderly.csv")
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "complete" and status["rows"] == 626

        big = search(resource["id"], filters={"beds": {"gt": 200}}, sort="beds desc", limit=1000)
        source_beds = [int(line.split(",")[4]) for line in
                       ELDERLY.read_text(encoding="utf-8-sig").splitlines()[1:]]
        assert big["total"] == sum(1 for beds in source_beds if beds > 200)
        assert [row["beds"] for row in big["records"]] == sorted(
            (beds for beds in source_beds if beds > 200), reverse=True)
        assert isinstance(big["records"][0]["lng"], (float, int)) or "." in str(big["records"][0]["lng"])

        # The same through the web API, as a company would call it.
        api = app.get("/api/3/action/datastore_search", query_string={
            "resource_id": resource["id"], "filters": '{"beds": {"gt": 1000}}', "sort": "beds asc"}).json
        assert api["result"]["records"] and all(row["beds"] > 1000 for row in api["result"]["records"])

        since = search(resource["id"], filters={"since": {"gte": "2020-01-01"}}, limit=1000)["records"]
        assert since and all(row["since"] >= "2020-01-01" for row in since)

    def test_the_data_dictionary_is_in_the_api_and_on_the_resource_page(self, dataset, app):
        resource = upload(dataset, ELDERLY.read_bytes(), "elderly.csv")
        datastore_loader.load_resource(resource["id"])
        info = helpers.call_action("datastore_info", id=resource["id"])
        fields = {field["id"]: field for field in info["fields"]}
        assert fields["beds"]["type"] == "int8" and fields["lat"]["type"] == "numeric"
        assert fields["since"]["type"] == "date" and fields["phone"]["type"] == "text"
        assert fields["beds"]["info"]["example"] == "247"
        assert fields["zipcode"]["info"]["empty_count"] == 88
        page = app.get(f"/dataset/{dataset['name']}/resource/{resource['id']}").body
        assert 'id="sh-data-dictionary"' in page
        assert "整数" in page and "247" in page and "88" in page

    def test_chinese_column_names_and_a_header_under_generated_labels(self, dataset):
        data = ("Unnamed: 0,Unnamed: 1,Unnamed: 2\n"
                "机构名称,床位数,开业日期\n"
                "上海大场长乐养老院,326,2015/7/22\n"
                "上海宝山区大场镇敬老院,140,1998/12/23\n").encode("gb18030")
        resource = upload(dataset, data, "beds.csv")
        assert datastore_loader.load_resource(resource["id"])["state"] == "complete"
        rows = search(resource["id"], sort="床位数 asc")["records"]
        assert [(row["机构名称"], row["床位数"], row["开业日期"]) for row in rows] == [
            ("上海宝山区大场镇敬老院", 140, "1998-12-23"),
            ("上海大场长乐养老院", 326, "2015-07-22")]

    def test_a_file_that_cannot_be_read_leaves_the_loaded_table_as_it_was(self, dataset):
        resource = upload(dataset, ELDERLY.read_bytes(), "elderly.csv")
        datastore_loader.load_resource(resource["id"])
        helpers.call_action("resource_patch", context=site_context(), id=resource["id"],
                            upload=FileStorage(io.BytesIO(b"\x89PNG\r\n\x1a\n\x00\x00"), filename="elderly.csv"))
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "error" and "不是表格文件" in status["error_zh"]
        assert search(resource["id"])["total"] == 626

    def test_a_load_failing_in_the_database_leaves_the_previous_rows_readable(self, dataset, monkeypatch):
        resource = upload(dataset, ELDERLY.read_bytes(), "elderly.csv")
        datastore_loader.load_resource(resource["id"])
        helpers.call_action("resource_patch", context=site_context(), id=resource["id"],
                            upload=FileStorage(io.BytesIO("名称,床位数\n甲,12\n".encode("utf-8")),
                                               filename="elderly.csv"))
        # The database refuses the new table's rows half way through the load.
        monkeypatch.setattr(column_types, "cast_sql", lambda column, type_name: "sh_no_such_function()")
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "error" and "数据库拒绝了该表" in status["error_zh"]
        assert search(resource["id"])["total"] == 626
        assert search(resource["id"], q="上海大场长乐养老院")["total"] >= 1
        assert search(resource["id"], filters={"beds": {"gt": 200}})["total"] > 0

        monkeypatch.undo()
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "complete" and status["rows"] == 1
        assert search(resource["id"])["records"][0]["床位数"] == 12


    # CKAN makes no per-column index unless a site asks (its default is none).
    @pytest.mark.ckan_config("ckan.datastore.default_fts_index_field_types", "text tsvector")
    def test_the_table_answers_q_while_its_column_indexes_are_built_after_the_commit(self, dataset, monkeypatch):
        resource = upload(dataset, ELDERLY.read_bytes(), "elderly.csv")
        # Between the commit and the full-text indexes: what a reader gets.
        seen = seen_before_indexes(monkeypatch, lambda resource_id, statements: dict(
            state=datastore_loader.load_status(resource_id)["state"], indexes=index_names(resource_id),
            columns=list(statements), row=search(resource_id, q="上海大场长乐养老院")["total"],
            column=search(resource_id, q={"name": "上海大场长乐养老院"})["records"],
            other=search(resource_id, q={"district": "上海大场长乐养老院"})["total"]))
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "complete" and status["unindexed"] == []
        texts = [entry["name"] for entry in status["dictionary"] if entry["type"] == "text"]
        assert seen["state"] == "indexing" and seen["columns"] == ["_full_text", *texts]
        assert seen["row"] == 1 and [row["beds"] for row in seen["column"]] == [326] and seen["other"] == 0
        ckan_names = {name for name, _sql in ckan_index_sql(resource["id"]).values()}
        # The primary key came with the table; then every index datastore_create makes.
        assert seen["indexes"] == {f"{resource['id']}_pkey"}
        assert index_names(resource["id"]) == ckan_names | {f"{resource['id']}_pkey"}
        assert [row["beds"] for row in search(resource["id"], q={"name": "上海大场长乐养老院"})["records"]] == [326]

    def test_q_over_the_whole_row_answers_before_its_index_and_the_index_follows(self, dataset, monkeypatch):
        resource = upload(dataset, ELDERLY.read_bytes(), "elderly.csv")
        seen = seen_before_indexes(monkeypatch, lambda resource_id, statements: dict(
            state=datastore_loader.load_status(resource_id)["state"], indexes=index_names(resource_id),
            row=search(resource_id, q="上海大场长乐养老院")["total"]))
        status = datastore_loader.load_resource(resource["id"])
        assert seen == {"state": "indexing", "indexes": {f"{resource['id']}_pkey"}, "row": 1}
        full_text, _sql = ckan_index_sql(resource["id"])["_full_text"]
        assert status["state"] == "complete" and status["unindexed"] == []
        assert index_names(resource["id"]) == {f"{resource['id']}_pkey", full_text}

        # An index the database refuses after the commit: the load is complete, q answers by a scan.
        monkeypatch.setattr(compat, "datastore_fts_index_sql",
                            lambda *args: {"_full_text": ("sh_broken", "create index sh_broken on sh_no_such_table (x)")})
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "complete" and status["rows"] == 626 and status["unindexed"] == ["_full_text"]
        assert search(resource["id"], q="上海大场长乐养老院")["total"] == 1

    @pytest.mark.ckan_config("ckan.datastore.default_fts_index_field_types", "text tsvector")
    def test_a_column_index_that_fails_after_the_commit_leaves_the_load_complete(self, dataset, monkeypatch):
        resource = upload(dataset, ELDERLY.read_bytes(), "elderly.csv")
        real = compat.datastore_fts_index_sql

        def broken_name_index(resource_id, table, fields):
            statements = real(resource_id, table, fields)
            statements["name"] = ("sh_broken", f'create index sh_broken on "{table}" (no_such_column)')
            return statements

        monkeypatch.setattr(compat, "datastore_fts_index_sql", broken_name_index)
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "complete" and status["rows"] == 626 and status["unindexed"] == ["name"]
        assert "sh_broken" not in index_names(resource["id"])
        assert [row["beds"] for row in search(resource["id"], q={"name": "上海大场长乐养老院"})["records"]] == [326]


CSV_TABLES = sorted(path for path in TABLES.glob("*.csv"))


@pytest.mark.usefixtures("with_plugins")
@pytest.mark.parametrize("path", CSV_TABLES, ids=[path.name for path in CSV_TABLES])
def test_every_real_table_reads_the_same_through_copy_as_through_the_reader(dataset, path):
    resource = upload(dataset, path.read_bytes(), path.name)
    status = datastore_loader.load_resource(resource["id"])
    with datastore_loader.read_table(io.BytesIO(path.read_bytes())) as table:
        assert status["state"] == "complete" and status["path"] == "copy"
        assert status["dictionary"] == table.dictionary
        assert (status["rows"], status["encoding"]) == (table.row_count, table.encoding)
        loaded = search(resource["id"], limit=table.row_count, sort="_id")["records"]
        rows = list(table.rows())
    text = {"text"}
    for record, row in zip(loaded, rows):
        for entry, cell in zip(table.dictionary, row):
            if entry["type"] in text:
                assert (record[entry["name"]] or "") == cell
            elif not cell.strip():
                assert record[entry["name"]] is None


@pytest.mark.usefixtures("with_plugins")
def test_rows_copy_would_read_otherwise_go_the_readers_way(dataset):
    # A quote inside an unquoted cell (COPY would open a quoted cell there),
    # a short row and a blank line: read as a spreadsheet reads them.
    data = ('机构名称,床位数,备注\n'
            '上海"长乐"养老院,326,民建民营\n'
            '上海宝山区大场镇敬老院,140\n'
            '\n'
            '上海信养养老服务有限公司,247,"民办, 公助"\n').encode("gbk")
    resource = upload(dataset, data, "beds.csv")
    status = datastore_loader.load_resource(resource["id"])
    assert status["state"] == "complete" and status["path"] == "reader" and status["rows"] == 3
    records = search(resource["id"], sort="床位数 desc")["records"]
    assert [(row["机构名称"], row["床位数"], row["备注"]) for row in records] == [
        ('上海"长乐"养老院', 326, "民建民营"),
        ("上海信养养老服务有限公司", 247, "民办, 公助"),
        ("上海宝山区大场镇敬老院", 140, None)]


@pytest.mark.usefixtures("with_plugins")
def test_a_late_value_that_fits_no_type_makes_its_column_text_through_copy(dataset):
    rows = "".join(f"{n},{n * 1.5},2024-01-{n % 28 + 1:02d},0{n % 9 + 1}\n" for n in range(30_000))
    data = ("序号,金额,日期,代码\n" + rows + "待定,约 3 万,2024-02-30,09\n").encode("utf-8")
    resource = upload(dataset, data, "late.csv")
    status = datastore_loader.load_resource(resource["id"])
    assert status["state"] == "complete" and status["path"] == "copy" and status["rows"] == 30_001
    assert [entry["type"] for entry in status["dictionary"]] == ["text", "text", "text", "text"]
    # Full-width digits are not digits PostgreSQL casts: that column stays text.
    rows = "".join(f"{n},{n * 1.5},2024-01-{n % 28 + 1:02d},１{n % 9}\n" for n in range(30_000))
    data = ("序号,金额,日期,全角\n" + rows).encode("utf-8")
    helpers.call_action("resource_patch", context=site_context(), id=resource["id"],
                        upload=FileStorage(io.BytesIO(data), filename="late.csv"))
    status = datastore_loader.load_resource(resource["id"])
    assert [entry["type"] for entry in status["dictionary"]] == ["integer", "numeric", "date", "text"]
    assert float(search(resource["id"], filters={"序号": {"gte": 29_999}})["records"][0]["金额"]) == 29_999 * 1.5


@pytest.mark.usefixtures("with_plugins")
def test_bytes_deep_in_a_file_that_do_not_decode_stop_the_load_with_a_clear_error(dataset):
    # UTF-8 for its first megabytes, then a byte no UTF-8 text holds: the
    # COPY is under way when the decoder finds it.
    data = "名称,床位数\n".encode("utf-8") + "上海某养老院,12\n".encode("utf-8") * 200_000 + b"\xff\xfe,3\n"
    resource = upload(dataset, data, "beds.csv")
    status = datastore_loader.load_resource(resource["id"])
    assert status["state"] == "error"
    assert "编码" in status["error_zh"] and "encoding" in status["error_en"]
    with pytest.raises(tk.ObjectNotFound):
        search(resource["id"])

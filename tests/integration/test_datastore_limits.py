"""The DataStore loader on the real stack under the harvest's limits: a zip
bomb uploaded as a workbook, a file over the size cap (uploaded or linked)
and a link slower than the configured deadline each end as a failed load
with a bilingual reason, bounded in time and bytes, and no DataStore table
is left behind. Linked files come from a local HTTP server on 127.0.0.1,
allow-listed as an operator would."""
import http.server
import io
import threading
import time
import zipfile

import openpyxl
import pytest
from werkzeug.datastructures import FileStorage

import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from ckanext.shanghai.datastore import loader as datastore_loader
from portal_testing import make_department, site_context

MB = 1024 * 1024


class Server:
    """Serves ``routes`` (path -> callable(handler)) on 127.0.0.1 and counts
    the body bytes it managed to send."""

    def __init__(self):
        self.routes: dict = {}
        self.sent = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                route = server.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def send(self, handler, data: bytes) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()
        self.sent += len(data)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    running = Server()
    yield running
    running.httpd.shutdown()


@pytest.fixture
def dataset(clean_db, clean_index):
    department = make_department(name="health-commission", title="上海市卫生健康委员会")
    return factories.Dataset(owner_org=department["id"], title="医疗卫生机构床位", data_domain="health",
                             update_frequency="annual", open_condition="unconditional",
                             last_updated="2021-03-01")


def upload(dataset, data: bytes, filename: str, fmt: str) -> dict:
    return helpers.call_action("resource_create", context=site_context(), package_id=dataset["id"],
                               name=filename, format=fmt, url=filename,
                               upload=FileStorage(io.BytesIO(data), filename=filename))


def link(dataset, url: str) -> dict:
    return helpers.call_action("resource_create", context=site_context(), package_id=dataset["id"],
                               name=url.rsplit("/", 1)[-1], format="CSV", url=url)


def assert_nothing_loaded(resource_id: str) -> None:
    with pytest.raises(tk.ObjectNotFound):
        helpers.call_action("datastore_search", resource_id=resource_id)
    assert not helpers.call_action("resource_show", id=resource_id).get("datastore_active")


def beds_workbook(padding: int = 0) -> bytes:
    """A real workbook of beds per year; ``padding`` bytes of zeros in an
    extra member make it a zip bomb (openpyxl opens it all the same)."""
    book = openpyxl.Workbook()
    book.active.append(["年份", "床位数"])
    book.active.append([2014, 6601214])
    buffer = io.BytesIO()
    book.save(buffer)
    if padding:
        with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            with archive.open("xl/media/padding.bin", "w", force_zip64=True) as member:
                block = b"\0" * MB
                for _ in range(padding // MB):
                    member.write(block)
    return buffer.getvalue()


@pytest.mark.usefixtures("with_plugins")
class TestDataStoreLimits:
    def test_a_zip_bomb_uploaded_as_a_workbook_is_refused_and_nothing_is_loaded(self, dataset):
        # Under the default 100 MB cap a workbook may inflate to 1,600 MB.
        bomb = beds_workbook(padding=1700 * MB)
        assert len(bomb) < 2 * MB
        resource = upload(dataset, bomb, "beds.xlsx", "XLSX")
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "error"
        assert "解压后过大" in status["error_zh"] and "inflates" in status["error_en"]
        assert_nothing_loaded(resource["id"])

        fine = upload(dataset, beds_workbook(), "beds-2014.xlsx", "XLSX")
        assert datastore_loader.load_resource(fine["id"])["state"] == "complete"

    def test_an_upload_over_the_configured_cap_is_refused(self, dataset, monkeypatch):
        monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.max_bytes", 1 * MB)
        rows = b"".join(b"%d,row %d\n" % (n, n) for n in range(200_000))
        resource = upload(dataset, b"n,name\n" + rows, "rows.csv", "CSV")
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "error"
        assert "超过 1 MB" in status["error_zh"] and "larger than 1 MB" in status["error_en"]
        assert_nothing_loaded(resource["id"])

    def test_a_linked_file_over_the_cap_is_cut_off_not_read_whole(self, dataset, server, monkeypatch):
        monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.max_bytes", 1 * MB)

        def endless_table(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", "text/csv")
            handler.end_headers()
            server.send(handler, b"n,name\n")
            block = b"".join(b"%d,row %d\n" % (n, n) for n in range(10_000))
            for _ in range(1000):  # about 130 MB, if nobody stops reading
                server.send(handler, block)

        server.routes["/rows.csv"] = endless_table
        resource = link(dataset, f"{server.base}/rows.csv")
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "error"
        assert "超过大小上限" in status["error_zh"] and "larger than" in status["error_en"]
        assert server.sent < 16 * MB
        assert_nothing_loaded(resource["id"])

    def test_a_linked_file_slower_than_the_configured_deadline_is_refused(self, dataset, server,
                                                                         monkeypatch):
        monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.deadline", 1.0)

        def dripping_table(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", "text/csv")
            handler.end_headers()
            server.send(handler, "年份,床位数\n".encode("utf-8"))
            for year in range(1990, 2015):  # each row well within the read timeout
                time.sleep(0.25)
                server.send(handler, f"{year},{year * 300}\n".encode("utf-8"))

        server.routes["/beds.csv"] = dripping_table
        resource = link(dataset, f"{server.base}/beds.csv")
        started = time.monotonic()
        status = datastore_loader.load_resource(resource["id"])
        assert time.monotonic() - started < 4
        assert status["state"] == "error"
        assert "时限" in status["error_zh"] and "longer than 1s" in status["error_en"]
        assert_nothing_loaded(resource["id"])

    def test_a_linked_table_within_the_limits_loads(self, dataset, server):
        body = "年份,床位数\n2013,6181891\n2014,6601214\n".encode("gbk")

        def table(handler):
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            server.send(handler, body)

        server.routes["/beds.csv"] = table
        resource = link(dataset, f"{server.base}/beds.csv")
        status = datastore_loader.load_resource(resource["id"])
        assert status["state"] == "complete" and status["rows"] == 2 and status["encoding"] == "gbk"
        rows = helpers.call_action("datastore_search", resource_id=resource["id"])["records"]
        assert [row["床位数"] for row in rows] == [6181891, 6601214]

"""The harvest downloader refuses internal addresses (in every spelling and
behind redirects), connects only to the address it checked (no DNS
rebinding), stops oversized and slow-drip sources at the deadline, and reads
local files only under allowed folders. Servers here listen on 127.0.0.1
only."""
import gzip
import http.server
import socket
import threading
import time

import pytest

from ckanext.shanghai.files.fetching import FetchLimits, SourceFetchError, check_url, download, local_path


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):
        route = self.routes.get(self.path)
        if route is None:
            self.send_response(404)
            self.end_headers()
            return
        route(self)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    routes = {}
    handler = type("Handler", (_Handler,), {"routes": routes})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield routes, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def answering(body: bytes):
    """A route answering 200 with ``body``."""
    def ok(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return ok


def allowing_loopback(**limits) -> FetchLimits:
    return FetchLimits(allowed_hosts=frozenset({"127.0.0.1"}), **limits)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/catalog.json",
    "http://localhost/catalog.json",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.8/export.csv",
    "http://192.168.1.1/export.csv",
    "http://172.16.5.4/export.csv",
    "http://[::1]/export.csv",
    "http://[::ffff:127.0.0.1]/export.csv",
    "http://2130706433/export.csv",      # decimal 127.0.0.1
    "http://0177.0.0.1/export.csv",      # octal 127.0.0.1
    "http://0x7f.0.0.1/export.csv",      # hex 127.0.0.1
    "http://0/export.csv",
    "http://127.1/export.csv",           # short 127.0.0.1
    "http://0x7f.1/export.csv",
    "http://017700000001/export.csv",    # one octal number
    "http://0.0.0.0/export.csv",
    "http://100.64.0.1/export.csv",      # carrier-grade NAT
    "http://[fc00::1]/export.csv",       # unique local
    "http://[fd12:3456::1]/export.csv",
    "http://[fe80::1]/export.csv",       # link-local
    "http://[::]/export.csv",
    "http://[64:ff9b::7f00:1]/export.csv",  # NAT64 of 127.0.0.1
    "http://[2002:7f00:1::]/export.csv",    # 6to4 of 127.0.0.1
    "http://[::ffff:a9fe:a9fe]/latest/",    # mapped 169.254.169.254
    "http://localhost./export.csv",
])
def test_internal_addresses_are_refused_in_every_spelling(url):
    with pytest.raises(SourceFetchError) as refused:
        check_url(url, FetchLimits())
    assert "拒绝" in refused.value.reason_zh or "无法解析" in refused.value.reason_zh


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x/"])
def test_only_http_and_https_are_fetched(url):
    with pytest.raises(SourceFetchError):
        check_url(url, FetchLimits())


def test_a_redirect_to_an_internal_address_is_refused(server):
    routes, base = server

    def redirect(handler):
        handler.send_response(302)
        handler.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        handler.end_headers()

    routes["/export.json"] = redirect
    with pytest.raises(SourceFetchError) as refused:
        download(f"{base}/export.json", allowing_loopback())
    assert "169.254.169.254" in refused.value.reason_en


def test_a_redirect_loop_stops(server):
    routes, base = server

    def loop(handler):
        handler.send_response(302)
        handler.send_header("Location", "/export.json")
        handler.end_headers()

    routes["/export.json"] = loop
    with pytest.raises(SourceFetchError) as refused:
        download(f"{base}/export.json", allowing_loopback(max_redirects=3))
    assert "redirects" in refused.value.reason_en


def test_an_allowed_source_is_downloaded_whole(server):
    routes, base = server
    body = '[{"数据集名称": "医院床位"}]'.encode()
    routes["/export.json"] = answering(body)
    path = download(f"{base}/export.json", allowing_loopback())
    try:
        assert path.read_bytes() == body
    finally:
        path.unlink()


def test_an_oversized_or_gzip_bomb_source_stops_at_the_cap(server):
    routes, base = server
    bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")

    def gzip_bomb(handler):
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(bomb)))
        handler.end_headers()
        handler.wfile.write(bomb)

    routes["/bomb.json"] = gzip_bomb
    assert len(bomb) < 100_000
    with pytest.raises(SourceFetchError) as refused:
        download(f"{base}/bomb.json", allowing_loopback(max_bytes=1_000_000))
    assert "limit" in refused.value.reason_en


def test_a_one_byte_at_a_time_server_is_cut_off_by_the_deadline(server):
    routes, base = server

    def drip(handler):
        handler.send_response(200)
        handler.end_headers()
        try:
            for _ in range(100):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass

    routes["/slow.json"] = drip
    started = time.monotonic()
    with pytest.raises(SourceFetchError):
        download(f"{base}/slow.json", allowing_loopback(deadline=1.0, read_timeout=5.0))
    assert time.monotonic() - started < 5


def test_an_error_status_is_reported(server):
    routes, base = server
    with pytest.raises(SourceFetchError) as refused:
        download(f"{base}/missing.json", allowing_loopback())
    assert "HTTP 404" in refused.value.reason_en


def test_local_files_only_under_allowed_folders(tmp_path):
    allowed = tmp_path / "exports"
    allowed.mkdir()
    export = allowed / "catalog.json"
    export.write_text("[]")
    limits = FetchLimits(file_roots=(allowed,))
    assert local_path(str(export), limits) == export.resolve()
    assert local_path(f"file://{export}", limits) == export.resolve()
    assert local_path("https://data.example.gov.cn/x.json", limits) is None
    for outside in ("/etc/passwd", str(allowed / ".." / "secret.json")):
        with pytest.raises(SourceFetchError):
            local_path(outside, limits)
    with pytest.raises(SourceFetchError):
        local_path(str(export), FetchLimits())


def _fake_dns(monkeypatch, answers: dict):
    """Answer getaddrinfo for the named hosts from ``answers`` (host -> list
    of addresses, or a callable giving them); other names resolve as usual.
    Returns the list of the faked names asked for."""
    real = socket.getaddrinfo
    asked = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            asked.append(host)
            addresses = answers[host]() if callable(answers[host]) else answers[host]
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (a, port)) for a in addresses]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_a_name_with_any_internal_address_is_refused(monkeypatch):
    _fake_dns(monkeypatch, {"mixed.example.gov.cn": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(SourceFetchError) as refused:
        check_url("http://mixed.example.gov.cn/export.json", FetchLimits())
    assert "127.0.0.1" in refused.value.reason_en


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(server, monkeypatch):
    """A rebinding DNS server answers the check with one address and the
    connection's lookup with another; the download must use the first."""
    routes, base = server
    port = base.rsplit(":", 1)[1]
    body = b'[{"title": "pinned"}]'
    routes["/export.json"] = answering(body)
    answers = iter([["127.0.0.1"]])
    # The first answer is our server; any later lookup would get an address
    # nothing answers on (TEST-NET-1), so the download would fail.
    asked = _fake_dns(monkeypatch, {"rebind.example": lambda: next(answers, ["192.0.2.1"])})
    limits = FetchLimits(allowed_hosts=frozenset({"rebind.example"}), connect_timeout=2)
    path = download(f"http://rebind.example:{port}/export.json", limits)
    try:
        assert path.read_bytes() == body
    finally:
        path.unlink()
    assert asked == ["rebind.example"]


def test_a_rebinding_name_cannot_reach_loopback(server, monkeypatch):
    """Checked as public, then rebound to 127.0.0.1: the server on loopback
    must not be reached."""
    routes, base = server
    port = base.rsplit(":", 1)[1]
    hits = []
    routes["/export.json"] = lambda handler: (hits.append(1), handler.send_response(200), handler.end_headers())
    answers = iter([["192.0.2.1"]])  # public-looking (TEST-NET-1 is not global, so patch the check)
    _fake_dns(monkeypatch, {"rebind.example": lambda: next(answers, ["127.0.0.1"])})
    monkeypatch.setattr("ckanext.shanghai.files.fetching._address_is_public", lambda a: a == "192.0.2.1")
    with pytest.raises(SourceFetchError):
        download(f"http://rebind.example:{port}/export.json", FetchLimits(connect_timeout=1, deadline=5))
    assert hits == []


def test_proxy_settings_in_the_environment_do_not_reroute_the_download(server, monkeypatch):
    routes, base = server
    body = b"[]"
    routes["/export.json"] = answering(body)
    monkeypatch.setenv("HTTP_PROXY", "http://192.0.2.1:3128")
    monkeypatch.setenv("http_proxy", "http://192.0.2.1:3128")
    path = download(f"{base}/export.json", allowing_loopback(connect_timeout=2))
    try:
        assert path.read_bytes() == body
    finally:
        path.unlink()


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_server_sending_a_byte_every_ten_seconds_is_cut_off_at_the_deadline(server, part):
    """Every read arrives within the read timeout, so only the overall
    deadline can stop it, in the status line and headers as in the body."""
    routes, base = server

    def drip(handler):
        try:
            if part == "headers":
                handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
                handler.wfile.flush()
                for _ in range(10):
                    handler.wfile.write(b"X")
                    handler.wfile.flush()
                    time.sleep(10)
            else:
                handler.send_response(200)
                handler.end_headers()
                for _ in range(10):
                    handler.wfile.write(b" ")
                    handler.wfile.flush()
                    time.sleep(10)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    routes["/slow.json"] = drip
    started = time.monotonic()
    with pytest.raises(SourceFetchError) as stopped:
        download(f"{base}/slow.json", allowing_loopback(deadline=2.0, read_timeout=30.0))
    assert time.monotonic() - started < 4
    assert "longer than 2s" in stopped.value.reason_en and "时限" in stopped.value.reason_zh

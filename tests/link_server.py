"""A local HTTP server of links in every state the link checker meets: good,
broken, slow, redirecting (to good, to broken, in a loop) and refusing HEAD
(answers a ranged GET). It records each request and how many it was
answering at once. Listens on 127.0.0.1 only."""
from __future__ import annotations

import http.server
import threading
import time
from contextlib import contextmanager
from typing import Iterator

# Seconds /slow waits before answering: longer than the tests' link timeout.
SLOW_SECONDS = 4


class LinkServer:
    def __init__(self, base: str):
        self.base = base
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range)
        self.busy = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server_state: LinkServer

    def _answer(self, head: bool) -> None:
        state = self.server_state
        with state.lock:
            state.requests.append(("HEAD" if head else "GET", self.path, self.headers.get("Range")))
            state.busy += 1
            state.most_at_once = max(state.most_at_once, state.busy)
        try:
            self._route(head)
        finally:
            with state.lock:
                state.busy -= 1

    def _route(self, head: bool) -> None:
        path = self.path.split("?")[0]
        if path.startswith("/good") or path.startswith("/held"):
            if path.startswith("/held"):
                time.sleep(0.3)  # long enough for a second request to overlap, if one were sent
            self._send(200, b"id,name\n1,a\n", head)
        elif path == "/slow":
            time.sleep(SLOW_SECONDS)
            self._send(200, b"late", head)
        elif path == "/redirect":
            self._redirect("/good")
        elif path == "/redirect-broken":
            self._redirect("/broken")
        elif path == "/loop":
            self._redirect("/loop")
        elif path == "/no-head":
            if head:
                self._send(405, b"", head)
            elif self.headers.get("Range") == "bytes=0-0":
                self.send_response(206)
                self.send_header("Content-Range", "bytes 0-0/12")
                self.send_header("Content-Length", "1")
                self.end_headers()
                self.wfile.write(b"i")
            else:
                self._send(200, b"id,name\n1,a\n", head)
        else:
            self._send(404, b"not found", head)

    def _send(self, status: int, body: bytes, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _redirect(self, to: str) -> None:
        self.send_response(301)
        self.send_header("Location", to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self._answer(head=True)

    def do_GET(self):
        self._answer(head=False)

    def log_message(self, *args):
        pass


@contextmanager
def link_server() -> Iterator[LinkServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    state = LinkServer(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = type("Handler", (_Handler,), {"server_state": state})
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()

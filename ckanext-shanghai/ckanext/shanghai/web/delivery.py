"""Sending pages and static files fast on a mobile network: gzip for text,
long-lived cache headers for static files, CSS and JavaScript bundles sent
minified, icon fonts that never hide text while they load.

A WSGI middleware around CKAN's app (``ckanext.shanghai.wsgi``), so that
`make serve`, the browser tests and the production compose file all serve
the same bytes with no proxy in front. A bundle's URL carries its content's
version (``/webassets/base/f1c08bee_main.css``), so it is cached for a year
and its minified, compressed form is kept in memory after the first request."""
from __future__ import annotations

import gzip
import re
import threading
from collections import OrderedDict
from typing import Callable, Iterable

__all__ = ["Delivery", "minify", "MAX_AGE_VERSIONED", "MAX_AGE_STATIC"]

# Bundles are named by their content's hash: a year, never revalidated.
MAX_AGE_VERSIONED = 31536000
# Other static files (images, icons) keep their name when they change.
MAX_AGE_STATIC = 604800
# Smaller bodies gain nothing from compression.
MIN_SIZE = 1024
# Larger bodies are streamed as they are (downloads, exports).
MAX_SIZE = 8 * 1024 * 1024
STATIC_SUFFIXES = (".css", ".js", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".woff", ".woff2",
                   ".ttf", ".eot", ".webp")
COMPRESSIBLE = ("text/html", "text/css", "text/javascript", "application/javascript",
                "application/x-javascript", "application/json", "image/svg+xml", "application/xml",
                "text/xml", "text/plain", "application/rdf+xml", "text/turtle", "application/ld+json")
# File downloads and DataStore exports are streamed, never buffered here.
STREAMED_PATHS = re.compile(r"^(/[a-z]{2}(_[A-Za-z]+)*)?/(datastore/dump/|dataset/[^/]+/resource/[^/]+/download|"
                            r"[^/]+/[^/]+/resource/[^/]+/download)")


def minify(path: str, body: bytes) -> bytes:
    """A bundle's bytes as sent: CSS and JavaScript minified (rcssmin,
    rjsmin), and ``font-display: block`` (Font Awesome's) made ``swap`` so
    that no font keeps text or icons invisible while it loads."""
    if path.endswith(".css"):
        import rcssmin

        text = rcssmin.cssmin(body.decode("utf-8"))
        text = re.sub(r"font-display\s*:\s*block", "font-display:swap", text)
        return text.encode("utf-8")
    if path.endswith(".js"):
        import rjsmin

        return rjsmin.jsmin(body.decode("utf-8"), keep_bang_comments=True).encode("utf-8")
    return body


class _Cache:
    """The last few versioned bundles as sent, minified and compressed."""

    def __init__(self, size: int = 64):
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key, value) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class Delivery:
    """WSGI middleware: compression, cache headers, minified bundles."""

    def __init__(self, app: Callable, versioned_prefix: str = "/webassets/"):
        self.app = app
        self.versioned_prefix = versioned_prefix
        self.cache = _Cache()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if STREAMED_PATHS.match(path) or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        gzip_ok = "gzip" in (environ.get("HTTP_ACCEPT_ENCODING") or "").lower()
        captured: dict = {}
        chunks: list[bytes] = []

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, list(headers)
            return chunks.append

        result = self.app(environ, capture)
        status, headers = captured.get("status", "500 INTERNAL SERVER ERROR"), captured.get("headers", [])
        names = {name.lower(): value for name, value in headers}
        content_type = names.get("content-type", "").split(";")[0].strip().lower()
        versioned = path.startswith(self.versioned_prefix)
        ok = status.startswith("200")
        length = names.get("content-length")
        too_large = length is not None and length.isdigit() and int(length) > MAX_SIZE
        wanted = ok and content_type in COMPRESSIBLE and "content-encoding" not in names and not too_large
        if not wanted:
            headers = self._cache_headers(path, status, headers, versioned)
            start_response(status, headers)
            if chunks:
                return _chain(chunks, result)
            return result

        key = (path, names.get("etag"), names.get("last-modified"), length, gzip_ok) if versioned else None
        cached = self.cache.get(key) if key else None
        if cached is None:
            try:
                body = b"".join(chunks) + b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            if versioned:
                body = minify(path, body)
            encoded = gzip_ok and len(body) >= MIN_SIZE
            if encoded:
                body = gzip.compress(body, compresslevel=6, mtime=0)
            cached = (body, encoded)
            if key:
                self.cache.put(key, cached)
        elif hasattr(result, "close"):
            result.close()
        body, encoded = cached
        headers = [(n, v) for n, v in headers if n.lower() not in ("content-length", "content-encoding")]
        headers = self._cache_headers(path, status, headers, versioned)
        if encoded:
            headers.append(("Content-Encoding", "gzip"))
        vary = [v.strip() for n, value in headers if n.lower() == "vary" for v in value.split(",") if v.strip()]
        headers = [(n, v) for n, v in headers if n.lower() != "vary"]
        headers.append(("Vary", ", ".join(vary + [v for v in ("Accept-Encoding",) if v not in vary])))
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    @staticmethod
    def _cache_headers(path: str, status: str, headers: list, versioned: bool) -> list:
        if not (status.startswith("200") or status.startswith("304")):
            return headers
        if versioned:
            policy = f"public, max-age={MAX_AGE_VERSIONED}, immutable"
        elif path.lower().endswith(STATIC_SUFFIXES) and not path.startswith("/api/"):
            policy = f"public, max-age={MAX_AGE_STATIC}"
        else:
            return headers
        return [(n, v) for n, v in headers if n.lower() not in ("cache-control", "expires", "pragma")] \
            + [("Cache-Control", policy)]


def _chain(first: list[bytes], rest: Iterable[bytes]):
    """The body a legacy ``write()`` began, then the rest (closing it)."""
    try:
        yield from first
        yield from rest
    finally:
        if hasattr(rest, "close"):
            rest.close()

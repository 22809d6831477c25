"""Bounded download of a harvest source: connect and read timeouts, an
overall deadline that cuts the connection even mid-read, a size cap,
redirects checked hop by hop, and no requests to private, loopback or
link-local addresses unless an operator allow-lists the host. A host name is
resolved once; every address it resolves to is checked, and the connection
goes to the checked address (no second lookup a rebinding DNS server could
answer differently). Local files are read only under operator-configured
folders."""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

import ckan.plugins.toolkit as tk

from ckanext.shanghai import compat
from ckanext.shanghai.messages import Message, MessageError


class SourceFetchError(MessageError):
    """The source could not be fetched, and why (``.message``)."""

    def __init__(self, reason_zh: str, reason_en: str, *, code: str = "source-unreachable"):
        super().__init__(Message(code, reason_zh, reason_en))


# A page of a paged source (a CKAN API answer, a DCAT page) is read whole
# into memory, so it gets a smaller cap than a streamed export file.
MAX_PAGE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 512 * 1024 * 1024
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 600.0
    max_redirects: int = 5
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    file_roots: tuple[Path, ...] = ()

    def for_pages(self) -> "FetchLimits":
        """These limits for a source read a page at a time into memory."""
        return dataclasses.replace(self, max_bytes=min(self.max_bytes, MAX_PAGE_BYTES))


def configured_limits() -> FetchLimits:
    """The limits the operator configured (``ckanext.shanghai.harvest.*``):
    the harvesters and the DataStore loader download under the same ones."""
    config = tk.config
    return FetchLimits(
        max_bytes=config.get("ckanext.shanghai.harvest.max_bytes"),
        connect_timeout=config.get("ckanext.shanghai.harvest.connect_timeout"),
        read_timeout=config.get("ckanext.shanghai.harvest.read_timeout"),
        deadline=config.get("ckanext.shanghai.harvest.deadline"),
        allowed_hosts=frozenset(h.lower() for h in config.get("ckanext.shanghai.harvest.allowed_hosts")),
        file_roots=tuple(Path(p) for p in config.get("ckanext.shanghai.harvest.file_roots")),
    )


# Public IPv6 ranges that carry an IPv4 address a gateway may deliver to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        elif ip.sixtofour and not ip.sixtofour.is_global:
            return False
        elif ip in _NAT64 and not ipaddress.ip_address(int(ip) & 0xFFFFFFFF).is_global:
            return False
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class CheckedURL:
    """A URL that passed ``check_url`` and the address to connect to."""
    parts: urllib.parse.SplitResult
    address: str


def check_url(url: str, limits: FetchLimits) -> CheckedURL:
    """Refuse a URL whose scheme is not http(s) or whose host resolves to a
    non-public address (unless allow-listed); return the address to connect
    to. Decimal, octal, hex and short IP forms are caught because the
    resolved address is what is checked, and every address the name
    resolves to must pass."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SourceFetchError(f"不支持的地址协议：{parts.scheme or '(无)'}",
                               f"Unsupported URL scheme: {parts.scheme or '(none)'}")
    host = parts.hostname
    if not host:
        raise SourceFetchError("地址缺少主机名", "The URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise SourceFetchError("地址中的端口无效", "The URL's port is not valid")
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise SourceFetchError(f"无法解析主机名 {host}", f"Cannot resolve host {host}: {error}")
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise SourceFetchError(f"无法解析主机名 {host}", f"Cannot resolve host {host}")
    if host.lower().rstrip(".") not in limits.allowed_hosts:
        for address in addresses:
            if not _address_is_public(address):
                raise SourceFetchError(
                    f"拒绝访问内部地址 {host}（{address}）；如确需访问请由运维加入白名单",
                    f"Refused: {host} resolves to a non-public address ({address}); an operator can "
                    "allow-list it", code="address-refused",
                )
    return CheckedURL(parts, addresses[0])


class _Watchdog:
    """Shuts the sockets of a download when its deadline passes, so a server
    that drips a byte now and then (each read within the read timeout) is
    cut off on time, in the headers as well as in the body."""

    def __init__(self, seconds: float):
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _pinned_session(address: str, watchdog: _Watchdog) -> requests.Session:
    """A session whose connections go to ``address`` whatever the URL's host
    resolves to now (TLS still checks the certificate against the host
    name), ignoring proxy settings from the environment."""

    pools = {}
    for scheme, pool_class, connection_class in (("http", HTTPConnectionPool, HTTPConnection),
                                                 ("https", HTTPSConnectionPool, HTTPSConnection)):
        pinned = compat.pinned_connection_class(connection_class, address, watchdog.watch)
        pools[scheme] = type(f"Pinned{pool_class.__name__}", (pool_class,), {"ConnectionCls": pinned})

    class PinnedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    session = requests.Session()
    session.trust_env = False
    for prefix in ("http://", "https://"):
        session.mount(prefix, PinnedAdapter(max_retries=0))
    return session


def local_path(url: str, limits: FetchLimits) -> Path | None:
    """The file a file: URL or plain path names, if it lies under an allowed
    folder; None for a network URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("", "file"):
        return None
    path = Path(urllib.parse.unquote(parts.path)).resolve()
    for root in limits.file_roots:
        if path.is_relative_to(root.resolve()):
            if not path.is_file():
                raise SourceFetchError(f"文件不存在：{path.name}", f"No such file: {path.name}")
            if path.stat().st_size > limits.max_bytes:
                raise SourceFetchError("文件超过大小上限", f"File larger than the {limits.max_bytes}-byte limit",
                                       code="too-large")
            return path
    raise SourceFetchError("该本地路径不在允许的目录中", "Local path is outside the folders the operator allows",
                           code="path-refused")


def download(url: str, limits: FetchLimits) -> Path:
    """Download ``url`` into a temporary file and return its path (the
    caller deletes it). Raises SourceFetchError with the reason."""
    started = time.monotonic()
    watchdog = _Watchdog(limits.deadline)
    try:
        return _download(url, limits, started, watchdog)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, SourceFetchError):
        if watchdog.expired:
            raise _too_slow(limits) from None
        raise
    finally:
        watchdog.cancel()


def _too_slow(limits: FetchLimits) -> SourceFetchError:
    return SourceFetchError(f"下载超过时限（{limits.deadline:.0f} 秒）",
                            f"Download took longer than {limits.deadline:.0f}s", code="timeout")


def _download(url: str, limits: FetchLimits, started: float, watchdog: _Watchdog) -> Path:
    current = url
    for _hop in range(limits.max_redirects + 1):
        checked = check_url(current, limits)
        session = _pinned_session(checked.address, watchdog)
        try:
            response = session.get(current, stream=True, allow_redirects=False,
                                   timeout=(limits.connect_timeout, limits.read_timeout),
                                   headers={"User-Agent": "ckanext-shanghai-harvester"})
        except requests.Timeout:
            raise SourceFetchError("连接或读取超时", "Timed out connecting or reading", code="timeout")
        except requests.RequestException as error:
            raise SourceFetchError("无法连接数据源", f"Cannot connect to the source: {type(error).__name__}")
        if response.is_redirect:
            location = response.headers.get("Location", "")
            response.close()
            session.close()
            current = urllib.parse.urljoin(current, location)
            continue
        if response.status_code != 200:
            response.close()
            session.close()
            raise SourceFetchError(f"数据源返回 HTTP {response.status_code}",
                                   f"The source answered HTTP {response.status_code}", code="http-error")
        try:
            path = _save(response, limits, started)
        finally:
            session.close()
        if watchdog.expired:
            # The watchdog closed the connection: what arrived is not all.
            path.unlink()
            raise _too_slow(limits)
        return path
    raise SourceFetchError("重定向次数过多", f"More than {limits.max_redirects} redirects")


def _save(response: requests.Response, limits: FetchLimits, started: float) -> Path:
    handle, name = tempfile.mkstemp(prefix="harvest-", suffix=".download")
    written = 0
    try:
        with os.fdopen(handle, "wb") as out, response:
            while True:
                # read1 returns what has arrived (up to 64 KB), so the
                # deadline is checked even against a server that sends one
                # byte at a time; decoded bytes count against the cap, which
                # stops gzip bombs.
                chunk = response.raw.read1(64 * 1024, decode_content=True)
                if not chunk:
                    if response.raw.closed or response.raw.isclosed():
                        break
                    if time.monotonic() - started > limits.deadline:
                        raise SourceFetchError("下载超过时限", f"Download took longer than {limits.deadline:.0f}s",
                                               code="timeout")
                    continue
                written += len(chunk)
                if written > limits.max_bytes:
                    raise SourceFetchError("数据源超过大小上限",
                                           f"The source is larger than the {limits.max_bytes}-byte limit",
                                           code="too-large")
                if time.monotonic() - started > limits.deadline:
                    raise SourceFetchError("下载超过时限", f"Download took longer than {limits.deadline:.0f}s",
                                           code="timeout")
                out.write(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        os.unlink(name)
        raise SourceFetchError("下载中断", f"Download broke off: {type(error).__name__}")
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


@dataclass(frozen=True)
class ProbeResult:
    """Whether a link answers (``probe``): its final HTTP status, the method
    that got it, and, when it does not answer, why (``problem``)."""
    status: int | None
    method: str
    final_url: str
    problem: Message | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


# HEAD answers that may only mean "not by HEAD": a ranged GET asks again.
_HEAD_REFUSED = frozenset({400, 403, 405, 406, 409, 429, 500, 501, 502, 503})


def probe(url: str, limits: FetchLimits) -> ProbeResult:
    """Ask whether ``url`` answers, reading no body: HEAD, then a GET for its
    first byte (``Range: bytes=0-0``) when the server refuses HEAD. Every
    redirect hop passes ``check_url`` (the harvest's address rules) and the
    whole probe stops at ``limits.deadline``."""
    result = _probe_with(url, limits, "HEAD")
    if result.status in _HEAD_REFUSED:
        result = _probe_with(url, limits, "GET")
    return result


def _probe_with(url: str, limits: FetchLimits, method: str) -> ProbeResult:
    watchdog = _Watchdog(limits.deadline)
    current = url
    try:
        for _hop in range(limits.max_redirects + 1):
            try:
                checked = check_url(current, limits)
            except SourceFetchError as error:
                return ProbeResult(None, method, current, error.message)
            session = _pinned_session(checked.address, watchdog)
            headers = {"User-Agent": "ckanext-shanghai-linkcheck"}
            if method == "GET":
                headers["Range"] = "bytes=0-0"
            try:
                response = session.request(method, current, stream=True, allow_redirects=False,
                                           timeout=(limits.connect_timeout, limits.read_timeout), headers=headers)
                response.close()
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
                if watchdog.expired or isinstance(error, requests.Timeout):
                    return ProbeResult(None, method, current, Message(
                        "timeout", f"超过 {limits.deadline:.0f} 秒未应答", f"No answer within {limits.deadline:.0f}s"))
                return ProbeResult(None, method, current, Message(
                    "unreachable", "无法连接", f"Cannot connect: {type(error).__name__}"))
            finally:
                session.close()
            if response.is_redirect:
                current = urllib.parse.urljoin(current, response.headers.get("Location", ""))
                continue
            if 200 <= response.status_code < 300:
                return ProbeResult(response.status_code, method, current)
            return ProbeResult(response.status_code, method, current, Message(
                "http-error", f"返回 HTTP {response.status_code}", f"Answered HTTP {response.status_code}"))
        return ProbeResult(None, method, current, Message(
            "too-many-redirects", "重定向次数过多", f"More than {limits.max_redirects} redirects"))
    finally:
        watchdog.cancel()

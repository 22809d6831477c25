"""Bounded download of a harvest source: connect and read timeouts, an
overall deadline, a size cap, redirects checked hop by hop, and no requests
to private, loopback or link-local addresses unless an operator allow-lists
the host. Local files are read only under operator-configured folders."""
from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import requests
import urllib3


class SourceFetchError(Exception):
    """The source could not be fetched; the message is bilingual."""

    def __init__(self, reason_zh: str, reason_en: str):
        super().__init__(f"{reason_zh} / {reason_en}")
        self.reason_zh = reason_zh
        self.reason_en = reason_en


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 512 * 1024 * 1024
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 600.0
    max_redirects: int = 5
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    file_roots: tuple[Path, ...] = ()


def _address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, limits: FetchLimits) -> urllib.parse.SplitResult:
    """Refuse a URL whose scheme is not http(s) or whose host resolves to a
    non-public address (unless allow-listed). Decimal, octal and hex IP
    forms are caught because the resolved address is what is checked."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SourceFetchError(f"不支持的地址协议：{parts.scheme or '(无)'}",
                               f"Unsupported URL scheme: {parts.scheme or '(none)'}")
    host = parts.hostname
    if not host:
        raise SourceFetchError("地址缺少主机名", "The URL has no host")
    if host.lower() in limits.allowed_hosts:
        return parts
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise SourceFetchError(f"无法解析主机名 {host}", f"Cannot resolve host {host}: {error}")
    for info in infos:
        address = info[4][0]
        if not _address_is_public(address):
            raise SourceFetchError(
                f"拒绝访问内部地址 {host}（{address}）；如确需访问请由运维加入白名单",
                f"Refused: {host} resolves to a non-public address ({address}); an operator can allow-list it",
            )
    return parts


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
                raise SourceFetchError("文件超过大小上限", f"File larger than the {limits.max_bytes}-byte limit")
            return path
    raise SourceFetchError("该本地路径不在允许的目录中", "Local path is outside the folders the operator allows")


def download(url: str, limits: FetchLimits, session: requests.Session | None = None) -> Path:
    """Download ``url`` into a temporary file and return its path (the
    caller deletes it). Raises SourceFetchError with the reason."""
    session = session or requests.Session()
    started = time.monotonic()
    current = url
    for _hop in range(limits.max_redirects + 1):
        check_url(current, limits)
        try:
            response = session.get(current, stream=True, allow_redirects=False,
                                   timeout=(limits.connect_timeout, limits.read_timeout),
                                   headers={"User-Agent": "ckanext-shanghai-harvester"})
        except requests.Timeout:
            raise SourceFetchError("连接或读取超时", "Timed out connecting or reading")
        except requests.RequestException as error:
            raise SourceFetchError("无法连接数据源", f"Cannot connect to the source: {type(error).__name__}")
        if response.is_redirect:
            location = response.headers.get("Location", "")
            response.close()
            current = urllib.parse.urljoin(current, location)
            continue
        if response.status_code != 200:
            response.close()
            raise SourceFetchError(f"数据源返回 HTTP {response.status_code}",
                                   f"The source answered HTTP {response.status_code}")
        return _save(response, limits, started)
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
                        raise SourceFetchError("下载超过时限", f"Download took longer than {limits.deadline:.0f}s")
                    continue
                written += len(chunk)
                if written > limits.max_bytes:
                    raise SourceFetchError("数据源超过大小上限",
                                           f"The source is larger than the {limits.max_bytes}-byte limit")
                if time.monotonic() - started > limits.deadline:
                    raise SourceFetchError("下载超过时限", f"Download took longer than {limits.deadline:.0f}s")
                out.write(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        os.unlink(name)
        raise SourceFetchError("下载中断", f"Download broke off: {type(error).__name__}")
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)

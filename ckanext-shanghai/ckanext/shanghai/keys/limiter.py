"""Rate limits on the API (/api/...) and on downloads (files, DataStore
dumps, table exports): a fixed window per caller, counted in Redis so every
web process shares the count. A request with a developer key (any CKAN API
token) counts against that key; a signed-in page session against its user,
at the key's limit; anyone else against their address, at the lower
anonymous limit. Over the limit: HTTP 429 with ``Retry-After`` and the
reason in Chinese and English. A key that is revoked or not valid is
refused with 401 rather than served as anonymous.

One Redis round trip per limited request (INCR and TTL in a pipeline; the
window's expiry is set by the request that opens it). If Redis does not answer, the request is served: the API must
not go down with its counter."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from flask import Response, request

import ckan.plugins.toolkit as tk
from ckan.common import current_user

from ckanext.shanghai import compat

log = logging.getLogger(__name__)

__all__ = ["Caller", "caller", "is_limited", "hit", "check_request", "register", "DOWNLOAD_ENDPOINTS",
           "limited_response", "invalid_key_response", "COUNTER_PREFIX"]

COUNTER_PREFIX = "shanghai:ratelimit:"
# Flask endpoints of downloads (a resource's file, a DataStore dump, a table export).
DOWNLOAD_ENDPOINTS = ("resource.download", "datastore.dump", "shanghai_tables.export")
# Asked by CKAN's own scripts on every page: not a use of the API.
_EXEMPT_PREFIXES = ("/api/i18n/",)

LIMITED = {"zh": "请求过于频繁，已超过每 {window} 秒 {limit} 次的限额，请在 {retry} 秒后重试。{hint}",
           "en": "Too many requests: the limit is {limit} per {window} seconds. Try again in {retry} seconds.{hint}"}
ANONYMOUS_HINT = {"zh": "注册应用并使用开发者密钥可获得更高限额。",
                  "en": " Register an application and use its developer key for a higher limit."}
INVALID_KEY = {"zh": "开发者密钥无效或已被撤销。",
               "en": "The developer key is not valid or has been revoked."}


@dataclass(frozen=True)
class Caller:
    """Who a request counts against: ``bucket`` names the counter,
    ``key_id`` is the developer key's id ('' without one), ``limit`` the
    requests allowed per window."""

    bucket: str
    key_id: str
    limit: int
    anonymous: bool


def is_limited() -> bool:
    path = request.path
    if path.startswith("/api/"):
        # A department's real-time feed pushes with its own push key: a
        # publisher writing, not a caller reusing data.
        if path.startswith("/api/realtime/") and path.endswith("/push"):
            return False
        return not path.startswith(_EXEMPT_PREFIXES)
    endpoint = request.endpoint or ""
    return endpoint.endswith(DOWNLOAD_ENDPOINTS)


# token -> its id: a JWT decodes to the same id every time, and decoding
# (the signature's HMAC) is the limiter's largest cost after Redis. Whether
# the token is still valid is CKAN's check, made on every request.
_key_ids: dict[str, str | None] = {}


def _key_id(token: str) -> str | None:
    if token not in _key_ids:
        if len(_key_ids) > 10000:
            _key_ids.clear()
        _key_ids[token] = compat.api_token_id(token)
    return _key_ids[token]


def caller() -> Caller | None:
    """The caller of this request; None when it carries a key that is not
    (or no longer) valid. CKAN has identified the user already."""
    header = request.headers.get(tk.config.get("apitoken_header_name"))
    if header:
        key_id = _key_id(header) if compat.authenticated_by_token() else None
        if key_id is None:
            return None
        return Caller(f"key:{key_id}", key_id, tk.config.get("ckanext.shanghai.ratelimit.key_per_window"), False)
    if current_user.is_authenticated:
        return Caller(f"user:{current_user.id}", "", tk.config.get("ckanext.shanghai.ratelimit.key_per_window"),
                      False)
    return Caller(f"ip:{request.remote_addr or 'unknown'}", "",
                  tk.config.get("ckanext.shanghai.ratelimit.anonymous_per_window"), True)


def hit(redis, bucket: str, window: int) -> tuple[int, int]:
    """Count one request of ``bucket`` in its current window; returns the
    count so far and the seconds until the window ends. A window starts at
    its caller's first request (the counter's expiry), the same for every
    process; one round trip, two when a window starts."""
    name = f"{COUNTER_PREFIX}{bucket}"
    pipe = redis.pipeline(transaction=False)
    pipe.incr(name)
    pipe.ttl(name)
    count, ttl = pipe.execute()
    if ttl < 0:  # a new window (or a counter whose expiry was never set)
        redis.expire(name, window)
        ttl = window
    return int(count), max(1, int(ttl))


def _language() -> str:
    from ckanext.shanghai.portal.helpers import sh_is_english

    try:
        return "en" if sh_is_english() else "zh"
    except Exception:  # no page language outside a page
        return "zh"


def limited_response(who: Caller, window: int, retry: int) -> Response:
    texts = {lang: LIMITED[lang].format(limit=who.limit, window=window, retry=retry,
                                        hint=ANONYMOUS_HINT[lang] if who.anonymous else "")
             for lang in ("zh", "en")}
    return _refusal(429, "rate-limited", texts, {"Retry-After": str(retry)}, retry_after=retry, limit=who.limit,
                    window_seconds=window)


def invalid_key_response() -> Response:
    return _refusal(401, "invalid-key", INVALID_KEY, {})


def _refusal(status: int, code: str, texts: dict, headers: dict, **extra) -> Response:
    if request.path.startswith("/api/"):
        body = {"success": False, "error": {"__type": "Rate Limit" if status == 429 else "Authorization Error",
                                            "code": code, "message": texts[_language()],
                                            "message_zh": texts["zh"], "message_en": texts["en"], **extra}}
        response = Response(json.dumps(body, ensure_ascii=False), status=status,
                            mimetype="application/json")
    else:
        response = Response(tk.render("keys/refused.html", {"message": texts[_language()], "code": code}),
                            status=status, mimetype="text/html")
    response.headers.update(headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def check_request():
    """Flask before_request: refuse a request over its caller's limit."""
    if not tk.config.get("ckanext.shanghai.ratelimit.enabled") or not is_limited():
        return None
    who = caller()
    if who is None:
        return invalid_key_response()
    from ckanext.shanghai.keys import usage

    usage.remember_caller(who)
    window = tk.config.get("ckanext.shanghai.ratelimit.window_seconds")
    try:
        count, retry = hit(usage.redis(), who.bucket, window)
    except Exception as error:  # the counter down must not take the API down
        log.warning("rate limit not counted (Redis): %s", error)
        return None
    if count > who.limit:
        return limited_response(who, window, retry)
    return None


def register(app) -> None:
    app.before_request(check_request)

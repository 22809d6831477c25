"""Stream tickets: the web app, which knows the signed-in user, hands a
browser over to the stream server with a short-lived ticket (HMAC-SHA256
over the product, the user and an expiry, keyed by the install's
SECRET_KEY), so the stream server applies the same access rules without
the session cookie. No CKAN import: a secret and a ticket in, a claim out."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

__all__ = ["TICKET_SECONDS", "Ticket", "BadTicket", "issue", "check"]

TICKET_SECONDS = 30
# Domain separation: the same SECRET_KEY signs CKAN's own sessions.
_PURPOSE = b"shanghai-realtime-stream-ticket\x00"


@dataclass(frozen=True)
class Ticket:
    """What a valid ticket says: who may follow which product ('' for an
    anonymous visitor) until when (Unix seconds)."""

    resource_id: str
    user: str
    expires: int


class BadTicket(Exception):
    """A ticket that is malformed, forged, for another product or expired.
    ``code`` is stable; ``zh`` and ``en`` say it to a person."""

    def __init__(self, code: str, zh: str, en: str):
        super().__init__(en)
        self.code, self.zh, self.en = code, zh, en


def _key(secret: str) -> bytes:
    if not secret:
        raise ValueError("a stream ticket needs the install's SECRET_KEY")
    return hashlib.sha256(_PURPOSE + secret.encode("utf-8")).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret: str, resource_id: str, user: str | None, now: float | None = None,
          seconds: int = TICKET_SECONDS) -> str:
    """A ticket for ``user`` (None or '' when anonymous) to follow ``resource_id``."""
    expires = int((time.time() if now is None else now) + seconds)
    body = _b64(json.dumps({"r": resource_id, "u": user or "", "e": expires},
                           separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    signature = _b64(hmac.new(_key(secret), body.encode("ascii"), hashlib.sha256).digest())
    return f"{body}.{signature}"


def check(secret: str, ticket: str | None, resource_id: str, now: float | None = None) -> Ticket:
    """The claim of a valid ticket for ``resource_id``, or ``BadTicket``."""
    body, _dot, signature = (ticket or "").partition(".")
    if not body or not signature:
        raise BadTicket("no-ticket", "缺少订阅凭证，请从数据产品的订阅地址重新连接",
                        "No stream ticket: connect through the product's stream address")
    expected = _b64(hmac.new(_key(secret), body.encode("ascii", "replace"), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8")):
        raise BadTicket("bad-ticket", "订阅凭证无效", "The stream ticket is not valid")
    try:
        claim = json.loads(_unb64(body))
        parsed = Ticket(resource_id=str(claim["r"]), user=str(claim["u"]), expires=int(claim["e"]))
    except (ValueError, KeyError, TypeError):
        raise BadTicket("bad-ticket", "订阅凭证无效", "The stream ticket is not valid")
    if parsed.resource_id != resource_id:
        raise BadTicket("wrong-product", "订阅凭证不属于这个数据产品", "The stream ticket is for another product")
    if (time.time() if now is None else now) > parsed.expires:
        raise BadTicket("expired-ticket", "订阅凭证已过期，请从数据产品的订阅地址重新连接",
                        "The stream ticket has expired: connect through the product's stream address again")
    return parsed

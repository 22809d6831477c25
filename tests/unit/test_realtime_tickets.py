"""Stream tickets: what the web app signs, the stream server accepts for
30 seconds, for that product only, and refuses forged, altered, expired
or foreign ones with a stable code and a reason in zh and en."""
from __future__ import annotations

import base64
import json

import pytest

from ckanext.shanghai.realtime import tickets

SECRET = "install-secret-key"
PRODUCT = "8f2c4a1e-0000-4000-8000-000000000001"
NOW = 1_800_000_000.0


def refused(ticket, resource_id=PRODUCT, now=NOW, secret=SECRET) -> tickets.BadTicket:
    with pytest.raises(tickets.BadTicket) as raised:
        tickets.check(secret, ticket, resource_id, now=now)
    assert raised.value.zh and raised.value.en and raised.value.zh != raised.value.en
    return raised.value


def test_a_ticket_names_the_product_and_the_user_for_thirty_seconds():
    ticket = tickets.issue(SECRET, PRODUCT, "张三-editor", now=NOW)
    claim = tickets.check(SECRET, ticket, PRODUCT, now=NOW + 30)
    assert (claim.resource_id, claim.user, claim.expires) == (PRODUCT, "张三-editor", int(NOW) + 30)
    assert refused(ticket, now=NOW + 31).code == "expired-ticket"


def test_an_anonymous_ticket_carries_no_user():
    assert tickets.check(SECRET, tickets.issue(SECRET, PRODUCT, None, now=NOW), PRODUCT, now=NOW).user == ""


def test_a_ticket_is_good_for_its_product_only():
    ticket = tickets.issue(SECRET, PRODUCT, "editor", now=NOW)
    assert refused(ticket, resource_id="another-product").code == "wrong-product"


def test_a_ticket_signed_with_another_secret_is_refused():
    assert refused(tickets.issue("someone-elses-secret", PRODUCT, "editor", now=NOW)).code == "bad-ticket"


def test_a_ticket_whose_claim_was_altered_is_refused():
    body, signature = tickets.issue(SECRET, PRODUCT, "someone", now=NOW).split(".")
    claim = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for change in ({"u": "sysadmin"}, {"e": claim["e"] + 3600}):
        forged = base64.urlsafe_b64encode(json.dumps(dict(claim, **change)).encode()).rstrip(b"=").decode()
        assert refused(f"{forged}.{signature}").code == "bad-ticket"


@pytest.mark.parametrize("ticket", [None, "", "no-dot", ".", "abc.", ".abc", "a.b.c", "不是凭证.签名"])
def test_malformed_tickets_are_refused_with_a_reason(ticket):
    assert refused(ticket).code in ("no-ticket", "bad-ticket")


def test_no_ticket_without_a_secret():
    with pytest.raises(ValueError):
        tickets.issue("", PRODUCT, "editor")

"""The stream server (`ckan shanghai-realtime streams`) as a follower meets
it: the product's stream address on the web app answers 307 to the stream
server with a ticket; a push reaches the open stream; a reconnect with
Last-Event-ID loses nothing and repeats nothing; a conditional product's
stream refuses a user without access, and a forged or expired ticket, and
an open stream ends when the follower's grant is revoked."""
from __future__ import annotations

import datetime as dt
import http.client
import json
import time
import urllib.parse

import pytest

import ckan.plugins as plugins
import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from portal_testing import empty_database, make_department, start_streams, stop_portal

from ckanext.shanghai.access.store import local_today
from ckanext.shanghai.realtime import tickets

FIELDS = [{"id": "carpark_id", "type": "text"}, {"id": "observed_at", "type": "timestamp"},
          {"id": "free_spaces", "type": "int"}]


@pytest.fixture(scope="module")
def world(reset_db, migrate_db_for, reset_index, ckan_ini, tmp_path_factory):
    plugins.load_all()
    empty_database(reset_db, migrate_db_for, reset_index)
    jtw = make_department(name="jtw-streams", title="上海市交通委员会")
    people = {"editor": factories.User(), "admin": factories.User(), "someone": factories.User(),
              "holder": factories.User()}
    for who in ("editor", "admin"):
        helpers.call_action("organization_member_create", id=jtw["id"], username=people[who]["name"], role=who)
    editor = {"user": people["editor"]["name"], "ignore_auth": False}
    products = {}
    for name, condition in (("open", "unconditional"), ("restricted", "conditional")):
        package = helpers.call_action(
            "package_create", context=dict(editor), name=f"carparks-{name}-streams", title=f"实时泊位（{name}）",
            owner_org=jtw["id"], data_domain="road-transport", update_frequency="realtime", open_condition=condition)
        products[name] = helpers.call_action(
            "shanghai_realtime_product_create", context=dict(editor), package_id=package["id"], fields=FIELDS,
            key_field="carpark_id", time_field="observed_at", refresh_seconds=60)
    tokens = {who: factories.APIToken(user=user["name"])["token"] for who, user in people.items()}
    server = start_streams(ckan_ini, tmp_path_factory.mktemp("streams") / "streams.log")
    yield {"people": people, "products": products, "tokens": tokens, "app": helpers._get_test_app(),
           "editor": editor}
    stop_portal(server)


def push(world, product, *observations):
    """Push (key, free spaces) observations a moment apart, as the editor."""
    now = dt.datetime.now(dt.timezone.utc)
    records = [{"carpark_id": key, "observed_at": (now - dt.timedelta(seconds=len(observations) - i)).isoformat(),
                "free_spaces": free} for i, (key, free) in enumerate(observations)]
    helpers.call_action("shanghai_realtime_push", context=dict(world["editor"]),
                        id=world["products"][product]["resource_id"], records=records)


def stream_address(world, product, who=None, last_event_id=None):
    """The web app's answer for the product's stream address."""
    headers = {"Authorization": world["tokens"][who]} if who else {}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    return world["app"].get(f"/api/realtime/{world['products'][product]['resource_id']}/stream",
                            headers=headers, follow_redirects=False)


class Stream:
    """An open stream on the stream server, read event by event."""

    def __init__(self, url: str, last_event_id=None):
        parts = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        self.connection.request("GET", f"{parts.path}?{parts.query}", headers=headers)
        self.answer = self.connection.getresponse()

    def events(self, count: int) -> list[dict]:
        """The next ``count`` observation events (the read fails after 60 s of silence)."""
        found, block = [], {}
        while len(found) < count:
            line = self.answer.readline().decode("utf-8")
            assert line, "the stream ended"
            line = line.rstrip("\n")
            if not line:
                if block.get("event") == "observation":
                    found.append(dict(json.loads(block["data"]), id=int(block["id"])))
                block = {}
            elif not line.startswith(":"):
                name, _colon, value = line.partition(": ")
                block[name] = value
        return found

    def close(self):
        self.connection.close()


def follow(world, product, who=None, last_event_id=None) -> Stream:
    answer = stream_address(world, product, who, last_event_id)
    assert answer.status_code == 307, answer.get_data(as_text=True)
    return Stream(answer.headers["Location"])


def test_the_stream_address_redirects_to_the_stream_server_with_a_ticket(world):
    answer = stream_address(world, "open", last_event_id=5)
    target = urllib.parse.urlsplit(answer.headers["Location"])
    configured = urllib.parse.urlsplit(tk.config.get("ckanext.shanghai.realtime.stream_url"))
    assert (answer.status_code, target.netloc) == (307, configured.netloc)
    query = urllib.parse.parse_qs(target.query)
    assert query["last_event_id"] == ["5"]
    claim = tickets.check(tk.config.get("SECRET_KEY"), query["ticket"][0], world["products"]["open"]["resource_id"])
    assert claim.user == ""


def test_a_push_reaches_the_open_stream(world):
    stream = follow(world, "open")
    try:
        assert stream.answer.status == 200
        assert stream.answer.getheader("Content-Type").startswith("text/event-stream")
        assert stream.answer.getheader("Access-Control-Allow-Origin") == "*"
        push(world, "open", ("P1", 11), ("P2", 22))
        seen = stream.events(2)
        assert [(e["key"], e["record"]["free_spaces"]) for e in seen] == [("P1", 11), ("P2", 22)]
    finally:
        stream.close()


def test_a_reconnect_with_last_event_id_loses_nothing_and_repeats_nothing(world):
    first = follow(world, "open")
    push(world, "open", ("R1", 1), ("R2", 2), ("R3", 3))
    seen = first.events(2)
    first.close()  # gone after the second event
    push(world, "open", ("R4", 4))  # pushed while nobody follows
    again = follow(world, "open", last_event_id=seen[-1]["id"])
    try:
        push(world, "open", ("R5", 5))
        rest = again.events(3)
        assert [e["key"] for e in seen + rest] == ["R1", "R2", "R3", "R4", "R5"]
        assert [e["id"] for e in seen + rest] == sorted({e["id"] for e in seen + rest})
    finally:
        again.close()
    # The same reconnect through the query string (a browser's own retry).
    resumed = Stream(stream_address(world, "open").headers["Location"] + f"&last_event_id={rest[0]['id']}")
    try:
        assert [e["key"] for e in resumed.events(2)] == ["R4", "R5"]
    finally:
        resumed.close()


def test_a_conditional_product_refuses_a_user_without_access(world):
    resource_id = world["products"]["restricted"]["resource_id"]
    push(world, "restricted", ("C1", 4))
    for who in (None, "someone"):
        assert stream_address(world, "restricted", who).status_code == 403
        # A ticket honestly signed for them does not open it either.
        user = world["people"][who]["name"] if who else None
        url = stream_address(world, "open").headers["Location"].split("?")[0].replace(
            world["products"]["open"]["resource_id"], resource_id)
        refused = Stream(f"{url}?ticket={tickets.issue(tk.config.get('SECRET_KEY'), resource_id, user)}&last_event_id=0")
        assert refused.answer.status == 403
        assert json.loads(refused.answer.read())["error"]["code"] == "not-authorized"
        refused.close()
    editor = follow(world, "restricted", "editor", last_event_id=0)
    try:
        assert [e["key"] for e in editor.events(1)] == ["C1"]
    finally:
        editor.close()


def test_a_forged_or_expired_ticket_is_refused(world):
    resource_id = world["products"]["restricted"]["resource_id"]
    editor = world["people"]["editor"]["name"]
    url = urllib.parse.urlsplit(stream_address(world, "restricted", "editor").headers["Location"])
    base = f"{url.scheme}://{url.netloc}{url.path}"
    secret = tk.config.get("SECRET_KEY")
    cases = {"bad-ticket": tickets.issue("a-guessed-secret", resource_id, editor),
             "expired-ticket": tickets.issue(secret, resource_id, editor, now=time.time() - 60),
             "wrong-product": tickets.issue(secret, world["products"]["open"]["resource_id"], editor),
             "no-ticket": ""}
    for code, ticket in cases.items():
        refused = Stream(f"{base}?ticket={urllib.parse.quote(ticket)}&last_event_id=0")
        body = json.loads(refused.answer.read())
        refused.close()
        assert (refused.answer.status, body["error"]["code"]) == (403, code)
        assert body["error"]["reason_zh"] and body["error"]["reason_en"]


def test_a_revoked_grant_ends_an_open_stream(world):
    as_holder = {"user": world["people"]["holder"]["name"], "ignore_auth": False}
    as_admin = {"user": world["people"]["admin"]["name"], "ignore_auth": False}
    package_id = world["products"]["restricted"]["package_id"]
    agreement = helpers.call_action("shanghai_access_agreement_show", context=dict(as_holder), package_id=package_id)
    asked = helpers.call_action(
        "shanghai_access_request_create", context=dict(as_holder), package_id=package_id,
        purpose="停车诱导研究", intended_use="课题组内部分析", applicant_org="同济大学交通运输工程学院",
        period_end=(local_today() + dt.timedelta(days=30)).isoformat(), agreement_version=agreement["version"],
        accept_agreement=True)
    helpers.call_action("shanghai_access_request_decide", context=dict(as_admin), id=asked["id"],
                        decision="approve", reason="同意")
    stream = follow(world, "restricted", "holder")
    try:
        push(world, "restricted", ("G1", 7))
        assert [e["key"] for e in stream.events(1)] == ["G1"]
        helpers.call_action("shanghai_access_grant_revoke", context=dict(as_admin), id=asked["id"], reason="撤销")
        # The server checks access again within 15 s and ends the stream
        # (the read fails after 60 s of silence if it does not).
        rest = stream.answer.read().decode("utf-8")
        assert "event: observation" not in rest  # heartbeats only, then the end
    finally:
        stream.close()
    assert stream_address(world, "restricted", "holder").status_code == 403


def test_the_stream_server_answers_health_and_cors_preflight(world):
    location = urllib.parse.urlsplit(stream_address(world, "open").headers["Location"])
    connection = http.client.HTTPConnection(location.hostname, location.port, timeout=30)
    connection.request("GET", "/health")
    health = json.loads(connection.getresponse().read())
    assert health["status"] == "ok" and health["listening"] is True
    connection.request("OPTIONS", location.path, headers={"Origin": "http://elsewhere.example",
                                                          "Access-Control-Request-Headers": "last-event-id"})
    preflight = connection.getresponse()
    preflight.read()
    assert preflight.status == 204 and preflight.getheader("Access-Control-Allow-Origin") == "*"
    assert "Last-Event-ID" in preflight.getheader("Access-Control-Allow-Headers")
    connection.close()

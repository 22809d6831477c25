"""Real-time data products end to end through the action API and the web
app: a keyed car-park table fed by push (a department's key, shown once,
revocable; keyed upsert and delete, out of order and repeated batches
safe; a bad batch refused whole with HTTP 400), its history and the table
as of any moment, liveness on the pages and the uptime figure, and the
access rules of conditional products on reads and streams (the streams
themselves: test_realtime_streams.py)."""
from __future__ import annotations

import datetime as dt
import json
import re
import threading

import pytest
import sqlalchemy as sa

import ckan.model as model
import ckan.plugins as plugins
import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from data_files import TABLES
from portal_testing import empty_database, make_department

from ckanext.shanghai.datastore import coordinates
from ckanext.shanghai.realtime import simulator

FIELDS = [{"id": "carpark_id", "type": "text"}, {"id": "observed_at", "type": "timestamp"},
          {"id": "name", "type": "text"}, {"id": "free_spaces", "type": "int"},
          {"id": "lng", "type": "float8"}, {"id": "lat", "type": "float8"}]
UTC = dt.timezone.utc
PLACES = TABLES / "sh_elderly_care_institutions_utf8bom.csv"


@pytest.fixture(scope="module")
def world(reset_db, migrate_db_for, reset_index):
    plugins.load_all()
    empty_database(reset_db, migrate_db_for, reset_index)
    jtw = make_department(name="jtw", title="上海市交通委员会")
    other = make_department(name="mzj", title="上海市民政局")
    people = {"editor": factories.User(), "admin": factories.User(), "other_admin": factories.User(),
              "someone": factories.User(), "sysadmin": factories.Sysadmin()}
    for who, org, role in (("editor", jtw, "editor"), ("admin", jtw, "admin"), ("other_admin", other, "admin")):
        helpers.call_action("organization_member_create", id=org["id"], username=people[who]["name"], role=role)
    editor = {"user": people["editor"]["name"], "ignore_auth": False}
    packages = {}
    for name, condition in (("carparks", "unconditional"), ("carparks-restricted", "conditional")):
        packages[name] = helpers.call_action(
            "package_create", context=dict(editor), name=f"{name}-realtime", title=f"公共停车场实时泊位（{name}）",
            owner_org=jtw["id"], data_domain="road-transport", update_frequency="realtime",
            open_condition=condition, notes="全市公共停车场剩余泊位，每分钟更新")
    products = {name: helpers.call_action(
        "shanghai_realtime_product_create", context=dict(editor), package_id=package["id"], name="实时泊位",
        fields=FIELDS, key_field="carpark_id", time_field="observed_at", refresh_seconds=60)
        for name, package in packages.items()}
    tokens = {who: factories.APIToken(user=user["name"])["token"] for who, user in people.items()}
    return {"jtw": jtw, "people": people, "packages": packages, "products": products, "tokens": tokens,
            "app": helpers._get_test_app()}


def ctx(world, who):
    user = world["people"].get(who)
    return {"user": user["name"] if user else "", "ignore_auth": False}


def call(world, who, action, /, **data):
    return helpers.call_action(action, context=ctx(world, who), **data)


def minutes_ago(minutes: float) -> str:
    return (dt.datetime.now(UTC) - dt.timedelta(minutes=minutes)).isoformat()


def record(carpark, free, minutes, **extra):
    return {"carpark_id": carpark, "observed_at": minutes_ago(minutes), "name": f"停车场{carpark}",
            "free_spaces": free, "lng": 121.47, "lat": 31.23, **extra}


def push(world, product, records, key):
    return world["app"].post(f"/api/realtime/{world['products'][product]['resource_id']}/push",
                             data=json.dumps({"records": records}), headers={"X-Push-Key": key,
                                                                             "Content-Type": "application/json"})


def table(world, product="carparks", who="editor"):
    result = call(world, who, "shanghai_realtime_search", id=world["products"][product]["resource_id"], limit=1000)
    return {r["carpark_id"]: r for r in result["records"]}


def history_count(resource_id):
    from ckanext.datastore.backend.postgres import get_write_engine

    with get_write_engine().connect() as connection:
        return connection.execute(sa.text("select count(*) from shanghai_rt_history where resource_id = :r"),
                                  {"r": resource_id}).scalar()


@pytest.fixture(scope="module")
def key(world):
    return call(world, "admin", "shanghai_realtime_key_create", id=world["products"]["carparks"]["resource_id"],
                label="停车诱导系统")["key"]


# --------------------------------------------------------------------------
# The product and its keys


def test_a_real_time_product_is_a_keyed_table_with_an_interval(world):
    shown = call(world, "someone", "shanghai_realtime_product_show", id=world["packages"]["carparks"]["name"])
    assert shown["key_field"] == "carpark_id" and shown["time_field"] == "observed_at"
    assert shown["refresh_seconds"] == 60
    assert list(shown["columns"]) == [f["id"] for f in FIELDS]
    info = helpers.call_action("datastore_info", id=shown["resource_id"])
    assert info["meta"]["count"] == 0


def test_only_the_department_declares_products_and_holds_keys(world):
    resource_id = world["products"]["carparks"]["resource_id"]
    for who in ("someone", "other_admin", "anonymous"):
        with pytest.raises(tk.NotAuthorized):
            call(world, who, "shanghai_realtime_key_create", id=resource_id)
        with pytest.raises(tk.NotAuthorized):
            call(world, who, "shanghai_realtime_product_create", package_id=world["packages"]["carparks"]["id"],
                 fields=FIELDS, key_field="carpark_id", time_field="observed_at", refresh_seconds=60)
    with pytest.raises(tk.ValidationError) as refused:
        call(world, "editor", "shanghai_realtime_product_create", package_id=world["packages"]["carparks"]["id"],
             fields=FIELDS, key_field="carpark_id", time_field="name", refresh_seconds=60)
    assert "timestamp" in str(refused.value.error_dict["time_field"])


def test_a_push_key_is_shown_once_stored_as_a_hash_and_revocable(world):
    resource_id = world["products"]["carparks"]["resource_id"]
    created = call(world, "editor", "shanghai_realtime_key_create", id=resource_id, label="测试")
    assert created["key"].startswith("shrt_") and len(created["key"]) > 40
    listed = call(world, "editor", "shanghai_realtime_key_list", id=resource_id)
    assert created["id"] in [k["id"] for k in listed]
    assert created["key"] not in json.dumps(listed)
    stored = model.Session.execute(sa.text("select key_hash from shanghai_realtime_push_key where id = :id"),
                                   {"id": created["id"]}).scalar()
    assert created["key"] not in stored and len(stored) == 64
    assert push(world, "carparks", [record("K1", 5, 3)], created["key"]).status_code == 200
    call(world, "admin", "shanghai_realtime_key_revoke", key_id=created["id"])
    refused = push(world, "carparks", [record("K1", 6, 2)], created["key"])
    assert refused.status_code == 401 and "撤销" in refused.json["error"]["reason_zh"]
    assert table(world)["K1"]["free_spaces"] == 5


def test_a_key_is_scoped_to_its_product(world, key):
    refused = push(world, "carparks-restricted", [record("P001", 5, 3)], key)
    assert refused.status_code == 403
    assert push(world, "carparks", [record("P001", 5, 3)], "shrt_not-a-key").status_code == 401
    assert table(world, "carparks-restricted") == {}


# --------------------------------------------------------------------------
# Push


def test_push_upserts_by_key_and_an_older_observation_never_overwrites_a_newer(world, key):
    answer = push(world, "carparks", [record("A1", 10, 5), record("A2", 20, 5)], key)
    assert answer.status_code == 200 and answer.json["result"]["kept"] == 2
    assert push(world, "carparks", [record("A1", 11, 4)], key).status_code == 200
    late = push(world, "carparks", [record("A1", 99, 4.5), record("A2", 21, 6)], key)
    assert late.status_code == 200 and late.json["result"]["upserted"] == 0
    rows = table(world)
    assert (rows["A1"]["free_spaces"], rows["A2"]["free_spaces"]) == (11, 20)
    # The late observations are history all the same.
    history = call(world, "someone", "shanghai_realtime_history", id=world["packages"]["carparks"]["name"],
                   key="A1", since=minutes_ago(60))
    assert [o["record"]["free_spaces"] for o in history["observations"]] == [10, 99, 11]


def test_a_repeated_batch_changes_nothing(world, key):
    batch = [record("B1", 1, 3), record("B2", 2, 3)]
    first = push(world, "carparks", batch, key)
    resource_id = world["products"]["carparks"]["resource_id"]
    before_rows, before_history = table(world), history_count(resource_id)
    again = push(world, "carparks", batch, key)
    assert first.json["result"]["kept"] == 2
    assert again.status_code == 200 and again.json["result"] == {
        "received": 2, "kept": 0, "repeated": 2, "upserted": 0, "deleted": 0}
    assert table(world) == before_rows and history_count(resource_id) == before_history


def test_delete_is_keyed_and_out_of_order_safe(world, key):
    push(world, "carparks", [record("D1", 7, 10)], key)
    deleted = push(world, "carparks", [{"carpark_id": "D1", "observed_at": minutes_ago(5), "_delete": True}], key)
    assert deleted.json["result"]["deleted"] == 1 and "D1" not in table(world)
    # An observation from before the deletion, arriving after it, does not bring the key back.
    assert push(world, "carparks", [record("D1", 8, 7)], key).json["result"]["upserted"] == 0
    assert "D1" not in table(world)
    assert push(world, "carparks", [record("D1", 9, 1)], key).json["result"]["upserted"] == 1
    assert table(world)["D1"]["free_spaces"] == 9


@pytest.mark.parametrize("bad, column, value", [
    ({"colour": "蓝"}, "colour", "蓝"), ({"free_spaces": "很多"}, "free_spaces", "很多"),
    ({"lng": "东经121度"}, "lng", "东经121度")])
def test_a_bad_batch_is_refused_whole_with_400_and_nothing_written(world, key, bad, column, value):
    resource_id = world["products"]["carparks"]["resource_id"]
    before_rows, before_history = table(world), history_count(resource_id)
    refused = push(world, "carparks", [record("E1", 1, 2), record("E2", 2, 2, **bad)], key)
    assert refused.status_code == 400
    [problem] = refused.json["error"]["records"]
    assert (problem["record"], problem["field"], problem["value"]) == (1, column, value)
    assert column in problem["reason_zh"] and column in problem["reason_en"] and "第 1 条" in problem["reason_zh"]
    assert table(world) == before_rows and history_count(resource_id) == before_history


def test_the_action_takes_the_same_batch_for_the_department(world):
    resource_id = world["products"]["carparks"]["resource_id"]
    result = call(world, "editor", "shanghai_realtime_push", id=resource_id, records=[record("F1", 3, 1)])
    assert result["kept"] == 1 and table(world)["F1"]["free_spaces"] == 3
    with pytest.raises(tk.NotAuthorized):
        call(world, "someone", "shanghai_realtime_push", id=resource_id, records=[record("F1", 4, 0.5)])
    with pytest.raises(tk.ValidationError) as refused:
        call(world, "editor", "shanghai_realtime_push", id=resource_id, records=[record("F1", "x", 0.5)])
    assert refused.value.error_dict["records"][0]["field"] == "free_spaces"


def test_the_endpoint_refuses_a_body_that_is_not_json(world, key):
    response = world["app"].post(f"/api/realtime/{world['products']['carparks']['resource_id']}/push",
                                 data="{not json", headers={"X-Push-Key": key})
    assert response.status_code == 400 and response.json["error"]["code"] == "bad-json"
    assert world["app"].post(f"/api/realtime/{world['products']['carparks']['resource_id']}/push",
                             data="[]").status_code == 401


# --------------------------------------------------------------------------
# History and time travel


def test_as_of_answers_the_table_as_it_was(world, key):
    push(world, "carparks", [record("T1", 100, 30), record("T2", 200, 30)], key)
    push(world, "carparks", [record("T1", 101, 20),
                             {"carpark_id": "T2", "observed_at": minutes_ago(20), "_delete": True}], key)
    push(world, "carparks", [record("T1", 102, 10), record("T3", 300, 10)], key)
    name = world["packages"]["carparks"]["name"]

    def as_of(minutes):
        result = call(world, "someone", "shanghai_realtime_search", id=name, as_of=minutes_ago(minutes), limit=1000)
        return {r["carpark_id"]: r["free_spaces"] for r in result["records"] if r["carpark_id"].startswith("T")}

    assert as_of(25) == {"T1": 100, "T2": 200}
    assert as_of(15) == {"T1": 101}
    assert as_of(0) == {"T1": 102, "T3": 300}
    history = call(world, "someone", "shanghai_realtime_history", id=name, key="T2", since=minutes_ago(60))
    assert [o["deleted"] for o in history["observations"]] == [False, True]
    with pytest.raises(tk.ValidationError):
        call(world, "someone", "shanghai_realtime_search", id=name, as_of="昨天")


def test_history_is_partitioned_by_day_and_retention_drops_whole_days(world, key, ckan_config, monkeypatch):
    from ckanext.shanghai.realtime import store

    old = (dt.datetime.now(UTC) - dt.timedelta(days=10)).isoformat()
    push(world, "carparks", [{"carpark_id": "R1", "observed_at": old, "free_spaces": 1}], key)
    old_day = (dt.datetime.now(UTC) - dt.timedelta(days=10)).date()
    assert old_day in store.history_partitions()
    name = world["packages"]["carparks"]["name"]
    assert len(call(world, "someone", "shanghai_realtime_history", id=name, key="R1",
                    since=minutes_ago(60 * 24 * 11))["observations"]) == 1
    monkeypatch.setitem(ckan_config, "ckanext.shanghai.realtime.retention_days", 5)
    dropped = call(world, "sysadmin", "shanghai_realtime_prune")["dropped"]
    assert old_day.isoformat() in dropped and dt.date.today().isoformat() not in dropped
    assert old_day not in store.history_partitions()
    assert call(world, "someone", "shanghai_realtime_history", id=name, key="R1",
                since=minutes_ago(60 * 24 * 11))["observations"] == []
    refused = push(world, "carparks", [{"carpark_id": "R1", "observed_at": old, "free_spaces": 1}], key)
    assert refused.status_code == 400 and refused.json["error"]["records"][0]["code"] == "time-out-of-range"
    with pytest.raises(tk.NotAuthorized):
        call(world, "admin", "shanghai_realtime_prune")


def test_the_prune_command_drops_days_past_the_retention(world, key, run_ckan):
    from ckanext.shanghai.realtime import store

    push(world, "carparks", [{"carpark_id": "R2", "observed_at": minutes_ago(60 * 24 * 3), "free_spaces": 1}], key)
    kept = store.history_partitions()
    result = run_ckan("shanghai-realtime", "prune")
    assert result.returncode == 0, result.stderr
    assert "retention 365 days; dropped 0" in result.stdout
    assert store.history_partitions() == kept


# --------------------------------------------------------------------------
# Subscriptions


def stream(world, product, last_event_id=None, who=None):
    """The web app's answer for the product's stream address (a 307 to the
    stream server; tests/integration/test_realtime_streams.py follows it)."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    if who:
        headers["Authorization"] = world["tokens"][who]
    return world["app"].get(f"/api/realtime/{world['products'][product]['resource_id']}/stream", headers=headers,
                            follow_redirects=False)


def test_conditional_products_gate_reads_and_streams(world):
    resource_id = world["products"]["carparks-restricted"]["resource_id"]
    call(world, "editor", "shanghai_realtime_push", id=resource_id, records=[record("C1", 4, 1)])
    for who in ("anonymous", "someone", "other_admin"):
        with pytest.raises(tk.NotAuthorized):
            call(world, who, "shanghai_realtime_search", id=resource_id)
        with pytest.raises(tk.NotAuthorized):
            call(world, who, "shanghai_realtime_search", id=resource_id, as_of=minutes_ago(0))
        with pytest.raises(tk.NotAuthorized):
            call(world, who, "shanghai_realtime_history", id=resource_id, key="C1")
        assert stream(world, "carparks-restricted", 0, who=None if who == "anonymous" else who).status_code == 403
    assert call(world, "admin", "shanghai_realtime_search", id=resource_id, as_of=minutes_ago(0))["total"] == 1
    # The department's editor is handed over to the stream server.
    assert stream(world, "carparks-restricted", 0, who="editor").status_code == 307


# --------------------------------------------------------------------------
# Liveness and uptime


def age_feed(resource_id: str, minutes: int) -> None:
    """Move the product's declaration and its pushes ``minutes`` into the
    past, as if that much time had gone by since."""
    from ckanext.datastore.backend.postgres import get_write_engine

    model.Session.execute(sa.text("update shanghai_realtime_product set created = created - make_interval(mins => :m) "
                                  "where resource_id = :r"), {"m": minutes, "r": resource_id})
    model.Session.commit()
    with get_write_engine().begin() as connection:
        connection.execute(sa.text(
            "update shanghai_rt_interval set interval_start = interval_start - make_interval(mins => :m), "
            "last_at = last_at - make_interval(mins => :m) where resource_id = :r"), {"m": minutes, "r": resource_id})


def banner_shown(page: str) -> bool:
    """The product page's interruption banner is there and not hidden (the
    page keeps a hidden one that its script raises when a feed stops)."""
    found = re.search(r'<div class="alert alert-danger sh-realtime-banner" role="alert"\s*(hidden)?\s*>', page)
    assert found, "no interruption banner on the product page"
    return found.group(1) is None


def test_a_feed_quiet_for_two_intervals_is_interrupted_on_every_page(world, key):
    package = world["packages"]["carparks"]
    resource_id = world["products"]["carparks"]["resource_id"]
    app = world["app"]
    assert not banner_shown(app.get(f"/dataset/{package['name']}").get_data(as_text=True))
    status = call(world, "anonymous", "shanghai_realtime_product_show", id=resource_id)["status"]
    assert status["interrupted"] is False
    age_feed(resource_id, 3)
    status = call(world, "anonymous", "shanghai_realtime_product_show", id=resource_id)["status"]
    assert status["interrupted"] is True and status["interrupted_since"] == status["last_push"]
    for url in (f"/dataset/{package['name']}", f"/organization/{world['jtw']['name']}", "/statistics"):
        page = app.get(url).get_data(as_text=True)
        assert "数据中断" in page and package["title"] in page, url
    assert banner_shown(app.get(f"/dataset/{package['name']}").get_data(as_text=True))
    english = app.get(f"/en/dataset/{package['name']}").get_data(as_text=True)
    assert "Feed interrupted" in english
    # The next push ends it.
    push(world, "carparks", [record("L1", 1, 0)], key)
    assert not banner_shown(app.get(f"/dataset/{package['name']}").get_data(as_text=True))
    interrupted = call(world, "anonymous", "shanghai_realtime_status_list", interrupted=True)
    assert package["id"] not in [feed["package_id"] for feed in interrupted]


def test_uptime_is_the_share_of_intervals_with_data(world):
    resource_id = world["products"]["carparks-restricted"]["resource_id"]
    # Declared ten intervals ago; pushed in one of them (above).
    model.Session.execute(sa.text("update shanghai_realtime_product set created = now() - interval '10 minutes' "
                                  "where resource_id = :r"), {"r": resource_id})
    model.Session.commit()
    uptime = call(world, "anonymous", "shanghai_realtime_product_show", id=resource_id)["status"]["uptime"]
    assert uptime == {"days": 30, "intervals": 10, "with_data": 1, "share": 0.1}
    page = world["app"].get(f"/dataset/{world['packages']['carparks-restricted']['name']}").get_data(as_text=True)
    assert "10.0%" in page and "在线率" in page
    # The live view follows the product's stream.
    assert f'data-stream-url="/api/realtime/{resource_id}/stream"' in page


# --------------------------------------------------------------------------
# Webhooks


class Receiver:
    """A subscriber's endpoint on this machine: answers each POST with the
    next status of ``statuses`` (200 when they run out), keeps what came."""

    def __init__(self, statuses):
        import http.server
        import threading

        receiver = self
        self.statuses, self.received = list(statuses), []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_webhooks_are_signed_retried_with_backoff_and_failures_are_listed(world, key, monkeypatch):
    import hashlib
    import hmac

    from ckanext.shanghai.realtime import webhooks

    resource_id = world["products"]["carparks"]["resource_id"]
    receiver = Receiver([503])
    try:
        with pytest.raises(tk.ValidationError) as refused:
            call(world, "someone", "shanghai_realtime_webhook_create", id=resource_id, url=receiver.url)
        assert "127.0.0.1" in str(refused.value.error_dict["url"])
        monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
        hook = call(world, "someone", "shanghai_realtime_webhook_create", id=resource_id, url=receiver.url)
        assert hook["secret"] and hook["secret"] not in json.dumps(call(world, "someone", "shanghai_realtime_webhook_list"))
        push(world, "carparks", [record("W1", 1, 0.3), record("W2", 2, 0.3)], key)
        now = dt.datetime.now(UTC)
        [first] = [r for r in webhooks.deliver_due(now) if r["webhook_id"] == hook["id"]]
        assert first["delivered"] is False and first["http_status"] == 503
        shown = [h for h in call(world, "someone", "shanghai_realtime_webhook_list") if h["id"] == hook["id"]][0]
        assert shown["failures"] == 1 and dt.datetime.fromisoformat(shown["next_attempt"]) == now + dt.timedelta(seconds=10)
        # Not due again before the backoff has passed; then the same events again, delivered.
        assert [r for r in webhooks.deliver_due(now + dt.timedelta(seconds=5)) if r["webhook_id"] == hook["id"]] == []
        [second] = [r for r in webhooks.deliver_due(now + dt.timedelta(seconds=11)) if r["webhook_id"] == hook["id"]]
        assert second["delivered"] is True and second["events"] == 2
        (headers_1, body_1), (headers_2, body_2) = receiver.received
        assert body_1 == body_2
        assert [e["key"] for e in json.loads(body_2)["events"]] == ["W1", "W2"]
        expected = hmac.new(hook["secret"].encode(), headers_2["X-Shanghai-Timestamp"].encode() + b"." + body_2,
                            hashlib.sha256).hexdigest()
        assert headers_2["X-Shanghai-Signature"] == f"sha256={expected}"
        failed = call(world, "someone", "shanghai_realtime_delivery_list", webhook_id=hook["id"], failed=True)
        assert [(d["http_status"], d["attempt"]) for d in failed] == [(503, 1)]
        # Nothing new: nothing sent.
        assert [r for r in webhooks.deliver_due(now + dt.timedelta(seconds=20)) if r["webhook_id"] == hook["id"]] == []
        with pytest.raises(tk.ObjectNotFound):
            call(world, "other_admin", "shanghai_realtime_delivery_list", webhook_id=hook["id"])
    finally:
        receiver.close()


def test_webhooks_of_a_conditional_product_need_access(world, monkeypatch):
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])
    resource_id = world["products"]["carparks-restricted"]["resource_id"]
    with pytest.raises(tk.NotAuthorized):
        call(world, "someone", "shanghai_realtime_webhook_create", id=resource_id, url="http://127.0.0.1:9/hook")
    assert call(world, "editor", "shanghai_realtime_webhook_create", id=resource_id,
                url="http://127.0.0.1:9/hook")["active"] is True


# --------------------------------------------------------------------------
# The demo's simulated car-park feed, and the latest table as GeoJSON


@pytest.fixture(scope="module")
def served(world):
    """The web app served over HTTP on a free port: the simulator pushes
    through the public endpoint as a department's system would."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, world["app"].app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def simulated(world, served, tmp_path_factory):
    key_file = tmp_path_factory.mktemp("simulator") / "realtime-simulator.key"
    feed = simulator.prepare(world["jtw"]["name"], key_file, 10)
    parks = simulator.car_parks(PLACES)[:40]
    assert simulator.run(served, feed["resource_id"], feed["key"], parks, 10, rounds=1) == 1
    return dict(feed, key_file=key_file, parks=parks)


def test_the_simulator_feeds_a_car_park_product_labelled_simulated(world, simulated):
    rows = call(world, "someone", "shanghai_realtime_search", id=simulated["resource_id"], limit=100)["records"]
    assert sorted(r["carpark_id"] for r in rows) == sorted(p.carpark_id for p in simulated["parks"])
    first = next(r for r in rows if r["carpark_id"] == "P0001-1")
    assert first["address"] == "上海市场中路4098弄8号" and 0 <= first["free_spaces"] <= first["capacity"]
    shown = call(world, "someone", "package_show", id=simulated["package"])
    assert shown["organization"]["name"] == world["jtw"]["name"] and "模拟" in shown["title"]
    page = world["app"].get(f"/dataset/{simulated['package']}").get_data(as_text=True)
    assert "模拟数据" in page and "sh-realtime-simulated-note" in page and "实时更新中" in page
    assert "Simulated feed" in world["app"].get(f"/en/dataset/{simulated['package']}").get_data(as_text=True)
    # A real product of the department is not labelled simulated.
    assert "sh-realtime-simulated" not in world["app"].get(
        f"/dataset/{world['packages']['carparks']['name']}").get_data(as_text=True)


def test_the_simulator_keeps_its_key_private_and_replaces_a_revoked_one(world, simulated):
    key_file = simulated["key_file"]
    assert key_file.stat().st_mode & 0o777 == 0o600 and key_file.read_text() == simulated["key"]
    again = simulator.prepare(world["jtw"]["name"], key_file, 10)
    assert (again["resource_id"], again["key"]) == (simulated["resource_id"], simulated["key"])
    [listed] = call(world, "admin", "shanghai_realtime_key_list", id=simulated["resource_id"])
    call(world, "admin", "shanghai_realtime_key_revoke", key_id=listed["id"])
    renewed = simulator.prepare(world["jtw"]["name"], key_file, 10)
    assert renewed["resource_id"] == simulated["resource_id"] and renewed["key"] != simulated["key"]
    assert key_file.read_text() == renewed["key"]


def test_the_latest_table_is_served_as_geojson_in_wgs84(world, simulated):
    url = f"/api/realtime/{simulated['resource_id']}/latest.geojson"
    answer = world["app"].get(url)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/geo+json")
    collection = json.loads(answer.get_data(as_text=True))
    assert collection["coordinate_crs"] == "wgs84" and len(collection["features"]) == 40
    feature = next(f for f in collection["features"] if f["properties"]["carpark_id"] == "P0001-1")
    park = next(p for p in simulated["parks"] if p.carpark_id == "P0001-1")
    # The table's points are GCJ-02 (AMap's geocoder); the map gets WGS-84, a few hundred metres away.
    assert feature["geometry"]["coordinates"] == pytest.approx(list(coordinates.gcj02_to_wgs84(park.lng, park.lat)),
                                                               abs=1e-6)
    assert 100 < coordinates.distance_m(park.lng, park.lat, *feature["geometry"]["coordinates"]) < 1000
    assert isinstance(feature["properties"]["free_spaces"], int)
    as_published = json.loads(world["app"].get(url + "?crs=gcj02").get_data(as_text=True))
    assert next(f for f in as_published["features"] if f["properties"]["carpark_id"] == "P0001-1")[
        "geometry"]["coordinates"] == [park.lng, park.lat]
    refused = world["app"].get(url + "?crs=mercator")
    assert refused.status_code == 400 and "mercator" in refused.json["error"]["reason_en"]
    assert "坐标系" in refused.json["error"]["reason_zh"]


def test_geojson_follows_the_access_rules_and_needs_coordinates(world, key):
    restricted = world["products"]["carparks-restricted"]["resource_id"]
    assert world["app"].get(f"/api/realtime/{restricted}/latest.geojson").status_code == 403
    # The car-park product has lng/lat but declared no coordinate system: the points go out as pushed.
    push(world, "carparks", [record("G1", 3, 1)], key)
    plain = world["app"].get(f"/api/realtime/{world['products']['carparks']['resource_id']}/latest.geojson")
    assert plain.status_code == 200 and json.loads(plain.get_data(as_text=True))["coordinate_crs"] is None
    package = helpers.call_action("package_create", context=ctx(world, "editor"), name="no-coordinates-rt",
                                  title="无坐标实时表", owner_org=world["jtw"]["id"], data_domain="road-transport",
                                  update_frequency="realtime", open_condition="unconditional")
    product = call(world, "editor", "shanghai_realtime_product_create", package_id=package["id"],
                   fields=[{"id": "k", "type": "text"}, {"id": "t", "type": "timestamp"}, {"id": "n", "type": "int"}],
                   key_field="k", time_field="t", refresh_seconds=60)
    call(world, "editor", "shanghai_realtime_push", id=product["resource_id"],
         records=[{"k": "a", "t": minutes_ago(1), "n": 1}])
    refused = world["app"].get(f"/api/realtime/{product['resource_id']}/latest.geojson")
    assert refused.status_code == 400 and refused.json["error"]["code"] == "no-coordinates"

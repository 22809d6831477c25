"""Pull for agencies that cannot push: a harvest source polls a JSON or CSV
endpoint (a local HTTP server here) every N seconds (N >= 10) and applies
the rows to a real-time product as a push, under the harvesters' download
limits and address rules; a failed poll writes nothing and is recorded on
the source's jobs."""
from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers
from ckanext.harvest.model import HarvestGatherError, HarvestJob, HarvestSource
from ckanext.shanghai.harvesters.sources.realtime_pull import Poller

from portal_testing import make_department, run_job, site_context

FIELDS = [{"id": "station_id", "type": "text"}, {"id": "observed_at", "type": "timestamp"},
          {"id": "bikes", "type": "int"}, {"id": "name", "type": "text"}]


class Endpoint:
    """A local HTTP endpoint answering what the test sets, counting requests."""

    def __init__(self):
        self.body, self.content_type, self.hits = b"[]", "application/json", 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                endpoint.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", endpoint.content_type)
                self.send_header("Content-Length", str(len(endpoint.body)))
                self.end_headers()
                self.wfile.write(endpoint.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/bikes"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer_json(self, value):
        self.body, self.content_type = json.dumps(value, ensure_ascii=False).encode("utf-8"), "application/json"

    def answer_csv(self, text: str):
        self.body, self.content_type = text.encode("utf-8"), "text/csv"


@pytest.fixture
def endpoint():
    served = Endpoint()
    yield served
    served.server.shutdown()


@pytest.fixture
def allow_loopback(monkeypatch):
    # Loopback is refused unless allow-listed, as an operator would for an
    # agency's system inside the city's network.
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.allowed_hosts", ["127.0.0.1"])


@pytest.fixture
def product(clean_db, clean_index):
    department = make_department(name="jtw-bikes", title="上海市交通委员会")
    editor = factories.User()
    helpers.call_action("organization_member_create", id=department["id"], username=editor["name"], role="editor")
    package = helpers.call_action("package_create", context={"user": editor["name"], "ignore_auth": False},
                                  name="bike-stations", title="公共自行车站点实时车辆数", owner_org=department["id"],
                                  data_domain="road-transport", update_frequency="realtime",
                                  open_condition="unconditional")
    created = helpers.call_action("shanghai_realtime_product_create",
                                  context={"user": editor["name"], "ignore_auth": False},
                                  package_id=package["id"], name="实时车辆数", fields=FIELDS,
                                  key_field="station_id", time_field="observed_at", refresh_seconds=60)
    return dict(created, department=department)


def source_for(product, url, **config) -> dict:
    return tk.get_action("harvest_source_create")(site_context(), {
        "name": f"pull-{len(config)}-{abs(hash(url)) % 10 ** 6}", "title": "自行车站点接口", "url": url,
        "source_type": "shanghai_realtime_pull", "owner_org": product["department"]["id"],
        "config": json.dumps({"resource_id": product["resource_id"], **config})})


def table(product) -> dict:
    result = helpers.call_action("shanghai_realtime_search", id=product["resource_id"], limit=100)
    return {row["station_id"]: row for row in result["records"]}


def minutes_ago(minutes: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes)).isoformat()


def on_the_grid(source: dict) -> dt.datetime:
    """The start of a poll interval of the source: polls are on a grid of
    its interval from its creation."""
    return model.Session.get(HarvestSource, source["id"]).created + dt.timedelta(seconds=100)


def gather_errors(source_id: str) -> list[str]:
    model.Session.remove()
    return [error.message for error in model.Session.query(HarvestGatherError).join(HarvestJob)
            .filter(HarvestJob.source_id == source_id).order_by(HarvestGatherError.created)]


@pytest.mark.usefixtures("allow_loopback")
def test_a_json_endpoint_is_polled_on_its_interval_and_applied_as_a_push(product, endpoint):
    endpoint.answer_json({"data": [{"station_id": "S1", "observed_at": minutes_ago(2), "bikes": 4, "name": "人民广场"},
                                   {"station_id": "S2", "observed_at": minutes_ago(2), "bikes": 9, "name": "徐家汇"}]})
    source = source_for(product, endpoint.url, poll_seconds=10, records="data")
    run_job(source["id"])
    assert {key: row["bikes"] for key, row in table(product).items()} == {"S1": 4, "S2": 9}
    assert gather_errors(source["id"]) == []

    poller = Poller()
    start = on_the_grid(source)
    endpoint.answer_json({"data": [{"station_id": "S1", "observed_at": minutes_ago(1), "bikes": 5, "name": "人民广场"},
                                   # An older observation than the one kept changes nothing.
                                   {"station_id": "S2", "observed_at": minutes_ago(3), "bikes": 0, "name": "徐家汇"}]})
    hits = endpoint.hits
    [result] = poller.tick(start)
    assert (result["received"], result["upserted"]) == (2, 1)
    assert {key: row["bikes"] for key, row in table(product).items()} == {"S1": 5, "S2": 9}
    # Within the same interval nothing is polled again; the next interval polls.
    assert poller.tick(start + dt.timedelta(seconds=1)) == [] and endpoint.hits == hits + 1
    endpoint.answer_json({"data": [{"station_id": "S3", "observed_at": minutes_ago(0.5), "bikes": 1, "name": "陆家嘴"}]})
    poller.tick(start + dt.timedelta(seconds=11))
    assert endpoint.hits == hits + 2 and set(table(product)) == {"S1", "S2", "S3"}
    assert helpers.call_action("shanghai_realtime_product_show", id=product["resource_id"])["status"][
        "interrupted"] is False


@pytest.mark.usefixtures("allow_loopback")
def test_a_csv_endpoint_is_read_as_text_cells_converted_to_the_table_types(product, endpoint):
    endpoint.answer_csv(f"station_id,observed_at,bikes,name\nC1,{minutes_ago(1)},7,静安寺\nC2,{minutes_ago(1)},,中山公园\n")
    source = source_for(product, endpoint.url, poll_seconds=30, format="csv")
    run_job(source["id"])
    rows = table(product)
    assert (rows["C1"]["bikes"], rows["C2"]["bikes"], rows["C2"]["name"]) == (7, None, "中山公园")


@pytest.mark.usefixtures("allow_loopback")
def test_a_bad_answer_writes_nothing_and_each_outage_is_one_job_with_its_errors(product, endpoint):
    endpoint.answer_json([{"station_id": "B1", "observed_at": minutes_ago(1), "bikes": 3}])
    source = source_for(product, endpoint.url, poll_seconds=10)
    poller = Poller()
    start = on_the_grid(source)
    poller.tick(start)
    endpoint.answer_json([{"station_id": "B1", "observed_at": minutes_ago(0.5), "bikes": 4},
                          {"station_id": "B2", "observed_at": minutes_ago(0.5), "bikes": "很多"}])
    assert poller.tick(start + dt.timedelta(seconds=10)) == [None]
    endpoint.body = b"<html><body>502 Bad Gateway</body></html>"
    assert poller.tick(start + dt.timedelta(seconds=20)) == [None]
    assert table(product)["B1"]["bikes"] == 3 and "B2" not in table(product)
    errors = gather_errors(source["id"])
    assert len(errors) == 2
    assert "bikes" in errors[0] and "很多" in errors[0] and "未写入任何记录" in errors[0] and "nothing was written" in errors[0]
    jobs = model.Session.query(HarvestJob).filter(HarvestJob.source_id == source["id"]).all()
    assert len(jobs) == 1 and jobs[0].status == "Finished"
    # A good poll ends the outage; the next failure is a new one.
    endpoint.answer_json([{"station_id": "B1", "observed_at": minutes_ago(0.2), "bikes": 6}])
    poller.tick(start + dt.timedelta(seconds=30))
    assert table(product)["B1"]["bikes"] == 6
    endpoint.answer_json([])
    poller.tick(start + dt.timedelta(seconds=40))
    assert model.Session.query(HarvestJob).filter(HarvestJob.source_id == source["id"]).count() == 2
    assert "没有返回任何记录" in gather_errors(source["id"])[-1]


def test_a_loopback_endpoint_is_refused_unless_allow_listed(product, endpoint):
    endpoint.answer_json([{"station_id": "X1", "observed_at": minutes_ago(1), "bikes": 3}])
    source = source_for(product, endpoint.url, poll_seconds=10)
    run_job(source["id"])
    assert endpoint.hits == 0 and table(product) == {}
    [error] = gather_errors(source["id"])
    assert "拒绝访问内部地址" in error and "non-public address" in error


@pytest.mark.usefixtures("allow_loopback")
def test_an_answer_over_the_size_limit_is_refused(product, endpoint, monkeypatch):
    monkeypatch.setitem(tk.config, "ckanext.shanghai.harvest.max_bytes", 200)
    endpoint.answer_json([{"station_id": f"L{n}", "observed_at": minutes_ago(1), "bikes": n} for n in range(50)])
    source = source_for(product, endpoint.url, poll_seconds=10)
    run_job(source["id"])
    assert table(product) == {}
    [error] = gather_errors(source["id"])
    assert "上限" in error and "limit" in error


@pytest.mark.parametrize("config, zh", [({"poll_seconds": 5}, "不小于 10"), ({"poll_seconds": 10, "format": "xml"}, "json 或 csv"),
                                        ({"poll_seconds": 10, "colour": "blue"}, "未知的配置项")])
def test_a_bad_configuration_is_refused_when_the_source_is_created(product, config, zh):
    with pytest.raises(tk.ValidationError) as refused:
        source_for(product, "http://bikes.example.com/now.json", **config)
    assert zh in json.dumps(refused.value.error_dict, ensure_ascii=False)


def test_a_source_cannot_write_into_another_departments_product(product, endpoint, allow_loopback):
    endpoint.answer_json([{"station_id": "W1", "observed_at": minutes_ago(1), "bikes": 3}])
    other = make_department(name="other-dept", title="上海市民政局")
    source = tk.get_action("harvest_source_create")(site_context(), {
        "name": "foreign-pull", "title": "他部门接口", "url": endpoint.url, "source_type": "shanghai_realtime_pull",
        "owner_org": other["id"], "config": json.dumps({"resource_id": product["resource_id"], "poll_seconds": 10})})
    run_job(source["id"])
    assert table(product) == {}
    [error] = gather_errors(source["id"])
    assert "不属于本采集源所在的部门" in error

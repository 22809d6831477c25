"""Known traps of ckanext-harvest 1.6.3 on CKAN 2.12, and that the portal's
own commands avoid them.

- redis-py 8's 5-second default socket timeout kills ckanext-harvest's idle
  queue consumers; ours stay up and keep consuming.
- `ckan harvester source create` creates the source, then crashes printing
  it; `ckan shanghai harvest-source-create` does not.
"""
import json
import os
import time

import pytest

from ckan.tests import helpers
from ckanext.harvest import queue as harvest_queue

from portal_testing import make_department, start_ckan

IDLE_SECONDS = int(os.environ.get("SHANGHAI_IDLE_SECONDS", "20"))


@pytest.mark.slow
@pytest.mark.usefixtures("harvest_tables")
def test_our_consumers_survive_idle_where_stock_ones_die(ckan_ini, tmp_path):
    ours = {
        kind: start_ckan(ckan_ini, "shanghai", "harvest-consumer", kind, log=tmp_path / f"ours-{kind}.log")
        for kind in ("gather", "fetch")
    }
    stock = start_ckan(ckan_ini, "harvester", "gather-consumer", log=tmp_path / "stock.log")
    try:
        time.sleep(IDLE_SECONDS)
        # The stock consumer died of the socket timeout while idle.
        assert stock.poll() is not None, "stock gather consumer unexpectedly survived idle"
        assert "TimeoutError" in (tmp_path / "stock.log").read_text()
        for kind, process in ours.items():
            assert process.poll() is None, (tmp_path / f"ours-{kind}.log").read_text()

        # And after being idle, ours still take work: a message for a job
        # that does not exist is read, rejected and acknowledged.
        redis = harvest_queue.get_connection()
        routing_key = harvest_queue.get_gather_routing_key()
        redis.rpush(routing_key, json.dumps({"harvest_job_id": "no-such-job"}))
        deadline = time.monotonic() + 30
        while redis.llen(routing_key) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert redis.llen(routing_key) == 0
        assert ours["gather"].poll() is None
    finally:
        for process in [*ours.values(), stock]:
            if process.poll() is None:
                process.terminate()
        for process in [*ours.values(), stock]:
            process.wait(timeout=30)
    # Asked to stop while idle, ours leave at once and cleanly.
    assert all(process.returncode == 0 for process in ours.values())


@pytest.mark.usefixtures("harvest_tables")
def test_source_create_command_registers_and_reports_the_source(run_ckan):
    org = make_department(name="shanghai-transport")
    result = run_ckan(
        "shanghai", "harvest-source-create", "transport-catalog",
        "http://catalog.example/api/3", "ckan", "--title", "交通委目录", "--owner-org", org["name"],
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["name"] == "transport-catalog"
    source = helpers.call_action("harvest_source_show", id="transport-catalog")
    assert source["title"] == "交通委目录"
    assert source["owner_org"] == org["id"]

    # The same name again is refused with the field named, and no duplicate.
    again = run_ckan("shanghai", "harvest-source-create", "transport-catalog",
                     "http://other.example/api/3", "ckan")
    assert again.returncode == 1
    assert "name" in json.loads(again.stderr.strip().splitlines()[-1])["error"]
    assert len(helpers.call_action("harvest_source_list")) == 1


@pytest.mark.usefixtures("harvest_tables")
def test_stock_source_create_command_still_crashes_after_creating(run_ckan):
    """Why the portal ships its own command: if a future ckanext-harvest
    fixes this, this test fails and the workaround can go."""
    org = make_department(name="shanghai-statistics")
    result = run_ckan("harvester", "source", "create", "stock-made", "http://catalog.example/api/3",
                      "ckan", "Stock made", "true", org["name"])
    assert result.returncode != 0
    assert "AttributeError" in result.stderr
    assert helpers.call_action("harvest_source_show", id="stock-made")["name"] == "stock-made"

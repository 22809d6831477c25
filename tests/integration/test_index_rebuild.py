"""`ckan shanghai search-index-rebuild` as an operator runs it, on the real
PostgreSQL and Solr, with worker processes: an emptied index is rebuilt
and found by search, an orphaned document goes; a worker that fails ends
the rebuild at once with the reason, instead of leaving it waiting for ever."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.lib import search
from ckan.lib.search.common import make_connection
from ckan.tests import factories, helpers

from portal_testing import ROOT, make_department

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")

CORE = dict(data_domain="health", update_frequency="annual", open_condition="unconditional")
# Worker processes are used from two batches' worth of datasets on.
WORKERS_AND_BATCH = ("--workers", "2", "--batch", "2")


def products(number: int) -> list[dict]:
    org = make_department()
    return [factories.Dataset(owner_org=org["id"], title=f"卫生数据产品{n}", **CORE) for n in range(number)]


def empty_the_index() -> None:
    make_connection().delete(q=f'+site_id:"{tk.config["ckan.site_id"]}" +entity_type:package', commit=True)
    assert helpers.call_action("package_search", q="*:*")["count"] == 0


def rebuild_command(ckan_ini: Path, timeout: float = 120, *options: str) -> tuple[int, str, str, float, int]:
    """Run the rebuild command in its own process group; a rebuild still
    running after ``timeout`` seconds is killed with its workers and fails
    the test. Returns exit code, stdout, stderr, seconds and process group."""
    ckan_command = str(Path(os.sys.executable).parent / "ckan")
    started = time.monotonic()
    process = subprocess.Popen(
        [ckan_command, "-c", str(ckan_ini), "shanghai", "search-index-rebuild", *WORKERS_AND_BATCH, *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"the rebuild was still running after {timeout} s (hung):\n{err[-3000:]}")
    return process.returncode, out, err, time.monotonic() - started, process.pid


def group_gone(pgid: int, wait: float = 10) -> bool:
    """No process of the command's group (its workers) is left."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def test_a_rebuild_refills_an_empty_index_and_drops_orphans(ckan_ini):
    kept = products(6)
    orphan = kept.pop()
    empty_the_index()
    # A document whose dataset is gone, as a crash between deleting a row
    # and unindexing it leaves behind.
    search.rebuild(orphan["id"])
    model.Session.execute(model.package_table.delete().where(model.package_table.c.id == orphan["id"]))
    model.Session.commit()

    code, out, err, _, _ = rebuild_command(ckan_ini)
    assert code == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["documents"], result["orphans_removed"]) == (5, 1)

    found = helpers.call_action("package_search", q="*:*", rows=20)["results"]
    assert sorted(d["title"] for d in found) == sorted(d["title"] for d in kept)
    assert helpers.call_action("package_search", q="卫生")["count"] == 5


def test_a_failing_worker_ends_the_rebuild_within_seconds_with_the_reason(ckan_ini):
    datasets = products(6)
    # A product Solr refuses: a title longer than Lucene takes as one sort
    # term (32,766 bytes), as a row written outside the API can hold.
    model.Session.execute(model.package_table.update().where(model.package_table.c.id == datasets[2]["id"])
                          .values(title="超长标题" * 3000))
    model.Session.commit()
    empty_the_index()

    code, out, err, seconds, group = rebuild_command(ckan_ini)
    assert code == 1, out + err[-3000:]
    error = json.loads(err.strip().splitlines()[-1])["error"]
    assert error["code"] == "rebuild-failed"
    assert "检索索引重建失败" in error["zh"] and "rebuild failed" in error["en"]
    assert "SearchIndexError" in error["detail"]
    # Started, failed and reported in about the time a CKAN command takes to
    # start, and no worker is left running.
    assert seconds < 60
    assert group_gone(group)


def test_a_rebuilt_index_keeps_the_most_downloaded_order(ckan_ini):
    from ckanext.shanghai.portal import downloads

    quiet, popular, read_once = products(3)
    for _ in range(3):
        downloads.record_download(popular["id"], popular["resources"][0]["id"] if popular["resources"] else "r1")
    downloads.record_download(read_once["id"], "r2")
    empty_the_index()

    code, _out, err, _, _ = rebuild_command(ckan_ini)
    assert code == 0, err[-3000:]
    # The home page's "most downloaded" list asks the index in this order.
    ranked = helpers.call_action("package_search", q="*:*", fq="downloads_total:[1 TO *]",
                                 sort="downloads_total desc")["results"]
    assert [d["id"] for d in ranked] == [popular["id"], read_once["id"]]


def rebuilt(ckan_ini, *options: str) -> dict:
    code, out, err, _, _ = rebuild_command(ckan_ini, 120, *options)
    assert code == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_a_second_rebuild_reuses_what_has_not_changed_and_finds_what_has(ckan_ini):
    datasets = products(4)
    # CKAN's own writes carry no digest: the first rebuild validates them all.
    first = rebuilt(ckan_ini)
    assert (first["documents"], first["reused"], first["revalidated"]) == (4, 0, 4)
    # A title changed in the database behind CKAN's back (a row written
    # outside the API): the one dataset whose digest no longer matches.
    model.Session.execute(model.package_table.update().where(model.package_table.c.id == datasets[1]["id"])
                          .values(title="交通拥堵指数产品"))
    model.Session.commit()

    second = rebuilt(ckan_ini)
    assert (second["documents"], second["reused"], second["revalidated"]) == (4, 3, 1)
    found = helpers.call_action("package_search", q="拥堵")["results"]
    assert [d["id"] for d in found] == [datasets[1]["id"]]
    assert found[0]["title"] == "交通拥堵指数产品"
    assert helpers.call_action("package_search", q="卫生")["count"] == 3
    # The reused documents answer as the validated ones did.
    shown = helpers.call_action("package_search", q="卫生", fl="id,title,data_domain", rows=10)["results"]
    assert sorted(d["title"] for d in shown) == sorted(d["title"] for n, d in enumerate(datasets) if n != 1)

    forced = rebuilt(ckan_ini, "--revalidate")
    assert (forced["documents"], forced["reused"], forced["revalidated"]) == (4, 0, 4)

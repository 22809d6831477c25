"""Two web hosts behind nginx, started as `make serve WEB_HOSTS=2` starts
them (config/stack: each host with its own ini rendered from the one
template, its own port and log; nginx from config/deploy/web-proxy.conf in
front), only for this module. A citizen signs in through host 1, host 1 goes
down, and the form host 1 gave them is sent to host 2, which takes the
session and the CSRF token (signed with the per-install secrets) and
stores the request; signing out through the proxy signs out of both; the proxy
spreads requests over both hosts and the hosts count a
client by the address the proxy reports, not by what the client claims."""
from __future__ import annotations

import os
import secrets
import urllib.request

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import ckan.model as model
from ckan.lib.redis import connect_to_redis
from ckan.tests import factories
from ckanext.shanghai.keys.limiter import COUNTER_PREFIX

from conftest import api, log_in, open_page, submit, text_of
from portal_testing import stack_services

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def two_hosts():
    """Hosts 1 and 2 (one gunicorn worker each, so that "the other host" is
    another process) and the proxy on the test profile's web port."""
    profile, services = stack_services()
    from stack.portal import start_web_hosts
    from stack.processes import Processes

    procs = Processes(profile)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WEB_WORKERS", "1")
        try:
            hosts = start_web_hosts(profile, procs, services, 2)
            yield {"proxy": f"http://127.0.0.1:{profile.web_port}", "profile": profile, "procs": procs,
                   "web_hosts": hosts, "hosts": [f"http://127.0.0.1:{host.port}" for host in hosts]}
        finally:
            procs.stop_all()


def served_by(url: str, **headers) -> str:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as answer:
        return answer.headers["X-Served-By"]


def test_the_proxy_spreads_requests_and_reports_the_client(two_hosts):
    status = "/api/3/action/status_show"
    # Each nginx worker (one per core) takes turns on its own: with more
    # requests than workers, one worker has sent at least two, to both hosts.
    turns = (os.cpu_count() or 1) + 2
    assert {served_by(two_hosts["proxy"] + status) for _ in range(turns)} == {"host1", "host2"}

    redis = connect_to_redis()
    for key in redis.scan_iter(f"{COUNTER_PREFIX}ip:*"):
        redis.delete(key)
    # Through the proxy, a client's own X-Forwarded-For is not believed: the
    # hosts take the address nginx saw (here 127.0.0.1).
    served_by(two_hosts["proxy"] + status, **{"X-Forwarded-For": "203.0.113.9"})
    assert redis.exists(f"{COUNTER_PREFIX}ip:127.0.0.1")
    assert not redis.exists(f"{COUNTER_PREFIX}ip:203.0.113.9")
    # A host trusts one proxy in front of it (which is why only the proxy
    # may reach the hosts): what the proxy reports is the client.
    served_by(two_hosts["hosts"][1] + status, **{"X-Forwarded-For": "198.51.100.7"})
    assert redis.exists(f"{COUNTER_PREFIX}ip:198.51.100.7")


def test_signed_in_on_one_host_a_form_is_taken_by_the_other(two_hosts, browser):
    host1, host2 = two_hosts["hosts"]
    suffix = secrets.token_hex(3)
    admin = factories.APIToken(user=factories.Sysadmin()["name"])["token"]
    department = api(two_hosts["proxy"], "organization_create", admin, {
        "name": f"hosts-{suffix}", "title": f"上海市数据局{suffix}", "department_type": "municipal-bureau"})
    password = secrets.token_urlsafe(12)
    citizen = factories.User(name=f"citizen-hosts-{suffix}", password=password)

    log_in(browser, host1, citizen["name"], password)
    open_page(browser, host1 + "/desk/new?kind=request")
    title = f"希望开放各区公共充电桩数量（{suffix}）"
    browser.find_element(By.ID, "field-title").send_keys(title)
    browser.find_element(By.ID, "field-body").send_keys("按区统计，每月更新。")
    browser.find_element(By.ID, "field-reason").send_keys("规划充电设施")
    Select(browser.find_element(By.ID, "field-frequency")).select_by_value("monthly")
    Select(browser.find_element(By.ID, "field-organization")).select_by_value(department["id"])
    # Host 1 goes down; the form it rendered, with its CSRF token, is posted
    # to host 2, as a proxy would send it.
    from stack.portal import start_web
    from stack.processes import stop_process_group

    first = two_hosts["web_hosts"][0]
    stop_process_group(first.process, int((two_hosts["profile"].run / f"{first.process}.pid").read_text()), 20)
    browser.execute_script("const form = arguments[0].form; form.action = form.action.replace(arguments[1], arguments[2]);",
                           browser.find_element(By.ID, "sh-desk-submit"), host1, host2)
    submit(browser, "sh-desk-submit")
    # Host 2 stored it and sent the citizen to the item at the site's address
    # (the proxy, which steps around host 1).
    assert browser.current_url.startswith(two_hosts["proxy"] + "/desk/item/"), text_of(browser)[:500]
    assert title in text_of(browser) and "待受理" in text_of(browser)
    start_web(two_hosts["profile"], two_hosts["procs"], first)
    item_id = browser.current_url.rstrip("/").split("/")[-1]
    model.Session.remove()
    stored = model.Session.execute(sa.text("select title, user_id, organization_id from shanghai_desk_item "
                                           "where id = :id"), {"id": item_id}).one()
    assert tuple(stored) == (title, citizen["id"], department["id"])
    # Host 1 shows it to the citizen as well.
    open_page(browser, f"{host1}/desk/mine")
    assert title in text_of(browser)

    # Signed out through the proxy, signed out on both hosts.
    open_page(browser, two_hosts["proxy"] + "/user/_logout")
    for host in (host1, host2):
        open_page(browser, host + "/desk/mine")
        assert "/user/login" in browser.current_url, host

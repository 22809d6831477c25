"""The public desk in headless Chromium: a citizen asks for data a
department does not yet publish and reports an error on a product; the
department's editor answers the request with a link to a new product and
accepts the error report, which then shows on the product's page; the
league table shows both with the working days the conditional-access clock
counts (public holidays included: the portal here runs with two holidays
configured inside the request's span)."""
from __future__ import annotations

import datetime as dt
import os
import secrets
import statistics
from pathlib import Path

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

import ckan.model as model
from ckan.tests import factories

from conftest import api, log_in, open_page, submit, text_of

pytestmark = pytest.mark.browser


def _holidays() -> tuple[dt.date, list[dt.date]]:
    """A week ago (city time), and the two weekdays just before today,
    which this portal takes as public holidays."""
    import zoneinfo

    today = dt.datetime.now(zoneinfo.ZoneInfo("Asia/Shanghai")).date()
    weekdays = [today - dt.timedelta(days=n) for n in range(1, 7) if (today - dt.timedelta(days=n)).weekday() < 5]
    return today - dt.timedelta(days=7), weekdays[:2]


@pytest.fixture
def ckan_ini(tmp_path):
    """The test stack's configuration with two public holidays added, for
    the portal this module serves (served_portal reads this fixture)."""
    _, holidays = _holidays()
    derived = tmp_path / "desk.ini"
    derived.write_text(f"[app:main]\nuse = config:{Path(os.environ['CKAN_INI']).resolve()}\n"
                       f"ckanext.shanghai.access.holidays = {' '.join(d.isoformat() for d in holidays)}\n",
                       encoding="utf-8")
    return derived


def test_a_request_answered_with_a_new_product_and_an_accepted_error_report(served_portal, browser):
    base, suffix = served_portal, secrets.token_hex(3)
    # Made through the API, as the served portal's plugins (scheming) shape them.
    admin = factories.APIToken(user=factories.Sysadmin()["name"])["token"]
    department = api(base, "organization_create", admin, {"name": f"jtw-{suffix}", "title": f"上海市交通委员会{suffix}",
                                                          "department_type": "municipal-bureau"})
    password = secrets.token_urlsafe(12)
    citizen = factories.User(name=f"citizen-{suffix}", fullname="张市民", password=password)
    clerk = factories.User(name=f"clerk-{suffix}", password=password)
    api(base, "organization_member_create", admin, {"id": department["id"], "username": clerk["name"],
                                                    "role": "editor"})
    product = {"owner_org": department["id"], "data_domain": "road-transport", "open_condition": "unconditional"}
    wrong = api(base, "package_create", admin, dict(
        product, name=f"bus-lines-{suffix}", title="上海市公交线路", update_frequency="monthly",
        resources=[{"url": "https://data.example.gov.cn/bus.csv", "name": "线路表"}]))
    new_product = api(base, "package_create", admin, dict(
        product, name=f"chargers-{suffix}", title="上海市公共充电桩实时状态", update_frequency="realtime"))

    # The citizen asks for data and reports an error.
    log_in(browser, base, citizen["name"], password)
    open_page(browser, base + "/desk/new?kind=request")
    browser.find_element(By.ID, "field-title").send_keys("希望开放公共充电桩实时状态")
    browser.find_element(By.ID, "field-body").send_keys("需要每个充电桩的位置和**实时占用**状态")
    browser.find_element(By.ID, "field-reason").send_keys("开发找桩应用")
    Select(browser.find_element(By.ID, "field-frequency")).select_by_value("realtime")
    Select(browser.find_element(By.ID, "field-organization")).select_by_value(department["id"])
    submit(browser, "sh-desk-submit")
    assert "/desk/item/" in browser.current_url
    request_id = browser.current_url.rstrip("/").split("/")[-1]
    assert "待受理" in text_of(browser) and "距答复期限 15 个工作日" in text_of(browser)
    open_page(browser, f"{base}/dataset/{wrong['name']}")
    browser.execute_script("arguments[0].click();", browser.find_element(By.ID, "sh-desk-report-error"))
    WebDriverWait(browser, 30).until(lambda d: "/desk/new" in d.current_url)
    browser.find_element(By.ID, "field-title").send_keys("71 路终点站已迁移")
    Select(browser.find_element(By.ID, "field-error-type")).select_by_value("out_of_date")
    browser.find_element(By.ID, "field-body").send_keys("71 路终点站已迁至申昆路枢纽，表中仍为旧站。")
    submit(browser, "sh-desk-submit")
    report_id = browser.current_url.rstrip("/").split("/")[-1]

    # The request arrived a week ago, across the two holidays.
    from ckanext.shanghai.access.workdays import Calendar

    week_ago, holidays = _holidays()
    clock = Calendar(holidays=frozenset(holidays))
    model.Session.execute(sa.text(
        "update shanghai_desk_item set submitted = :s, ack_deadline = :a, answer_deadline = :d where id = :id"),
        {"s": dt.datetime.combine(week_ago, dt.time(10), tzinfo=dt.timezone(dt.timedelta(hours=8))),
         "a": clock.add_working_days(week_ago, 5), "d": clock.add_working_days(week_ago, 15), "id": request_id})
    model.Session.commit()
    today = week_ago + dt.timedelta(days=7)
    request_days = clock.working_days_between(week_ago, today)
    assert request_days == sum(1 for n in range(1, 8) if (week_ago + dt.timedelta(days=n)).weekday() < 5) - 2

    # The department's editor answers on the desk.
    log_in(browser, base, clerk["name"], password)
    browser.find_element(By.ID, "sh-desk-queue").click()
    WebDriverWait(browser, 30).until(lambda d: "/desk/queue" in d.current_url)
    assert "希望开放公共充电桩实时状态" in text_of(browser) and "71 路终点站已迁移" in text_of(browser)
    open_page(browser, f"{base}/desk/item/{request_id}")
    browser.find_element(By.ID, "field-answer").send_keys("我委已整理充电桩数据并开放。")
    submit(browser, "sh-desk-answer")
    assert "我委已整理充电桩数据并开放。" in text_of(browser)
    Select(browser.find_element(By.ID, "field-close-reason")).select_by_value("released")
    browser.find_element(By.ID, "field-close-link").send_keys(f"/dataset/{new_product['name']}")
    submit(browser, "sh-desk-close")
    assert "已办结" in text_of(browser)
    link = browser.find_element(By.ID, "sh-desk-close-link")
    assert link.get_attribute("href").endswith(f"/dataset/{new_product['name']}")
    assert f"{request_days}个工作日内答复" in text_of(browser)
    open_page(browser, f"{base}/desk/item/{report_id}")
    submit(browser, "sh-desk-accept")
    assert "纠错已确认" in text_of(browser)

    # The product shows the accepted report; the citizen has notices.
    open_page(browser, f"{base}/dataset/{wrong['name']}")
    assert "71 路终点站已迁移" in browser.find_element(By.ID, "sh-desk-accepted-errors").text
    log_in(browser, base, citizen["name"], password)
    assert browser.find_element(By.ID, "sh-desk-unseen").text == "3"
    browser.find_element(By.ID, "sh-desk-mine").click()
    WebDriverWait(browser, 30).until(lambda d: "/desk/mine" in d.current_url)
    notices = browser.find_element(By.ID, "sh-desk-notices").text
    assert "部门已答复" in notices and "已办结" in notices and "纠错已被确认" in notices
    link = browser.find_element(By.XPATH, "//a[contains(@href, '%s')]" % request_id)
    browser.execute_script("arguments[0].click();", link)
    WebDriverWait(browser, 30).until(lambda d: request_id in d.current_url)
    browser.find_element(By.ID, "sh-desk-close-link").click()
    WebDriverWait(browser, 30).until(lambda d: f"/dataset/{new_product['name']}" in d.current_url)
    assert "上海市公共充电桩实时状态" in text_of(browser)

    # The league table, in both languages, on its page, /statistics and the department's page.
    median = statistics.median([request_days, 0])
    for url in ("/desk/league", "/statistics", f"/organization/{department['name']}"):
        open_page(browser, base + url)
        row = browser.find_element(By.CSS_SELECTOR, f"tr[data-organization='{department['name']}']")
        cells = [row.find_element(By.CSS_SELECTOR, f".sh-league-{c}").text
                 for c in ("requests", "errors", "median", "on-time", "released")]
        assert cells[:3] == ["1", "1", str(median)] and cells[3].startswith("100%") and cells[4] == "1", (url, cells)
    open_page(browser, base + "/en/desk/league")
    assert "Median working days to first answer" in text_of(browser)
    open_page(browser, base + "/user/_logout")

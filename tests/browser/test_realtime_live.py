"""The demo's simulated car-park product in headless Chromium: the feed
simulator `make serve` runs (here with a 10-second interval) pushes through
the public push endpoint; the product page, labelled simulated, updates its
latest values live from the stream and draws one car park's history; when
the simulator is stopped, the interruption banner rises on the open page
within two intervals (and the few seconds the page takes to ask again)."""
from __future__ import annotations

import json
import os
import secrets
import signal
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ckan.tests import factories

from conftest import api, wait_for
from data_files import TABLES
from portal_testing import start_ckan

pytestmark = pytest.mark.browser

INTERVAL = 10
# The page asks for the feed's liveness every interval / 5 (at least 2 s).
PAGE_POLL = max(INTERVAL // 5, 2)


@pytest.fixture
def simulator(served_portal, ckan_ini, tmp_path):
    """The feed simulator as `make serve` starts it, against the served
    portal; yields (process, product name)."""
    base, suffix = served_portal, secrets.token_hex(3)
    admin = factories.APIToken(user=factories.Sysadmin()["name"])["token"]
    department = api(base, "organization_create", admin, {"name": f"jtw-{suffix}", "title": f"上海市交通委员会{suffix}",
                                                          "department_type": "municipal-bureau"})
    process = start_ckan(ckan_ini, "shanghai-realtime", "simulate",
                         "--places", str(TABLES / "sh_elderly_care_institutions_utf8bom.csv"),
                         "--department", department["name"], "--url", base, "--interval", str(INTERVAL),
                         "--key-file", str(tmp_path / "simulator.key"), "--wait", "0",
                         log=tmp_path / "simulator.log")
    try:
        def first_push():
            assert process.poll() is None, (tmp_path / "simulator.log").read_text()
            shown = api(base, "shanghai_realtime_product_show", id="sh-carpark-free-spaces-simulated")
            return shown["status"]["last_push"] and not shown["status"]["interrupted"] and shown

        product = wait_for(first_push, "the simulator's first push", 120, 1)
        yield process, product
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)


def test_the_simulated_car_park_product_updates_live_then_shows_the_interruption(
        served_portal, simulator, browser, screenshot):
    process, product = simulator
    base = served_portal
    browser.get(f"{base}/dataset/{product['package_id']}")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    section = browser.find_element(By.CSS_SELECTOR, "[data-sh-realtime]")
    assert "模拟数据" in section.find_element(By.CSS_SELECTOR, ".sh-realtime-simulated").text
    assert "并非真实数据" in section.find_element(By.CSS_SELECTOR, ".sh-realtime-simulated-note").text
    assert not section.find_element(By.CSS_SELECTOR, ".sh-realtime-banner").is_displayed()
    # The latest values: the first 20 car parks, with their real addresses.
    rows = WebDriverWait(browser, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-sh-realtime] tbody tr")) == 20
        and d.find_elements(By.CSS_SELECTOR, "[data-sh-realtime] tbody tr"))
    assert "上海市场中路4098弄8号" in rows[0].text
    before = {row.get_attribute("data-key"): row.get_attribute("data-time") for row in rows}

    # The next pushes arrive through the stream: rows change without a reload.
    def changed_rows(driver):
        now = {row.get_attribute("data-key"): row.get_attribute("data-time")
               for row in driver.find_elements(By.CSS_SELECTOR, "[data-sh-realtime] tbody tr")}
        return [key for key in now if now[key] != before.get(key)]

    changed = WebDriverWait(browser, 3 * INTERVAL).until(changed_rows)
    assert changed and int(section.get_attribute("data-received")) > 0
    assert "本页已收到" in section.find_element(By.CSS_SELECTOR, ".sh-realtime-received").text
    assert section.find_element(By.CSS_SELECTOR, ".sh-realtime-live-state").text == "实时连接中"
    # One car park's history as a chart (ECharts draws SVG), its points from the history and the stream.
    WebDriverWait(browser, 30).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "[data-sh-realtime] .sh-realtime-chart svg path"))
    chart = section.find_element(By.CSS_SELECTOR, ".sh-realtime-chart")
    assert int(chart.get_attribute("data-points")) >= 1
    key = section.find_element(By.CSS_SELECTOR, ".sh-realtime-history-key").get_attribute("value")
    history = api(base, "shanghai_realtime_history", id=product["resource_id"], key=key)
    assert len(history["observations"]) >= 1
    screenshot("live")

    # The latest table as GeoJSON, for a map of the car parks.
    link = section.find_element(By.CSS_SELECTOR, "a.sh-realtime-geojson").get_attribute("href")
    with urllib.request.urlopen(link, timeout=60) as answer:
        collection = json.load(answer)
    assert collection["coordinate_crs"] == "wgs84" and len(collection["features"]) == 626 * 4
    # The same table on the page's map: one point a car park.
    canvas = section.find_element(By.CSS_SELECTOR, "[data-sh-map]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)  # it draws as a reader reaches it
    drawn = WebDriverWait(browser, 60).until(lambda d: canvas.get_attribute("data-points"))
    assert drawn == str(len(collection["features"]))
    assert len(canvas.find_elements(By.CSS_SELECTOR, "path.leaflet-interactive")) == len(collection["features"])

    # Stop the simulator: within two intervals (and one page poll) the banner rises.
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)
    banner = section.find_element(By.CSS_SELECTOR, ".sh-realtime-banner")
    WebDriverWait(browser, 2 * INTERVAL + PAGE_POLL + 3).until(lambda d: banner.is_displayed())
    assert "数据中断" in banner.text and "未收到数据" in banner.text
    assert section.find_element(By.CSS_SELECTOR, ".sh-realtime-interrupted").is_displayed()
    assert not section.find_element(By.CSS_SELECTOR, ".sh-realtime-live").is_displayed()
    screenshot("interrupted")
    # Leave the page: its stream ends, and the served portal can stop.
    browser.get("about:blank")

"""The portal served as `make serve` serves it, for headless Chromium.

Starts gunicorn, the harvest consumers and scheduler and CKAN's job worker
against the test stack (.local/test.ini), runs the real demo on part of the
real Shanghai export (harvest through the queue, then the job that attaches
the real tables and seeds the data applications), waits for the DataStore
loads, and hands out a Selenium driver for Debian's chromium. Screenshots go
to .local/screenshots/ (git-ignored)."""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from data_files import TABLES, catalog_file
from portal_testing import ROOT, start_ckan

SCREENSHOTS = ROOT / ".local" / "screenshots"
# Titles of the products the demo attaches tables to, and a few neighbours.
DEMO_TITLES = {
    "上海市养老机构", "上海市社区卫生服务中心基本信息", "全市医疗卫生机构、床位、人员基本情况统计表",
    "房地产开发企业资质", "双公示-行政处罚结果信息", "嘉定区预售许可信息", "静安区行政区划",
}


def api(base: str, action: str, token: str | None = None, data: dict | None = None, **params) -> dict:
    url = f"{base}/api/3/action/{action}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    request = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": token} if token else {})})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["result"]


def wait_for(check, what: str, timeout: float, step: float = 2.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as error:  # the server may still be starting
            last = error
        time.sleep(step)
    raise AssertionError(f"{what} not ready after {timeout:.0f}s (last: {last!r})")


# Driving pages (the desk's and the several-hosts tests').

def open_page(browser, url):
    browser.get(url)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


def log_out(browser, base):
    open_page(browser, base + "/user/_logout")
    browser.delete_all_cookies()


def log_in(browser, base, name, password):
    log_out(browser, base)
    open_page(browser, base + "/user/login")
    browser.find_element(By.ID, "field-login").send_keys(name)
    browser.find_element(By.ID, "field-password").send_keys(password)
    browser.find_element(By.ID, "field-password").submit()
    WebDriverWait(browser, 30).until(lambda d: "/user/login" not in d.current_url)


def submit(browser, button_id):
    button = browser.find_element(By.ID, button_id)
    old = browser.find_element(By.TAG_NAME, "html")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", button)
    WebDriverWait(browser, 30).until(lambda d: old != d.find_element(By.TAG_NAME, "html"))
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


def text_of(browser) -> str:
    return browser.find_element(By.TAG_NAME, "body").text


@pytest.fixture(scope="module")
def portal(ckan_ini, tmp_path_factory):
    """Base URL of the served portal with the demo loaded; yields a dict."""
    port = int(os.environ.get("SHANGHAI_TEST_PORT", "5055"))
    base = f"http://127.0.0.1:{port}"
    logs = Path(os.environ.get("SHANGHAI_TEST_STATE", ROOT / ".local" / "test")) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CKAN_INI=str(ckan_ini))
    gunicorn = str(Path(os.sys.executable).parent / "gunicorn")
    processes = [subprocess.Popen(
        [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--timeout", "120",
         "ckanext.shanghai.wsgi:application"],
        stdout=(logs / "browser-web.log").open("ab"), stderr=subprocess.STDOUT, env=env,
        start_new_session=True, cwd=ROOT)]
    for args in (("shanghai", "harvest-consumer", "gather"), ("shanghai", "harvest-consumer", "fetch"),
                 ("shanghai", "harvest-scheduler"), ("jobs", "worker")):
        processes.append(start_ckan(ckan_ini, *args, log=logs / f"browser-{args[-1]}.log"))
    try:
        wait_for(lambda: api(base, "status_show"), "the web app", 120)
        ckan = str(Path(os.sys.executable).parent / "ckan")
        admin = json.loads(subprocess.run(
            [ckan, "-c", str(ckan_ini), "shanghai", "bootstrap-admin", "browser-admin",
             "--email", "browser-admin@localhost"],
            check=True, capture_output=True, text=True, cwd=ROOT,
            env=dict(env, SHANGHAI_ADMIN_PASSWORD=secrets.token_urlsafe(12))).stdout.splitlines()[-1])
        records = [r for r in json.loads(catalog_file("shanghai.json").read_text(encoding="utf-8"))
                   if r["数据集名称"] in DEMO_TITLES]
        records += json.loads(catalog_file("shanghai.json").read_text(encoding="utf-8"))[:40]
        export = tmp_path_factory.mktemp("demo") / "shanghai-part.json"
        export.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        subprocess.run([ckan, "-c", str(ckan_ini), "shanghai", "demo", str(export),
                        "--tables", str(TABLES)],
                       check=True, capture_output=True, text=True, cwd=ROOT, env=env)

        def demo_loaded():
            apps = api(base, "package_search", fq="+dataset_type:application", rows=10)
            uploads = api(base, "package_search", fq="res_url:*download*", rows=20)["results"]
            loaded = [r for p in uploads for r in api(base, "package_show", id=p["id"])["resources"]
                      if r.get("datastore_active")]
            return apps["count"] >= 3 and len(loaded) >= 7 and apps

        wait_for(demo_loaded, "the demo (harvest, tables in the DataStore, applications)", 600, 5)
        department = api(base, "organization_list", all_fields=True, limit=1)[0]
        # Each browser module starts the portal afresh on the same database.
        existing = api(base, "package_search", admin["token"], q="name:private-internal-roster",
                       include_private=True, rows=1)["results"]
        private = existing[0] if existing else api(base, "package_create", admin["token"], {
            "name": "private-internal-roster", "title": "内部花名册（未公开）", "private": True,
            "owner_org": department["id"], "data_domain": "health", "update_frequency": "annual",
            "open_condition": "conditional"})
        yield {"base": base, "admin": admin, "private": private}
    finally:
        for process in reversed(processes):
            try:
                os.killpg(process.pid, 15)
                process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(process.pid, 9)
                except ProcessLookupError:
                    pass


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1000", "--lang=zh-CN",
                     # Chromium refuses some ports (6000 ...) unless allowed.
                     f"--explicitly-allowed-ports={os.environ.get('SHANGHAI_TEST_PORT', '5055')}"):
        options.add_argument(argument)
    # The console's errors, for the tests that want none.
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(90)
    yield driver
    driver.quit()


@pytest.fixture
def screenshot(browser, request):
    """Call with a label; saves .local/screenshots/<test>-<label>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(label: str = "page") -> Path:
        name = re.sub(r"[^\w.-]+", "_", f"{request.node.name}-{label}")
        path = SCREENSHOTS / f"{name}.png"
        assert browser.save_screenshot(str(path)), path
        return path

    return take


__all__ = ["api", "log_in", "open_page", "submit", "text_of", "wait_for"]

"""Developer keys in headless Chromium: a signed-in person registers an
application, sees its key once, calls the API with it, finds the key on no
later page, revokes it, and the key is refused from then on."""
from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request

import pytest
from selenium.webdriver.common.by import By

from ckan.tests import factories

from test_public_desk_pages import log_in, open_page, submit, text_of

pytestmark = pytest.mark.browser


def call_with(base: str, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"{base}/api/3/action/shanghai_application_list",
                                     headers={"Authorization": key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_register_an_application_see_its_key_once_and_revoke_it(served_portal, browser, screenshot):
    base, password = served_portal, secrets.token_urlsafe(12)
    person = factories.User(name=f"dev-{secrets.token_hex(3)}", fullname="陈开发", password=password)
    log_in(browser, base, person["name"], password)
    open_page(browser, base + "/dataset/")
    links = browser.find_elements(By.ID, "sh-developer")
    assert links and links[0].get_attribute("href").endswith("/developer"), \
        (browser.current_url, browser.find_element(By.TAG_NAME, "header").get_attribute("outerHTML")[:3000])
    open_page(browser, base + "/developer")
    assert "不带密钥的调用每个地址" in text_of(browser)
    browser.find_element(By.ID, "field-app-name").send_keys("养老地图")
    browser.find_element(By.ID, "field-app-description").send_keys("在地图上标出全市养老机构")
    browser.find_element(By.ID, "field-app-contact").send_keys("dev@example.com")
    submit(browser, "sh-app-submit")
    assert "只显示这一次" in browser.find_element(By.ID, "sh-key-once").text
    key = browser.find_element(By.ID, "sh-key").get_attribute("value").strip()
    assert key
    screenshot("key-once")

    status, body = call_with(base, key)
    assert status == 200 and [a["name"] for a in body["result"]] == ["养老地图"]

    open_page(browser, base + "/developer")
    assert "养老地图" in text_of(browser) and key not in browser.page_source
    application_id = browser.find_element(By.CSS_SELECTOR, "#sh-applications tr[data-application-id]") \
        .get_attribute("data-application-id")
    submit(browser, f"sh-app-revoke-{application_id}")
    assert "已撤销" in browser.find_element(By.CSS_SELECTOR, ".sh-app-state").text
    status, body = call_with(base, key)
    assert status == 401 and "revoked" in body["error"]["message_en"]

    open_page(browser, base + "/en/developer")
    assert "My applications" in text_of(browser) and "Revoked" in text_of(browser)

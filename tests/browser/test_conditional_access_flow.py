"""A conditionally open product of the real Shanghai catalog, through the
pages in headless Chromium: a citizen applies (purpose, use, organisation,
period, the department's agreement), the department's admin approves from
the queue, the citizen is told and downloads the real table; nobody else
can, and the audit trail shows each step."""
import datetime as dt
import secrets
import urllib.error
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import api

pytestmark = pytest.mark.browser


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


def click(browser, element):
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", element)


def fetch(url, token=None):
    request = urllib.request.Request(url, headers={"Authorization": token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def person(base, admin_token, name, organization=None, role=None):
    password = secrets.token_urlsafe(12)
    api(base, "user_create", admin_token, {"name": name, "email": f"{name}@localhost", "password": password,
                                            "fullname": name})
    if organization:
        api(base, "organization_member_create", admin_token, {"id": organization, "username": name, "role": role})
    token = api(base, "api_token_create", admin_token, {"user": name, "name": "browser"})["token"]
    return {"name": name, "password": password, "token": token}


@pytest.fixture
def signed_out(portal, browser):
    """The other browser tests expect an anonymous visitor."""
    yield
    log_out(browser, portal["base"])


def test_apply_approve_download_and_nobody_else(portal, browser, screenshot, signed_out):
    base, admin_token = portal["base"], portal["admin"]["token"]
    product = api(base, "package_search", q='title:"双公示-行政处罚结果信息"', fq="+open_condition:conditional",
                  rows=5)["results"]
    product = next(p for p in product if any(r.get("url_type") == "upload" for r in p["resources"]))
    resource = next(r for r in product["resources"] if r.get("url_type") == "upload")
    department = product["organization"]
    citizen = person(base, admin_token, "zhang-citizen")
    reviewer = person(base, admin_token, "sthj-reviewer", department["id"], "admin")
    bystander = person(base, admin_token, "li-bystander")

    # Before: the page shows the product and offers the application; the
    # file is refused to everyone outside the department.
    for token in (None, citizen["token"], bystander["token"]):
        assert fetch(resource["url"], token)[0] == 403
    log_in(browser, base, citizen["name"], citizen["password"])
    open_page(browser, f"{base}/{product['type']}/{product['name']}")
    panel = browser.find_element(By.ID, "sh-access-panel")
    assert "有条件开放" in panel.text and not browser.find_elements(By.CSS_SELECTOR, ".sh-preview-table")
    click(browser, browser.find_element(By.ID, "sh-apply-button"))
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "sh-apply-form"))
    assert "数据使用协议" in browser.find_element(By.ID, "sh-agreement").text
    browser.find_element(By.ID, "field-purpose").send_keys("分析本市生态环境行政处罚的行业分布")
    browser.find_element(By.ID, "field-intended-use").send_keys("课题组内部统计分析，成果只发布汇总数")
    browser.find_element(By.ID, "field-applicant-org").send_keys("复旦大学环境科学与工程系")
    period_end = dt.date.today() + dt.timedelta(days=60)
    browser.execute_script("document.getElementById('field-period-end').value = arguments[0];",
                           period_end.isoformat())
    # Without accepting the agreement: refused, with the reason, form kept.
    click(browser, browser.find_element(By.ID, "sh-apply-submit"))
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "sh-apply-errors"))
    assert "请阅读并同意数据使用协议" in browser.find_element(By.ID, "sh-apply-errors").text
    assert browser.find_element(By.ID, "field-purpose").get_attribute("value").startswith("分析本市")
    click(browser, browser.find_element(By.ID, "field-accept"))
    screenshot("apply-form")
    click(browser, browser.find_element(By.ID, "sh-apply-submit"))
    WebDriverWait(browser, 30).until(lambda d: "/access/request/" in d.current_url)
    screenshot("request-pending")
    page = browser.find_element(By.ID, "sh-request").text
    assert "待审核" in page and "剩余 5 个工作日" in page
    request_id = browser.current_url.rstrip("/").rsplit("/", 1)[-1]
    assert fetch(resource["url"], citizen["token"])[0] == 403

    # The department's admin decides from the queue.
    log_in(browser, base, reviewer["name"], reviewer["password"])
    click(browser, browser.find_element(By.ID, "sh-request-queue"))
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "sh-on-time-share"))
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-request-id='{request_id}']")
    assert "复旦大学环境科学与工程系" in row.text and product["title"] in row.text
    screenshot("queue")
    click(browser, row.find_element(By.TAG_NAME, "a"))
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "sh-decide-form"))
    browser.find_element(By.ID, "field-reason").send_keys("用途明确，范围适当，同意")
    click(browser, browser.find_element(By.ID, "sh-approve"))
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "sh-grant"))
    screenshot("approved")
    assert period_end.isoformat() in browser.find_element(By.ID, "sh-grant").text

    # The applicant is told, and downloads the real (GBK) table.
    log_in(browser, base, citizen["name"], citizen["password"])
    assert browser.find_element(By.ID, "sh-unseen").text == "1"
    open_page(browser, f"{base}/{product['type']}/{product['name']}")
    assert "您已获得使用授权" in browser.find_element(By.ID, "sh-access-granted").text
    assert browser.find_elements(By.CSS_SELECTOR, ".sh-preview-table")  # rows now shown
    status, body = fetch(resource["url"], citizen["token"])
    assert status == 200 and "行政处罚" in body.decode("gbk")
    # Nobody else.
    for token in (None, bystander["token"]):
        assert fetch(resource["url"], token)[0] == 403
    rows = f"{base}/api/3/action/datastore_search?resource_id={resource['id']}&limit=1"
    assert fetch(rows, bystander["token"])[0] == 403 and fetch(rows, citizen["token"])[0] == 200

    # The audit trail shows each step, and exports.
    log_in(browser, base, reviewer["name"], reviewer["password"])
    open_page(browser, f"{base}/access/audit?request_id={request_id}")
    screenshot("audit")
    actions = [tr.get_attribute("data-action")
               for tr in browser.find_elements(By.CSS_SELECTOR, "#sh-audit tbody tr")]
    assert set(actions) >= {"apply", "agreement_accept", "approve", "download", "datastore_query"}
    csv_url = browser.find_element(By.ID, "sh-audit-csv").get_attribute("href")
    status, exported = fetch(csv_url, reviewer["token"])
    assert status == 200 and exported.decode("utf-8-sig").count("\n") == len(actions) + 1
    assert fetch(csv_url, bystander["token"])[0] == 403

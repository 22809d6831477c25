"""Every page type in Chinese and in English, as a citizen's browser shows
it: no interface text in the other language (the data itself, such as a
product's title or a department's description, excepted), CKAN's
JavaScript translations loaded, no error in the console, and no WCAG 2.1 AA
violation that axe-core (from the npm registry, installed by `make install`
into .local/) finds. Search facets and the search form work by keyboard."""
from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from conftest import api
from portal_testing import ROOT

pytestmark = pytest.mark.browser

AXE = ROOT / ".local" / "npm" / "axe-core" / "axe.min.js"

# Page types; "{product}" and the like are filled in from the demo.
PAGES = {
    "home": "/",
    "search": "/dataset/?q=养老",
    "product": "/{product_type}/{product}",
    "resource": "/{product_type}/{product}/resource/{resource}",
    "departments": "/organization/",
    "department": "/organization/{department}",
    "applications": "/application/",
    "application": "/application/{application}",
    "statistics": "/statistics",
    "api-guide": "/api-guide",
    "login": "/user/login",
    "not-found": "/no-such-page",
    "product-not-found": "/dataset/no-such-product",
}
LANGUAGES = {"zh": "", "en": "/en"}

# Words that are the same in both languages: names of formats, protocols
# and standards, and the language switch's own label.
SHARED_WORDS = {
    "api", "csv", "json", "xlsx", "xls", "xml", "rdf", "dcat", "turtle", "ttl", "ckan", "url", "http",
    "https", "sql", "get", "post", "html", "pdf", "zip", "doc", "docx", "wms", "wfs", "shp", "geojson",
    "echarts", "id", "datastore", "package", "show", "search", "resource", "limit", "offset", "filters",
    "rss", "atom", "svg", "png", "jpg", "www", "gov", "sh", "cn", "tsv", "txt", "odata", "rest",
    "python", "fq", "rows", "q", "wechat", "action",
}
CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff01-\uff5e]")
# An English word; not a part of an address, file name or identifier.
WORD = re.compile(r"(?<![\w/@:=&?.])[A-Za-z]{2,}(?:'[a-z]+)?(?![\w/@:=&?]|\.\w)")

# Visible text and the text a screen reader reads, chunk by chunk, outside
# code samples and outside elements marked as another language.
VISIBLE_TEXT = """
const pageLang = (document.documentElement.lang || '').slice(0, 2);
const chunks = [];
const skip = el => el.closest('script, style, noscript, code, pre, kbd, samp, svg, [hidden]')
  || (el.closest('[lang]') && el.closest('[lang]').getAttribute('lang').slice(0, 2) !== pageLang);
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const text = node.nodeValue.replace(/\\s+/g, ' ').trim();
  const el = node.parentElement;
  if (!text || !el || skip(el)) continue;
  const style = getComputedStyle(el);
  const shown = el.getClientRects().length && style.visibility !== 'hidden';
  const forReaders = el.closest('.visually-hidden, .sr-only');
  if (shown || forReaders) chunks.push(text);
}
for (const el of document.querySelectorAll('[title], [placeholder], [aria-label], img[alt], input[type=submit][value], input[type=button][value]')) {
  if (skip(el)) continue;
  for (const name of ['title', 'placeholder', 'aria-label', 'alt', 'value']) {
    if (name === 'value' && el.tagName !== 'INPUT') continue;
    const value = (el.getAttribute(name) || '').trim();
    if (value) chunks.push(value);
  }
}
chunks.push(document.title);
return chunks;
"""


def other_language_text(chunks: list[str], language: str, data: str) -> list[str]:
    """The chunks in the other language than ``language``; a chunk that is
    (part of) a data value is data, whatever its language."""
    found = []
    for chunk in chunks:
        text = chunk.strip().rstrip("…").rstrip(".").strip()
        if not text or text in data:
            continue
        # Remove the data values the chunk quotes (a title in a page title).
        if language == "en":
            if CJK.search(text) and not all(part in data for part in CJK_RUNS.findall(text)):
                found.append(chunk)
        else:
            words = [w for w in WORD.findall(text) if w.lower() not in SHARED_WORDS and not w.isupper()]
            if words and not all(w in data for w in words):
                found.append(chunk)
    return sorted(set(found))


CJK_RUNS = re.compile(r"[^\x00-\x7f]*[\u3400-\u9fff][^\x00-\x7f]*")


def data_values(base: str) -> str:
    """Every string of the catalog's data: products, their resources and
    fields, departments, applications (one text to search in)."""
    values: list[str] = []

    def collect(value):
        if isinstance(value, str):
            values.append(re.sub(r"\s+", " ", value).strip())
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    start = 0
    while True:
        page = api(base, "package_search", q="*:*", fq="dataset_type:*", rows=1000, start=start,
                   include_private=False)
        collect(page["results"])
        for product in page["results"]:
            for resource in product.get("resources", []):
                if resource.get("datastore_active") and product.get("open_condition") != "conditional":
                    rows = api(base, "datastore_search", resource_id=resource["id"], limit=50)
                    collect([field["id"] for field in rows["fields"]])
                    collect([str(v) for record in rows["records"] for v in record.values()])
        start += 1000
        if start >= page["count"]:
            break
    collect(api(base, "package_search", fq="+dataset_type:application", rows=1000)["results"])
    collect(api(base, "organization_list", all_fields=True, limit=1000))
    return "\n".join(values)


@pytest.fixture(scope="module")
def page_urls(portal):
    base = portal["base"]
    product = api(base, "package_search", q='title:"上海市养老机构"', rows=1)["results"][0]
    resource = next(r for r in product["resources"] if r.get("datastore_active"))
    application = api(base, "package_search", fq="+dataset_type:application", rows=1)["results"][0]
    values = {"product_type": product["type"], "product": product["name"], "resource": resource["id"],
              "department": product["organization"]["name"], "application": application["name"]}
    return {kind: path.format(**values) for kind, path in PAGES.items()}


@pytest.fixture(scope="module")
def catalog_data(portal):
    return data_values(portal["base"])


@pytest.fixture(scope="module")
def axe_source():
    assert AXE.exists(), f"{AXE} is missing: run `make install` (it vendors axe-core from the npm registry)"
    return AXE.read_text(encoding="utf-8")


def open_page(browser, url):
    browser.get_log("browser")  # forget the previous page's messages
    browser.get(url)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


def console_errors(browser) -> list[str]:
    # Expected answers (the 404 page's own status) are not the page's errors.
    return [entry["message"] for entry in browser.get_log("browser")
            if entry.get("level") == "SEVERE" and "404 (not found)" not in entry["message"].lower()]


def axe_violations(browser, axe_source) -> list[str]:
    browser.execute_script(axe_source)
    browser.set_script_timeout(60)
    result = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
          .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.html.slice(0, 160))}))))
          .catch(e => done([{id: 'axe-error', help: String(e), nodes: []}]));""")
    return [f"{v['id']} ({v['impact']}): {v['help']}\n      " + "\n      ".join(v["nodes"]) for v in result]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", PAGES)
def test_page_speaks_one_language_and_passes_axe(portal, browser, page_urls, catalog_data, axe_source,
                                                 screenshot, kind, language):
    url = portal["base"] + LANGUAGES[language] + page_urls[kind]
    open_page(browser, url)
    screenshot(f"{kind}-{language}")
    problems = []
    lang = browser.find_element(By.TAG_NAME, "html").get_attribute("lang")
    if not lang.startswith(language):
        problems.append(f"<html lang={lang!r}>")
    stray = other_language_text(browser.execute_script(VISIBLE_TEXT), language, catalog_data)
    problems += [f"text in the other language: {chunk!r}" for chunk in stray]
    problems += [f"console: {message}" for message in console_errors(browser)]
    problems += [f"axe: {violation}" for violation in axe_violations(browser, axe_source)]
    assert not problems, f"{kind} ({language}) {url}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_ckan_javascript_strings_load_in_the_page_language(portal, browser, language):
    # The sign-in page runs CKAN's scripts (a visitor's search, product and
    # home pages run none of them: h.sh_light_page).
    open_page(browser, portal["base"] + LANGUAGES[language] + "/user/login")
    lang = browser.find_element(By.TAG_NAME, "html").get_attribute("lang")
    answer = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/i18n/' + document.documentElement.lang)
          .then(r => r.text().then(body => done({status: r.status, body: body})));""")
    assert answer["status"] == 200, (lang, answer)
    catalog = json.loads(answer["body"])
    if language == "zh":
        assert any(isinstance(v, list) and CJK.search(str(v[-1])) for v in catalog.values()), catalog
        # The translations are in use: CKAN's scripts translate with them.
        WebDriverWait(browser, 30).until(lambda d: d.execute_script(
            "return window.ckan && ckan.i18n && ckan.i18n._('Upload') !== 'Upload'"))
    assert not console_errors(browser)


def test_search_facets_and_form_work_by_keyboard_alone(portal, browser):
    """Tab to the search box, type and press Enter; Tab to a facet and press
    Enter: the results narrow, without a mouse."""
    open_page(browser, portal["base"] + "/dataset/")

    def tab_to(wanted, most: int):
        for _ in range(most):
            ActionChains(browser).send_keys(Keys.TAB).perform()
            active = browser.switch_to.active_element
            if wanted(active):
                return active
        return None

    box = tab_to(lambda el: el.get_attribute("id") == "field-giant-search", 80)
    assert box is not None, "the search box is not reachable by Tab"
    ActionChains(browser).send_keys("养老", Keys.ENTER).perform()
    WebDriverWait(browser, 30).until(lambda d: "q=" in d.current_url)
    assert "养老" in urllib.parse.unquote(browser.current_url)
    before = browser.current_url
    facet = tab_to(lambda el: "data_domain=" in (el.get_attribute("href") or ""), 150)
    assert facet is not None, "no facet is reachable by Tab"
    # The focused facet is visibly marked.
    outline = browser.execute_script(
        "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth, s.boxShadow];",
        facet)
    assert (outline[0] != "none" and outline[1] != "0px") or outline[2] != "none", outline
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    WebDriverWait(browser, 30).until(lambda d: d.current_url != before)
    assert "data_domain=" in browser.current_url
    assert browser.find_elements(By.CSS_SELECTOR, ".dataset-heading a")


@pytest.mark.parametrize("language", LANGUAGES)
def test_product_page_shows_only_filled_fields_and_its_department(portal, browser, page_urls, language):
    open_page(browser, portal["base"] + LANGUAGES[language] + page_urls["product"])
    rows = browser.find_elements(By.CSS_SELECTOR, ".additional-info tbody tr")
    assert rows
    empty = [row.find_element(By.TAG_NAME, "th").text for row in rows
             if not row.find_element(By.TAG_NAME, "td").text.strip()]
    assert empty == []
    department = browser.find_element(By.ID, "organization-info").text
    assert "no description" not in department
    summary = browser.find_element(By.CSS_SELECTOR, "#organization-info .description").text
    assert ("publishes" in summary) if language == "en" else ("在本平台开放" in summary or "。" in summary)


@pytest.mark.parametrize("language", LANGUAGES)
def test_product_page_is_described_linked_and_shared(portal, browser, page_urls, language):
    """Search engines and link previews read the product's own description,
    its canonical address and its address in the other language; a Chinese
    reader shares by WeChat (the page's QR code, drawn by the portal) or
    Weibo, an English reader by X or Facebook."""
    import segno

    base, path = portal["base"], page_urls["product"]
    product = api(base, "package_show", id=path.rsplit("/", 1)[-1])
    url = base + LANGUAGES[language] + path
    open_page(browser, url)

    def head(selector, attribute="content"):
        return browser.find_element(By.CSS_SELECTOR, selector).get_attribute(attribute)

    description = head("meta[name=description]")
    assert description and description[:12] in re.sub(r"\s+", " ", product["notes"])
    assert head("link[rel=canonical]", "href") == url
    assert head("link[rel=alternate][hreflang=zh-Hans]", "href") == base + path
    assert head("link[rel=alternate][hreflang=en]", "href") == base + "/en" + path
    assert head("link[rel=alternate][hreflang=x-default]", "href") == base + path
    assert head("meta[property='og:title']") == product["title"]
    assert head("meta[property='og:description']") == description
    assert head("meta[property='og:url']") == url
    assert head("meta[property='og:locale']") == ("zh_CN" if language == "zh" else "en_US")
    share = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#sh-share a")]
    if language == "zh":
        assert len(share) == 1 and share[0].startswith("https://service.weibo.com/share/share.php?url=")
        drawn = segno.make(url, error="m").svg_inline(scale=3, border=2)
        assert head("#sh-wechat svg path", "d") == re.search(r' d="([^"]+)"', drawn).group(1)
        assert "微信" in browser.find_element(By.ID, "sh-wechat").text
    else:
        assert [link.split("/")[2] for link in share] == ["x.com", "www.facebook.com"]
        assert not browser.find_elements(By.ID, "sh-wechat")


def test_the_sitemap_lists_every_public_product_once(portal):
    sitemap = urllib.request.urlopen(portal["base"] + "/sitemap.xml", timeout=60).read().decode()
    listed = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    products = api(portal["base"], "package_search", rows=1000, fl="name,dataset_type")["results"]
    for product in products:
        assert f"{portal['base']}/{product['dataset_type']}/{product['name']}" in listed, product["name"]
    assert len(listed) == len(set(listed))
    product = products[0]
    address = f"{portal['base']}/{product['dataset_type']}/{product['name']}"
    assert f'hreflang="en" href="{portal["base"]}/en/{product["dataset_type"]}/{product["name"]}"' in sitemap
    assert f'<loc>{address}</loc><xhtml:link rel="alternate" hreflang="zh-Hans" href="{address}"/>' in sitemap


def test_a_citizen_applies_for_conditional_data_by_keyboard_alone(portal, browser):
    """Sign in and apply for a conditionally open product with the keyboard
    only: Tab to each control, type, Space on the agreement, Enter to send."""
    import datetime as dt
    import secrets

    base, token = portal["base"], portal["admin"]["token"]
    password = secrets.token_urlsafe(12)
    api(base, "user_create", token, {"name": "keyboard-citizen", "email": "keyboard-citizen@localhost",
                                      "password": password})
    product = next(p for p in api(base, "package_search", fq="+open_condition:conditional", rows=20)["results"]
                   if p["title"] != "双公示-行政处罚结果信息")
    browser.delete_all_cookies()
    open_page(browser, f"{base}/{product['type']}/{product['name']}")

    def tab_to(element_id, most=150):
        for _ in range(most):
            ActionChains(browser).send_keys(Keys.TAB).perform()
            if browser.switch_to.active_element.get_attribute("id") == element_id:
                return
        raise AssertionError(f"#{element_id} is not reachable by Tab on {browser.current_url}")

    def type_keys(*keys):
        ActionChains(browser).send_keys(*keys).perform()

    try:
        tab_to("sh-apply-login")
        type_keys(Keys.ENTER)
        WebDriverWait(browser, 30).until(lambda d: "/user/login" in d.current_url)
        tab_to("field-login")
        type_keys("keyboard-citizen")
        tab_to("field-password", 5)
        type_keys(password, Keys.ENTER)
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "sh-apply-form"))
        tab_to("field-purpose")
        type_keys("统计本市相关行业的分布")
        tab_to("field-intended-use", 3)
        type_keys("课题组内部分析，只发布汇总数")
        tab_to("field-applicant-org", 3)
        type_keys("同济大学")
        tab_to("field-period-end", 3)
        until = dt.date.today() + dt.timedelta(days=30)
        # The date's fields come in the browser's locale order (month and
        # day move on after two digits; the year takes up to six).
        order = browser.execute_script("""
            return new Intl.DateTimeFormat().formatToParts(new Date(2026, 11, 31))
              .map(p => p.type).filter(t => ['year', 'month', 'day'].includes(t));""")
        for part in order:
            if part == "year":
                type_keys(f"{until.year:04d}", Keys.ARROW_RIGHT)
            else:
                type_keys(f"{getattr(until, part):02d}")
        assert browser.find_element(By.ID, "field-period-end").get_attribute("value") == until.isoformat()
        tab_to("field-accept", 10)
        type_keys(Keys.SPACE)
        assert browser.find_element(By.ID, "field-accept").is_selected()
        tab_to("sh-apply-submit", 5)
        type_keys(Keys.ENTER)
        WebDriverWait(browser, 30).until(lambda d: "/access/request/" in d.current_url)
        assert browser.find_element(By.ID, "sh-request").text
    finally:
        open_page(browser, base + "/user/_logout")
        browser.delete_all_cookies()


@pytest.mark.parametrize("language", LANGUAGES)
def test_signed_in_citizen_pages_speak_one_language_and_pass_axe(portal, browser, catalog_data, axe_source,
                                                                 screenshot, language):
    """The conditional-access pages a signed-in citizen sees: a conditional
    product, its application form, the citizen's own requests."""
    import secrets

    base, token = portal["base"], portal["admin"]["token"]
    name = f"walking-citizen-{language}"
    password = secrets.token_urlsafe(12)
    api(base, "user_create", token, {"name": name, "email": f"{name}@localhost", "password": password})
    product = api(base, "package_search", fq="+open_condition:conditional", rows=1)["results"][0]
    prefix = LANGUAGES[language]
    browser.delete_all_cookies()
    open_page(browser, base + "/user/login")
    browser.find_element(By.ID, "field-login").send_keys(name)
    browser.find_element(By.ID, "field-password").send_keys(password)
    browser.find_element(By.ID, "field-password").submit()
    WebDriverWait(browser, 30).until(lambda d: "/user/login" not in d.current_url)
    problems = []
    try:
        for kind, path in (("conditional-product", f"/{product['type']}/{product['name']}"),
                           ("apply", f"/dataset/{product['name']}/apply"), ("my-requests", "/access/mine")):
            url = base + prefix + path
            open_page(browser, url)
            screenshot(f"{kind}-{language}")
            # The citizen's own name is data too.
            found = [f"text in the other language: {chunk!r}" for chunk in other_language_text(
                browser.execute_script(VISIBLE_TEXT), language, catalog_data + "\n" + name)]
            found += [f"console: {message}" for message in console_errors(browser)]
            found += [f"axe: {violation}" for violation in axe_violations(browser, axe_source)]
            problems += [f"{kind} {url}: {problem}" for problem in found]
    finally:
        open_page(browser, base + "/user/_logout")
        browser.delete_all_cookies()
    assert not problems, "\n  ".join(problems)

"""A citizen's path through the portal in headless Chromium: search in
Chinese, a facet, a product with its table preview, a download, English,
a data application, the statistics page; on a desktop and a phone. And a
conditionally open product of the real catalog: a citizen applies, the
department's admin approves, the citizen downloads, nobody else can, and
the audit trail shows each step. (One module: the served portal and its
demo are set up once per module.)"""
import datetime as dt
import io
import json
import re
import secrets
import urllib.error
import urllib.request

import pytest
import rdflib
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import api, log_in, log_out, open_page, wait_for

pytestmark = pytest.mark.browser


def text_of(browser) -> str:
    return browser.find_element(By.TAG_NAME, "body").text


def test_home_shows_departments_domains_apps_and_figures_in_chinese(portal, browser, screenshot):
    open_page(browser, portal["base"] + "/")
    screenshot("home")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang").startswith("zh")
    figures = int(browser.find_element(By.CSS_SELECTOR, "#sh-figure-products strong").text.replace(",", ""))
    assert figures == api(portal["base"], "package_search", rows=0)["count"] > 40
    domains = browser.find_elements(By.CSS_SELECTOR, "#sh-domains li")
    assert domains and "民生服务" in browser.find_element(By.ID, "sh-domains").text
    assert "上海市民政局" in browser.find_element(By.ID, "sh-departments").text
    assert "上海养老机构地图" in browser.find_element(By.ID, "sh-featured-apps").text
    assert browser.find_element(By.ID, "sh-newest").find_elements(By.TAG_NAME, "a")


def test_search_in_chinese_then_click_a_facet(portal, browser, screenshot):
    open_page(browser, portal["base"] + "/")
    box = browser.find_element(By.ID, "sh-home-search")
    box.send_keys("养老机构")
    box.submit()
    WebDriverWait(browser, 30).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".dataset-list")))
    titles = [a.text for a in browser.find_elements(By.CSS_SELECTOR, ".dataset-heading a")]
    assert "上海市养老机构" in titles
    screenshot("results")
    facet = browser.find_element(By.XPATH, "//section[contains(@class,'module')]//a[contains(@href,'data_domain=')]")
    facet_label = facet.get_attribute("title") or facet.text
    facet.click()
    WebDriverWait(browser, 30).until(EC.url_contains("data_domain="))
    screenshot("facet")
    count_after = browser.find_elements(By.CSS_SELECTOR, ".dataset-heading a")
    assert count_after and len(count_after) <= len(titles)
    assert "data_domain=" in browser.current_url and facet_label


def test_a_product_shows_fields_freshness_preview_and_api_box(portal, browser, screenshot):
    product = api(portal["base"], "package_search", q='title:"上海市养老机构"', rows=1)["results"][0]
    open_page(browser, f"{portal['base']}/{product['type']}/{product['name']}")
    screenshot("product")
    body = text_of(browser)
    assert "更新频度" in body and "数据领域" in body and "开放属性" in body
    freshness = browser.find_element(By.ID, "sh-freshness").text
    assert "最近更新" in freshness
    # The real record was last updated years ago against a yearly frequency.
    assert browser.find_element(By.ID, "sh-overdue").text.startswith("已逾期")
    table = browser.find_element(By.CSS_SELECTOR, ".sh-preview-table")
    headers = [th.text for th in table.find_elements(By.TAG_NAME, "th")]
    assert headers[:3] == ["id", "district", "street"]
    resource = next(r for r in product["resources"] if r.get("datastore_active"))
    first = api(portal["base"], "datastore_search", resource_id=resource["id"], limit=1)["records"][0]
    assert first["name"] in table.text
    api_box = browser.find_element(By.ID, "sh-api-box").text
    assert "datastore_search?resource_id=" + resource["id"] in api_box
    assert "上海养老机构地图" in browser.find_element(By.ID, "sh-apps-using").text


def test_a_gbk_table_previews_with_its_chinese_intact_and_downloads(portal, browser, screenshot):
    product = api(portal["base"], "package_search", q='title:"房地产开发企业资质"', rows=1)["results"][0]
    resource = next(r for r in product["resources"] if r.get("datastore_active"))
    rows = api(portal["base"], "datastore_search", resource_id=resource["id"], limit=5)
    assert rows["total"] == 463
    assert "企业名称" in [f["id"] for f in rows["fields"]]
    assert all("公司" in r["企业名称"] for r in rows["records"])
    open_page(browser, f"{portal['base']}/{product['type']}/{product['name']}/resource/{resource['id']}")
    screenshot("resource")
    preview = browser.find_element(By.CSS_SELECTOR, ".sh-preview-table").text
    for record in rows["records"]:
        assert record["企业名称"] in preview
    before = int(browser.find_element(By.ID, "sh-downloads").text) if browser.find_elements(
        By.ID, "sh-downloads") else None
    link = browser.find_element(By.CSS_SELECTOR, "a.resource-url-analytics")
    href = link.get_attribute("href")
    assert "/download/" in href
    with urllib.request.urlopen(href, timeout=30) as response:
        data = response.read()
    assert data.decode("gbk").splitlines()[0].startswith("序号")
    open_page(browser, f"{portal['base']}/{product['type']}/{product['name']}")
    downloads = int(browser.find_element(By.ID, "sh-downloads").text)
    assert downloads >= 1 and (before is None or downloads == before + 1)


def test_the_elderly_care_table_is_typed_with_a_dictionary_filter_and_geojson(portal, browser, screenshot):
    product = api(portal["base"], "package_search", q='title:"上海市养老机构"', rows=1)["results"][0]
    resource = next(r for r in product["resources"] if r.get("datastore_active"))
    big = api(portal["base"], "datastore_search", resource_id=resource["id"], limit=1000,
              filters=json.dumps({"beds": {"gt": 200}}), sort="beds desc")
    assert big["total"] > 0 and all(row["beds"] > 200 for row in big["records"])
    assert [row["beds"] for row in big["records"]] == sorted((row["beds"] for row in big["records"]), reverse=True)
    open_page(browser, f"{portal['base']}/{product['type']}/{product['name']}/resource/{resource['id']}")
    screenshot("typed-table")
    dictionary = browser.find_element(By.ID, "sh-data-dictionary")
    beds = dictionary.find_element(By.CSS_SELECTOR, 'tr[data-column="beds"]')
    assert beds.get_attribute("data-type") == "integer" and "整数" in beds.text
    assert "GCJ-02" in browser.find_element(By.ID, "sh-coordinates").text
    link = browser.find_element(By.PARTIAL_LINK_TEXT, "WGS-84")
    with urllib.request.urlopen(link.get_attribute("href"), timeout=30) as response:
        collection = json.load(response)
    everything = api(portal["base"], "datastore_search", resource_id=resource["id"], limit=0)["total"]
    assert collection["coordinate_crs"] == "wgs84" and len(collection["features"]) == everything


def wait_for_points(browser, element_id: str) -> str:
    return WebDriverWait(browser, 60).until(
        lambda d: d.find_element(By.ID, element_id).get_attribute("data-points"))


def test_the_elderly_care_map_draws_every_point_and_names_it(portal, browser, screenshot):
    product = api(portal["base"], "package_search", q='title:"上海市养老机构"', rows=1)["results"][0]
    resource = next(r for r in product["resources"] if r.get("datastore_active"))
    rows = api(portal["base"], "datastore_search", resource_id=resource["id"], limit=0)["total"]
    open_page(browser, f"{portal['base']}/{product['type']}/{product['name']}")
    canvas_id = f"sh-map-{resource['id']}"
    # The map draws as a reader scrolls to it.
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", browser.find_element(By.ID, canvas_id))
    assert wait_for_points(browser, canvas_id) == str(rows)
    screenshot("map")
    canvas = browser.find_element(By.ID, canvas_id)
    points = canvas.find_elements(By.CSS_SELECTOR, "path.leaflet-interactive")
    assert len(points) == rows
    # No tile server configured for the test portal: the points draw on a plain background.
    assert "sh-map-no-tiles" in canvas.get_attribute("class") and not canvas.find_elements(By.TAG_NAME, "img")
    assert f"地图上共 {rows} 个点" in browser.find_element(By.ID, f"{canvas_id}-figure").text
    # A point opens its institution's name and beds; the number is the table's.
    shown = [p for p in points if p.is_displayed() and p.rect["width"] > 0]
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", shown[0])
    # Leaflet fades the popup in: wait until its title is visible text, as a reader sees it.
    name = WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".leaflet-popup-content strong").text)
    popup = browser.find_element(By.CSS_SELECTOR, ".leaflet-popup-content")
    screenshot("map-popup")
    table = api(portal["base"], "datastore_search", resource_id=resource["id"], limit=rows)["records"]
    beds = {str(row["beds"]) for row in table if " ".join(str(row["name"]).split()) == name}
    assert name and beds and any(b in popup.text for b in beds), popup.text


def test_the_elderly_care_product_is_found_by_district_and_by_box(portal, browser, screenshot):
    """Its extent came from its table (loaded by the job worker, then
    re-indexed): Chongming has institutions, the open sea east of it none."""
    title = "上海市养老机构"
    found = api(portal["base"], "package_search", ext_district="崇明区", rows=100)["results"]
    assert title in {p["title"] for p in found}
    sea = api(portal["base"], "package_search", ext_bbox="122.60,31.00,122.80,31.20", rows=100)["results"]
    assert title not in {p["title"] for p in sea}
    open_page(browser, f"{portal['base']}/dataset/?q=养老")
    Select(browser.find_element(By.ID, "sh-ext-district")).select_by_visible_text("崇明区")
    browser.find_element(By.CSS_SELECTOR, "#sh-spatial-filter button[type=submit]").click()
    WebDriverWait(browser, 30).until(EC.url_contains("ext_district="))
    screenshot("district")
    assert title in text_of(browser) and "q=" in browser.current_url
    assert browser.find_element(By.ID, "sh-spatial-clear")


def test_the_map_still_draws_its_points_when_the_tile_server_is_down(portal, browser):
    """The same map module, told to use a tile server nobody answers on."""
    product = api(portal["base"], "package_search", q='title:"上海市养老机构"', rows=1)["results"][0]
    resource = next(r for r in product["resources"] if r.get("datastore_active"))
    open_page(browser, f"{portal['base']}/{product['type']}/{product['name']}/resource/{resource['id']}")
    canvas = browser.find_element(By.ID, f"sh-map-{resource['id']}")
    browser.execute_script("""
        const copy = document.createElement('div');
        for (const attr of arguments[0].attributes) {
          if (!attr.name.startsWith('data-sh-map-drawn') && attr.name !== 'data-points' && attr.name !== 'id'
              && attr.name !== 'class') { copy.setAttribute(attr.name, attr.value); }
        }
        copy.id = 'sh-map-dead-tiles';
        copy.className = 'sh-map-canvas';
        copy.setAttribute('data-tiles', 'http://127.0.0.1:9/tiles/{z}/{x}/{y}.png');
        arguments[0].parentNode.appendChild(copy);
        window.shanghaiMap.draw(copy);""", canvas)
    rows = api(portal["base"], "datastore_search", resource_id=resource["id"], limit=0)["total"]
    assert wait_for_points(browser, "sh-map-dead-tiles") == str(rows)
    dead = browser.find_element(By.ID, "sh-map-dead-tiles")
    assert len(dead.find_elements(By.CSS_SELECTOR, "path.leaflet-interactive")) == rows
    WebDriverWait(browser, 30).until(lambda d: "sh-map-no-tiles" in dead.get_attribute("class"))


def test_switch_to_english_in_one_click(portal, browser, screenshot):
    product = api(portal["base"], "package_search", q='title:"上海市社区卫生服务中心基本信息"', rows=1)["results"][0]
    open_page(browser, f"{portal['base']}/{product['type']}/{product['name']}")
    assert "更新频度" in text_of(browser)
    browser.find_element(By.ID, "sh-lang-switch").click()
    WebDriverWait(browser, 30).until(EC.url_contains("/en/"))
    screenshot("english")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    body = text_of(browser)
    assert "Update frequency" in body and "Data domain" in body and "Data products" in body
    assert product["title"] in body
    browser.find_element(By.ID, "sh-lang-switch").click()
    WebDriverWait(browser, 30).until(lambda d: "/en/" not in d.current_url)
    assert "更新频度" in text_of(browser)


def test_a_data_application_links_its_products(portal, browser, screenshot):
    open_page(browser, portal["base"] + "/application/")
    screenshot("applications")
    browser.find_element(By.LINK_TEXT, "上海养老机构地图").click()
    WebDriverWait(browser, 30).until(EC.presence_of_element_located((By.ID, "sh-app-products")))
    screenshot("application")
    products = browser.find_element(By.ID, "sh-app-products").text
    assert "上海市养老机构" in products and "上海市社区卫生服务中心基本信息" in products


def test_statistics_page_draws_its_charts(portal, browser, screenshot):
    stats = json.loads(urllib.request.urlopen(portal["base"] + "/statistics.json", timeout=30).read())
    # The charts come drawn in the page as sent (no script needed to see them).
    sent = urllib.request.urlopen(portal["base"] + "/statistics", timeout=60).read().decode()
    departments = sent.split('id="sh-chart-departments"')[1].split("</figure>")[0]
    assert departments.count("<rect") == min(20, len(stats["departments"]))
    assert stats["departments"][0]["name"][:9] in departments
    open_page(browser, portal["base"] + "/statistics")
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-charts-ready") == "true")
    screenshot("statistics")
    for chart in ("departments", "domains", "open", "frequency", "freshness", "downloads"):
        svg = browser.find_elements(By.CSS_SELECTOR, f"#sh-chart-{chart} svg")
        assert svg and svg[0].size["height"] > 0, chart
    # Pointing at a chart brings ECharts in, which redraws the charts with tooltips.
    assert not browser.execute_script("return !!window.echarts")
    chart = browser.find_element(By.ID, "sh-chart-domains")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", chart)
    browser.execute_script("arguments[0].dispatchEvent(new PointerEvent('pointerover', {bubbles: true}))", chart)
    WebDriverWait(browser, 60).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-charts-live") == "true")
    assert browser.execute_script("return !!window.echarts")
    for chart in ("departments", "domains", "open", "frequency", "freshness", "downloads"):
        assert browser.find_elements(By.CSS_SELECTOR, f"#sh-chart-{chart} svg"), chart
    assert stats["figures"]["products"] == api(portal["base"], "package_search", rows=0)["count"]
    assert sum(d["value"] for d in stats["departments"]) == stats["figures"]["products"]
    assert any(f["frequency"] == "annual" and f["total"] > 0 for f in stats["freshness"])


def test_pages_without_ckan_scripts_still_open_their_menus(portal, browser):
    """Home, a product and a department load none of CKAN's JavaScript on a
    phone's behalf; the menu button, a resource's menu and the phone's
    search filters still open, and their icons still show."""
    product = api(portal["base"], "package_search", q='title:"上海市养老机构"', rows=1)["results"][0]
    browser.set_window_size(375, 800)
    try:
        open_page(browser, portal["base"] + "/")
        assert not browser.execute_script("return !!(window.jQuery || window.ckan)")
        toggler = browser.find_element(By.CSS_SELECTOR, ".navbar-toggler")
        assert toggler.find_element(By.CSS_SELECTOR, ".fa-bars").size["width"] > 0
        toggler.click()
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "main-navigation-toggle").is_displayed())
        assert toggler.get_attribute("aria-expanded") == "true"
        open_page(browser, f"{portal['base']}/organization/{product['organization']['name']}")
        show = browser.find_element(By.CSS_SELECTOR, ".show-filters")
        browser.execute_script("arguments[0].click()", show)
        WebDriverWait(browser, 10).until(lambda d: "filters-modal" in d.find_element(By.TAG_NAME, "body")
                                         .get_attribute("class"))
    finally:
        browser.set_window_size(1280, 1000)
    open_page(browser, f"{portal['base']}/{product['type']}/{product['name']}")
    opener = next(b for b in browser.find_elements(By.CSS_SELECTOR, '.resource-item [data-bs-toggle="dropdown"]')
                  if b.is_displayed())
    browser.execute_script("arguments[0].click()", opener)
    menu = opener.find_element(By.XPATH, "..").find_element(By.CSS_SELECTOR, ".dropdown-menu")
    WebDriverWait(browser, 10).until(lambda d: menu.is_displayed())
    assert menu.find_elements(By.CSS_SELECTOR, "a.dropdown-item")[0].is_displayed()
    opener.send_keys("\ue00c")  # Escape
    WebDriverWait(browser, 10).until(lambda d: not menu.is_displayed())


@pytest.mark.parametrize("path", ["/", "/dataset/?q=养老", "/statistics", "/application/", "/api-guide",
                                  "/organization/", "/en/", "product", "resource", "department"])
def test_phone_width_has_no_horizontal_scroll_and_pages_are_accessible(portal, browser, screenshot, path):
    if path in ("product", "resource", "department"):
        product = api(portal["base"], "package_search", q='title:"上海市养老机构"', rows=1)["results"][0]
        resource = next(r for r in product["resources"] if r.get("datastore_active"))
        path = {"product": f"/{product['type']}/{product['name']}",
                "resource": f"/{product['type']}/{product['name']}/resource/{resource['id']}",
                "department": f"/organization/{product['organization']['name']}"}[path]
    browser.set_window_size(375, 800)
    try:
        open_page(browser, portal["base"] + path)
        width = browser.execute_script("return window.innerWidth")
        scroll = browser.execute_script("return document.documentElement.scrollWidth")
        screenshot("phone")
        assert scroll <= width, f"{path}: {scroll}px wide on a {width}px screen"
        primary = browser.find_elements(By.CSS_SELECTOR, ".row.wrapper > .primary")
        secondary = browser.find_elements(By.CSS_SELECTOR, ".row.wrapper > .secondary")
        if primary and secondary and secondary[0].is_displayed():
            # The page's content comes before its sidebar on a phone.
            assert primary[0].location["y"] < secondary[0].location["y"], path
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang")
        for image in browser.find_elements(By.TAG_NAME, "img"):
            assert image.get_attribute("alt") is not None, image.get_attribute("src")
        unlabelled = browser.execute_script("""
            return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
              .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                            && !el.getAttribute('aria-labelledby'))
              .map(el => el.outerHTML.slice(0, 120));""")
        assert unlabelled == [], unlabelled
    finally:
        browser.set_window_size(1280, 1000)


def test_catalog_ttl_lists_public_products_and_hides_the_private_one(portal):
    graph = rdflib.Graph()
    page, names = 1, set()
    while True:
        data = urllib.request.urlopen(f"{portal['base']}/catalog.ttl?page={page}", timeout=60).read()
        before = len(graph)
        graph.parse(io.BytesIO(data), format="turtle")
        names = {str(o) for o in graph.objects(None, rdflib.URIRef("https://data.sh.gov.cn/ns/core#name"))}
        if len(graph) == before or page > 20:
            break
        page += 1
    public = set()
    start = 0
    while True:
        hits = api(portal["base"], "package_search", rows=1000, start=start, fl="name")
        public |= {h["name"] for h in hits["results"]}
        start += 1000
        if start >= hits["count"]:
            break
    assert public and public <= names
    assert portal["private"]["name"] not in names
    assert not any(n.startswith(("elderly-care-map", "health-beds")) for n in names)
    sitemap = urllib.request.urlopen(portal["base"] + "/sitemap.xml", timeout=60).read().decode()
    assert portal["private"]["name"] not in sitemap
    assert all(f"/{name}<" in sitemap for name in list(public)[:20])
    search = api(portal["base"], "package_search", q="内部花名册", rows=10)
    assert search["count"] == 0


def test_a_department_page_lists_its_products_and_harvest_health(portal, browser, screenshot):
    product = api(portal["base"], "package_search", q='title:"上海市养老机构"', rows=1)["results"][0]
    department = product["organization"]
    open_page(browser, f"{portal['base']}/organization/{department['name']}")
    screenshot("department")
    health = browser.find_element(By.ID, "sh-harvest-health").text
    assert "catalog export" in health
    # The last job's counts are its report's (records rejected are errors,
    # as the stock job stats now say too); the state follows them.
    added, updated, errored = re.search(r"(\d+) / (\d+) / (\d+)", health).groups()
    assert int(added) > 0
    assert ("正常" if errored == "0" else "有错误") in health
    count = api(portal["base"], "package_search", fq=f'owner_org:"{department["id"]}"', rows=0)["count"]
    assert f"共 {count} 个数据产品" in text_of(browser)
    assert "上海市养老机构" in [a.text for a in browser.find_elements(By.CSS_SELECTOR, ".dataset-heading a")]


def test_a_department_editor_registers_a_source_and_reads_its_report(portal, browser, screenshot,
                                                                      tmp_path_factory):
    """Through the pages: an editor of one department registers a harvest
    source for it (and is offered no other department), the scheduler runs
    it, and the job page shows the report with each rejection's reason in
    Chinese and English and a CSV of them."""

    from selenium.webdriver.support.ui import Select

    from portal_testing import load_catalog, write_export

    base, token = portal["base"], portal["admin"]["token"]
    departments = api(base, "organization_list", all_fields=True, limit=2)
    mine, other = departments[0], departments[1]
    password = secrets.token_urlsafe(12)
    api(base, "user_create", token, {"name": "dept-editor", "email": "dept-editor@localhost",
                                      "password": password})
    api(base, "organization_member_create", token, {"id": mine["id"], "username": "dept-editor",
                                                     "role": "editor"})
    editor_token = api(base, "api_token_create", token, {"user": "dept-editor", "name": "browser"})["token"]
    # Guiyang records: none is in the demo's catalog already.
    records = load_catalog("guizhou_guiyang.json")[100:112]
    records[0] = dict(records[0], 更新频率="每两天一次")
    export = write_export(tmp_path_factory.mktemp("ui-source") / "department.json", records)

    open_page(browser, base + "/user/login")
    browser.find_element(By.ID, "field-login").send_keys("dept-editor")
    browser.find_element(By.ID, "field-password").send_keys(password)
    browser.find_element(By.ID, "field-password").submit()
    WebDriverWait(browser, 30).until(lambda d: "/user/login" not in d.current_url)
    open_page(browser, base + "/dashboard/datasets")
    assert "/user/login" not in browser.current_url, "the editor is not logged in"

    open_page(browser, base + "/harvest/new")
    screenshot("new-source-page")
    assert browser.find_elements(By.ID, "field-organizations"), (browser.current_url, text_of(browser)[:800])
    owners = Select(browser.find_element(By.ID, "field-organizations"))
    offered = {option.get_attribute("value") for option in owners.options}
    assert mine["id"] in offered and other["id"] not in offered
    browser.find_element(By.ID, "field-url").send_keys(str(export))
    browser.find_element(By.ID, "field-title").send_keys("部门目录导出")
    browser.execute_script("document.getElementById('field-name').value = 'department-export';")
    browser.find_element(By.CSS_SELECTOR, "input[name=source_type][value=shanghai_agency_export]").click()
    browser.find_element(By.ID, "field-config").send_keys('{"mapping": "guiyang"}')
    owners.select_by_value(mine["id"])
    screenshot("new-source-form")
    save = browser.find_element(By.ID, "save")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", save)
    WebDriverWait(browser, 30).until(lambda d: d.current_url.rstrip("/").endswith("/harvest/department-export"))
    assert "部门目录导出" in text_of(browser)

    source = api(base, "harvest_source_show", editor_token, id="department-export")
    job = api(base, "harvest_job_create", editor_token, {"source_id": source["id"], "run": True})
    report = wait_for(lambda: (lambda r: r if r["report"]["outcome"] != "running" else None)(
        api(base, "shanghai_harvest_report", editor_token, id=job["id"])), "the source's job", 300, 2)["report"]
    assert (report["records_read"], report["added"], report["rejected"]) == (12, 11, 1)
    # A department's own source publishes in that department only, whatever
    # department its records name.
    published = api(base, "package_search", editor_token, rows=0,
                    fq=f'+harvest_source_id:"{source["id"]}" +owner_org:"{mine["id"]}"')
    assert published["count"] == 11

    open_page(browser, f"{base}/harvest/department-export/job/{job['id']}")
    screenshot("job-report")
    page = text_of(browser)
    assert "采集报告" in page and "Harvest report" in page
    rejections = browser.find_element(By.CSS_SELECTOR, ".shanghai-rejections").text
    assert "每两天一次" in rejections and "update_frequency" in rejections and "unmapped-value" in rejections
    csv_link = browser.find_element(By.PARTIAL_LINK_TEXT, "CSV").get_attribute("href")
    request = urllib.request.Request(csv_link, headers={"Authorization": editor_token})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert "每两天一次" in response.read().decode("utf-8-sig")

    open_page(browser, base + "/user/_logout")
    browser.delete_all_cookies()


# --------------------------------------------------------------------------
# A conditionally open product: apply, approve, download, audited


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

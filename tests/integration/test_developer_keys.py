"""Developer keys and quotas, end to end: a person registers an application
and gets its key once; two real web processes (gunicorn) share one Redis
count, so the limit holds across them: 429 with Retry-After and the reason
in Chinese and English after the limit, a key's limit above the anonymous
one, a revoked key refused at once; a conditional product's data follows
the key owner's grant; usage per product and key for the department's
admins only, public totals on the product page and /statistics."""
from __future__ import annotations

import datetime as dt
import json
import re
import socket
import urllib.error
import urllib.request

import pytest

import ckan.model as model
import ckan.plugins as plugins
import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from portal_testing import empty_database, make_department, site_context, start_portal, stop_portal

ANONYMOUS_LIMIT = 4
KEY_LIMIT = 7
# Long enough that no test outlasts a window.
WINDOW = 3600


@pytest.fixture(scope="module")
def world(reset_db, migrate_db_for, reset_index):
    plugins.load_all()
    empty_database(reset_db, migrate_db_for, reset_index)
    department = make_department(name="mzj", title="上海市民政局")
    other_department = make_department(name="sthj", title="上海市生态环境局")
    people = {"developer": factories.User(fullname="李开发"), "admin": factories.User(),
              "other_admin": factories.User(), "editor": factories.User(), "stranger": factories.User()}
    for who, org, role in (("admin", department, "admin"), ("other_admin", other_department, "admin"),
                           ("editor", department, "editor")):
        helpers.call_action("organization_member_create", id=org["id"], username=people[who]["name"], role=role)
    product, resource = make_product(people["editor"], department, "elderly-care-institutions", "养老机构名录",
                                     "unconditional", [{"name": "上海市第一社会福利院", "beds": 300},
                                                       {"name": "长宁区虹桥养老院", "beds": 120}])
    return {"department": department, "people": people, "product": product, "resource": resource,
            "app": helpers._get_test_app()}


def make_product(editor: dict, department: dict, name: str, title: str, condition: str,
                 rows: list[dict]) -> tuple[dict, dict]:
    """A product made by the department's editor, with one table of ``rows``
    in the DataStore; returns it and its resource."""
    product = helpers.call_action(
        "package_create", context={"user": editor["name"], "ignore_auth": False}, name=name, title=title,
        owner_org=department["id"], data_domain="social-development", update_frequency="monthly",
        open_condition=condition, resources=[{"url": f"https://data.example.gov.cn/{name}.csv", "name": title,
                                              "format": "CSV"}])
    resource = product["resources"][0]
    helpers.call_action("datastore_create", context=site_context(), resource_id=resource["id"], force=True,
                        fields=[{"id": field, "type": "int" if isinstance(value, int) else "text"}
                                for field, value in rows[0].items()], records=rows)
    return product, resource


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def two_portals(world, ckan_ini, tmp_path_factory):
    """Two web processes of the portal with low limits, sharing the test
    stack's PostgreSQL and Redis as production's processes do."""
    folder = tmp_path_factory.mktemp("quota")
    ini = folder / "quota.ini"
    ini.write_text(
        f"[app:main]\nuse = config:{ckan_ini.resolve()}\n"
        f"ckanext.shanghai.ratelimit.anonymous_per_window = {ANONYMOUS_LIMIT}\n"
        f"ckanext.shanghai.ratelimit.key_per_window = {KEY_LIMIT}\n"
        f"ckanext.shanghai.ratelimit.window_seconds = {WINDOW}\n", encoding="utf-8")
    processes, bases = [], []
    try:
        for n in range(2):
            port = _free_port()
            processes.append(start_portal(ini, port, folder / f"web{n}.log"))
            bases.append(f"http://127.0.0.1:{port}")
        yield bases
    finally:
        for process in processes:
            stop_portal(process)


@pytest.fixture
def fresh_counts():
    """No request of an earlier test counts against this one's limits."""
    from ckanext.shanghai.keys import limiter, usage

    redis = usage.redis()
    for name in redis.scan_iter(f"{limiter.COUNTER_PREFIX}*"):
        redis.delete(name)


def fetch(url: str, key: str | None = None) -> tuple[int, dict, str]:
    request = urllib.request.Request(url, headers={"Authorization": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode("utf-8")


def register(world, who="developer", name="养老地图") -> dict:
    return helpers.call_action("shanghai_application_create",
                               context={"user": world["people"][who]["name"], "ignore_auth": False},
                               name=name, description="在地图上标出全市养老机构", contact="dev@example.com")


def show_url(base: str, world) -> str:
    return f"{base}/api/3/action/package_show?id={world['product']['name']}"


def assert_limited(status: int, headers: dict, body: str, limit: int) -> None:
    assert status == 429, body
    assert 0 < int(headers["Retry-After"]) <= WINDOW
    error = json.loads(body)["error"]
    assert error["code"] == "rate-limited"
    assert f"{limit} 次" in error["message_zh"] and f"{limit} per {WINDOW} seconds" in error["message_en"]
    assert error["retry_after"] == int(headers["Retry-After"])


def test_the_anonymous_limit_holds_across_two_web_processes(world, two_portals, fresh_counts):
    first, second = two_portals
    answers = [fetch(show_url((first, second)[n % 2], world)) for n in range(ANONYMOUS_LIMIT)]
    assert [status for status, _, _ in answers] == [200] * ANONYMOUS_LIMIT
    # Each process served half; the next call is over the shared limit on either.
    status, headers, body = fetch(show_url(first, world))
    assert_limited(status, headers, body, ANONYMOUS_LIMIT)
    assert "注册应用" in json.loads(body)["error"]["message_zh"]
    status, headers, body = fetch(show_url(second, world))
    assert_limited(status, headers, body, ANONYMOUS_LIMIT)
    # Downloads count too, and are refused the same way.
    status, headers, _ = fetch(f"{second}/datastore/dump/{world['resource']['id']}")
    assert status == 429 and int(headers["Retry-After"]) > 0
    # Pages are not limited.
    status, _, _ = fetch(f"{first}/dataset/{world['product']['name']}")
    assert status == 200


def test_a_key_has_its_own_higher_limit_and_a_revoked_key_is_refused(world, two_portals, fresh_counts):
    first, second = two_portals
    application = register(world)
    key = application["key"]
    # Anonymous callers from this address are used up...
    for n in range(ANONYMOUS_LIMIT):
        assert fetch(show_url(first, world))[0] == 200
    assert fetch(show_url(first, world))[0] == 429
    # ... while the key has its own, higher count, shared by both processes.
    statuses = [fetch(show_url((first, second)[n % 2], world), key)[0] for n in range(KEY_LIMIT)]
    assert statuses == [200] * KEY_LIMIT
    status, headers, body = fetch(show_url(second, world), key)
    assert_limited(status, headers, body, KEY_LIMIT)
    assert "注册应用" not in json.loads(body)["error"]["message_zh"]

    # A second key of the same person counts apart from the first.
    other = register(world, name="养老床位提醒")["key"]
    assert fetch(show_url(first, world), other)[0] == 200
    helpers.call_action("shanghai_application_revoke",
                        context={"user": world["people"]["developer"]["name"], "ignore_auth": False},
                        id=application["id"])
    for base in two_portals:
        status, _, body = fetch(show_url(base, world), key)
        assert status == 401, body
        error = json.loads(body)["error"]
        assert error["code"] == "invalid-key" and "撤销" in error["message_zh"] and "revoked" in error["message_en"]
    assert fetch(show_url(second, world), other)[0] == 200


def test_registering_an_application_shows_its_key_once(world):
    app = world["app"]
    person = world["people"]["stranger"]
    token = factories.APIToken(user=person["name"])["token"]
    headers = {"Authorization": token}
    page = app.post("/developer", data={"name": "公交到站", "description": "", "contact": "13800000000"},
                    headers=headers)
    assert page.status_code == 201
    assert "no-store" in page.headers["Cache-Control"]
    html = page.get_data(as_text=True)
    key = re.search(r'<textarea[^>]*id="sh-key"[^>]*>([^<]+)</textarea>', html).group(1).strip()
    # The key works for the API as its owner...
    me = app.get("/api/3/action/shanghai_application_list", headers={"Authorization": key})
    assert [a["name"] for a in me.json["result"]] == ["公交到站"]
    # ... and the list of applications never shows it again.
    listing = app.get("/developer", headers=headers).get_data(as_text=True)
    assert "公交到站" in listing and key not in listing
    # A name is required: the form says so in the page's language.
    refused = app.post("/developer", data={"name": "", "contact": "x"}, headers=headers)
    assert refused.status_code == 400 and "必填" in refused.get_data(as_text=True)
    english = app.get("/en/developer", headers=headers).get_data(as_text=True)
    assert "My applications" in english and "我的应用" not in english


def test_a_key_reads_a_conditional_product_only_under_its_owners_grant(world, two_portals, fresh_counts):
    """The key is its owner's: the conditional gate lets it through exactly
    when the account holds an approved grant, as it does for the account."""
    department = world["department"]
    people = world["people"]
    product, resource = make_product(people["editor"], department, "elderly-care-subsidies", "养老服务补贴发放",
                                     "conditional", [{"district": "长宁区"}])
    key = register(world, name="补贴分析")["key"]
    url = f"{two_portals[0]}/api/3/action/datastore_search?resource_id={resource['id']}"
    assert fetch(url, key)[0] == 403
    developer = {"user": people["developer"]["name"], "ignore_auth": False}
    agreement = helpers.call_action("shanghai_access_agreement_show", context=dict(developer),
                                    package_id=product["id"])
    asked = helpers.call_action(
        "shanghai_access_request_create", context=dict(developer), package_id=product["name"],
        purpose="研究补贴的区域分布", intended_use="内部分析", applicant_org="某科技公司",
        period_end=(dt.date.today() + dt.timedelta(days=60)).isoformat(),
        agreement_version=agreement["version"], accept_agreement=True)
    helpers.call_action("shanghai_access_request_decide", context={"user": people["admin"]["name"],
                                                                   "ignore_auth": False},
                        id=asked["id"], decision="approve")
    status, _, body = fetch(url, key)
    assert status == 200 and json.loads(body)["result"]["records"][0]["district"] == "长宁区"
    # Another person's key does not share the grant.
    stranger_key = register(world, who="stranger", name="别人的应用")["key"]
    assert fetch(url, stranger_key)[0] == 403


def test_usage_is_shown_to_the_department_and_totals_to_everyone(world, two_portals, fresh_counts):
    from ckanext.shanghai.keys import usage

    usage.flush()  # what earlier tests counted
    before = helpers.call_action("shanghai_usage_totals", package_id=world["product"]["id"])
    first, second = two_portals
    key = register(world, name="养老机构导航")["key"]
    for base in (first, second, first):
        assert fetch(show_url(base, world), key)[0] == 200
    assert fetch(f"{second}/datastore/dump/{world['resource']['id']}", key)[0] == 200
    assert fetch(f"{first}/api/3/action/datastore_search?resource_id={world['resource']['id']}")[0] == 200
    # The web processes counted in Redis; the flush job moves it to PostgreSQL.
    assert usage.flush() > 0
    model.Session.remove()

    after = helpers.call_action("shanghai_usage_totals", package_id=world["product"]["id"])
    assert after["api_calls"] == before["api_calls"] + 4
    assert after["downloads"] == before["downloads"] + 1
    assert after["keys"] == before["keys"] + 1

    app = world["app"]
    tokens = {who: factories.APIToken(user=user["name"])["token"] for who, user in world["people"].items()}
    usage_url = f"/organization/{world['department']['name']}/usage"
    page = app.get(usage_url, headers={"Authorization": tokens["admin"]})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    row = re.search(r'<tr data-package="elderly-care-institutions">(.*?)</tr>', html, re.S).group(1)
    assert "养老机构名录" in row
    assert int(re.search(r'class="sh-api-calls">(\d+)<', row).group(1)) == after["api_calls"]
    assert "养老机构导航" in html and "dev@example.com" in html
    # Not for an editor of the department, another department's admin, or anyone else.
    for who in ("editor", "other_admin", "stranger", "developer"):
        assert app.get(usage_url, headers={"Authorization": tokens[who]}).status_code == 403, who
    assert app.get(usage_url, follow_redirects=False).status_code == 302
    with pytest.raises(tk.NotAuthorized):
        helpers.call_action("shanghai_usage_show", context={"user": world["people"]["other_admin"]["name"],
                                                            "ignore_auth": False}, id=world["department"]["id"])

    product_page = app.get(f"/dataset/{world['product']['name']}").get_data(as_text=True)
    assert f'id="sh-usage-api-calls">{after["api_calls"]}<' in product_page
    assert "sh-usage-department" not in product_page  # the department's link is for its admins
    statistics = app.get("/statistics").get_data(as_text=True)
    total = helpers.call_action("shanghai_usage_totals")
    assert total["api_calls"] >= after["api_calls"]
    assert f'id="sh-stat-api-calls">{total["api_calls"]}<' in statistics

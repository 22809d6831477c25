"""Configuration hardening as a user or operator notices it: forms refuse a
POST without their CSRF token; every install gets its own secrets; no error
page or API answer names the Solr or database address (Solr or PostgreSQL
down, or a bad query), a malformed query is answered as the asker's error,
and the portal serves again once PostgreSQL is back; uploads are data files
within the size limit, never web pages, SVG or programs."""
from __future__ import annotations

import importlib.util
import io
import json
import re
import signal
import stat
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import pytest

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from portal_testing import ROOT, make_department, port_of, start_service, stop_service

# --- CSRF --------------------------------------------------------------------


def _csrf_token(html: str) -> str:
    match = re.search(r'name="_csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(r'value="([^"]+)"[^>]*name="_csrf_token"', html)
    assert match, "the form carries no CSRF token"
    return match.group(1)


@pytest.mark.usefixtures("with_plugins", "clean_db")
def test_a_form_post_without_its_csrf_token_is_refused(app):
    form = {"name": "csrf-citizen", "fullname": "市民", "email": "citizen@example.gov.cn",
            "password1": "Str0ng-Passw0rd!", "password2": "Str0ng-Passw0rd!"}
    refused = app.post("/user/register", data=form, status=400)
    assert "CSRF" in refused.body
    assert model.User.get("csrf-citizen") is None
    # Not even after an anonymous visit to the form (CKAN 2.12 exempts a view
    # from the check for good once a request without a session reaches it).
    app.get("/user/register")
    app.post("/user/register", data=form, status=400)
    assert model.User.get("csrf-citizen") is None

    # The same form with the token the page gave is taken: the refusal above
    # was the token's doing, not the form's.
    token = _csrf_token(app.get("/user/register").body)
    app.post("/user/register", data=dict(form, _csrf_token=token))
    model.Session.remove()
    assert model.User.get("csrf-citizen") is not None


# --- secrets per install ----------------------------------------------------------


def _load_stack():
    """The local stack launcher's package (config/stack), as `make` runs it."""
    sys.path.insert(0, str(ROOT / "config"))
    try:
        return importlib.import_module("stack")
    finally:
        sys.path.remove(str(ROOT / "config"))


def _render(stack, monkeypatch, local: Path) -> tuple[Path, dict]:
    local.parent.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(stack.profiles, "LOCAL", local)
    profile = stack.profile_for("serve")
    ini = stack.render_ini(profile, "postgresql://ckan@127.0.0.1:1/ckan", "redis://127.0.0.1:2/0",
                           "http://127.0.0.1:3/solr/ckan")
    text = ini.read_text(encoding="utf-8")
    keys = ("SECRET_KEY", "WTF_CSRF_SECRET_KEY", "api_token.jwt.encode.secret", "api_token.jwt.decode.secret")
    values = {key: re.search(rf"^{re.escape(key)} = (.+)$", text, re.M).group(1) for key in keys}
    assert "${" not in text
    return ini, values


def test_every_install_generates_its_own_secrets(tmp_path, monkeypatch):
    stack = _load_stack()
    first_ini, first = _render(stack, monkeypatch, tmp_path / "install-1" / ".local")
    second_ini, second = _render(stack, monkeypatch, tmp_path / "install-2" / ".local")
    for key in ("SECRET_KEY", "WTF_CSRF_SECRET_KEY", "api_token.jwt.encode.secret"):
        assert len(first[key].removeprefix("string:")) >= 32
        assert first[key] != second[key], key
    assert first["SECRET_KEY"] != first["WTF_CSRF_SECRET_KEY"]
    assert first["api_token.jwt.encode.secret"] == first["api_token.jwt.decode.secret"]
    for path in (first_ini, tmp_path / "install-1" / ".local" / "secrets-serve.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # Rendering again keeps an install's secrets (sessions and tokens survive a restart).
    _, again = _render(stack, monkeypatch, tmp_path / "install-1" / ".local")
    assert again == first
    # And no secret is in the repository's template.
    template = (ROOT / "config" / "ckan.ini.template").read_text(encoding="utf-8")
    assert first["SECRET_KEY"] not in template and "SECRET_KEY = ${secret_key}" in template


# --- no service addresses in errors -------------------------------------------------


def _addresses() -> list[str]:
    solr = tk.config["solr_url"]
    database = tk.config["sqlalchemy.url"]
    solr_host = re.match(r"https?://([^/]+)", solr).group(1)
    db_host = re.search(r"@([^/]+)/", database).group(1)
    return [solr, solr_host, database, db_host, "/solr/", "postgresql://", "ckan_test"]


def _leaks(body: str) -> list[str]:
    return [address for address in _addresses() if address in body]


# A malformed q is test_a_malformed_query_answers_a_bilingual_400's.
@pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")
@pytest.mark.parametrize("url", [
    "/api/3/action/package_search?q=*:*&fq={!join from=id to=id}title:x",
    "/api/3/action/package_search?q=*:*&sort=no_such_field asc",
    "/api/3/action/package_search?q=*:*&facet.field=[\"no such\"",
    "/dataset/?q=*:*&sort=no_such_field asc",
])
def test_a_bad_query_answers_without_service_addresses(app, url):
    make_department(name="dept-a")
    response = app.get(url)
    assert response.status_code in (200, 400, 409, 503), response.status_code
    assert _leaks(response.body) == [], response.body[:2000]
    assert "Traceback" not in response.body


@pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")
@pytest.mark.parametrize("url", [
    "/api/3/action/package_search?q=医院",
    "/api/3/action/organization_show?id=dept-a&include_datasets=true",
    "/api/3/action/current_package_list_with_resources",
    "/dataset/",
    "/dataset/?q=医院",
    "/organization/dept-a",
    "/",
])
def test_with_solr_down_pages_and_api_answer_without_service_addresses(app, monkeypatch, url):
    make_department(name="dept-a")
    factories.Dataset(owner_org=model.Group.get("dept-a").id, data_domain="health", update_frequency="annual",
                      open_condition="unconditional")
    unreachable = "http://127.0.0.1:9/solr/unreachable"
    monkeypatch.setitem(tk.config, "solr_url", unreachable)
    from ckan.lib.search import common
    monkeypatch.setattr(common, "_SOLR_URL", None, raising=False)
    response = app.get(url)
    assert response.status_code in (200, 503), response.status_code
    body = response.body
    assert unreachable not in body and "127.0.0.1:9" not in body and _leaks(body) == [], body[:2000]
    assert "Traceback" not in body
    if response.status_code == 503:
        assert "检索服务暂时不可用" in body and "search service is unavailable" in body


# --- a malformed query -------------------------------------------------------------

SOLR_INTERNALS = ("SyntaxError", "org.apache", "Cannot parse", "solr", "Solr", "Traceback")


@pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")
@pytest.mark.parametrize("url", [
    "/organization/dept-a?q=title:(",
    "/dataset/?q=title:(",
    "/api/3/action/package_search?q=title:(",
])
def test_a_malformed_query_answers_a_bilingual_400(app, url):
    make_department(name="dept-a")
    response = app.get(url)
    body = response.body
    assert response.status_code == 400, body[:2000]
    assert "检索语句有误" in body and "The search query is not valid" in body
    assert [text for text in SOLR_INTERNALS if text in body] == [] and _leaks(body) == [], body[:2000]
    if url.startswith("/api/"):
        assert response.json["success"] is False and response.json["error"]["__type"] == "Search Query Error"
    # The same place with the bracket closed answers: the 400 was the query's.
    assert app.get(url.replace("title:(", "title:(x)")).status_code == 200


# --- PostgreSQL down ------------------------------------------------------------------

OUTAGE_DATASET = "outage-hospital-beds"
OUTAGE_URLS = ["/dataset/", f"/dataset/{OUTAGE_DATASET}", f"/api/3/action/package_show?id={OUTAGE_DATASET}",
               "/api/3/action/package_search?q=床位"]


def _served(base: str, path: str) -> tuple[int, str]:
    """GET ``path`` from the served portal: its status and body."""
    try:
        with urllib.request.urlopen(base + urllib.parse.quote(path, safe="/?=&:"), timeout=60) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


@pytest.fixture
def outage_dataset(with_plugins, clean_db, clean_index):
    department = make_department(name="outage-dept")
    return factories.Dataset(name=OUTAGE_DATASET, title="上海市医院床位信息", owner_org=department["id"],
                             data_domain="health", update_frequency="annual", open_condition="unconditional")


def _database_details() -> list[str]:
    """What an answer must not tell of the database: its address, name and
    user, and the libraries that reached it."""
    url = urllib.parse.urlsplit(tk.config["sqlalchemy.url"])
    return [str(url.port), url.hostname, url.path.strip("/"), url.username,
            "psycopg", "sqlalchemy", "OperationalError", "Traceback"]


def _assert_database_unavailable(path: str, status: int, body: str) -> None:
    assert status == 503, (path, status, body[:2000])
    assert "数据库服务暂时不可用" in body and "The database service is unavailable" in body, (path, body[:2000])
    assert [detail for detail in _database_details() if detail in body] == [], (path, body[:2000])
    if path.startswith("/api/"):
        assert json.loads(body)["error"]["__type"] == "Database Unavailable"


def _assert_served(base: str) -> None:
    """Every outage URL answers 200 with the dataset in it."""
    for path in OUTAGE_URLS:
        status, body = _served(base, path)
        assert status == 200 and OUTAGE_DATASET in body, (path, status, body[:2000])


def _start_postgres(port: int) -> None:
    """Start the stack's PostgreSQL again and wait until it takes connections
    (its port opens before it has finished starting up)."""
    start_service("postgres", port)
    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg2.connect(tk.config["sqlalchemy.url"], connect_timeout=2).close()
            break
        except psycopg2.OperationalError:
            assert time.monotonic() < deadline, "PostgreSQL did not take connections again"
            time.sleep(0.3)
    model.Session.remove()


@pytest.mark.slow
def test_with_postgresql_down_pages_and_api_answer_503_then_recover(served_portal, outage_dataset):
    _assert_served(served_portal)
    port = port_of("sqlalchemy.url")
    stop_service("postgres", signal.SIGINT, port)
    try:
        for path in OUTAGE_URLS:
            _assert_database_unavailable(path, *_served(served_portal, path))
    finally:
        _start_postgres(port)
    # The same web process serves again: no broken session or connection kept.
    _assert_served(served_portal)


@pytest.mark.slow
def test_postgresql_failing_during_a_request_answers_503_then_recovers(served_portal, outage_dataset):
    """PostgreSQL stops while a page and an API call wait on it. CKAN's action
    API catches that failure itself (a plain 500); both still answer 503."""
    paths = [f"/dataset/{OUTAGE_DATASET}", f"/api/3/action/package_show?id={OUTAGE_DATASET}"]
    port = port_of("sqlalchemy.url")
    holder = psycopg2.connect(tk.config["sqlalchemy.url"])
    stopped = False
    try:
        with holder.cursor() as cursor, ThreadPoolExecutor(len(paths)) as pool:
            cursor.execute("LOCK TABLE package IN ACCESS EXCLUSIVE MODE")
            answers = [pool.submit(_served, served_portal, path) for path in paths]
            deadline = time.monotonic() + 30
            while True:
                # pg_locks is live; pg_stat_activity would be this transaction's snapshot.
                cursor.execute("SELECT count(*) FROM pg_locks WHERE relation = 'package'::regclass AND NOT granted")
                if cursor.fetchone()[0] >= len(paths):
                    break
                assert time.monotonic() < deadline, "the requests never reached the database"
                time.sleep(0.1)
            stop_service("postgres", signal.SIGINT, port)
            stopped = True
            for path, answer in zip(paths, answers):
                _assert_database_unavailable(path, *answer.result(timeout=60))
    finally:
        holder.close()
        if stopped:
            _start_postgres(port)
    _assert_served(served_portal)


# --- uploads ------------------------------------------------------------------------


@pytest.fixture
def editor(clean_db, with_plugins):
    org = make_department(name="uploads-dept")
    user = factories.UserWithToken()
    helpers.call_action("organization_member_create", id=org["id"], username=user["name"], role="editor")
    dataset = factories.Dataset(owner_org=org["id"], data_domain="health", update_frequency="annual",
                                open_condition="unconditional", resources=[])
    return {"token": user["token"], "dataset": dataset}


def _upload(app, editor, filename: str, content: bytes, status: int):
    return app.post("/api/3/action/resource_create", headers={"Authorization": editor["token"]},
                    data={"package_id": editor["dataset"]["id"], "name": filename,
                          "upload": (io.BytesIO(content), filename)}, status=status)


@pytest.mark.usefixtures("clean_index")
@pytest.mark.parametrize("filename, content, reason", [
    ("page.html", b"<html><body><script>alert(document.cookie)</script></body></html>", "not accepted"),
    ("page.htm", b"<p>hi</p>", "not accepted"),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "not accepted"),
    ("setup.exe", b"MZ\x90\x00" + b"\x00" * 100, "not accepted"),
    ("tool.js", b"alert(1)", "not accepted"),
    ("noext", b"a,b\n1,2\n", "not accepted"),
    ("data.csv", b"<!DOCTYPE html><html><script>alert(1)</script></html>", "web page or script"),
    ("data.txt", b"\xef\xbb\xbf  <svg onload=alert(1)>", "web page or script"),
])
def test_uploads_that_are_not_data_files_are_refused(app, editor, filename, content, reason):
    response = _upload(app, editor, filename, content, status=409)
    message = " ".join(response.json["error"]["upload"])
    assert reason in message and ("不接受" in message or "已拒绝" in message)
    model.Session.remove()
    assert helpers.call_action("package_show", id=editor["dataset"]["id"])["resources"] == []


@pytest.mark.usefixtures("clean_index")
def test_an_upload_over_the_size_limit_is_refused(app, editor, monkeypatch):
    monkeypatch.setitem(tk.config, "ckan.max_resource_size", 1)
    response = _upload(app, editor, "big.csv", b"a,b\n" + b"1,2\n" * 300_000, status=409)
    assert "1 MB" in " ".join(response.json["error"]["upload"])


@pytest.mark.usefixtures("clean_index")
def test_a_data_file_is_uploaded_and_served(app, editor):
    content = "区,床位\n黄浦区,1200\n".encode("utf-8")
    created = _upload(app, editor, "beds.csv", content, status=200).json["result"]
    assert created["url_type"] == "upload" and created["url"].endswith("beds.csv")
    download = app.get(f"/dataset/{editor['dataset']['id']}/resource/{created['id']}/download/beds.csv",
                       headers={"Authorization": editor["token"]})
    assert download.status_code == 200 and download.data == content


# --- Sessions ------------------------------------------------------------------


def test_a_translation_answer_arriving_after_sign_in_keeps_the_user_signed_in(served_portal):
    """The sign-in page's scripts ask for CKAN's translations with the
    cookie the page had; if that answer arrives after the sign-in (the
    first one builds the files, seconds), a session cookie in it would
    replace the signed-in one and sign the user out. A public, cached file
    carries no session cookie."""
    import requests

    base = served_portal
    password = "Str0ng-Passw0rd!"
    user = factories.User(password=password)
    browser = requests.Session()
    page = browser.get(base + "/user/login")
    cookie_of_the_page = dict(browser.cookies)
    signed_in = browser.post(base + "/user/login", allow_redirects=False, data={
        "login": user["name"], "password": password, "_csrf_token": _csrf_token(page.text)})
    assert signed_in.status_code == 302 and "/user/login" not in signed_in.headers["Location"]

    late = requests.get(base + "/api/i18n/zh-Hans-CN", cookies=cookie_of_the_page)
    assert late.status_code == 200 and json.loads(late.text)
    assert "Set-Cookie" not in late.headers
    browser.cookies.update(late.cookies)  # as a browser takes an answer's cookies
    assert browser.get(base + "/desk/new?kind=request", allow_redirects=False).status_code == 200

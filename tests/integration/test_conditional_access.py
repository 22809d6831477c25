"""Conditionally open (有条件开放) data products, end to end through the
action API and the web app: the metadata is public, the data (an uploaded
real table, a linked file's address, its DataStore rows) only for the
owning department, sysadmins and an applicant whose request the
department's admin approved; expiry and revocation stop access at once;
agreements are versioned; deadlines count working days; everything is in
the audit trail and its CSV; a decision is e-mailed when configured.

The authorization cells are parametrised at the end: seven roles against
each operation."""
from __future__ import annotations

import csv
import datetime as dt
import io
import socketserver
import threading
import uuid

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

import ckan.model as model
import ckan.plugins as plugins
import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from data_files import TABLES
from portal_testing import empty_database, make_department, site_context

SECRET_URL = "https://files.sthj.sh.gov.cn/internal/penalties-2024.xlsx?token=zqx5ecret"
TABLE = TABLES / "sh_community_health_centres_utf8.csv"
ROLES = ("anonymous", "applicant", "other_user", "editor_a", "admin_a", "admin_b", "sysadmin")


@pytest.fixture(scope="module")
def world(reset_db, migrate_db_for, reset_index):
    plugins.load_all()
    empty_database(reset_db, migrate_db_for, reset_index)
    a = make_department(name="sthj", title="上海市生态环境局")
    b = make_department(name="mzj", title="上海市民政局")
    people = {"applicant": factories.User(fullname="王小明"), "other_user": factories.User(),
              "editor_a": factories.User(), "admin_a": factories.User(), "admin_b": factories.User(),
              "sysadmin": factories.Sysadmin()}
    for who, org, role in (("editor_a", a, "editor"), ("admin_a", a, "admin"), ("admin_b", b, "admin")):
        helpers.call_action("organization_member_create", id=org["id"], username=people[who]["name"], role=role)
    # A real conditional product of the Shanghai catalog, made by A's editor.
    editor = {"user": people["editor_a"]["name"], "ignore_auth": False}
    product = helpers.call_action(
        "package_create", context=dict(editor), name="shuanggongshi-penalties", title="双公示-行政处罚结果信息",
        owner_org=a["id"], data_domain="credit-services", update_frequency="daily",
        open_condition="conditional", notes="行政处罚结果信息（有条件开放）",
        resources=[{"url": SECRET_URL, "format": "XLSX", "name": "处罚结果（链接）"}])
    with TABLE.open("rb") as handle:
        upload = helpers.call_action("resource_create", context=dict(editor), package_id=product["id"],
                                     name="处罚结果表", format="CSV", url=TABLE.name,
                                     upload=FileStorage(stream=handle, filename=TABLE.name,
                                                        content_type="text/csv"))
    rows = list(csv.DictReader(TABLE.open(encoding="utf-8")))
    helpers.call_action("datastore_create", context=site_context(), resource_id=upload["id"], force=True,
                        fields=[{"id": name, "type": "text"} for name in rows[0]], records=rows)
    open_product = factories.Dataset(owner_org=a["id"], data_domain="health", update_frequency="annual",
                                     open_condition="unconditional",
                                     resources=[{"url": "https://data.example.gov.cn/open.csv", "name": "公开表"}])
    tokens = {who: factories.APIToken(user=user["name"])["token"] for who, user in people.items()}
    return {"a": a, "b": b, "people": people, "tokens": tokens, "product": product,
            "link": product["resources"][0], "upload": upload, "rows": rows, "open_product": open_product,
            "app": helpers._get_test_app()}


def city_today() -> dt.date:
    """Today in the city's time zone, which the deadlines and expiry use."""
    from ckanext.shanghai.access import store

    return store.local_today()


def ctx(world, who):
    user = world["people"].get(who)
    return {"user": user["name"] if user else "", "ignore_auth": False}


def call(world, who, action, /, **data):
    return helpers.call_action(action, context=ctx(world, who), **data)


def get(world, who, url, **kwargs):
    headers = {"Authorization": world["tokens"][who]} if who in world["tokens"] else {}
    return world["app"].get(url, headers=headers, follow_redirects=False, **kwargs)


def apply(world, who="applicant", **fields):
    agreement = call(world, who, "shanghai_access_agreement_show", package_id=world["product"]["id"])
    data = {"package_id": world["product"]["name"], "purpose": "研究本市环境执法的时空分布",
            "intended_use": "高校课题组内部分析，不对外发布原始数据", "applicant_org": "同济大学环境科学与工程学院",
            "period_end": (city_today() + dt.timedelta(days=90)).isoformat(),
            "agreement_version": agreement["version"], "accept_agreement": True}
    data.update(fields)
    return call(world, who, "shanghai_access_request_create", **data)


def download_path(world, resource):
    return f"/dataset/{world['product']['name']}/resource/{resource['id']}/download"


def may_download(world, who) -> bool:
    response = get(world, who, download_path(world, world["upload"]) + "/" + TABLE.name)
    assert response.status_code in (200, 403), response.status_code
    if response.status_code == 200:
        assert "南京东路街道社区卫生服务中心" in response.get_data(as_text=True)
    return response.status_code == 200


def may_query(world, who) -> bool:
    try:
        result = call(world, who, "datastore_search", resource_id=world["upload"]["id"], limit=3)
    except tk.NotAuthorized:
        return False
    assert result["records"][0]["name"] == world["rows"][0]["name"]
    return True


def sees_secret(world, who) -> bool:
    shown = call(world, who, "package_show", id=world["product"]["id"])
    return any(r["url"] == SECRET_URL for r in shown["resources"])


def reset_requests():
    model.Session.execute(sa.text("delete from shanghai_access_request"))
    model.Session.commit()


# --------------------------------------------------------------------------
# What everyone sees


def test_the_metadata_is_public_and_the_data_is_not(world):
    product = call(world, "anonymous", "package_show", id=world["product"]["name"])
    assert product["title"] == "双公示-行政处罚结果信息" and product["open_condition"] == "conditional"
    link = next(r for r in product["resources"] if r["id"] == world["link"]["id"])
    assert link["url"].endswith(download_path(world, world["link"]).replace(world["product"]["name"],
                                                                            world["product"]["id"]))
    assert SECRET_URL not in str(call(world, "anonymous", "resource_show", id=world["link"]["id"]))
    # Search finds it by its Chinese title, and neither the results nor any
    # stored field (fl) nor a query on the address gives the address away.
    found = call(world, "anonymous", "package_search", q="行政处罚")
    assert [p["name"] for p in found["results"]] == ["shuanggongshi-penalties"]
    assert SECRET_URL not in str(found)
    raw = call(world, "anonymous", "package_search", q="行政处罚", fl="data_dict,validated_data_dict,res_url,urls")
    assert raw["count"] == 1 and "zqx5ecret" not in str(raw)
    for probe in ("res_url:*zqx5ecret*", "urls:*sthj.sh.gov.cn*", "text:zqx5ecret"):
        assert call(world, "anonymous", "package_search", q=probe)["count"] == 0, probe
    # The activity stream keeps a copy of the product: gated too.
    activities = call(world, "anonymous", "package_activity_list", id=world["product"]["id"])
    assert activities and SECRET_URL not in str(activities)
    # The files, the rows and the dump: 403 with the way to apply.
    response = get(world, "anonymous", download_path(world, world["upload"]) + "/" + TABLE.name)
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert 'id="sh-access-denied"' in page, page[-3000:]
    assert "该数据需申请使用" in page and "conditionally open" in page and "南京东路" not in page
    assert get(world, "anonymous", download_path(world, world["link"])).status_code == 403
    assert get(world, "other_user", f"/datastore/dump/{world['upload']['id']}").status_code == 403
    export = f"/dataset/{world['product']['name']}/resource/{world['upload']['id']}/export/csv"
    assert get(world, "other_user", export).status_code == 403
    response = get(world, "other_user", f"/api/3/action/datastore_search?resource_id={world['upload']['id']}")
    assert response.status_code == 403 and "有条件开放" in response.json["error"]["message"]
    # A conditional resource is not served under an open product's address either.
    sneaky = f"/dataset/{world['open_product']['name']}/resource/{world['upload']['id']}/download/{TABLE.name}"
    assert get(world, "other_user", sneaky).status_code == 403
    # An unconditional product is untouched.
    open_product = call(world, "anonymous", "package_show", id=world["open_product"]["id"])
    assert open_product["resources"][0]["url"] == "https://data.example.gov.cn/open.csv"


def test_the_product_page_offers_the_application(world):
    page = get(world, "other_user", f"/dataset/{world['product']['name']}").get_data(as_text=True)
    assert 'id="sh-access-panel"' in page and 'id="sh-apply-button"' in page
    assert "南京东路" not in page  # no DataStore preview without access
    anonymous = get(world, "anonymous", f"/dataset/{world['product']['name']}").get_data(as_text=True)
    assert 'id="sh-apply-login"' in anonymous
    owner = get(world, "editor_a", f"/dataset/{world['product']['name']}").get_data(as_text=True)
    assert 'id="sh-access-owner"' in owner and "南京东路" in owner


# --------------------------------------------------------------------------
# The workflow


def test_bad_applications_are_refused_with_reasons_and_store_nothing(world):
    reset_requests()
    cases = [
        ({"purpose": "  "}, "purpose", "请填写申请用途"),
        ({"accept_agreement": False}, "accept_agreement", "请阅读并同意数据使用协议"),
        ({"agreement_version": 99}, "agreement_version", "数据使用协议已更新"),
        ({"period_end": "2020-01-01"}, "period_end", "不能早于今天"),
        ({"period_end": (city_today() + dt.timedelta(days=400)).isoformat()}, "period_end", "最长 365 天"),
        ({"period_end": "明年"}, "period_end", "YYYY-MM-DD"),
    ]
    for fields, field, message in cases:
        with pytest.raises(tk.ValidationError) as raised:
            apply(world, **fields)
        assert message in str(raised.value.error_dict[field]), (fields, raised.value.error_dict)
        assert " / " in raised.value.error_dict[field][0]  # Chinese / English
    with pytest.raises(tk.ValidationError, match="无条件开放"):
        apply(world, package_id=world["open_product"]["id"])
    with pytest.raises(tk.NotAuthorized):
        apply(world, who="anonymous")
    with pytest.raises(tk.ValidationError, match="无需申请"):
        apply(world, who="editor_a")
    assert call(world, "applicant", "shanghai_access_request_list")["count"] == 0


def test_apply_approve_download_revoke_and_the_audit_trail(world):
    reset_requests()
    created = apply(world)
    assert created["status"] == "pending" and created["working_days_left"] == 5
    assert created["agreement_version"] == 1 and created["agreement_is_city_standard"]
    with pytest.raises(tk.ValidationError, match="已有待审核的申请"):
        apply(world)
    assert not may_download(world, "applicant") and not may_query(world, "applicant")

    # The queue: A's admin sees it, B's admin and A's editor do not.
    queue = call(world, "admin_a", "shanghai_access_request_list", scope="queue", status="pending")
    assert [r["id"] for r in queue["results"]] == [created["id"]]
    assert queue["results"][0]["user_name"] == world["people"]["applicant"]["name"]
    assert call(world, "admin_b", "shanghai_access_request_list", scope="queue")["count"] == 0
    with pytest.raises(tk.NotAuthorized):
        call(world, "editor_a", "shanghai_access_request_list", scope="queue")
    for who in ("admin_b", "editor_a", "other_user", "applicant"):
        with pytest.raises(tk.NotAuthorized):
            call(world, who, "shanghai_access_request_decide", id=created["id"], decision="approve")

    expires = (city_today() + dt.timedelta(days=30)).isoformat()
    with pytest.raises(tk.ValidationError, match="理由"):
        call(world, "admin_a", "shanghai_access_request_decide", id=created["id"], decision="reject")
    decided = call(world, "admin_a", "shanghai_access_request_decide", id=created["id"], decision="approve",
                   reason="用途明确，同意", expires=expires)
    assert decided["status"] == "approved" and decided["grant_active"] and decided["answered_on_time"]
    assert decided["expires"] == expires
    with pytest.raises(tk.ValidationError, match="已处理"):
        call(world, "admin_a", "shanghai_access_request_decide", id=created["id"], decision="reject", reason="x")

    # The applicant is told in the portal: a badge until they look.
    assert 'id="sh-unseen">1<' in get(world, "applicant", "/dataset/").get_data(as_text=True)
    page = get(world, "applicant", f"/access/request/{created['id']}").get_data(as_text=True)
    assert 'id="sh-grant"' in page and "用途明确，同意" in page
    assert 'id="sh-unseen"' not in get(world, "applicant", "/dataset/").get_data(as_text=True)

    # Now the applicant has the data, nobody else new does.
    assert may_download(world, "applicant") and may_query(world, "applicant") and sees_secret(world, "applicant")
    response = get(world, "applicant", download_path(world, world["link"]))
    assert response.status_code == 302 and response.headers["Location"] == SECRET_URL
    assert get(world, "applicant", f"/datastore/dump/{world['upload']['id']}").status_code == 200
    export = f"/dataset/{world['product']['name']}/resource/{world['upload']['id']}/export/csv"
    assert get(world, "applicant", export).status_code == 200
    assert not may_download(world, "other_user") and not sees_secret(world, "other_user")

    # Revoked: refused at once, told why.
    with pytest.raises(tk.NotAuthorized):
        call(world, "applicant", "shanghai_access_grant_revoke", id=created["id"], reason="自行撤销")
    call(world, "admin_a", "shanghai_access_grant_revoke", id=created["id"], reason="发现超范围使用")
    assert not may_download(world, "applicant") and not may_query(world, "applicant")
    assert not sees_secret(world, "applicant")
    shown = call(world, "applicant", "shanghai_access_request_show", id=created["id"])
    assert shown["status"] == "revoked" and shown["revoke_reason"] == "发现超范围使用"

    # The trail: who did what, in order; downloads and queries under the grant.
    trail = call(world, "admin_a", "shanghai_access_audit_list", request_id=created["id"])
    actions = [row["action"] for row in reversed(trail)]
    assert actions[:3] == ["apply", "agreement_accept", "approve"] and actions[-1] == "revoke"
    assert {"download", "datastore_query", "datastore_dump"} <= set(actions)
    by_action = {row["action"]: row for row in trail}
    assert by_action["apply"]["actor_name"] == world["people"]["applicant"]["name"]
    assert by_action["approve"]["actor_name"] == world["people"]["admin_a"]["name"]
    assert by_action["agreement_accept"]["detail"]["version"] == 1
    assert by_action["download"]["resource_id"] in (world["upload"]["id"], world["link"]["id"])
    # B's admin cannot read A's trail; the CSV export has the same rows.
    with pytest.raises(tk.NotAuthorized):
        call(world, "admin_b", "shanghai_access_audit_list", organization=world["a"]["id"])
    assert call(world, "admin_b", "shanghai_access_audit_list") == []
    response = get(world, "admin_a", f"/access/audit.csv?request_id={created['id']}")
    assert response.status_code == 200
    exported = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [row["action"] for row in exported] == [row["action"] for row in trail]
    assert exported[0]["package_title"] == "双公示-行政处罚结果信息"
    assert get(world, "other_user", "/access/audit.csv").status_code == 403


def test_an_expired_grant_stops_access_at_once(world):
    reset_requests()
    created = apply(world)
    call(world, "admin_a", "shanghai_access_request_decide", id=created["id"], decision="approve",
         expires=city_today().isoformat())
    assert may_download(world, "applicant")  # runs to the end of its last day
    model.Session.execute(sa.text("update shanghai_access_request set expires = :day where id = :id"),
                          {"id": created["id"], "day": city_today() - dt.timedelta(days=1)})
    model.Session.commit()
    assert not may_download(world, "applicant") and not may_query(world, "applicant")
    shown = call(world, "applicant", "shanghai_access_request_show", id=created["id"])
    assert shown["status"] == "approved" and not shown["grant_active"]
    # Expired, the applicant may apply again.
    assert apply(world)["status"] == "pending"


def test_a_new_agreement_version_applies_to_new_requests_only(world):
    reset_requests()
    first = apply(world)
    with pytest.raises(tk.NotAuthorized):
        call(world, "admin_b", "shanghai_access_agreement_publish", organization=world["a"]["id"],
             text_zh="乙部门不能替甲部门发布协议文本，这段文字足够长。")
    with pytest.raises(tk.ValidationError, match="太短"):
        call(world, "admin_a", "shanghai_access_agreement_publish", organization=world["a"]["id"], text_zh="同意")
    published = call(world, "admin_a", "shanghai_access_agreement_publish", organization=world["a"]["id"],
                     text_zh="生态环境数据使用协议（第二版）：仅限申请用途使用，不得公开原始记录，期满删除。",
                     text_en="Environment data use agreement, v2.")
    assert published["version"] == 1 and not published["city_standard"]  # the department's own first version
    shown = call(world, "anonymous", "shanghai_access_agreement_show", organization="sthj")
    assert shown["text_zh"].startswith("生态环境数据使用协议")
    call(world, "applicant", "shanghai_access_request_withdraw", id=first["id"])
    with pytest.raises(tk.ValidationError, match="数据使用协议已更新"):
        apply(world, agreement_version=99)
    second = apply(world)  # reads the current version first
    assert second["agreement_is_city_standard"] is False
    kept = call(world, "applicant", "shanghai_access_request_show", id=first["id"])
    assert kept["agreement_is_city_standard"] is True and kept["status"] == "withdrawn"
    page = get(world, "anonymous", "/organization/sthj/agreement").get_data(as_text=True)
    assert "生态环境数据使用协议（第二版）" in page


def test_deadlines_count_working_days_and_late_answers_show(world):
    from ckanext.shanghai.access import store

    reset_requests()
    late, fresh = apply(world), apply(world, who="other_user")
    # The late one arrived three weeks ago: its deadline has passed.
    submitted = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=21)
    deadline = store.calendar().add_working_days(store.local_date(submitted), store.deadline_limit())
    model.Session.execute(sa.text("update shanghai_access_request set submitted = :s, deadline = :d where id = :id"),
                          {"s": submitted, "d": deadline, "id": late["id"]})
    model.Session.commit()
    queue = {r["id"]: r for r in call(world, "admin_a", "shanghai_access_request_list", scope="queue")["results"]}
    assert queue[late["id"]]["overdue"] and queue[late["id"]]["working_days_left"] < 0
    assert queue[fresh["id"]]["working_days_left"] == 5
    page = get(world, "admin_a", "/access/queue").get_data(as_text=True)
    assert "已超期" in page and "剩余 5 个工作日" in page
    call(world, "admin_a", "shanghai_access_request_decide", id=late["id"], decision="reject", reason="超出职责范围")
    call(world, "admin_a", "shanghai_access_request_decide", id=fresh["id"], decision="approve")
    figures = call(world, "anonymous", "shanghai_access_statistics")
    assert (figures["due"], figures["answered_on_time"], figures["on_time_share"]) == (2, 1, 0.5)
    assert call(world, "anonymous", "shanghai_access_statistics", organization="mzj")["due"] == 0
    statistics = get(world, "anonymous", "/statistics").get_data(as_text=True)
    assert 'id="sh-access-on-time"' in statistics and "50%" in statistics


class _SMTPHandler(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"220 test\r\n")
        data = None
        while True:
            line = self.rfile.readline()
            if not line:
                return
            if data is not None:
                if line in (b".\r\n", b".\n"):
                    self.server.messages.append(b"".join(data))
                    data = None
                    self.wfile.write(b"250 ok\r\n")
                else:
                    data.append(line)
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250 test\r\n")
            elif verb == b"DATA":
                data = []
                self.wfile.write(b"354 go\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def mail_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_decisions_are_emailed_when_configured_and_a_dead_mail_server_changes_nothing(world, mail_server):
    import email

    reset_requests()
    host, port = mail_server.server_address
    first = apply(world)
    with helpers.changed_config("ckanext.shanghai.access.notify_email", True), \
            helpers.changed_config("smtp.server", f"{host}:{port}"):
        call(world, "admin_a", "shanghai_access_request_decide", id=first["id"], decision="reject",
             reason="请补充课题批准文件")
    assert len(mail_server.messages) == 1
    message = email.message_from_bytes(mail_server.messages[0])
    assert message["To"] == world["people"]["applicant"]["email"]
    body = message.get_payload(decode=True).decode("utf-8")
    assert "数据申请未通过" in str(email.header.make_header(email.header.decode_header(message["Subject"])))
    assert "请补充课题批准文件" in body and f"/access/request/{first['id']}" in body
    # Mail server down: the decision stands, the failure is audited.
    second = apply(world)
    with helpers.changed_config("ckanext.shanghai.access.notify_email", True), \
            helpers.changed_config("smtp.server", "127.0.0.1:9"):
        decided = call(world, "admin_a", "shanghai_access_request_decide", id=second["id"], decision="approve")
    assert decided["status"] == "approved" and may_download(world, "applicant")
    notes = call(world, "admin_a", "shanghai_access_audit_list", request_id=second["id"], action="notify_email")
    assert notes and "failed" in notes[0]["detail"]


# --------------------------------------------------------------------------
# The authorization cells: (operation, expected per role in ROLES order)

OPERATIONS = {
    "download the file": (False, True, False, True, True, False, True),
    "query DataStore rows": (False, True, False, True, True, False, True),
    "see the linked file's address": (False, True, False, True, True, False, True),
    "see the request": (False, True, False, False, True, False, True),
    "decide a request": (False, False, False, False, True, False, True),
    "revoke a grant": (False, False, False, False, True, False, True),
    "see A's queue": (False, False, False, False, True, False, True),
    "read A's audit trail": (False, False, False, False, True, False, True),
    "publish A's agreement": (False, False, False, False, True, False, True),
    "read the agreement": (True,) * 7,
    "read the on-time figures": (True,) * 7,
}


@pytest.fixture(scope="module")
def granted(world):
    """The applicant holds an approved grant; a second request is pending."""
    reset_requests()
    grant = apply(world)
    call(world, "admin_a", "shanghai_access_request_decide", id=grant["id"], decision="approve")
    pending = apply(world, who="other_user")
    return {"grant": grant, "pending": pending}


def _attempt(world, granted, operation, who) -> bool:
    try:
        if operation == "download the file":
            return may_download(world, who)
        if operation == "query DataStore rows":
            return may_query(world, who)
        if operation == "see the linked file's address":
            return sees_secret(world, who)
        if operation == "see the request":
            call(world, who, "shanghai_access_request_show", id=granted["grant"]["id"])
        elif operation == "decide a request":
            # A refused decision changes nothing; an allowed one is undone by
            # a fresh pending request for the next role.
            call(world, who, "shanghai_access_request_decide", id=granted["pending"]["id"], decision="reject",
                 reason="矩阵测试")
            granted["pending"] = apply(world, who="other_user")
        elif operation == "revoke a grant":
            call(world, who, "shanghai_access_grant_revoke", id=_extra_grant(world)["id"], reason="矩阵测试")
        elif operation == "see A's queue":
            return call(world, who, "shanghai_access_request_list", scope="queue",
                        organization=world["a"]["id"])["count"] >= 1
        elif operation == "read A's audit trail":
            return len(call(world, who, "shanghai_access_audit_list", organization=world["a"]["id"])) >= 1
        elif operation == "publish A's agreement":
            call(world, who, "shanghai_access_agreement_publish", organization=world["a"]["id"],
                 text_zh=f"矩阵测试协议文本：仅限申请用途，不得转让，期满删除。{uuid.uuid4().hex[:6]}")
        elif operation == "read the agreement":
            call(world, who, "shanghai_access_agreement_show", organization=world["a"]["id"])
        elif operation == "read the on-time figures":
            call(world, who, "shanghai_access_statistics")
    except tk.NotAuthorized:
        return False
    return True


def _extra_grant(world) -> dict:
    """An approved grant of a throwaway user, for a revoke attempt."""
    user = factories.User()
    world["people"][user["name"]] = user
    agreement = call(world, "anonymous", "shanghai_access_agreement_show", package_id=world["product"]["id"])
    created = helpers.call_action(
        "shanghai_access_request_create", context={"user": user["name"], "ignore_auth": False},
        package_id=world["product"]["id"], purpose="矩阵", intended_use="矩阵", applicant_org="矩阵",
        period_end=city_today().isoformat(), agreement_version=agreement["version"], accept_agreement=True)
    return call(world, "sysadmin", "shanghai_access_request_decide", id=created["id"], decision="approve")


@pytest.mark.parametrize("operation,who,expected", [
    (operation, who, expected) for operation, row in OPERATIONS.items()
    for who, expected in zip(ROLES, row)])
def test_authorization_cell(world, granted, operation, who, expected):
    assert _attempt(world, granted, operation, who) is expected, (operation, who)

"""The public desk end to end through the action API and the web app: a
citizen files a data request, an error report and a comment; the
department acknowledges, answers, extends once, transfers, accepts an error
report, closes with a reason and reopens, on the working-day clock of
conditional access (holidays included); followers hear of every answer, in
the portal and by e-mail through a real SMTP server (aiosmtpd); the league
table shows the figures on its page, /statistics and the department's page.

The authorization cells are parametrised at the end: eight roles against
each operation."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket

import pytest
import sqlalchemy as sa

import ckan.model as model
import ckan.plugins as plugins
import ckan.plugins.toolkit as tk
from ckan.tests import factories, helpers

from portal_testing import empty_database, make_department

ROLES = ("anonymous", "filer", "other_user", "member_a", "editor_a", "admin_a", "admin_b", "sysadmin")


@pytest.fixture(scope="module")
def world(reset_db, migrate_db_for, reset_index):
    plugins.load_all()
    empty_database(reset_db, migrate_db_for, reset_index)
    a = make_department(name="sthj", title="上海市生态环境局")
    b = make_department(name="mzj", title="上海市民政局")
    people = {"filer": factories.User(fullname="王小明"), "follower": factories.User(fullname="李华"),
              "other_user": factories.User(), "member_a": factories.User(), "editor_a": factories.User(),
              "admin_a": factories.User(), "admin_b": factories.User(), "sysadmin": factories.Sysadmin()}
    for who, org, role in (("member_a", a, "member"), ("editor_a", a, "editor"), ("admin_a", a, "admin"),
                           ("admin_b", b, "admin")):
        helpers.call_action("organization_member_create", id=org["id"], username=people[who]["name"], role=role)
    product = factories.Dataset(
        owner_org=a["id"], name="air-quality-daily", title="上海市空气质量日报", data_domain="resources-environment",
        update_frequency="daily", open_condition="unconditional",
        resources=[{"url": "https://data.example.gov.cn/aqi.csv", "name": "空气质量日报表", "format": "CSV"}])
    released = factories.Dataset(owner_org=a["id"], name="noise-monitoring", title="上海市区域环境噪声监测",
                                 data_domain="resources-environment", update_frequency="annual",
                                 open_condition="unconditional")
    hidden = factories.Dataset(owner_org=a["id"], name="internal-roster", title="内部花名册", private=True,
                               data_domain="resources-environment", update_frequency="annual", open_condition="unconditional")
    tokens = {who: factories.APIToken(user=user["name"])["token"] for who, user in people.items()}
    return {"a": a, "b": b, "people": people, "tokens": tokens, "product": product, "released": released,
            "hidden": hidden, "app": helpers._get_test_app()}


@pytest.fixture(autouse=True)
def generous_limit():
    """The authorization cells file many items; the rate-limit test lowers it."""
    with helpers.changed_config("ckanext.shanghai.desk.items_per_day", 10000):
        yield


def ctx(world, who):
    user = world["people"].get(who)
    return {"user": user["name"] if user else "", "ignore_auth": False}


def call(world, who, action, /, **data):
    return helpers.call_action(action, context=ctx(world, who), **data)


def page(world, who, url) -> str:
    headers = {"Authorization": world["tokens"][who]} if who in world["tokens"] else {}
    response = world["app"].get(url, headers=headers, follow_redirects=False)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def request_data(world, who="filer", **fields):
    data = {"kind": "request", "title": "希望开放全市公共充电桩实时状态",
            "body": "需要**每个充电桩**的位置、功率和实时占用状态。", "reason": "开发找桩应用",
            "update_frequency": "realtime", "organization": world["a"]["name"]}
    data.update(fields)
    return call(world, who, "shanghai_desk_item_create", **data)


def report_error(world, who="filer", **fields):
    data = {"kind": "error", "title": "PM2.5 单位标错", "body": "表中 PM2.5 的单位应为 μg/m³，而非 mg/m³。",
            "package_id": world["product"]["name"], "error_type": "wrong_values",
            "resource_id": world["product"]["resources"][0]["id"]}
    data.update(fields)
    return call(world, who, "shanghai_desk_item_create", **data)


def reset_items():
    model.Session.execute(sa.text("delete from shanghai_desk_notice; delete from shanghai_desk_follow; "
                                  "delete from shanghai_desk_event; delete from shanghai_desk_item"))
    model.Session.commit()


def city_today() -> dt.date:
    from ckanext.shanghai.desk import store

    return store.local_today()


def notices(world, who) -> list[str]:
    return [n["event"] for n in call(world, who, "shanghai_desk_notice_list")["results"]]


# --------------------------------------------------------------------------
# The workflow


def test_a_data_request_from_filing_to_a_released_product(world):
    from ckanext.shanghai.desk import store

    reset_items()
    item = request_data(world)
    clock = store.calendar()
    assert item["status"] == "new" and item["organization_name"] == "sthj"
    assert item["ack_deadline"] == clock.add_working_days(city_today(), 5).isoformat()
    assert item["answer_deadline"] == clock.add_working_days(city_today(), 15).isoformat()
    assert item["answer_days_left"] == 15 and not item["overdue"]
    # Everyone reads it, signed in or not; the department hears of it.
    shown = call(world, "anonymous", "shanghai_desk_item_show", id=item["id"])
    assert shown["title"] == item["title"] and shown["user_display_name"] == "王小明"
    assert "email" not in str(shown) and world["people"]["filer"]["email"] not in str(shown)
    assert call(world, "anonymous", "shanghai_desk_item_list")["count"] == 1
    assert notices(world, "editor_a") == ["filed"] and notices(world, "admin_a") == ["filed"]
    assert notices(world, "member_a") == [] and notices(world, "admin_b") == []
    call(world, "follower", "shanghai_desk_item_follow", id=item["id"])
    # The department acknowledges, answers and closes with the new product.
    call(world, "editor_a", "shanghai_desk_item_acknowledge", id=item["id"], body="已转数据处室研究")
    answered = call(world, "admin_a", "shanghai_desk_item_answer", id=item["id"],
                    body="我局正在整理充电桩数据，预计本月开放。")
    assert answered["status"] == "answered" and answered["answered_on_time"] is True
    assert answered["working_days_to_answer"] == 0
    link = f"/dataset/{world['released']['name']}"
    closed = call(world, "admin_a", "shanghai_desk_item_close", id=item["id"], reason="released", link=link,
                  note="数据已开放")
    assert (closed["status"], closed["close_reason"], closed["close_link"]) == ("closed", "released", link)
    for who in ("filer", "follower"):
        assert notices(world, who) == ["closed", "answered", "acknowledged"], who
    trail = [e["action"] for e in call(world, "anonymous", "shanghai_desk_item_show", id=item["id"])["events"]]
    assert trail == ["file", "acknowledge", "answer", "close"]
    # The item's page and the league table.
    html = page(world, "anonymous", f"/desk/item/{item['id']}")
    assert "我局正在整理充电桩数据" in html and f'href="{link}"' in html and "<strong>每个充电桩</strong>" in html
    league = call(world, "anonymous", "shanghai_desk_league")["departments"]
    assert [(d["organization_name"], d["requests"], d["median_working_days"], d["on_time_share"], d["released"])
            for d in league] == [("sthj", 1, 0, 1.0, 1)]
    for url in ("/desk/league", "/statistics", "/organization/sthj"):
        html = page(world, "anonymous", url)
        assert 'data-organization="sthj"' in html and "100%" in html, url


def test_an_accepted_error_report_shows_on_the_product_and_in_its_flags_until_the_product_changes(world):
    reset_items()
    report = report_error(world)
    assert report["organization_id"] == world["a"]["id"] and report["error_type"] == "wrong_values"
    product_page = f"/dataset/{world['product']['name']}"
    assert 'id="sh-desk-accepted-errors"' not in page(world, "anonymous", product_page)
    assert 'id="sh-desk-report-error"' in page(world, "anonymous", product_page)
    accepted = call(world, "editor_a", "shanghai_desk_item_accept", id=report["id"], body="确认有误，下次更新时更正")
    assert accepted["accepted"] and accepted["status"] == "answered"
    html = page(world, "anonymous", product_page)
    assert 'id="sh-desk-accepted-errors"' in html and "PM2.5 单位标错" in html
    # It counts in the product's quality flags (the quality facet).
    flagged = call(world, "anonymous", "package_search", fq="quality_flag:public-error-report",
                   **{"facet.field": '["quality_flag"]'})
    assert [p["name"] for p in flagged["results"]] == [world["product"]["name"]]
    with pytest.raises(tk.ValidationError, match="已确认"):
        call(world, "editor_a", "shanghai_desk_item_accept", id=report["id"])
    # The next change of the product (as a harvest makes) takes it off the page.
    call(world, "editor_a", "package_patch", id=world["product"]["id"], notes="单位已更正为 μg/m³")
    assert 'id="sh-desk-accepted-errors"' not in page(world, "anonymous", product_page)
    assert call(world, "anonymous", "package_search", fq="quality_flag:public-error-report")["count"] == 0
    assert call(world, "anonymous", "shanghai_desk_item_show", id=report["id"])["accepted"]


def test_bad_items_are_refused_with_reasons_in_both_languages(world):
    reset_items()
    cases = [
        (dict(kind="wish"), "kind", "类型应为"),
        (dict(title="  "), "title", "请填写标题"),
        (dict(title="长" * 201), "title", "不能超过 200 字"),
        (dict(update_frequency="hourly"), "update_frequency", "更新频度应为"),
        (dict(organization="no-such-department"), "organization", "没有该部门"),
    ]
    for fields, field, message in cases:
        with pytest.raises(tk.ValidationError) as raised:
            request_data(world, **fields)
        text = raised.value.error_dict[field][0]
        assert message in text and " / " in text, (fields, raised.value.error_dict)
        assert text.message.code.startswith("desk-")
    for fields, field in ((dict(package_id=world["hidden"]["id"]), "package_id"),
                          (dict(error_type="ugly"), "error_type"),
                          (dict(resource_id="not-a-resource"), "resource_id")):
        with pytest.raises(tk.ValidationError) as raised:
            report_error(world, **fields)
        assert field in raised.value.error_dict
    with pytest.raises(tk.NotAuthorized):
        request_data(world, who="anonymous")
    assert call(world, "anonymous", "shanghai_desk_item_list")["count"] == 0
    # Closing needs what its reason needs.
    item = request_data(world)
    for fields, message in ((dict(reason="released"), "请填写链接"), (dict(reason="released", link="javascript:x"), "http"),
                            (dict(reason="later", date="2020-01-01"), "不能早于今天"),
                            (dict(reason="not_suitable"), "法律依据"), (dict(reason="withdrawn"), "办结理由应为")):
        with pytest.raises(tk.ValidationError, match=message):
            call(world, "admin_a", "shanghai_desk_item_close", id=item["id"], **fields)
    later = call(world, "admin_a", "shanghai_desk_item_close", id=item["id"], reason="later",
                 date=(city_today() + dt.timedelta(days=60)).isoformat())
    assert later["close_reason"] == "later" and later["answered_on_time"] is True
    # The page shows the errors in the page's language.
    form = world["app"].post("/desk/new?kind=request", headers={"Authorization": world["tokens"]["filer"]},
                             data={"kind": "request", "title": "", "body": "x"})
    assert "请填写标题" in form.get_data(as_text=True)


def test_a_user_files_at_most_the_configured_number_a_day(world):
    reset_items()
    with helpers.changed_config("ckanext.shanghai.desk.items_per_day", 2):
        request_data(world)
        report_error(world)
        with pytest.raises(tk.ValidationError) as raised:
            request_data(world, title="第三条")
        assert "24 小时内最多提交 2 条" in str(raised.value.error_dict)
        request_data(world, who="other_user")  # the limit is per user
    assert call(world, "anonymous", "shanghai_desk_item_list")["count"] == 3


def test_extend_once_transfer_reopen_and_withdraw(world):
    from ckanext.shanghai.desk import store

    reset_items()
    item = request_data(world)
    extended = call(world, "editor_a", "shanghai_desk_item_extend", id=item["id"], reason="需会同区局核实")
    assert extended["answer_deadline"] == store.calendar().add_working_days(
        dt.date.fromisoformat(item["answer_deadline"]), 15).isoformat()
    assert extended["answer_days_left"] == 30
    with pytest.raises(tk.ValidationError, match="只能延长一次"):
        call(world, "admin_a", "shanghai_desk_item_extend", id=item["id"], reason="再延")
    moved = call(world, "admin_a", "shanghai_desk_item_transfer", id=item["id"], organization="mzj",
                 reason="属民政局职责")
    assert moved["organization_name"] == "mzj" and notices(world, "admin_b") == ["transferred"]
    with pytest.raises(tk.NotAuthorized):
        call(world, "admin_a", "shanghai_desk_item_answer", id=item["id"], body="越权答复")
    assert call(world, "admin_b", "shanghai_desk_item_list", scope="desk")["count"] == 1
    assert call(world, "admin_a", "shanghai_desk_item_list", scope="desk")["count"] == 0
    call(world, "admin_b", "shanghai_desk_item_close", id=item["id"], reason="cannot_compile", note="无原始记录")
    with pytest.raises(tk.NotAuthorized):
        call(world, "other_user", "shanghai_desk_item_reopen", id=item["id"], reason="我也不满意")
    reopened = call(world, "filer", "shanghai_desk_item_reopen", id=item["id"], reason="民政局有该记录")
    assert reopened["status"] == "acknowledged" and reopened["close_reason"] is None
    assert "reopened" in notices(world, "admin_b")
    withdrawn = call(world, "filer", "shanghai_desk_item_withdraw", id=item["id"])
    assert (withdrawn["status"], withdrawn["close_reason"]) == ("closed", "withdrawn")
    actions = [e["action"] for e in call(world, "admin_b", "shanghai_desk_item_show", id=item["id"])["events"]]
    assert actions == ["file", "extend", "transfer", "close", "reopen", "close"]
    # The department's people see who acted; the public sees the department.
    public = call(world, "anonymous", "shanghai_desk_item_show", id=item["id"])["events"]
    assert "actor_name" not in public[1]
    assert call(world, "admin_b", "shanghai_desk_item_show", id=item["id"])["events"][1]["actor_name"] == \
        world["people"]["editor_a"]["name"]


def test_the_clock_skips_holidays_in_deadlines_and_the_league_table(world):
    """National Day 2026: 1-7 October off (2026-10-10, a Saturday, worked).
    Filed on 30 September and first answered on 12 October is 4 working
    days (8, 9, 10 and 12 October), not 8."""
    from ckanext.shanghai.desk import store

    reset_items()
    holidays = "2026-10-01 2026-10-02 2026-10-05 2026-10-06 2026-10-07"
    with helpers.changed_config("ckanext.shanghai.access.holidays", holidays), \
            helpers.changed_config("ckanext.shanghai.access.extra_workdays", "2026-10-10"):
        clock = store.calendar()
        assert clock.add_working_days(dt.date(2026, 9, 30), 5) == dt.date(2026, 10, 13)
        item = request_data(world)
        filed = dt.datetime(2026, 9, 30, 2, 0, tzinfo=dt.timezone.utc)
        model.Session.execute(sa.text(
            "update shanghai_desk_item set submitted = :s, ack_deadline = :a, answer_deadline = :d where id = :id"),
            {"s": filed, "a": dt.date(2026, 10, 13), "d": clock.add_working_days(dt.date(2026, 9, 30), 15),
             "id": item["id"]})
        model.Session.execute(sa.text("update shanghai_desk_item set first_answered = :f, status = 'answered' "
                                      "where id = :id"),
                              {"f": dt.datetime(2026, 10, 12, 3, 0, tzinfo=dt.timezone.utc), "id": item["id"]})
        model.Session.commit()
        league = call(world, "anonymous", "shanghai_desk_league", organization="sthj")["departments"]
        assert league[0]["median_working_days"] == 4 and league[0]["on_time_share"] == 1.0
        shown = call(world, "anonymous", "shanghai_desk_item_show", id=item["id"])
        assert shown["working_days_to_answer"] == 4 and shown["answer_deadline"] == "2026-10-27"
    # An item left unanswered past its deadline counts against the department.
    late = request_data(world, title="逾期未答")
    model.Session.execute(sa.text("update shanghai_desk_item set answer_deadline = :d where id = :id"),
                          {"d": city_today() - dt.timedelta(days=1), "id": late["id"]})
    model.Session.commit()
    row = call(world, "anonymous", "shanghai_desk_league", organization="sthj")["departments"][0]
    assert (row["due"], row["answered_on_time"], row["on_time_share"]) == (2, 1, 0.5)
    assert call(world, "admin_a", "shanghai_desk_item_show", id=late["id"])["overdue"]


def test_script_in_items_and_answers_renders_inert_on_every_desk_page(world):
    """The harvest XSS check's payloads and its checker, on the desk's pages."""
    from test_harvested_xss import MARKDOWN, PAYLOAD, live_script

    reset_items()
    item = request_data(world, title=f"需求{PAYLOAD}"[:200], body=MARKDOWN, reason=MARKDOWN)
    report = report_error(world, title=f"纠错{PAYLOAD}"[:200], body=MARKDOWN + "\n\n**粗体**")
    call(world, "admin_a", "shanghai_desk_item_answer", id=item["id"], body=MARKDOWN)
    call(world, "admin_a", "shanghai_desk_item_accept", id=report["id"], body=MARKDOWN)
    call(world, "admin_a", "shanghai_desk_item_close", id=item["id"], reason="not_suitable", basis=PAYLOAD,
         note=MARKDOWN)
    pages = [("anonymous", f"/desk/item/{item['id']}"), ("anonymous", f"/desk/item/{report['id']}"),
             ("anonymous", "/desk"), ("anonymous", "/desk/league"), ("anonymous", f"/dataset/{world['product']['name']}"),
             ("admin_a", f"/desk/item/{report['id']}"), ("admin_a", "/desk/queue"), ("filer", "/desk/mine")]
    for who, url in pages:
        html = page(world, who, url)
        assert live_script(html) == [], (url, live_script(html))
    html = page(world, "anonymous", f"/desk/item/{report['id']}")
    assert "<strong>粗体</strong>" in html and "xss-script" in html  # rendered Markdown; the payload as text


# --------------------------------------------------------------------------
# Notices by e-mail, through a real SMTP server


@pytest.fixture
def smtp_sink():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    class Keep(Sink):
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope.rcpt_tos, envelope.content))
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def test_new_items_and_answers_are_emailed_and_a_dead_mail_server_changes_nothing(world, smtp_sink):
    controller, handler = smtp_sink
    reset_items()
    with helpers.changed_config("ckanext.shanghai.desk.notify_email", True), \
            helpers.changed_config("smtp.server", f"127.0.0.1:{controller.port}"):
        item = request_data(world)
        assert sorted(r for rcpts, _ in handler.messages for r in rcpts) == sorted(
            world["people"][who]["email"] for who in ("editor_a", "admin_a"))
        handler.messages.clear()
        call(world, "follower", "shanghai_desk_item_follow", id=item["id"])
        call(world, "admin_a", "shanghai_desk_item_answer", id=item["id"], body="已在整理")
    assert sorted(r for rcpts, _ in handler.messages for r in rcpts) == sorted(
        world["people"][who]["email"] for who in ("filer", "follower"))
    message = email.message_from_bytes(handler.messages[0][1], policy=email.policy.default)
    assert "部门已答复" in str(message["Subject"]) and f"/desk/item/{item['id']}" in message.get_content()
    with helpers.changed_config("ckanext.shanghai.desk.notify_email", True), \
            helpers.changed_config("smtp.server", "127.0.0.1:9"):
        closed = call(world, "admin_a", "shanghai_desk_item_close", id=item["id"], reason="cannot_compile")
    assert closed["status"] == "closed"
    failures = [e for e in call(world, "admin_a", "shanghai_desk_item_show", id=item["id"])["events"]
                if e["action"] == "notify_email" and "failed" in e["detail"]]
    assert len(failures) == 2, [e["detail"] for e in failures]
    assert not [e for e in call(world, "anonymous", "shanghai_desk_item_show", id=item["id"])["events"]
                if e["action"] == "notify_email"]


def test_the_reminder_command_tells_the_department_before_a_deadline(world, run_ckan):
    reset_items()
    item = request_data(world)
    fresh = request_data(world, title="刚提交")
    model.Session.execute(sa.text("update shanghai_desk_item set ack_deadline = :d where id = :id"),
                          {"d": city_today(), "id": item["id"]})
    model.Session.commit()
    call(world, "admin_a", "shanghai_desk_notice_list", mark_seen=True)
    result = run_ckan("shanghai", "desk-remind")
    assert result.returncode == 0, result.stderr
    assert "reminded 1 item(s)" in result.stdout
    model.Session.remove()
    mine = call(world, "admin_a", "shanghai_desk_notice_list")["results"]
    assert [(n["event"], n["item_id"]) for n in mine if not n["seen"]] == [("reminder", item["id"])]
    assert "reminder" not in [n["event"] for n in mine if n["item_id"] == fresh["id"]]
    again = run_ckan("shanghai", "desk-remind")
    assert "reminded 0 item(s)" in again.stdout  # once a day


# --------------------------------------------------------------------------
# The authorization cells: (operation, expected per role in ROLES order)

OPERATIONS = {
    "file an item": (False, True, True, True, True, True, True, True),
    "read an item": (True,) * 8,
    "list items": (True,) * 8,
    "read the league table": (True,) * 8,
    "follow an item": (False, True, True, True, True, True, True, True),
    "read own notices": (False, True, True, True, True, True, True, True),
    "see A's desk": (False, False, False, False, True, True, False, True),
    "acknowledge": (False, False, False, False, True, True, False, True),
    "answer": (False, False, False, False, True, True, False, True),
    "extend": (False, False, False, False, True, True, False, True),
    "transfer": (False, False, False, False, True, True, False, True),
    "accept an error report": (False, False, False, False, True, True, False, True),
    "close": (False, False, False, False, True, True, False, True),
    "reopen": (False, True, False, False, True, True, False, True),
    "withdraw": (False, True, False, False, False, False, False, False),
    "answer an unassigned request": (False, False, False, False, False, False, False, True),
}


def _attempt(world, operation, who) -> bool:
    fresh = report_error(world, who="filer") if operation == "accept an error report" else request_data(world)
    try:
        if operation == "file an item":
            request_data(world, who=who)
        elif operation == "read an item":
            call(world, who, "shanghai_desk_item_show", id=fresh["id"])
        elif operation == "list items":
            return call(world, who, "shanghai_desk_item_list")["count"] >= 1
        elif operation == "read the league table":
            call(world, who, "shanghai_desk_league")
        elif operation == "follow an item":
            call(world, who, "shanghai_desk_item_follow", id=fresh["id"])
        elif operation == "read own notices":
            call(world, who, "shanghai_desk_notice_list")
        elif operation == "see A's desk":
            return call(world, who, "shanghai_desk_item_list", scope="desk",
                        organization=world["a"]["id"])["count"] >= 1
        elif operation == "acknowledge":
            call(world, who, "shanghai_desk_item_acknowledge", id=fresh["id"])
        elif operation == "answer":
            call(world, who, "shanghai_desk_item_answer", id=fresh["id"], body="矩阵答复")
        elif operation == "extend":
            call(world, who, "shanghai_desk_item_extend", id=fresh["id"], reason="矩阵")
        elif operation == "transfer":
            call(world, who, "shanghai_desk_item_transfer", id=fresh["id"], organization="mzj", reason="矩阵")
        elif operation == "accept an error report":
            call(world, who, "shanghai_desk_item_accept", id=fresh["id"])
        elif operation == "close":
            call(world, who, "shanghai_desk_item_close", id=fresh["id"], reason="cannot_compile")
        elif operation == "reopen":
            call(world, "admin_a", "shanghai_desk_item_close", id=fresh["id"], reason="cannot_compile")
            call(world, who, "shanghai_desk_item_reopen", id=fresh["id"], reason="矩阵")
        elif operation == "withdraw":
            call(world, who, "shanghai_desk_item_withdraw", id=fresh["id"])
        elif operation == "answer an unassigned request":
            unassigned = request_data(world, organization="")
            call(world, who, "shanghai_desk_item_answer", id=unassigned["id"], body="矩阵答复")
    except tk.NotAuthorized:
        return False
    return True


@pytest.mark.parametrize("operation,who,expected", [
    (operation, who, expected) for operation, row in OPERATIONS.items()
    for who, expected in zip(ROLES, row)])
def test_authorization_cell(world, operation, who, expected):
    assert _attempt(world, operation, who) is expected, (operation, who)


def test_no_desk_leaks_to_another_department(world):
    """B's admin, A's plain member and the public see no desk of A's; a
    private product's title never shows on the public list."""
    reset_items()
    request_data(world)
    with pytest.raises(tk.NotAuthorized):
        call(world, "admin_b", "shanghai_desk_item_list", scope="desk", organization=world["a"]["id"])
    with pytest.raises(tk.NotAuthorized):
        call(world, "member_a", "shanghai_desk_item_list", scope="desk")
    with pytest.raises(tk.NotAuthorized):
        call(world, "anonymous", "shanghai_desk_item_list", scope="desk")
    assert call(world, "admin_b", "shanghai_desk_item_list", scope="desk")["count"] == 0
    for who in ("anonymous", "other_user"):
        response = world["app"].get("/desk/queue", headers={"Authorization": world["tokens"].get(who, "")},
                                    follow_redirects=False)
        assert response.status_code in (302, 403), (who, response.status_code)
    assert 'id="sh-desk-staff"' not in page(world, "other_user", "/desk")

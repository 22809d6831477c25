"""Hostile and broken harvest inputs: each ends as a failed-closed job with a
bilingual reason, or as rejected records with bilingual reasons (or, where
the bytes are good data wrongly labelled, as the right records), within a
time bound and with the harvest process's peak memory under 512 MB, and
nothing already in the catalog changes.

The corpus: files under tests/corpus/hostile/, files built here (bombs,
encodings, workbooks) and responses of a local HTTP server (drip-feed,
redirect loops, gzip bombs, error pages). The jobs run in a child process
(tests/harvest_child.py) whose peak RSS is what is measured.
"""
from __future__ import annotations

import codecs
import gzip
import http.server
import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pytest

import ckan.model as model
from ckan.tests import helpers

from portal_testing import ROOT, create_source, load_catalog, make_department, run_job, write_export

pytestmark = pytest.mark.usefixtures("clean_db", "clean_index")

CORPUS = ROOT / "tests" / "corpus" / "hostile"
MAX_BYTES = 32 * 1024 * 1024
DEADLINE = 3.0
PEAK_RSS_LIMIT_KB = 512 * 1024

GOOD = {
    "数据集名称": "拆除施工企业信息", "摘要": "包含拆除施工企业信息。", "数据标签": "机构,建筑",
    "数据领域": "城市建设", "国家主题分类": "城乡建设、环境保护", "首次发布日期": "2020-01-02",
    "更新日期": "2023-04-06", "更新频度": "每年", "数据提供方": "上海市住房和城乡建设管理委员会",
    "开放属性": "有条件开放", "联系方式": "sjkf@shanghai.gov.cn", "数据格式": ["csv"],
}


def good(**changes) -> dict:
    record = dict(GOOD, **changes)
    return {key: value for key, value in record.items() if value is not None}


# An inline mapping: the Shanghai one plus a source page and resource links,
# so that hostile URLs reach the catalog's validators.
LINKED_MAPPING = {
    "name_prefix": "hx",
    "identity": {"from": "编号", "hash_of": ["数据提供方", "数据集名称", "首次发布日期"]},
    "department": {"from": "数据提供方"},
    "fields": {
        "title": "数据集名称", "notes": "摘要", "tags": {"from": "数据标签", "split": "[,，]"},
        "data_domain": {"from": "数据领域", "values": {"城市建设": "urban-construction"}},
        "first_published": "首次发布日期", "last_updated": "更新日期",
        "update_frequency": {"from": "更新频度", "values": {"每年": "annual"}},
        "open_condition": {"from": "开放属性", "values": {"有条件开放": "conditional", "无条件开放": "unconditional"}},
        "contact": "联系方式", "url": "链接",
    },
    "resources": {"formats_from": "数据格式", "url_from": "链接"},
}


# --- the local server ----------------------------------------------------------


class Server:
    """Serves ``routes`` (path -> callable(handler)) on 127.0.0.1 and
    remembers every path asked for."""

    def __init__(self):
        self.routes: dict = {}
        self.hits: list[str] = []
        routes, hits = self.routes, self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                hits.append(self.path)
                route = routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    route(self)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def body(self, path: str, data: bytes, content_type: str = "application/json", **headers):
        def send(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name.replace("_", "-"), value)
            handler.end_headers()
            handler.wfile.write(data)
            handler.close_connection = True
        self.routes[path] = send
        return f"{self.base}{path}"

    def short(self, path: str, data: bytes):
        """Announces all of ``data``, sends half, hangs up."""
        def send(handler):
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data[:len(data) // 2])
            handler.close_connection = True
        self.routes[path] = send
        return f"{self.base}{path}"

    def redirect(self, path: str, location: str):
        def send(handler):
            handler.send_response(302)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        self.routes[path] = send
        return f"{self.base}{path}"

    def status(self, path: str, code: int):
        def send(handler):
            body = b"<html><body>Internal Server Error at 10.0.0.5:5432</body></html>"
            handler.send_response(code)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        self.routes[path] = send
        return f"{self.base}{path}"

    def drip(self, path: str, every: float = 10.0):
        def send(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.end_headers()
            handler.wfile.write(b"[")
            handler.wfile.flush()
            for _ in range(60):
                time.sleep(every)
                handler.wfile.write(b" ")
                handler.wfile.flush()
        self.routes[path] = send
        return f"{self.base}{path}"

    def stream(self, path: str, size: int):
        def send(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(size))
            handler.end_headers()
            handler.wfile.write(b"[")
            block = b" " * 1024 * 1024
            left = size - 1
            while left > 0:
                handler.wfile.write(block[:left])
                left -= len(block)
        self.routes[path] = send
        return f"{self.base}{path}"

    def close(self):
        self.httpd.shutdown()


# --- building the corpus ---------------------------------------------------------


def json_bytes(records) -> bytes:
    return json.dumps(records, ensure_ascii=False).encode("utf-8")


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    return ("\n".join(",".join(row) for row in rows) + "\n").encode(encoding)


CSV_HEADER = ["数据集名称", "数据提供方", "首次发布日期", "数据领域", "更新频度", "开放属性", "数据格式"]


def csv_row(title: str) -> list[str]:
    return [title, GOOD["数据提供方"], "2021-05-06", "城市建设", "每年", "有条件开放", "csv"]


def xlsx_with_sheet_xml(sheet_xml: bytes) -> bytes:
    """A real workbook whose first sheet's XML is replaced."""
    book = openpyxl.Workbook()
    book.active.append(["数据集名称"])
    book.active.append(["拆除施工企业信息"])
    buffer = io.BytesIO()
    book.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = sheet_xml if item.filename == "xl/worksheets/sheet1.xml" else source.read(item)
            target.writestr(item.filename, data)
    return out.getvalue()


def gzip_bomb(inflated: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as bomb:
        bomb.write(b"[")
        block = b" " * (1024 * 1024)
        for _ in range(inflated // len(block)):
            bomb.write(block)
    return out.getvalue()


def zip_bomb_xlsx(inflated: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        target.writestr("[Content_Types].xml", "<Types/>")
        with target.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(inflated // len(block)):
                member.write(block)
    return out.getvalue()


def lying_zip_bomb_xlsx() -> bytes:
    """A zip whose directory claims a tiny member that inflates to 300 MB."""
    data = bytearray(zip_bomb_xlsx(300 * 1024 * 1024))
    # Rewrite the uncompressed size in every header to 1 KB (zip64 extras too).
    real = (300 * 1024 * 1024).to_bytes(8, "little")
    data = bytes(data).replace(real, (1024).to_bytes(8, "little"))
    return data


def xlsx_workbook(rows) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@dataclass
class Case:
    name: str
    url: str
    on: str                      # "A": the good source; "own": a source of its own
    outcome: str                 # failed_closed | finished
    reason: str = ""             # a fragment the job's (or every rejection's) English reason holds
    rejected: int | None = None  # rejections expected (record-level cases)
    added_titles: list[str] = field(default_factory=list)
    max_seconds: float = 30.0
    mapping: object = "shanghai"


def build_cases(tmp: Path, server: Server) -> tuple[list[Case], list[str]]:
    """The hostile corpus and the paths a safe harvest must never ask for."""
    never_asked: list[str] = []

    def file(name: str, data: bytes) -> str:
        path = tmp / name
        path.write_bytes(data)
        return str(path)

    def corpus(name: str) -> str:
        # Harvests read local files only under the operator's folders.
        return file(name, (CORPUS / name).read_bytes())

    xxe_http = f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "{server.base}/xxe-general">]><r>&x;</r>'
    xxe_param = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "{server.base}/xxe-parameter"> %p;]>'
                 f"<r/>")
    never_asked += ["/xxe-general", "/xxe-parameter", "/xlsx-xxe"]
    lol = CORPUS.joinpath("billion_laughs.xml").read_bytes()
    sheet_bomb = lol.replace(b"<lolz>&lol9;</lolz>",
                             b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                             b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
                             b"</sheetData></worksheet>").replace(b"lolz", b"worksheet")
    sheet_xxe = (f'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY x SYSTEM "{server.base}/xlsx-xxe">]>'
                 '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                 '<row r="1"><c r="A1" t="inlineStr"><is><t>&x;</t></is></c></row></sheetData></worksheet>').encode()
    good_json = json_bytes([good(数据集名称="重定向后的数据")])
    port = server.port

    fail = "failed_closed"
    cases = [
        # --- XML of every hostile kind: never parsed, refused as markup
        Case("billion laughs", corpus("billion_laughs.xml"), "A", fail, "markup"),
        Case("xxe file entity", corpus("xxe_file.xml"), "A", fail, "markup"),
        Case("xxe http entity", file("xxe_http.xml", xxe_http.encode()), "A", fail, "markup"),
        Case("xxe parameter entity", file("xxe_param.xml", xxe_param.encode()), "A", fail, "markup"),
        Case("xml served as json", server.body("/catalog-xml.json", xxe_http.encode()), "A", fail, "markup"),
        # --- workbooks: xlsx is a zip of XML
        Case("xlsx billion laughs", file("lol.xlsx", xlsx_with_sheet_xml(sheet_bomb)), "A", fail, "xlsx"),
        Case("xlsx xxe", file("xxe.xlsx", xlsx_with_sheet_xml(sheet_xxe)), "A", fail, ""),
        Case("xlsx zip bomb", file("bomb.xlsx", zip_bomb_xlsx(600 * 1024 * 1024)), "A", fail, "inflates"),
        Case("xlsx zip bomb lying sizes", file("liar.xlsx", lying_zip_bomb_xlsx()), "A", fail, "xlsx"),
        Case("xlsx truncated", file("cut.xlsx", xlsx_workbook([["数据集名称"], ["x"]])[:700]), "A", fail, "xlsx"),
        Case("xls named csv that is not one", file("fake.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600),
             "A", fail, "xls"),
        # --- compression
        Case("gzip bomb (Content-Encoding)", server.body(
            "/gzip-bomb.json", gzip_bomb(200 * 1024 * 1024),
            Content_Encoding="gzip"), "A", fail, "limit"),
        Case("gzip file with no header", file("export.json.gz", gzip.compress(json_bytes([GOOD]))), "A", fail),
        # --- empty, truncated, broken
        Case("zero-byte file", corpus("empty.json"), "A", fail, "empty"),
        Case("whitespace only", corpus("whitespace.json"), "A", fail, "empty"),
        Case("zero-byte response", server.body("/empty.json", b""), "A", fail, "empty"),
        Case("truncated json", corpus("truncated.json"), "A", fail, "incomplete"),
        Case("truncated response (short of its Content-Length)", server.short("/short.json", json_bytes([GOOD])),
             "A", fail, "broke off"),
        Case("invalid json syntax", corpus("invalid_syntax.json"), "A", fail, "invalid JSON"),
        Case("NaN in json", corpus("nan.json"), "A", fail, "NaN"),
        Case("top-level object", corpus("top_level_object.json"), "A", fail, "no usable record"),
        Case("endless json line", file("endless.jsonl", b'{"t": "' + b"x" * (17 * 1024 * 1024)), "A", fail,
             "longer than"),
        # --- servers that misbehave
        Case("html error page with 200", server.body(
            "/export.json", CORPUS.joinpath("html_error_page.html").read_bytes(), "text/html"), "A", fail,
            "web page"),
        Case("http 500", server.status("/broken.json", 500), "A", fail, "HTTP 500"),
        Case("one byte every 10 seconds", server.drip("/drip.json"), "A", fail, "longer than", max_seconds=15),
        Case("redirect loop", server.redirect("/loop.json", "/loop.json"), "A", fail, "redirects"),
        Case("redirect to metadata service", server.redirect(
            "/to-metadata.json", "http://169.254.169.254/latest/meta-data/"), "A", fail, "non-public"),
        Case("redirect to localhost", server.redirect(
            "/to-localhost.json", f"http://localhost:{port}/good.json"), "A", fail, "non-public"),
        Case("oversized response", server.stream("/huge.json", MAX_BYTES + 8 * 1024 * 1024), "A", fail,
             "limit"),
        Case("oversized file", file("huge.json", b"[" + b" " * (MAX_BYTES + 1024) + b"]"), "A", fail, "limit"),
        # --- addresses: internal in every spelling
        Case("decimal ip", f"http://2130706433:{port}/good.json", "A", fail, "non-public"),
        Case("octal ip", f"http://0177.0.0.1:{port}/good.json", "A", fail, "non-public"),
        Case("short ip", f"http://127.1:{port}/good.json", "A", fail, "non-public"),
        Case("ipv6 loopback", f"http://[::1]:{port}/good.json", "A", fail, "non-public"),
        Case("ipv4-mapped ipv6", f"http://[::ffff:127.0.0.1]:{port}/good.json", "A", fail, "non-public"),
        Case("localhost", f"http://localhost:{port}/good.json", "A", fail, "non-public"),
        Case("link-local metadata", "http://169.254.169.254/latest/meta-data/", "A", fail, "non-public"),
        Case("private network", "http://10.0.0.8/export.json", "A", fail, "non-public"),
        Case("system file", "file:///etc/passwd", "A", fail, "outside the folders"),
        # --- encodings
        Case("gbk json labelled utf-8", server.body(
            "/gbk.json", json.dumps([GOOD], ensure_ascii=False).encode("gbk"), "application/json; charset=utf-8"),
            "A", fail, "UTF-8"),
        Case("invalid utf-8 in json", file("bad-utf8.json", b'[{"\xe6\x95\xb0": "\xff\xfe\xfd"}]'), "A", fail,
             "UTF-8"),
        Case("utf-16 json with BOM", file("utf16.json", codecs.BOM_UTF16_LE + json.dumps(
            [GOOD], ensure_ascii=False).encode("utf-16-le")), "A", fail, "UTF-16"),
        Case("gbk then invalid bytes in csv", file("mixed.csv", csv_bytes([CSV_HEADER], "gbk")
                                                   + b"\x81\x30\xff\xff,\n"), "A", fail, "decoded"),
        # --- record level: rejected, each with a reason
        Case("duplicate keys", file("dupkeys.json", b'[{"\xe6\x95\xb0\xe6\x8d\xae\xe9\x9b\x86\xe5\x90\x8d\xe7\xa7\xb0": '
                                                   b'"a", "\xe6\x95\xb0\xe6\x8d\xae\xe9\x9b\x86\xe5\x90\x8d\xe7\xa7\xb0": "b"}]'),
             "own", "finished", "repeats the key", rejected=1),
        Case("deeply nested record", file("deep.json", b'[{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}]"),
             "own", "finished", "nested", rejected=1),
        Case("NaN in json lines", file("nan.jsonl", b'{"a": NaN}\n{"a": Infinity}\n'), "own", "finished",
             "not a valid JSON number", rejected=2),
        Case("ragged csv rows", file("ragged.csv", csv_bytes([CSV_HEADER, csv_row("甲") + ["多", "余"],
                                                               csv_row("乙") + ["x"]])),
             "own", "finished", "cells", rejected=2),
        Case("nul bytes in csv", file("nul.csv", csv_bytes([CSV_HEADER, csv_row("含\x00空字节")])), "own",
             "finished", "NUL", rejected=1),
        Case("unterminated quote in csv", corpus("truncated_quote.csv"), "own", "finished", "not valid CSV",
             rejected=1),
        Case("10,000 resources", file("many.json", json_bytes([good(数据格式=[f"F{n}" for n in range(10_000)])])),
             "own", "finished", "resources", rejected=1),
        Case("1 MB title", file("title.json", json_bytes([good(数据集名称="标" * (1024 * 1024))])), "own",
             "finished", "title", rejected=1),
        Case("1 MB title in csv", file("title.csv", csv_bytes([CSV_HEADER, csv_row("标" * (1024 * 1024))])),
             "own", "finished", "", rejected=1),
        Case("same identity twice in one source", file("twice.json", json_bytes(
            [good(数据集名称="重复标识数据", 摘要="第一版"), good(数据集名称="重复标识数据", 摘要="第二版")])),
             "own", "finished", "has the identity of record 1 but different content", rejected=1,
             added_titles=["重复标识数据"]),
        Case("javascript: links", file("js.json", json_bytes([good(链接="javascript:alert(document.cookie)")])),
             "own", "finished", "Only http and https", rejected=1, mapping=LINKED_MAPPING),
        Case("data: links", file("data.json", json_bytes([good(链接="data:text/html,<script>alert(1)</script>")])),
             "own", "finished", "Only http and https", rejected=1, mapping=LINKED_MAPPING),
        Case("file: links", file("file.json", json_bytes([good(链接="file:///etc/passwd")])), "own", "finished",
             "Only http and https", rejected=1, mapping=LINKED_MAPPING),
        Case("tab-split javascript: link", file("jstab.json", json_bytes([good(链接=" java\tscript:alert(1)")])),
             "own", "finished", "Only http and https", rejected=1, mapping=LINKED_MAPPING),
        # --- good data in the wrong clothes: read by its bytes, imported right
        Case("gbk csv labelled utf-8", server.body("/gbk.csv", csv_bytes([CSV_HEADER, csv_row("国标编码数据")], "gbk"),
                                                   "text/csv; charset=utf-8"),
             "own", "finished", rejected=0, added_titles=["国标编码数据"]),
        Case("gb18030 four-byte characters", file("gb18030.csv", csv_bytes(
            [CSV_HEADER, csv_row("四字节𠀀𪚥数据")], "gb18030")), "own", "finished", rejected=0,
             added_titles=["四字节𠀀𪚥数据"]),
        Case("utf-8 csv labelled gbk", server.body("/utf8.csv", csv_bytes([CSV_HEADER, csv_row("统一码数据")]),
                                                   "text/csv; charset=gbk"),
             "own", "finished", rejected=0, added_titles=["统一码数据"]),
        Case("utf-16 csv with BOM", file("utf16.csv", csv_bytes([CSV_HEADER, csv_row("十六位编码数据")], "utf-16")),
             "own", "finished", rejected=0, added_titles=["十六位编码数据"]),
    ]
    server.body("/good.json", good_json)
    never_asked.append("/good.json")  # only reachable through refused spellings
    return cases, never_asked


# --- the catalog before and after ----------------------------------------------------


def catalog_state() -> dict[str, tuple]:
    model.Session.remove()
    rows = model.Session.query(model.Package).filter(model.Package.type != "harvest")
    return {p.name: (p.state, p.title, p.metadata_modified, p.owner_org) for p in rows}


def run_in_child(ckan_ini: Path, jobs: list[dict], config: dict) -> tuple[list[dict], int, str]:
    plan = json.dumps({"config": config, "jobs": jobs})
    child = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "harvest_child.py")], input=plan, capture_output=True, text=True,
        timeout=1800, cwd=ROOT, env=dict(os.environ, CKAN_INI=str(ckan_ini)),
    )
    lines = [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]
    assert lines and "peak_rss_kb" in lines[-1], child.stderr[-4000:]
    return lines[:-1], lines[-1]["peak_rss_kb"], child.stderr


def test_every_hostile_input_ends_recorded_bounded_and_leaves_the_catalog_alone(ckan_ini, tmp_path):
    server = Server()
    try:
        # A good source, harvested first.
        records = load_catalog("shanghai.json")[:40]
        good_export = write_export(tmp_path / "good.json", records)
        source_a = create_source("hostile-a", str(good_export), {"mapping": "shanghai"})
        first = run_job(source_a["id"])
        assert first["outcome"] == "finished" and first["added"] > 20
        before = catalog_state()
        assert len(before) == first["added"]

        cases, never_asked = build_cases(tmp_path, server)
        # The identity of a record source A already provides, from a second source.
        from ckanext.shanghai.harvesters.mapping import MAPPINGS_DIR, load_mapping
        shanghai = load_mapping(MAPPINGS_DIR / "shanghai.yaml")
        taken = next(r for r in records if shanghai.apply(r).package["name"] in before)
        cases.append(Case("same identity from a second source", str(write_export(tmp_path / "taken.json", [taken])),
                          "own", "finished", "another source", rejected=1))
        owner = make_department(name="hostile-owner")["id"]
        jobs = []
        for number, case in enumerate(cases):
            if case.on == "A":
                jobs.append({"case": case.name, "source_id": source_a["id"], "url": case.url})
            else:
                own = create_source(f"hostile-{number}", case.url, {"mapping": case.mapping}, owner_org=owner)
                jobs.append({"case": case.name, "source_id": own["id"]})
        model.Session.commit()
        config = {"ckanext.shanghai.harvest.max_bytes": MAX_BYTES,
                  "ckanext.shanghai.harvest.deadline": DEADLINE,
                  "ckanext.shanghai.harvest.read_timeout": 30.0,
                  "ckanext.shanghai.harvest.allowed_hosts": ["127.0.0.1"]}
        results, peak_rss_kb, stderr = run_in_child(ckan_ini, jobs, config)
    finally:
        server.close()

    assert [r["case"] for r in results] == [c.name for c in cases], stderr[-3000:]
    problems = []
    expected_titles = set()
    for case, result in zip(cases, results):
        report = result["report"]
        if result["error"] or report is None:
            problems.append(f"{case.name}: crashed: {result['error']}")
            continue
        if report["outcome"] != case.outcome:
            problems.append(f"{case.name}: outcome {report['outcome']} ({report['message_en']}), "
                            f"expected {case.outcome}")
            continue
        if result["seconds"] > case.max_seconds:
            problems.append(f"{case.name}: took {result['seconds']:.1f}s (bound {case.max_seconds}s)")
        rejections = helpers.call_action("shanghai_harvest_report", id=report["job_id"])["rejections"]
        if case.outcome == "failed_closed":
            if not (report["message_zh"] and report["message_en"]) or case.reason not in report["message_en"]:
                problems.append(f"{case.name}: reason {report['message_en']!r} lacks {case.reason!r}")
            if (report["added"], report["updated"], report["withdrawn"]) != (0, 0, 0):
                problems.append(f"{case.name}: a failed-closed job changed the catalog: {report}")
        else:
            if len(rejections) != case.rejected or report["rejected"] != case.rejected:
                problems.append(f"{case.name}: {len(rejections)} rejections, expected {case.rejected}: "
                                f"{[r['reason_en'] for r in rejections]}")
            for rejection in rejections:
                if not rejection["reason_zh"] or case.reason not in rejection["reason_en"]:
                    problems.append(f"{case.name}: rejection {rejection} lacks {case.reason!r}")
            if report["added"] != len(case.added_titles):
                problems.append(f"{case.name}: added {report['added']}, expected {len(case.added_titles)}")
            expected_titles.update(case.added_titles)
    assert not problems, "\n".join(problems)
    assert len(cases) >= 40

    # Nothing already in the catalog changed; only the good data in wrong
    # clothes was added, with its text intact.
    after = catalog_state()
    assert {name: after.get(name) for name in before} == before
    added = {after[name][1] for name in set(after) - set(before)}
    assert added == expected_titles

    # Bounded memory: the harvest process never went past 512 MB.
    growth = [(r["case"], r["rss_kb"] // 1024) for r in results]
    assert peak_rss_kb < PEAK_RSS_LIMIT_KB, f"peak RSS {peak_rss_kb / 1024:.0f} MB; MB after each case: {growth}"
    print(f"\nhostile corpus: {len(cases)} inputs; harvest peak RSS {peak_rss_kb / 1024:.0f} MB; slowest "
          f"{max(r['seconds'] for r in results):.1f}s")
    # No entity, redirect or internal spelling made the server fetch.
    assert not [path for path in server.hits if path in never_asked]

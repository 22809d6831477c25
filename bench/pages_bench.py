"""Pages on a phone: Lighthouse (npm ``lighthouse``, installed by
`make bench` into .local/npm/, run with Debian's chromium, mobile profile
with its default simulated network and CPU throttling) on the home, search,
product, department, statistics and application pages of the served portal
with the real demo harvested into it. Writes each page's four category
scores, LCP and page weight to bench/results/latest.json (section "pages")
and bench/results/pages.json; the full reports go to .local/bench/lighthouse/.
A benchmark, not a test.

    make bench BENCH=pages [BENCH_ARGS="--records 300 --runs 1"]
    .venv/bin/python bench/pages_bench.py --base http://127.0.0.1:5000 --output before.json
"""
from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report as bench_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LIGHTHOUSE = ROOT / ".local" / "npm" / "lighthouse" / "node_modules" / "lighthouse" / "cli" / "index.js"
REPORTS = ROOT / ".local" / "bench" / "lighthouse"
SUMMARY = ROOT / "bench" / "results" / "pages.json"
CATALOG = ROOT / "config" / "demo" / "catalogs" / "shanghai.json"
TABLES = ROOT / "config" / "demo" / "tables"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
# The targets: every category >= 90, LCP <= 2.5 s, home <= 600 KB.
SCORE_TARGET, LCP_TARGET_MS, HOME_WEIGHT_TARGET = 90, 2500, 600 * 1024
# The products the demo attaches real tables to (as the browser tests do).
DEMO_TITLES = {"上海市养老机构", "上海市社区卫生服务中心基本信息", "全市医疗卫生机构、床位、人员基本情况统计表",
               "房地产开发企业资质", "双公示-行政处罚结果信息", "嘉定区预售许可信息", "静安区行政区划"}


def site_url(ini: Path) -> str:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(ini, encoding="utf-8")
    return parser["app:main"]["ckan.site_url"].rstrip("/")


def api(base: str, action: str, **params) -> dict:
    url = f"{base}/api/3/action/{action}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)["result"]


def start_workers(ini: Path, logs: Path) -> list[subprocess.Popen]:
    """The harvest consumers, scheduler and job worker, as `make serve` runs them."""
    ckan = str(Path(sys.executable).parent / "ckan")
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for args in (("shanghai", "harvest-consumer", "gather"), ("shanghai", "harvest-consumer", "fetch"),
                 ("shanghai", "harvest-scheduler"), ("jobs", "worker")):
        processes.append(subprocess.Popen([ckan, "-c", str(ini), *args], cwd=ROOT, start_new_session=True,
                                          stdout=(logs / f"pages-{args[-1]}.log").open("ab"),
                                          stderr=subprocess.STDOUT))
    return processes


def load_demo(base: str, ini: Path, records: int, work: Path) -> None:
    """Harvest part of the real catalog (the demo's products first), attach
    the real tables, seed the applications; wait until all is there."""
    catalog = json.loads(CATALOG.read_text(encoding="utf-8"))
    chosen = [r for r in catalog if r["数据集名称"] in DEMO_TITLES]
    chosen += [r for r in catalog if r["数据集名称"] not in DEMO_TITLES][:max(records - len(chosen), 0)]
    work.mkdir(parents=True, exist_ok=True)
    export = work / "shanghai-part.json"
    export.write_text(json.dumps(chosen, ensure_ascii=False), encoding="utf-8")
    ckan = str(Path(sys.executable).parent / "ckan")
    subprocess.run([ckan, "-c", str(ini), "shanghai", "demo", str(export), "--tables", str(TABLES)],
                   check=True, capture_output=True, text=True, cwd=ROOT)
    deadline = time.monotonic() + 1800
    last, steady_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            apps = api(base, "package_search", fq="+dataset_type:application", rows=0)["count"]
            products = api(base, "package_search", rows=0)["count"]
            loaded = api(base, "package_search", fq="res_url:*download*", rows=0)["count"]
        except OSError:
            time.sleep(10)
            continue
        if products != last:
            last, steady_since = products, time.monotonic()
        # Done when the applications and tables are there and the harvest
        # has added nothing for a minute (some records are rejected).
        if apps >= 3 and loaded >= 5 and products and time.monotonic() - steady_since >= 60:
            return
        time.sleep(10)
    raise SystemExit("the demo did not load within 30 minutes (see .local/bench/logs/pages-*.log)")


def pages(base: str) -> dict[str, str]:
    product = api(base, "package_search", q='title:"上海市养老机构"', rows=1)["results"][0]
    application = api(base, "package_search", fq="+dataset_type:application", rows=1)["results"][0]
    return {
        "home": f"{base}/",
        "search": f"{base}/dataset/?q={urllib.parse.quote('医院')}",
        "product": f"{base}/{product['type']}/{product['name']}",
        "department": f"{base}/organization/{product['organization']['name']}",
        "statistics": f"{base}/statistics",
        "application": f"{base}/application/{application['name']}",
    }


def lighthouse(name: str, url: str, run: int) -> dict:
    """One Lighthouse run (mobile, default throttling); the report kept."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    output = REPORTS / f"{name}-{run}.json"
    port = urllib.parse.urlsplit(url).port
    flags = ("--headless=new --no-sandbox --disable-dev-shm-usage --disable-gpu "
             f"--explicitly-allowed-ports={port}")
    subprocess.run(["node", str(LIGHTHOUSE), url, "--output=json", f"--output-path={output}", "--quiet",
                    f"--only-categories={','.join(CATEGORIES)}", f"--chrome-flags={flags}"],
                   check=True, env=dict(os.environ, CHROME_PATH="/usr/bin/chromium"), timeout=300)
    result = json.loads(output.read_text(encoding="utf-8"))
    audits = result["audits"]
    return {
        **{category: round(result["categories"][category]["score"] * 100) for category in CATEGORIES},
        "lcp_ms": round(audits["largest-contentful-paint"]["numericValue"]),
        "tbt_ms": round(audits["total-blocking-time"]["numericValue"]),
        "fcp_ms": round(audits["first-contentful-paint"]["numericValue"]),
        "weight_bytes": round(audits["total-byte-weight"]["numericValue"]),
        "lighthouse": result.get("lighthouseVersion"),
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median performance score (Lighthouse's advice)."""
    ordered = sorted(runs, key=lambda r: r["performance"])
    return ordered[len(ordered) // 2]


def measure(base: str, runs: int) -> dict[str, dict]:
    """Each page type's median Lighthouse run, printed as it comes."""
    measured = {}
    for name, url in pages(base).items():
        results = [lighthouse(name, url, run) for run in range(runs)]
        measured[name] = dict(median_run(results), url=url,
                              lcp_ms_median=round(statistics.median(r["lcp_ms"] for r in results)))
        print(f"{name:<12} " + " ".join(f"{c[:4]} {measured[name][c]:>3}" for c in CATEGORIES)
              + f"  LCP {measured[name]['lcp_ms'] / 1000:.1f} s  {measured[name]['weight_bytes'] / 1024:.0f} KB",
              flush=True)
    return measured


def summary(measured: dict[str, dict]) -> str:
    return json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pages": measured},
                      ensure_ascii=False, indent=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300, help="catalog records to harvest first")
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs per page (the median is kept)")
    parser.add_argument("--base", help="measure a portal already served with its demo (another tree's "
                                       "`make serve`, a staging site) instead of the bench stack")
    parser.add_argument("--output", type=Path, help="with --base: where to write the figures (JSON)")
    options, _ = parser.parse_known_args()
    if not LIGHTHOUSE.exists():
        raise SystemExit(f"{LIGHTHOUSE} is missing: `make bench` installs it (npm lighthouse)")
    if options.base:
        # Not this tree's portal: its figures stay out of latest.json.
        text = summary(measure(options.base.rstrip("/"), options.runs))
        if options.output:
            options.output.write_text(text, encoding="utf-8")
        return 0
    ini = Path(os.environ["CKAN_INI"])
    base = site_url(ini)
    workers = start_workers(ini, ROOT / ".local" / "bench" / "logs")
    work = tempfile.mkdtemp(prefix="shanghai-pages-")
    try:
        # The export goes where the harvesters may read local files
        # (ckanext.shanghai.harvest.file_roots: the demo folder and /tmp).
        load_demo(base, ini, options.records, Path(work))
        measured = measure(base, options.runs)
    finally:
        for process in workers:
            try:
                os.killpg(process.pid, 15)
                process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for name, row in measured.items():
        for category in CATEGORIES:
            rows.append(bench_report.figure(f"{name} {category}", row[category], "score", better="higher",
                                            limit=SCORE_TARGET, limit_of="the target score",
                                            target=f"of_limit >= 1 (score >= {SCORE_TARGET})"))
        rows.append(bench_report.figure(f"{name} LCP", row["lcp_ms"], "ms", better="lower", limit=LCP_TARGET_MS,
                                        limit_of="the target LCP", target="of_limit <= 1 (LCP <= 2.5 s)"))
        rows.append(bench_report.figure(
            f"{name} weight", row["weight_bytes"], "bytes", better="lower",
            limit=HOME_WEIGHT_TARGET if name == "home" else None,
            limit_of="the home page target" if name == "home" else None,
            target="of_limit <= 1 (home <= 600 KB)" if name == "home" else None))
    bench_report.publish("pages", rows, profile="Lighthouse mobile, default throttling, Debian chromium",
                         records=options.records, runs=options.runs)
    SUMMARY.write_text(summary(measured), encoding="utf-8")
    print(f"written to {SUMMARY.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Print a benchmark's figures and keep them, one section per benchmark, in
bench/results/latest.json. Every figure stands beside its peer and its limit,
measured in the same run: ``stock`` (stock CKAN doing the same work, where
such a path exists), ``limit`` (the engine underneath doing the same work
alone), ``ratio`` (ours / stock) and ``of_limit`` (ours / limit: a share for
throughputs, a multiple for latencies). Absolute figures move by 2x between
runs on shared machines; the ratios are what the targets are stated in."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"

# Read when the benchmark starts (this module is imported first thing).
LOAD_AT_START = os.getloadavg()


def figure(name: str, value: float, unit: str, *, better: str, stock: float | None = None,
           limit: float | None = None, limit_of: str | None = None, target: str | None = None,
           detail: dict | None = None) -> dict:
    """One result row with its ratios computed.

    :param better: "higher" (a throughput) or "lower" (a latency)
    :param limit_of: what the limit is (e.g. "Solr /select, the same request")
    :param target: the target, stated as a ratio (e.g. "of_limit <= 1.5")
    """
    row: dict = {"name": name, "value": value, "unit": unit, "better": better}
    if stock:
        row["stock"] = stock
        row["ratio"] = round(value / stock, 2)
    if limit is not None:
        # A count whose limit is none at all (a page's Solr calls against an
        # action that makes none) has no share: of_limit stays empty.
        row["limit"] = limit
        row["of_limit"] = round(value / limit, 3) if limit else None
        row["limit_of"] = limit_of
    if target:
        row["target"] = target
    if detail is not None:
        row["detail"] = detail
    return row


def publish(section: str, results: list[dict], **context) -> None:
    """Print the ratios first, then the absolute figures, and write them."""
    width = max(len(row["name"]) for row in results) + 2
    print(f"\n== {section}: ratios (same run) ==")
    print(f"{'figure':<{width}} {'x stock':>8} {'of limit':>9}  target")
    for row in results:
        if "ratio" in row or "of_limit" in row:
            print(f"{row['name']:<{width}} {row.get('ratio', ''):>8} {row.get('of_limit', ''):>9}  "
                  f"{row.get('target', '')}")
    print(f"\n== {section}: absolute figures (move with the machine) ==")
    print(f"{'figure':<{width}} {'ours':>10} {'stock':>9} {'limit':>9}  unit")
    for row in results:
        print(f"{row['name']:<{width}} {row['value']:>10} {row.get('stock', ''):>9} {row.get('limit', ''):>9}  "
              f"{row['unit']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing[section] = {
        "when": dt.datetime.utcnow().isoformat(timespec="seconds") + "Z",
        "machine": {"arch": platform.machine(), "cores": os.cpu_count(),
                    "load_at_start": [round(x, 2) for x in LOAD_AT_START],
                    "load_at_end": [round(x, 2) for x in os.getloadavg()]},
        **context,
        "results": results,
    }
    RESULTS.write_text(json.dumps(existing, ensure_ascii=False, indent=1))
    print(f"written to {RESULTS.relative_to(ROOT)}")


def summary() -> None:
    """Every benchmark's ratios from bench/results/latest.json, together."""
    if not RESULTS.exists():
        print("no results yet")
        return
    sections = json.loads(RESULTS.read_text())
    print("\n== every ratio in bench/results/latest.json (ours against the peer and the limit) ==")
    for section, content in sections.items():
        rows = [row for row in content.get("results", []) if "ratio" in row or "of_limit" in row]
        if not rows:
            continue
        machine = content.get("machine")
        print(f"-- {section} ({content.get('when')}, {machine})")
        width = max(len(row["name"]) for row in rows) + 2
        for row in rows:
            print(f"   {row['name']:<{width}} x stock {str(row.get('ratio', '-')):>6}   "
                  f"of limit {str(row.get('of_limit', '-')):>6}   {row.get('target', '')}")


def compare(paths: list[Path]) -> None:
    """The ratios of several runs' results files side by side, as a Markdown
    table: each figure's ``ratio`` (x stock) and ``of_limit`` in each run and
    its largest gap from the median of the runs, with each run's load."""
    runs = [json.loads(path.read_text()) for path in paths]
    header = " | ".join(f"run {n}" for n in range(1, len(runs) + 1))
    print("| section | load average (1 min) at start and end, each run |")
    print("|---|---|")
    for section in runs[0]:
        loads = ["{}→{}".format(run[section]["machine"]["load_at_start"][0], run[section]["machine"]["load_at_end"][0])
                 for run in runs if section in run]
        print(f"| {section} | {', '.join(loads)} |")
    print(f"\n| figure | {header} | largest gap from the median |")
    print("|---|" + "---|" * len(runs) + "---|")
    for section in runs[0]:
        for row in runs[0][section].get("results", []):
            for key, label in (("ratio", "x stock"), ("of_limit", "of limit")):
                values = []
                for run in runs:
                    match = [r for r in run.get(section, {}).get("results", []) if r["name"] == row["name"]]
                    values.append(match[0].get(key) if match else None)
                if any(v is None for v in values):
                    continue
                median = sorted(values)[len(values) // 2]
                gap = max(abs(v - median) for v in values) / median if median else 0.0
                name = row["name"].replace("_", " ")
                print(f"| {name} ({label}) | {' | '.join(str(v) for v in values)} | ±{gap:.0%} |")


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1:
        compare([Path(arg) for arg in sys.argv[1:]])
    else:
        summary()

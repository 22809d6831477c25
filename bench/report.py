"""Print a benchmark's figures as a table and keep them, one section per
benchmark, in bench/results/latest.json (name, value, unit, and the stock
figure, ratio and target where there is one)."""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"


def publish(section: str, results: list[dict], **context) -> None:
    width = max(len(row["name"]) for row in results) + 2
    print(f"{'benchmark':<{width}} {'ours':>10} {'stock':>8} {'ratio':>7} {'target':>7}")
    for row in results:
        print(f"{row['name']:<{width}} {row['value']:>10} {row.get('stock', ''):>8} {row.get('ratio', ''):>7} "
              f"{row.get('target', ''):>7}  {row['unit']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing[section] = {
        "when": dt.datetime.utcnow().isoformat(timespec="seconds") + "Z",
        "machine": f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end",
        **context,
        "results": results,
    }
    RESULTS.write_text(json.dumps(existing, ensure_ascii=False, indent=1))
    print(f"written to {RESULTS.relative_to(ROOT)}")

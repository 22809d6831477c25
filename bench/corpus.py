"""A city-scale corpus built from the real catalog exports of the three
portals (Shanghai, Guiyang, Liuzhou): each real record is copied with a
district and a year in its title and a new identity, so titles stay real
Chinese text, departments and schemas keep their real spread, and the
catalog grows to the size asked for."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# One copy of each real export in the repository: the demo's and the tests' own.
CATALOG_DIRS = (ROOT / "config" / "demo" / "catalogs", ROOT / "tests" / "data" / "catalogs")

DISTRICTS = ["黄浦区", "徐汇区", "长宁区", "静安区", "普陀区", "虹口区", "杨浦区", "闵行区",
             "宝山区", "嘉定区", "浦东新区", "金山区", "松江区", "青浦区", "奉贤区", "崇明区"]

# export file, mapping, title field, share of the corpus
PORTALS = [
    ("shanghai.json", "shanghai", "数据集名称", 0.5),
    ("guizhou_guiyang.json", "guiyang", "标题", 0.3),
    ("guangxi_liuzhou.json", "liuzhou", "标题", 0.2),
]

_HEX_ID = re.compile(r"([0-9A-Fa-f]{8})(?=[0-9A-Fa-f-]{24,28}$)")


def load(name: str) -> list[dict]:
    path = next(folder / name for folder in CATALOG_DIRS if (folder / name).is_file())
    return json.loads(path.read_text(encoding="utf-8"))


def copies(records: list[dict], size: int, title_field: str, seed: int = 2026) -> list[dict]:
    """``size`` records: the real ones first, then copies of them, each with
    a district and year in the title and (where the identity is an id in the
    page address) that id changed."""
    rng = random.Random(seed)
    corpus = []
    for number in range(size):
        record = dict(records[number % len(records)])
        round_ = number // len(records)
        if round_:
            district = rng.choice(DISTRICTS)
            record[title_field] = f"{district}{record[title_field]}（{2010 + round_ % 15}年第{round_}版）"
            url = record.get("详情页网址", "")
            record["详情页网址"] = _HEX_ID.sub(f"{round_:08x}", url) if _HEX_ID.search(url) else \
                url.replace("id=", f"id=R{round_}X", 1)
        corpus.append(record)
    return corpus


def distinct(records: list[dict], mapping_name: str) -> list[dict]:
    """The records the portal's mapping takes, each identity once (the
    Shanghai export repeats half of its records)."""
    from ckanext.shanghai.harvesters.mapping import MAPPINGS_DIR, RecordRejected, load_mapping

    mapping = load_mapping(MAPPINGS_DIR / f"{mapping_name}.yaml")
    seen, kept = set(), []
    for record in records:
        try:
            identity = mapping.apply(record).identity
        except RecordRejected:
            continue
        if identity not in seen:
            seen.add(identity)
            kept.append(record)
    return kept


def build(size: int, directory: Path) -> list[tuple[Path, str]]:
    """Write the corpus as one export per portal; returns (path, mapping)."""
    exports = []
    for filename, mapping, title_field, share in PORTALS:
        records = distinct(load(filename), mapping)
        path = directory / f"corpus-{mapping}.json"
        path.write_text(json.dumps(copies(records, round(size * share), title_field), ensure_ascii=False),
                        encoding="utf-8")
        exports.append((path, mapping))
    return exports

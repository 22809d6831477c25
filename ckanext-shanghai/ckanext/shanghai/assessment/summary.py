"""Quality scores read back from the index for pages: the distribution over
the catalog or a department (bands, 45-point bins, average) and a
department's lowest-scoring products. Public data products only."""
from __future__ import annotations

from typing import Any

from ckanext.shanghai.assessment import score
from ckanext.shanghai.portal import stats

__all__ = ["distribution", "lowest", "BIN_WIDTH"]

BIN_WIDTH = 45  # nine bins over 0-405


def _scores(fq: str) -> dict[int, int]:
    """Score -> how many public products have it (one facet query)."""
    result = stats.product_search(q="*:*", fq=fq, rows=0,
                                  **{"facet.field": ["quality_score"], "facet.limit": -1})
    items = result.get("search_facets", {}).get("quality_score", {}).get("items", [])
    return {int(item["name"]): item["count"] for item in items}


def distribution(fq: str = "", language: str = "zh_Hans_CN") -> dict[str, Any]:
    """``products`` scored, their ``average``, how many in each ``band``
    (best first, with labels and score ranges) and in each ``bins`` range."""
    counts = _scores(fq)
    total = sum(counts.values())
    bands = []
    upper = score.MAX_SCORE
    for code, lowest, _labels in score.BANDS:
        bands.append({"code": code, "label": score.band_label(code, language), "from": lowest, "to": upper,
                      "count": sum(n for s, n in counts.items() if lowest <= s <= upper)})
        upper = lowest - 1
    bins = []
    starts = range(0, score.MAX_SCORE, BIN_WIDTH)
    for start in starts:
        # The last bin takes the full score too (360-405).
        end = score.MAX_SCORE if start == starts[-1] else start + BIN_WIDTH - 1
        bins.append({"name": f"{start}–{end}", "from": start, "to": end,
                     "value": sum(n for s, n in counts.items() if start <= s <= end)})
    average = round(sum(s * n for s, n in counts.items()) / total, 1) if total else None
    return {"products": total, "average": average,
            "average_band": score.band_of(round(average)) if average is not None else None,
            "average_band_label": score.band_label(score.band_of(round(average)), language)
            if average is not None else None,
            "max": score.MAX_SCORE, "bands": bands, "bins": bins}


def lowest(fq: str, rows: int = 10) -> list[dict[str, Any]]:
    """The lowest-scoring public products (name, title, type, score, band)."""
    result = stats.product_search(q="*:*", fq=f"{fq} quality_score:[* TO *]".strip(), rows=rows,
                                  sort="quality_score asc, metadata_modified desc",
                                  fl=["name", "title", "dataset_type", "quality_score", "quality_band"])
    return [{"name": row.get("name"), "title": row.get("title"), "type": row.get("dataset_type") or "dataset",
             "score": row.get("quality_score"), "band": row.get("quality_band")} for row in result["results"]]

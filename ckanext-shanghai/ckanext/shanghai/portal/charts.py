"""The statistics page's charts drawn on the server as inline SVG, so that a
phone shows them with the page's first paint and runs no chart library for
them (ECharts redraws them, with tooltips, only once a visitor points at one).
Pure functions: figures in, SVG text out."""
from __future__ import annotations

from html import escape

__all__ = ["bar_chart", "column_chart"]

BAR_COLOUR = "#0b4f9c"
TEXT_COLOUR = "#212529"
AXIS_COLOUR = "#6c757d"
WIDTH = 420


def _number(value) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return f"{int(value):,}"


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"


def bar_chart(items: list[dict], label_chars: int = 10) -> str:
    """Horizontal bars, one row per ``{"name", "value"}``, longest first as
    given; each row carries its full name and value as a tooltip."""
    row, top, label_width = 26, 6, 14 * label_chars + 8
    value_room = 52
    height = top * 2 + row * max(len(items), 1)
    largest = max((float(i["value"] or 0) for i in items), default=0) or 1
    span = WIDTH - label_width - value_room
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
             f'preserveAspectRatio="xMinYMin meet" aria-hidden="true" focusable="false" class="sh-chart-svg" '
             f'font-size="13" fill="{TEXT_COLOUR}">']
    for index, item in enumerate(items):
        y = top + index * row
        value = float(item["value"] or 0)
        length = span * value / largest
        name = str(item["name"])
        parts.append(
            f'<g><title>{escape(name)}: {_number(item["value"] or 0)}</title>'
            f'<text x="{label_width - 6}" y="{y + 17}" text-anchor="end">{escape(_clip(name, label_chars))}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{row - 8}" fill="{BAR_COLOUR}"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 17}">{_number(item["value"] or 0)}</text></g>')
    parts.append(f'<line x1="{label_width}" x2="{label_width}" y1="{top}" y2="{height - top}" '
                 f'stroke="{AXIS_COLOUR}"/></svg>')
    return "".join(parts)


def column_chart(items: list[dict], unit: str = "") -> str:
    """Vertical columns over time (``{"name", "value"}`` per day, oldest
    first): the first, middle and last day named under the axis, the
    largest value beside it."""
    height, bottom, left, top = 220, 28, 44, 12
    count = max(len(items), 1)
    largest = max((float(i["value"] or 0) for i in items), default=0)
    scale = largest or 1
    step = (WIDTH - left - 8) / count
    plot = height - bottom - top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
             f'preserveAspectRatio="xMinYMin meet" aria-hidden="true" focusable="false" class="sh-chart-svg" '
             f'font-size="13" fill="{TEXT_COLOUR}">',
             f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{_number(largest)}</text>',
             f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end">0</text>']
    if unit:
        parts.append(f'<text x="{left + 4}" y="{top + 10}">{escape(unit)}</text>')
    for index, item in enumerate(items):
        value = float(item["value"] or 0)
        bar = plot * value / scale
        x = left + index * step
        parts.append(f'<rect x="{x + 1:.1f}" y="{height - bottom - bar:.1f}" width="{max(step - 2, 1):.1f}" '
                     f'height="{bar:.1f}" fill="{BAR_COLOUR}"><title>{escape(str(item["name"]))}: '
                     f'{_number(item["value"] or 0)}</title></rect>')
    for index in sorted({0, count // 2, count - 1}):
        if index < len(items):
            x = left + index * step + step / 2
            parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">'
                         f'{escape(str(items[index]["name"]))}</text>')
    parts.append(f'<line x1="{left}" x2="{WIDTH - 8}" y1="{height - bottom}" y2="{height - bottom}" '
                 f'stroke="{AXIS_COLOUR}"/></svg>')
    return "".join(parts)

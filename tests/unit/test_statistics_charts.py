"""The statistics page's charts as the server draws them (portal/charts.py):
one bar per figure, lengths in proportion, names and values readable, and
text from the catalog escaped."""
import re

from ckanext.shanghai.portal import charts


def widths(svg: str) -> list[float]:
    return [float(w) for w in re.findall(r'<rect [^>]*width="([0-9.]+)"', svg)]


def test_bars_are_in_proportion_and_carry_their_names_and_values():
    svg = charts.bar_chart([{"name": "上海市绿化和市容管理局", "value": 120}, {"name": "上海市民政局", "value": 60},
                            {"name": "上海市审计局", "value": 0}])
    first, second, third = widths(svg)
    assert abs(first - 2 * second) < 0.2 and third == 0
    assert "<title>上海市绿化和市容管理局: 120</title>" in svg
    assert ">上海市民政局<" in svg and ">60<" in svg
    # A long name is shortened on the axis, whole in its tooltip.
    assert ">上海市绿化和市容管…<" in svg


def test_a_name_from_the_catalog_cannot_break_out_of_the_chart():
    svg = charts.bar_chart([{"name": '<script>alert("x")</script>', "value": 1}])
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_downloads_over_time_name_the_first_middle_and_last_day():
    days = [{"name": f"11-{day:02d}", "value": day % 3} for day in range(1, 31)]
    svg = charts.column_chart(days, unit="下载")
    assert len(widths(svg)) == 30
    labels = re.findall(r'text-anchor="middle">([^<]+)<', svg)
    assert labels == ["11-01", "11-16", "11-30"]
    assert charts.column_chart([{"name": "11-01", "value": 0}]).count("<rect") == 1

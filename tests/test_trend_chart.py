"""The programme trend chart is drawn once: the page's inline SVG and the quarterly report's PNG
come from the same drawing, the same figures and the same words."""

from __future__ import annotations

import io
import re
import zipfile
from xml.etree import ElementTree as ET

import pytest
from matplotlib.text import Text
from PIL import Image

from geoapp.domain.quarters import Quarter
from geoapp.exports import charts, quarterly
from geoapp.exports.fonts import cjk_font_path
from geoapp.services import programme as svc

NS = {"svg": charts.SVG_NS}
XLINK = f"{{{charts.XLINK_NS}}}href"


def _trend(n: int, first_year: int = 2018) -> list[dict]:
    rows = []
    for i in range(n):
        year, q = first_year + i // 4, i % 4 + 1
        rows.append({"quarter": f"{year}Q{q}", "year": year, "q": q,
                     "label": f"{year}年第{q}季度", "started": (i * 7) % 11,
                     "completed": (i * 5) % 9})
    return rows


def _bars(svg: str) -> dict[str, dict[str, int]]:
    """``{"started": {"2019Q3": 4, ...}, "completed": {...}}`` from the SVG's bar groups."""
    root = ET.fromstring(svg)
    out: dict[str, dict[str, int]] = {"started": {}, "completed": {}}
    for g in root.iter(f"{{{charts.SVG_NS}}}g"):
        cls = g.get("class", "")
        for key in out:
            if f"pg-col-{key}" in cls.split():
                out[key][g.get("data-quarter")] = int(g.get("data-value"))
    return out


# -- the drawing -------------------------------------------------------------------------------
def test_every_text_of_the_chart_is_drawn_with_the_bundled_cjk_font():
    chart = charts.TrendChart.from_trend(_trend(12), 2019)
    fig = charts.trend_figure(chart, charts.ChartText.translated())
    fig.canvas.draw()  # bar labels, ticks and the legend exist once drawn
    texts = [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
    assert len(texts) > 20
    assert {t.get_fontproperties().get_file() for t in texts} == {str(cjk_font_path())}


def test_svg_is_fit_for_an_inline_page_under_the_csp():
    chart = charts.TrendChart.from_trend(_trend(12), 2019)
    svg = charts.trend_svg(chart)
    root = ET.fromstring(svg)
    assert not svg.startswith("<?xml") and "<!DOCTYPE" not in svg
    assert root.get("role") == "img" and root.get("class") == "pg-trend"
    assert root.get("width") is None and root.get("viewBox")
    assert root.find("svg:title", NS).text == "各季度启动、完成企业数"
    assert root.find("svg:desc", NS).text == "2018年第1季度至2020年第4季度，共启动" \
        f"{sum(chart.started)}家、完成{sum(chart.completed)}家"
    assert set(root.get("aria-labelledby").split()) == {"pg-trend-title", "pg-trend-desc"}
    tags = {el.tag.split("}")[1] for el in root.iter()}
    assert not tags & {"style", "script", "metadata", "foreignObject", "image"}
    assert not [el for el in root.iter() if "style" in el.attrib
                or any(a.startswith("on") for a in el.attrib)]
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert len(ids) == len(set(ids)) and all(i.startswith("pg-trend") for i in ids)
    refs = {el.get(XLINK)[1:] for el in root.iter() if el.get(XLINK)}
    refs |= set(re.findall(r"url\(#([^)]+)\)", svg))
    assert refs <= set(ids)


def test_svg_bars_carry_each_quarters_values_and_a_tooltip():
    chart = charts.TrendChart.from_trend(_trend(12), 2019)
    svg = charts.trend_svg(chart)
    bars = _bars(svg)
    assert bars["started"] == dict(zip(chart.quarters, chart.started, strict=True))
    assert bars["completed"] == dict(zip(chart.quarters, chart.completed, strict=True))
    assert f"<title>2019年第3季度 启动 {chart.started[6]}</title>" in svg
    en = charts.trend_svg(chart, gettext=lambda s: {"启动": "Started",
                                                    "%(year)s年第%(q)s季度": "%(year)s Q%(q)s"
                                                    }.get(s, s))
    assert f"<title>2019 Q3 Started {chart.started[6]}</title>" in en


@pytest.mark.parametrize("quarters, limit", [(12, 36_000), (36, 48_000)])
def test_svg_stays_small(quarters, limit):
    """Text drawn as outlines of the bundled font, coordinates rounded: tens of KB, not
    hundreds (matplotlib's own output for 12 quarters is about 58 KB)."""
    svg = charts.trend_svg(charts.TrendChart.from_trend(_trend(quarters), 2019))
    assert len(svg.encode()) < limit


def test_svg_is_the_same_for_the_same_chart():
    chart = charts.TrendChart.from_trend(_trend(8), None)
    first = charts.trend_svg(chart)
    charts.clear_cache()
    assert charts.trend_svg(chart) == first


def test_long_spans_name_years_only_and_an_empty_trend_says_so():
    long_svg = charts.trend_svg(charts.TrendChart.from_trend(_trend(36), 2020))
    assert len(_bars(long_svg)["started"]) == 36
    empty = charts.trend_svg(charts.TrendChart.from_trend([], None))
    root = ET.fromstring(empty)
    assert root.find("svg:desc", NS).text == "无日期数据"
    assert 'class="pg-empty"' in empty and "pg-col" not in empty


def test_png_is_at_print_resolution(tmp_path):
    path = charts.trend_png(charts.TrendChart.from_trend(_trend(12), 2019), tmp_path / "t.png")
    with Image.open(path) as img:
        assert round(img.info["dpi"][0]) == charts.PRINT_DPI
        # 15.5 cm across the report's page at 300 dpi or more
        assert img.width >= 15.5 / 2.54 * 300


# -- the page and the report draw the same chart ------------------------------------------------
@pytest.fixture(scope="module")
def client(viewer_client):
    return viewer_client


@pytest.fixture(scope="module")
def core(offline_app):
    return offline_app.extensions["geoapp"]


def test_page_chart_shows_the_values_the_report_chart_was_drawn_from(client, core, tmp_path,
                                                                     monkeypatch):
    drawn: list[charts.TrendChart] = []

    def spy(chart, path, **kw):
        drawn.append(chart)
        return charts.trend_png(chart, path, **kw)

    monkeypatch.setattr(quarterly, "trend_png", spy)
    report = svc.quarterly_report(core, Quarter(2019, 4))
    path = svc.write_quarterly(core, report, "docx", tmp_path / "q.docx")
    assert len(drawn) == 1
    chart = drawn[0]
    with zipfile.ZipFile(path) as z:
        png = [n for n in z.namelist() if n.startswith("word/media/")]
        with Image.open(io.BytesIO(z.read(png[0]))) as img:
            assert round(img.info["dpi"][0]) == charts.PRINT_DPI

    html = client.get("/programme?year=2019").get_data(as_text=True)
    svg = re.search(r'<div class="pg-chart" id="pg-chart">(<svg.*?</svg>)</div>', html,
                    re.S).group(1)
    # The page's chart: same quarters, same values, same year shaded, same title.
    assert _bars(svg) == {"started": dict(zip(chart.quarters, chart.started, strict=True)),
                          "completed": dict(zip(chart.quarters, chart.completed, strict=True))}
    assert chart.quarters[-1] == "2019Q4" and chart.year == 2019
    assert svc.trend_chart(svc.dashboard(core, None, 2019)) == chart
    assert "<title id=\"pg-trend-title\">各季度启动、完成企业数</title>" in svg
    # ... and the same numbers in the table beside it.
    table = html.split('id="pg-trend-table"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr data-quarter="(\w+)".*?data-key="started">(\d+)<.*?'
                      r'data-key="completed">(\d+)<', table, re.S)
    assert [(q, int(s), int(c)) for q, s, c in rows] == list(
        zip(chart.quarters, chart.started, chart.completed, strict=True))


def test_page_chart_speaks_english_with_lang_en(client):
    try:
        html = client.get("/programme?year=2019&lang=en").get_data(as_text=True)
    finally:
        client.get("/programme?lang=zh")  # the choice sticks to the shared client
    svg = html.split('id="pg-chart">', 1)[1].split("</svg>", 1)[0]
    assert "Enterprises started and completed per quarter" in svg
    assert re.search(r"<title>2019 Q3 Started \d+</title>", svg)
    assert "启动" not in svg and "季度" not in svg
    assert "Started in the quarter" in html and ">2019 Q3</th>" in html

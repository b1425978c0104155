"""Charts drawn on the server: one matplotlib drawing, written as SVG for pages and as PNG for
documents.

The programme's quarterly trend (enterprises started and completed per quarter) is drawn once,
by :func:`trend_figure`. The dashboard page embeds it as inline SVG (:func:`trend_svg`) and the
quarterly Word report carries it as a PNG at print resolution (:func:`trend_png`), so both show
the same bars, the same title and the same labels; only the language of the words may differ
(``gettext`` translates them; the default is the Chinese text itself).

Charts live with the other server-side images (``mapimage.py``): they are outputs drawn with
the project's bundled CJK font (``fonts.py``), not interactive maps. Every text of the SVG is
drawn as outlines of that font, so the page shows exactly the glyphs of the printed report
whatever fonts the browser has. The SVG is cleaned for inline use: no XML prolog, metadata,
``<style>`` element or ``style`` attributes (presentation attributes instead, so no CSP rule
is involved), short deterministic ids, rounded coordinates, and ``role="img"`` with a
``<title>`` and ``<desc>``; every bar carries its quarter and value (``data-quarter``,
``data-value``) and a ``<title>`` tooltip.

matplotlib is imported when the first chart is drawn (importing it adds about 0.5 s to the
start of every process that loads this module).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from defusedxml.ElementTree import fromstring as parse_xml

from geoapp.exports.fonts import cjk_font_properties

log = logging.getLogger(__name__)

Translate = Callable[[str], str]

#: Bar colours: started, completed; the band behind the selected year.
STARTED_COLOUR, COMPLETED_COLOUR, YEAR_BAND_COLOUR = "#1f77b4", "#2ca02c", "#fff4d6"
#: Figure size in inches: the width of a portrait A4 page between margins (15.5 cm in the
#: report), so the fonts below print at their nominal size.
FIGURE_SIZE = (6.3, 3.2)
#: PNG resolution for print.
PRINT_DPI = 300
#: Font sizes in points: title, axis labels and legend, tick labels, bar values.
TITLE_PT, LABEL_PT, TICK_PT, VALUE_PT = 12, 10.5, 10, 8
#: The axes' place in the figure: room for three-digit counts and the axis label on the left,
#: two lines of quarter and year below, the title and the legend above (fixed, not measured
#: by a layout pass: that pass costs as much as drawing the chart).
MARGINS = {"left": 0.1, "right": 0.99, "bottom": 0.135, "top": 0.83}
#: Above this many quarters the axis names years only and bars carry no value labels.
MAX_LABELLED_QUARTERS = 16

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)
_HREF = f"{{{XLINK_NS}}}href"
_NUMBER = re.compile(r"-?\d+\.\d+")
_URL_ID = re.compile(r"url\(#([^)]+)\)")
_TRANSLATE = re.compile(r"translate\(([^)]*)\)")
_G = f"{{{SVG_NS}}}g"


def _identity(text: str) -> str:
    return text


@dataclass(frozen=True)
class TrendChart:
    """What the trend chart draws: one pair of bars per quarter, oldest first.

    ``year`` (the dashboard's or the report's year) is shaded; None shades nothing.
    """

    quarters: tuple[str, ...]
    years: tuple[int, ...]
    qs: tuple[int, ...]
    started: tuple[int, ...]
    completed: tuple[int, ...]
    year: int | None = None

    @classmethod
    def from_trend(cls, trend: Sequence[Mapping[str, Any]], year: int | None) -> TrendChart:
        """From the rows of ``services.programme.trend`` (``quarter``, ``year``, ``q``,
        ``started``, ``completed``)."""
        return cls(quarters=tuple(str(r["quarter"]) for r in trend),
                   years=tuple(int(r["year"]) for r in trend),
                   qs=tuple(int(r["q"]) for r in trend),
                   started=tuple(int(r["started"]) for r in trend),
                   completed=tuple(int(r["completed"]) for r in trend), year=year)

    def __len__(self) -> int:
        return len(self.quarters)


@dataclass(frozen=True)
class ChartText:
    """The chart's words in one language (msgids are the Chinese text)."""

    title: str
    started: str
    completed: str
    y_label: str
    year_band: str
    quarter: str
    summary: str
    empty: str

    @classmethod
    def translated(cls, gettext: Translate | None = None) -> ChartText:
        _ = gettext or _identity
        return cls(title=_("各季度启动、完成企业数"), started=_("启动"), completed=_("完成"),
                   y_label=_("企业数（家）"), year_band=_("%(year)s年度"),
                   quarter=_("%(year)s年第%(q)s季度"),
                   summary=_("%(first)s至%(last)s，共启动%(started)s家、完成%(completed)s家"),
                   empty=_("无日期数据"))

    def quarter_label(self, year: int, q: int) -> str:
        return self.quarter % {"year": year, "q": q}

    def description(self, chart: TrendChart) -> str:
        """One sentence with the span and the totals, for the SVG's ``<desc>``."""
        if not len(chart):
            return self.empty
        return self.summary % {
            "first": self.quarter_label(chart.years[0], chart.qs[0]),
            "last": self.quarter_label(chart.years[-1], chart.qs[-1]),
            "started": sum(chart.started), "completed": sum(chart.completed)}


def nice_step(top: int) -> int:
    """A round tick step giving at most five steps up to ``top``."""
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500):
        if top / step <= 5:
            return step
    return max(1, -(-top // 5))


def trend_figure(chart: TrendChart, text: ChartText):
    """The one drawing of the trend chart, as a matplotlib Figure (no pyplot state)."""
    # matplotlib costs ~0.5 s to import: loaded here, when the first chart is drawn.
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    title_font, font = cjk_font_properties(TITLE_PT), cjk_font_properties(LABEL_PT)
    tick_font, value_font = cjk_font_properties(TICK_PT), cjk_font_properties(VALUE_PT)
    fig = Figure(figsize=FIGURE_SIZE)
    ax = fig.add_subplot(1, 1, 1)
    n = len(chart)
    x = list(range(n))
    peak = max([*chart.started, *chart.completed, 1])
    step = nice_step(peak)
    top = step * -(-peak // step)
    handles = []
    if chart.year in chart.years:
        inside = [i for i in x if chart.years[i] == chart.year]
        ax.axvspan(inside[0] - 0.5, inside[-1] + 0.5, color=YEAR_BAND_COLOUR, zorder=0,
                   linewidth=0)
        handles.append(Patch(color=YEAR_BAND_COLOUR, label=text.year_band % {"year": chart.year}))
    for key, values, colour, offset in (("started", chart.started, STARTED_COLOUR, -0.2),
                                        ("completed", chart.completed, COMPLETED_COLOUR, 0.2)):
        bars = ax.bar([i + offset for i in x], values, width=0.4, color=colour, zorder=2)
        for quarter, bar in zip(chart.quarters, bars, strict=True):
            bar.set_gid(f"pg-col-{key}-{quarter}")
        if 0 < n <= MAX_LABELLED_QUARTERS:
            ax.bar_label(bars, labels=[str(v) if v else "" for v in values], padding=1.5,
                         fontproperties=value_font, color="#333333")
        handles.append(Patch(color=colour, label=getattr(text, key)))
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(0, top * (1.08 if n <= MAX_LABELLED_QUARTERS else 1.0))
    ax.set_yticks(range(0, top + 1, step))
    ax.set_yticklabels([str(v) for v in range(0, top + 1, step)], fontproperties=tick_font)
    if n <= MAX_LABELLED_QUARTERS:  # Q1..Q4, the year under each Q1 (and the first quarter)
        ax.set_xticks(x, [f"Q{q}\n{y}" if q == 1 or i == 0 else f"Q{q}"
                          for i, (y, q) in enumerate(zip(chart.years, chart.qs, strict=True))],
                      fontproperties=tick_font)
        ax.tick_params(axis="x", length=0)
    else:  # the year under the middle of its quarters, a short tick between years
        spans: dict[int, list[int]] = {}
        for i, y in enumerate(chart.years):
            spans.setdefault(y, []).append(i)
        ax.set_xticks([(v[0] + v[-1]) / 2 for v in spans.values()], [str(y) for y in spans],
                      fontproperties=tick_font)
        ax.set_xticks([v[0] - 0.5 for v in spans.values()][1:], minor=True)
        ax.tick_params(axis="x", which="major", length=0)
    for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        label.set_gid("pg-tick")
    if not n:
        ax.text(0.5, 0.5, text.empty, transform=ax.transAxes, ha="center", va="center",
                fontproperties=font, color="#555555", gid="pg-empty")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6, zorder=1)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_ylabel(text.y_label, fontproperties=font)
    ax.set_title(text.title, fontproperties=title_font, loc="left", pad=24)
    ax.legend(handles=handles, prop=font, frameon=False, loc="lower right",
              bbox_to_anchor=(1.0, 1.0), ncols=len(handles), handlelength=1.0,
              columnspacing=1.0, borderaxespad=0.2)
    fig.subplots_adjust(**MARGINS)
    return fig


# -- outputs ---------------------------------------------------------------------------------
def trend_png(chart: TrendChart, path: str | Path, *, gettext: Translate | None = None) -> Path:
    """The chart as a PNG at PRINT_DPI (no software stamp, so the bytes depend on the data)."""
    fig = trend_figure(chart, ChartText.translated(gettext))
    fig.savefig(path, dpi=PRINT_DPI, format="png", metadata={"Software": None})
    return Path(path)


def trend_svg(chart: TrendChart, *, gettext: Translate | None = None) -> str:
    """The chart as inline SVG markup (no prolog), cached per chart and language."""
    return _trend_svg(chart, ChartText.translated(gettext))


@lru_cache(maxsize=64)
def _trend_svg(chart: TrendChart, text: ChartText) -> str:
    buf = io.BytesIO()
    trend_figure(chart, text).savefig(buf, format="svg", metadata={"Date": None,
                                                                   "Creator": None})
    root = inline_svg(buf.getvalue(), title=text.title, desc=text.description(chart),
                      css_class="pg-trend", id_prefix="pg-trend")
    for g in root.iter(f"{{{SVG_NS}}}g"):
        gid = g.get("id", "")
        if gid.startswith("pg-col-"):
            _, _, key, quarter = gid.split("-", 3)
            i = chart.quarters.index(quarter)
            value = getattr(chart, key)[i]
            del g.attrib["id"]
            g.set("class", f"pg-col pg-col-{key}")
            g.set("data-quarter", quarter)
            g.set("data-value", str(value))
            tip = ET.Element(f"{{{SVG_NS}}}title")
            tip.text = (f"{text.quarter_label(chart.years[i], chart.qs[i])} "
                        f"{getattr(text, key)} {value}")
            g.insert(0, tip)
        elif gid.startswith("pg-"):  # tick labels, the empty-chart note: a class, not an id
            del g.attrib["id"]
            g.set("class", gid)
    out = ET.tostring(root, encoding="unicode")
    log.debug("trend chart: %d quarters, %d bytes of SVG", len(chart), len(out))
    return out


def clear_cache() -> None:
    """Forget the SVGs drawn so far (each is kept per chart and language)."""
    _trend_svg.cache_clear()


def inline_svg(raw: bytes, *, title: str, desc: str, css_class: str,
               id_prefix: str) -> ET.Element:
    """matplotlib's SVG made fit to sit inside a page (the root element, to annotate further
    and serialise).

    Drops the prolog, metadata and the global ``<style>`` element (its ``*`` rule would reach
    the whole page); turns ``style`` attributes into presentation attributes; renames the
    ids other elements refer to (clip paths, glyphs) to ``<id_prefix>-<n>`` and drops the
    others, except ids starting with ``pg-`` (set with ``set_gid``); rounds path and box
    coordinates to two decimals; sizes by viewBox only (CSS sets the width); adds
    ``role="img"``, ``aria-labelledby`` and a ``<title>`` and ``<desc>`` first.
    """
    root = parse_xml(raw)
    for child in root.findall(f"{{{SVG_NS}}}metadata"):
        root.remove(child)
    for defs in root.iter(f"{{{SVG_NS}}}defs"):
        for style in defs.findall(f"{{{SVG_NS}}}style"):
            defs.remove(style)
    renamed: dict[str, str] = {}

    def ref(old: str) -> str:
        return renamed.setdefault(old, f"{id_prefix}-{len(renamed) + 1}")

    def ref_url(match: re.Match) -> str:
        return f"url(#{ref(match.group(1))})"

    elements = list(root.iter())
    for el in elements:
        style = el.attrib.pop("style", None)
        for decl in (style or "").split(";"):
            name, _, value = decl.partition(":")
            if name.strip() and value.strip():
                el.set(name.strip(), value.strip())
        href = el.get(_HREF)
        if href and href.startswith("#"):
            el.set(_HREF, "#" + ref(href[1:]))
        for attr in ("clip-path", "mask", "fill", "stroke"):
            value = el.get(attr)
            if value and "url(#" in value:
                el.set(attr, _URL_ID.sub(ref_url, value))
        if el is not root:
            for attr in ("d", "x", "y", "width", "height"):
                value = el.get(attr)
                if value:
                    el.set(attr, " ".join(_NUMBER.sub(_round, value).split()))
            value = el.get("transform")
            if value and "translate(" in value:  # scale factors keep their precision
                el.set("transform", _TRANSLATE.sub(
                    lambda m: "translate(" + _NUMBER.sub(_round, m.group(1)) + ")", value))
    for el in elements:
        old = el.get("id")
        if old is None or old.startswith("pg-"):
            continue
        if old in renamed:
            el.set("id", renamed[old])
        else:
            del el.attrib["id"]
    _flatten(root)
    root.text = None
    for attr in ("width", "height", "version"):
        root.attrib.pop(attr, None)
    root.set("class", css_class)
    root.set("role", "img")
    root.set("aria-labelledby", f"{id_prefix}-title {id_prefix}-desc")
    title_el = ET.Element(f"{{{SVG_NS}}}title", {"id": f"{id_prefix}-title"})
    title_el.text = title
    desc_el = ET.Element(f"{{{SVG_NS}}}desc", {"id": f"{id_prefix}-desc"})
    desc_el.text = desc
    root.insert(0, desc_el)
    root.insert(0, title_el)
    return root


def _flatten(parent: ET.Element) -> None:
    """Drop indentation, empty groups and groups without attributes (their children move up)."""
    children: list[ET.Element] = []
    for child in parent:
        _flatten(child)
        child.tail = None
        if child.text is not None and not child.text.strip():
            child.text = None
        if child.tag == _G and not child.attrib:
            children.extend(child)
        elif child.tag == _G and len(child) == 0:
            continue
        else:
            children.append(child)
    parent[:] = children


def _round(match: re.Match) -> str:
    text = f"{float(match.group(0)):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text

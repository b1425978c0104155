"""The 百企退城 programme dashboard: page, JSON and the quarterly report downloads.

``/programme?year=`` shows the year's targets against the ledger as of the year's 31 December
(today for the current year; the page says which day), land and revenue, tables by district and industry, and the
quarterly trend as an SVG drawn here on the server, so the page needs no chart library and
works offline. ``/api/programme`` returns the same figures; the quarterly report
(XLSX/DOCX) is built on demand for ``?year=&quarter=``.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from html import escape
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup

from geoapp.domain.errors import NotFound
from geoapp.domain.quarters import report_quarter
from geoapp.services import programme as svc
from geoapp.services import relocation as rel

log = logging.getLogger(__name__)
bp = Blueprint("programme", __name__)

MIMETYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
STARTED_COLOUR, COMPLETED_COLOUR = "#1f77b4", "#2ca02c"


def _core():
    return current_app.extensions["geoapp"]


def _lang() -> str:
    return "en" if str(get_locale() or "zh").startswith("en") else "zh"


def _dashboard() -> svc.Dashboard:
    core = _core()
    filters = rel.parse_filters(core, request.args)
    year = rel.parse_year(core, request.args.get("year"))
    return svc.dashboard(core, filters, year)


def _default_report(years: list[int], year: int | None) -> tuple[int, int]:
    """The current quarter when its year has targets, else the last quarter of ``year``."""
    now = report_quarter(dt.date.today())
    if not years or now.year in years:
        return now.year, now.quarter
    return (year or max(years)), 4


@bp.get("/programme")
def index():
    """The dashboard of one year: targets, land, revenue, tables and the trend chart."""
    dash = _dashboard()
    report_year, report_q = _default_report(dash.years, dash.year)
    as_of = dash.as_of.to_dict()
    as_of_text = as_of["as_of_text_en" if _lang() == "en" else "as_of_text"]
    return render_template("programme.html", dash=dash, chart=trend_svg(dash.trend, dash.year),
                           as_of_text=as_of_text, report_year=report_year,
                           report_quarter=report_q)


@bp.get("/api/programme")
def api():
    """The dashboard's figures as JSON (the page shows exactly these values)."""
    dash = _dashboard()
    filters = rel.parse_filters(_core(), request.args)
    return jsonify({"filters": filters.as_query(), **dash.to_dict()})


@bp.get("/programme/report.<fmt>")
def report(fmt: str):
    """The quarterly progress report of ``?year=&quarter=`` as XLSX or DOCX."""
    if fmt not in MIMETYPES:
        raise NotFound(f"no report format {fmt!r}; expected xlsx or docx")
    core = _core()
    quarter = svc.parse_report_quarter(core, request.args.get("year", ""),
                                       request.args.get("quarter", ""))
    built = svc.quarterly_report(core, quarter)
    with tempfile.TemporaryDirectory() as tmp:
        data = svc.write_quarterly(core, built, fmt, Path(tmp) / f"report.{fmt}").read_bytes()
    log.info("quarterly report %s %s downloaded", quarter, fmt)
    resp = Response(data, content_type=MIMETYPES[fmt])
    resp.headers["Content-Disposition"] = \
        f'attachment; filename="programme-{quarter}.{fmt}"'
    return resp


# -- the trend chart -----------------------------------------------------------------------
def _nice_step(top: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100):
        if top / step <= 5:
            return step
    return max(1, top // 5)


def trend_svg(trend: list[dict[str, Any]], year: int | None) -> Markup:
    """Grouped bars of enterprises started and completed per quarter, as inline SVG.

    Drawn in a viewBox so it scales with the page; the font size is in viewBox units and
    the figure keeps a minimum width (its container scrolls on a phone) so labels stay
    readable at 375 px.
    """
    if not trend:
        return Markup(f'<p class="pg-empty">{escape(_("无日期数据"))}</p>')
    left, top, group, plot_h, bottom = 40, 34, 46, 170, 44
    width = left + group * len(trend) + 10
    height = top + plot_h + bottom
    peak = max(max(r["started"], r["completed"]) for r in trend) or 1
    step = _nice_step(peak)
    ymax = step * -(-peak // step)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / ymax

    started_word, completed_word = _("启动"), _("完成")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'class="pg-trend" role="img" aria-label="{escape(_("季度趋势"))}" '
           f'font-size="13" font-family="sans-serif">']
    for i, r in enumerate(trend):
        if r["year"] == year:
            out.append(f'<rect class="pg-year-band" x="{left + i * group}" y="{top - 6}" '
                       f'width="{group}" height="{plot_h + 6}" fill="#fff4d6"/>')
    for v in range(0, ymax + 1, step):
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="#ddd"/><text x="{left - 6}" y="{y(v) + 4:.1f}" '
                   f'text-anchor="end" fill="#555">{v}</text>')
    bar = 17
    for i, r in enumerate(trend):
        x0 = left + i * group + (group - 2 * bar) / 2
        for j, (key, colour, word) in enumerate((("started", STARTED_COLOUR, started_word),
                                                 ("completed", COMPLETED_COLOUR,
                                                  completed_word))):
            v = r[key]
            x = x0 + j * bar
            out.append(f'<rect class="pg-col pg-col-{key}" data-quarter="{r["quarter"]}" '
                       f'data-value="{v}" x="{x:.1f}" y="{y(v):.1f}" width="{bar - 1}" '
                       f'height="{plot_h * v / ymax:.1f}" fill="{colour}">'
                       f'<title>{escape(r["label"])} {escape(word)} {v}</title></rect>')
            if v:
                out.append(f'<text x="{x + bar / 2:.1f}" y="{y(v) - 3:.1f}" font-size="11" '
                           f'text-anchor="middle" fill="#333">{v}</text>')
        cx = left + i * group + group / 2
        out.append(f'<text x="{cx:.1f}" y="{top + plot_h + 17}" text-anchor="middle">'
                   f'Q{r["q"]}</text>')
        if r["q"] == 1 or i == 0:
            out.append(f'<text x="{left + i * group + 2}" y="{top + plot_h + 35}" '
                       f'font-weight="bold">{r["year"]}</text>')
    for j, (colour, word) in enumerate(((STARTED_COLOUR, started_word),
                                        (COMPLETED_COLOUR, completed_word))):
        lx = left + j * 90
        out.append(f'<rect x="{lx}" y="6" width="14" height="14" fill="{colour}"/>'
                   f'<text x="{lx + 20}" y="18">{escape(word)}</text>')
    out.append("</svg>")
    return Markup("".join(out))

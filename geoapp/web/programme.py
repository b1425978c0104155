"""The 百企退城 programme dashboard: page, JSON and the quarterly report downloads.

``/programme?year=`` shows the year's targets against the ledger as of the year's 31 December
(today for the current year; the page says which day), land and revenue, tables by district
and industry, and the quarterly trend: the chart the quarterly Word report carries, drawn on
the server as inline SVG (no chart library, works offline), with its numbers in a table
beside it. ``/api/programme`` returns the same figures; the quarterly report (XLSX/DOCX) is
built on demand for ``?year=&quarter=``.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path

from flask import Blueprint, jsonify, render_template, request
from flask_babel import gettext as _
from markupsafe import Markup

from geoapp.domain.errors import NotFound
from geoapp.domain.quarters import report_quarter
from geoapp.services import programme as svc
from geoapp.services import relocation as rel
from geoapp.web.common import core, send_download
from geoapp.web.i18n import current_language

log = logging.getLogger(__name__)
bp = Blueprint("programme", __name__)

MIMETYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


def _dashboard() -> svc.Dashboard:
    app = core()
    filters = rel.parse_filters(app, request.args)
    year = rel.parse_year(app, request.args.get("year"))
    return svc.dashboard(app, filters, year)


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
    as_of_text = as_of["as_of_text_en" if current_language() == "en" else "as_of_text"]
    chart = Markup(svc.trend_svg(dash, gettext=_))  # built from our own figures and words
    return render_template("programme.html", dash=dash, chart=chart, as_of_text=as_of_text,
                           report_year=report_year, report_quarter=report_q)


@bp.get("/api/programme")
def api():
    """The dashboard's figures as JSON (the page shows exactly these values)."""
    dash = _dashboard()
    filters = rel.parse_filters(core(), request.args)
    return jsonify({"filters": filters.as_query(), **dash.to_dict()})


@bp.get("/programme/report.<fmt>")
def report(fmt: str):
    """The quarterly progress report of ``?year=&quarter=`` as XLSX or DOCX."""
    if fmt not in MIMETYPES:
        raise NotFound(f"no report format {fmt!r}; expected xlsx or docx")
    app = core()
    quarter = svc.parse_report_quarter(app, request.args.get("year", ""),
                                       request.args.get("quarter", ""))
    built = svc.quarterly_report(app, quarter)
    with tempfile.TemporaryDirectory() as tmp:
        data = svc.write_quarterly(app, built, fmt, Path(tmp) / f"report.{fmt}").read_bytes()
    log.info("quarterly report %s %s downloaded", quarter, fmt)
    return send_download(data, f"programme-{quarter}.{fmt}", MIMETYPES[fmt])

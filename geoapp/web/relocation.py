"""The planners' relocation map (百企退城): page, JSON and ledger downloads.

All four routes take the same query (district, industry, classification, stage, each
repeatable; year), so a view is a shareable link and a download holds exactly the rows the
page shows.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request
from flask_babel import get_locale
from flask_babel import gettext as _

from geoapp.domain.bulletin import LOCAL_TZ
from geoapp.services import relocation as svc
from geoapp.web.common import core, render_map_page, send_download, site_link

log = logging.getLogger(__name__)
bp = Blueprint("relocation", __name__)


def _lang() -> str:
    return "en" if str(get_locale() or "zh").startswith("en") else "zh"


def _view() -> svc.RelocationView:
    app = core()
    filters = svc.parse_filters(app, request.args)
    year = svc.parse_year(app, request.args.get("year"))
    return svc.relocation_view(app, filters, year)


def _query_string(view: svc.RelocationView) -> str:
    pairs = [(k, v) for k, vals in view.filters.as_query().items() for v in vals]
    if request.args.get("year"):
        pairs.append(("year", str(view.year)))
    return urlencode(pairs)


@bp.get("/relocation")
def index():
    """The map, the summary panel, the filters and the sortable table."""
    view = _view()
    lang = _lang()
    m = svc.relocation_map(core(), view, lang=lang, gettext=_, site_link=site_link())
    return render_map_page("relocation.html", m, view=view, rows=svc.site_rows(view),
                           summary=view.summary, lang=lang, query=_query_string(view),
                           years=list(svc.programme(core()).targets))


@bp.get("/api/relocation")
def api():
    """The same view as JSON: filters, summary and the rows with their rule hits."""
    view = _view()
    return jsonify({"filters": view.filters.as_query(), "year": view.year,
                    "summary": view.summary, "sites": svc.site_rows(view)})


def _download(fmt: str, mimetype: str) -> Response:
    view = _view()
    with tempfile.TemporaryDirectory() as tmp:
        path = svc.write_ledger(view, Path(tmp) / f"ledger.{fmt}", fmt)
        body = path.read_bytes()
    stamp = dt.datetime.now(LOCAL_TZ).strftime("%Y%m%d")  # the bureau's date, not the server's
    log.info("relocation ledger %s: %d rows", fmt, len(view.sites))
    return send_download(body, f"relocation-ledger-{stamp}.{fmt}", mimetype)


@bp.get("/relocation.csv")
def download_csv():
    """The filtered ledger as CSV (UTF-8 with BOM, Chinese headers)."""
    return _download("csv", "text/csv; charset=utf-8")


@bp.get("/relocation.xlsx")
def download_xlsx():
    """The filtered ledger as an Excel workbook (Chinese headers)."""
    return _download("xlsx",
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

"""/overdue (逾期督办): overdue and due-soon obligations by county, as of a day.

Every account may read it. ``?as_of=2026-12-03`` judges the obligations on that day instead
of today (the city's calendar), so a page and its download can be reproduced; the workbook
``/overdue.xlsx`` takes the same query and holds exactly the page's rows.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from geoapp.services import deadlines as svc
from geoapp.web.common import core, send_download
from geoapp.web.i18n import current_language

log = logging.getLogger(__name__)
bp = Blueprint("overdue", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _view() -> svc.OverdueView:
    return svc.overdue_view(core(), request.args.get("as_of"))


@bp.get("/overdue")
def index():
    """Counts by county, then each county's overdue and due-soon obligations."""
    view = _view()
    english = current_language() == "en"
    as_of = view.as_of.to_dict()
    return render_template(
        "overdue.html", view=view, groups=view.groups, counts=view.counts,
        as_of=as_of["as_of"], as_of_text=as_of["as_of_text_en" if english else "as_of_text"],
        query=f"as_of={as_of['as_of']}" if request.args.get("as_of") else "",
        lang="en" if english else "zh")


@bp.get("/overdue.xlsx")
def download_xlsx():
    """The page's counts and rows as a workbook (headers in the page's language)."""
    view = _view()
    with tempfile.TemporaryDirectory() as tmp:
        lines = svc.overdue_title_lines(core(), view, _, english=current_language() == "en")
        body = svc.write_overdue_xlsx(view, Path(tmp) / "overdue.xlsx", _,
                                      lines=lines).read_bytes()
    day = view.as_of.date.strftime("%Y%m%d")
    log.info("overdue workbook as of %s: %d overdue", view.as_of.date, view.counts["overdue"])
    return send_download(body, f"逾期督办-{day}.xlsx", XLSX, ascii_name=f"overdue-{day}.xlsx")

"""The 约谈 (interview) list page: grids warned in INTERVIEW_WEEKS consecutive weeks.

``/interviews?week=2026-W47`` lists, for every county in bulletin order, the hotspot grids
warned in that week and the weeks before it (无 where none), each with the enterprises inside
it; ``/interviews/2026-W47.xlsx`` is the same list as a workbook. Any account may read it.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from geoapp.domain.bulletin import IsoWeek, date_range_zh
from geoapp.services import interviews as svc
from geoapp.services import weekly
from geoapp.web.common import core, send_download
from geoapp.web.i18n import current_language

bp = Blueprint("interviews", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _week(text: str | None) -> IsoWeek:
    return IsoWeek.parse(text) if text else weekly.default_week(core())


@bp.get("/interviews")
def index():
    """The list of one week (default: the weekly bulletin's default week)."""
    week = _week(request.args.get("week"))
    data = svc.interview_list(core(), week)
    return render_template("interviews.html", interviews=data, week=str(week),
                           previous=str(week.previous()), next=str(week.shift(1)),
                           date_range=date_range_zh(week),
                           date_range_en=f"{week.monday:%d %b %Y} – {week.sunday:%d %b %Y}")


@bp.get("/interviews/<week>.xlsx")
def download(week: str):
    """The list of one week as an XLSX workbook."""
    iso = IsoWeek.parse(week)
    data = svc.xlsx_bytes(core(), svc.interview_list(core(), iso), _,
                          english=current_language() == "en")
    return send_download(data, f"{iso}-约谈名单.xlsx", XLSX)

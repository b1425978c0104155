"""/workshops: the 散乱污 register — counts, 两断三清 checklist, likely relapses on a map.

Viewing needs any account; saving checklist dates needs the planner role, with the same
version rules as the site page (a stale form gets 409 and the other planner's change).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from geoapp.domain.errors import Conflict, InvalidInput, NotFound, ValidationFailed
from geoapp.domain.vocab import WorkshopStatus
from geoapp.exports.tables import write_csv, write_xlsx
from geoapp.maps.workshops import workshops_map
from geoapp.services import workshops as svc
from geoapp.web.auth import role_required
from geoapp.web.ledger import attachment
from geoapp.web.views import render_map_page, site_link

log = logging.getLogger(__name__)
bp = Blueprint("workshops", __name__)


def _core():
    return current_app.extensions["geoapp"]


def _tiles() -> str:
    tiles = current_app.config.get("TILES", "osm")
    return "none" if tiles == "tianditu" and not current_app.config.get("TIANDITU_KEY") \
        else tiles


def _map(frame, rel):
    core = _core()
    labels = {"workshops": _("散乱污作坊"), "district": _("辖区"), "status": _("状态"),
              "found_date": _("排查日期"), "banned_date": _("取缔日期"),
              "relapse": _("疑似死灰复燃"), "legend_title": _("散乱污")}
    return workshops_map(frame, rel, zoom=core.city.zoom, tiles=_tiles(),
                         tianditu_key=core.settings.get("TIANDITU_KEY", ""), labels=labels,
                         link=site_link())


def _page(*, errors: list | None = None, error_id: str = "", conflict: Conflict | None = None,
          status: int = 200):
    core = _core()
    district = (request.args.get("district") or "").strip() or None
    if district and district not in [c.name for c in core.city.counties]:
        raise InvalidInput(_("未知辖区：%(name)s", name=district))
    frame = svc.workshops(core, district)
    rel = svc.relapses(core, frame)
    if district:
        rel = rel[rel["district"] == district]
    m = _map(frame if len(frame) else svc.workshops(core), rel)
    body = render_map_page(
        "workshops.html", m, counts=svc.counts(core, svc.workshops(core)),
        checklist=svc.checklist(frame), relapses=rel.to_dict("records"),
        distance_m=svc.relapse_distance_m(core), district=district or "",
        districts=[c.name for c in core.city.counties], items=svc.CHECKLIST,
        statuses=list(WorkshopStatus), errors=errors or [], error_id=error_id,
        conflict=conflict, can_edit=current_user.has_role("planner"))
    return body, status


@bp.get("/workshops")
def index():
    """The register; ``?district=`` narrows the checklist, relapse list and map."""
    return _page()


@bp.post("/workshops/<site_id>/checklist")
@role_required("planner")
def save_checklist(site_id: str):
    """Save one banned workshop's 两断三清 dates; 400 names bad dates, 409 a stale form."""
    form = {k: request.form.get(k, "") for k in (*dict(svc.CHECKLIST), "version")}
    try:
        svc.save_checklist(_core(), site_id, form, user=current_user.username)
    except NotFound:
        raise NotFound(_("没有找到编号为 %(id)s 的企业或点位", id=site_id)) from None
    except ValidationFailed as exc:
        return _page(errors=list(exc.details or []), error_id=site_id, status=400)
    except Conflict as exc:
        return _page(conflict=exc, error_id=site_id, status=409)
    flash(_("已保存"))
    return redirect(url_for("workshops.index") + f"#ws-{site_id}")


@bp.get("/workshops/register.<fmt>")
def download(fmt: str):
    """The whole register as CSV (UTF-8 with BOM) or XLSX."""
    if fmt not in ("csv", "xlsx"):
        raise NotFound(_("没有这种格式：%(fmt)s", fmt=fmt))
    df = svc.register_frame(_core())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"register.{fmt}"
        if fmt == "csv":
            write_csv(df, path)
            mime = "text/csv; charset=utf-8"
        else:
            write_xlsx({"散乱污台账": df}, path)
            mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        data = path.read_bytes()
    return attachment(data, mime, f"{_core().city.name}散乱污台账.{fmt}", "workshops.{fmt}")

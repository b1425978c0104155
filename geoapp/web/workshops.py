"""/workshops: the 散乱污 register — counts, 两断三清 checklist, likely relapses on a map.

Viewing needs any account; saving checklist dates needs the planner role, with the same
version rules as the site page (a stale form gets 409 and the other planner's change).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from geoapp.domain.errors import Conflict, InvalidInput, NotFound, ValidationFailed
from geoapp.domain.vocab import WorkshopStatus
from geoapp.services import workshops as svc
from geoapp.web.auth import role_required
from geoapp.web.common import core, render_map_page, send_download, site_link

log = logging.getLogger(__name__)
bp = Blueprint("workshops", __name__)

#: Register downloads: format -> MIME type.
REGISTER_TYPES = {"csv": "text/csv; charset=utf-8",
                  "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _page(*, errors: list | None = None, error_id: str = "", conflict: Conflict | None = None,
          status: int = 200):
    districts = list(core().city.county_names)
    district = (request.args.get("district") or "").strip() or None
    if district and district not in districts:
        raise InvalidInput(_("未知辖区：%(name)s", name=district))
    page = svc.register_page(core(), district, site_link=site_link(), gettext=_)
    body = render_map_page(
        "workshops.html", page.pop("map"), **page, district=district or "",
        districts=districts, items=svc.CHECKLIST, statuses=list(WorkshopStatus),
        errors=errors or [], error_id=error_id, conflict=conflict,
        can_edit=current_user.has_role("planner"))
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
        svc.save_checklist(core(), site_id, form, user=current_user.username)
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
    if fmt not in REGISTER_TYPES:
        raise NotFound(_("没有这种格式：%(fmt)s", fmt=fmt))
    with tempfile.TemporaryDirectory() as tmp:
        data = svc.write_register(core(), Path(tmp) / f"register.{fmt}", fmt).read_bytes()
    return send_download(data, f"{core().city.name}散乱污台账.{fmt}", REGISTER_TYPES[fmt],
                         ascii_name=f"workshops.{fmt}")

"""/emergency: the 重污染天气应急减排清单 (heavy-pollution weather emergency list).

- ``GET /emergency``: counts by grade and county, the filtered list (``?county=&grade=&q=
  &matched=``), the map of the enterprises coloured by grade and, with ``?level=``, the
  measures each county must check at that warning level; ``?edit=<key>`` opens one
  enterprise's edit form (planners). Any account.
- ``POST /emergency/import`` (planners): the province's form (XLSX or CSV), all or nothing;
  a bad file comes back as a table of every row's problems.
- ``POST /emergency/measures/<key>`` (planners): save one enterprise's grade and measures
  with the version the planner saw: 400 names bad values, 409 shows who saved first.
- ``GET /emergency/export.xlsx``: the whole list in the province's form.
- ``GET /emergency/levels/<level>.<fmt>``: one level's measures by county, XLSX or DOCX.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.utils import secure_filename

from geoapp.domain.emergency import EDIT_FIELDS, LEVEL_FIELDS, LEVELS, Grade, parse_level
from geoapp.domain.errors import Conflict, InvalidInput, NotFound, ValidationFailed
from geoapp.services import emergency as svc
from geoapp.services import upload_limits
from geoapp.web.auth import role_required
from geoapp.web.common import core, render_map_page, send_download, site_link

log = logging.getLogger(__name__)
bp = Blueprint("emergency", __name__)

TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
UPLOAD_SUFFIXES = (".xlsx", ".csv")


def _page(*, result: dict | None = None, problems: ValidationFailed | None = None,
          edit_key: str | None = None, form: dict[str, Any] | None = None,
          errors: list | None = None, conflict: Conflict | None = None, status: int = 200):
    app = core()
    args = request.args
    data = svc.list_page(app, county=args.get("county"), grade=args.get("grade"),
                         query=args.get("q"), matched=args.get("matched"),
                         level=args.get("level"))
    m = svc.emergency_map(app, data["rows"], level=data["level"], site_link=site_link(),
                          gettext=_)
    can_edit = current_user.has_role("planner")
    edit_key = edit_key or (args.get("edit") or "").strip() or None
    edit = None
    if edit_key and can_edit:
        edit = svc.measure_view(app, edit_key)
        form = form or svc.form_values(edit["measure"])
    body = render_map_page(
        "emergency.html", m, **data, grades=list(Grade), levels=list(LEVELS),
        level_fields=LEVEL_FIELDS, counties=list(app.city.county_names), result=result,
        problems=problems, can_edit=can_edit, edit=edit, form=form or {},
        errors={e["field"]: e for e in errors or []}, error_list=errors or [],
        conflict=conflict, conflict_details=(conflict.details or {}) if conflict else {})
    return body, status


@bp.get("/emergency")
def index():
    """The list, its counts, the map and (``?level=``) the measures by county."""
    return _page()


@bp.post("/emergency/measures/<path:key>")
@role_required("planner")
def save(key: str):
    """Save one enterprise's grade and measures; 400 names bad values, 409 a stale form."""
    form = {k: request.form[k] for k in (*EDIT_FIELDS, "version") if k in request.form}
    try:
        svc.save_measure(core(), key, form, user=current_user.username)
    except NotFound:
        raise NotFound(_("应急减排清单中没有“%(key)s”", key=key)) from None
    except ValidationFailed as exc:
        return _page(edit_key=key, form=form, errors=list(exc.details or []), status=400)
    except Conflict as exc:
        form["version"] = str((exc.details or {}).get("current_version", form.get("version")))
        return _page(edit_key=key, form=form, conflict=exc, status=409)
    flash(_("已保存"))
    return redirect(url_for("emergency.index", edit=key) + "#em-edit")


@bp.post("/emergency/import")
@role_required("planner")
def upload():
    """Import the province's form all-or-nothing; show counts, or every problem."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput(_("请选择文件"))
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidInput(_("应急减排清单须为 XLSX 或 CSV 文件"))
    name = Path(secure_filename(upload.filename) or "emergency").stem + suffix
    label = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:120] or name
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        upload.save(path)
        try:
            result = svc.import_list(core(), path, user=current_user.username,
                                     limits=upload_limits(core().settings), name=label)
        except ValidationFailed as exc:
            return _page(problems=exc, status=400)
    return _page(result=result)


@bp.get("/emergency/export.xlsx")
def export():
    """The whole list in the province's form."""
    app = core()
    with tempfile.TemporaryDirectory() as tmp:
        data = svc.export_list(app, Path(tmp) / "emergency.xlsx").read_bytes()
    return send_download(data, svc.export_filename(app), TYPES["xlsx"],
                         ascii_name="emergency.xlsx")


@bp.get("/emergency/levels/<level>.<fmt>")
def level_file(level: str, fmt: str):
    """One warning level's measures by county, XLSX or DOCX."""
    lv = parse_level(level)
    if lv is None or fmt not in TYPES:
        raise NotFound(_("没有这种格式：%(fmt)s", fmt=level + "." + fmt))
    app = core()
    with tempfile.TemporaryDirectory() as tmp:
        data = svc.write_level(app, lv.value, Path(tmp) / f"level.{fmt}", fmt).read_bytes()
    return send_download(data, svc.level_filename(app, lv, fmt), TYPES[fmt],
                         ascii_name=f"emergency-{lv.value}.{fmt}")

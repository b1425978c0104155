"""/units: the 三线一单 environmental control units and their 生态环境准入清单.

- ``GET /units``: every unit of the units layer (any account), filtered by county and category
  and searched by code or name, with counts; the import form (planners) and the download.
- ``GET /units/<code>``: one unit's list in its four parts; planners edit the four texts.
  ``POST`` saves with the version the planner saw: 400 names a text too long, 409 (another
  planner saved first) shows who and when beside the planner's own, unsaved input.
- ``POST /units/import`` (planners): the published sheet (CSV or XLSX), all or nothing; a bad
  file comes back as a table of every row's problems.
- ``GET /units/export.xlsx``: every unit's list in the published form.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.utils import secure_filename

from geoapp.domain.errors import Conflict, InvalidInput, ValidationFailed
from geoapp.domain.units import PART_KEYS, PART_LABELS, UnitCategory
from geoapp.services import units as svc
from geoapp.services import upload_limits
from geoapp.web.auth import role_required
from geoapp.web.common import core, send_download

log = logging.getLogger(__name__)
bp = Blueprint("units", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UPLOAD_SUFFIXES = (".xlsx", ".csv")


def _list_page(*, result: dict | None = None, problems: ValidationFailed | None = None,
               status: int = 200):
    app = core()
    data = svc.unit_list(app, county=request.args.get("county"),
                         category=request.args.get("category"), query=request.args.get("q"))
    return render_template("units.html", city=app.city, **data,
                           counties=list(app.city.county_names), categories=list(UnitCategory),
                           result=result, problems=problems,
                           can_edit=current_user.has_role("planner")), status


@bp.get("/units")
def index():
    """The units with their lists' state; ``?county=&category=&q=`` filter them."""
    return _list_page()


def _unit_page(code: str, *, form: dict[str, Any] | None = None, errors: list | None = None,
               conflict: Conflict | None = None, status: int = 200):
    app = core()
    data = svc.unit_view(app, code, industry=request.args.get("industry"))
    return render_template(
        "unit.html", city=app.city, **data,
        form=form or svc.form_values(data["requirements"]), part_keys=PART_KEYS,
        part_labels=PART_LABELS, errors={e["field"]: e for e in errors or []},
        error_list=errors or [], conflict=conflict,
        conflict_details=(conflict.details or {}) if conflict else {},
        can_edit=current_user.has_role("planner")), status


@bp.get("/units/<code>")
def show(code: str):
    """One unit's 准入清单; planners get the edit form."""
    return _unit_page(code)


@bp.post("/units/<code>")
@role_required("planner")
def save(code: str):
    """Save the four texts; 400 names a bad part, 409 shows the other planner's save."""
    form = {k: request.form[k] for k in (*PART_KEYS, "version") if k in request.form}
    try:
        saved = svc.save_unit(core(), code, form, user=current_user.username)
    except ValidationFailed as exc:
        return _unit_page(code, form=form, errors=list(exc.details or []), status=400)
    except Conflict as exc:
        # Keep the planner's input; the version becomes the current one, so saving again
        # is a deliberate decision taken after reading the other change.
        form["version"] = str((exc.details or {}).get("current_version", form["version"]))
        return _unit_page(code, form=form, conflict=exc, status=409)
    flash(_("已保存"))
    return redirect(url_for("units.show", code=saved.code) + "#parts")


@bp.post("/units/import")
@role_required("planner")
def upload():
    """Import the published sheet all-or-nothing; show counts, or every problem."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput(_("请选择文件"))
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidInput(_("准入清单须为 XLSX 或 CSV 文件"))
    name = Path(secure_filename(upload.filename) or "units").stem + suffix
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        upload.save(path)
        try:
            result = svc.import_units(core(), path, user=current_user.username,
                                      limits=upload_limits(core().settings),
                                      name=_label(upload.filename))
        except ValidationFailed as exc:
            return _list_page(problems=exc, status=400)
    return _list_page(result=result)


def _label(filename: str) -> str:
    """The uploaded file's own name (no folders), as the report names it."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1][:120] or "units"


@bp.get("/units/export.xlsx")
def export():
    """Every unit's list in the published form."""
    app = core()
    with tempfile.TemporaryDirectory() as tmp:
        path = svc.export_units(app, Path(tmp) / "units.xlsx")
        data = path.read_bytes()
    return send_download(data, svc.export_filename(app), XLSX, ascii_name="units.xlsx")

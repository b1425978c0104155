"""The duty officer's weekly bulletin page: preview, downloads, uploads and dispatch list.

``/weekly?week=2026-W47`` previews the text and the map of one ISO week (default: the last
full week), lists the enterprises inside the warned grids with each warned grid's last 8
weeks, and links every export. Viewing needs any account; uploading warnings or complaints
needs the planner role (admins pass too), because an import changes every later bulletin.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from flask import Blueprint, Response, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.utils import secure_filename

from geoapp.domain.bulletin import IsoWeek, last_full_week
from geoapp.domain.errors import InvalidInput, ValidationFailed
from geoapp.maps.weekly import weekly_map
from geoapp.services import events, upload_limits
from geoapp.services import weekly as svc
from geoapp.web.auth import role_required
from geoapp.web.views import render_map_page

log = logging.getLogger(__name__)
bp = Blueprint("weekly", __name__)

MIMETYPES = {
    "bulletin.txt": "text/plain; charset=utf-8",
    "map.html": "text/html; charset=utf-8",
    "map.png": "image/png",
    "bulletin.docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "bulletin.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
UPLOAD_SUFFIXES = (".csv", ".xlsx")


def _core():
    return current_app.extensions["geoapp"]


def _week(text: str | None) -> IsoWeek:
    return IsoWeek.parse(text) if text else last_full_week()


def _tiles() -> str:
    tiles = current_app.config.get("TILES", "osm")
    return "none" if tiles == "tianditu" and not current_app.config.get("TIANDITU_KEY") \
        else tiles


def _records(df) -> list[dict]:
    """Rows for the template, missing values as empty text."""
    return df.astype(object).where(df.notna(), "").to_dict("records")


def _page(week: IsoWeek, *, import_errors: ValidationFailed | None = None, status: int = 200):
    core = _core()
    report = svc.weekly_report(core, week)
    m = weekly_map(report, tiles=_tiles(), tianditu_key=core.settings.get("TIANDITU_KEY", ""),
                   gettext=_)
    history_weeks = [c for c in report.history.columns if c != "code"]
    body = render_map_page(
        "weekly.html", m, report=report, week=str(week), history_weeks=history_weeks,
        history=report.history.to_dict("records"),
        enterprises=_records(report.enterprises), per_grid=_records(report.per_grid),
        per_county=report.per_county.to_dict("records"),
        complaints=report.complaints.to_dict("records"), files=svc.FILES,
        import_errors=import_errors, previous=str(week.previous()), next=str(week.shift(1)))
    return body, status


@bp.get("/weekly")
def index():
    """Preview of one week: text, map, tables, downloads and (for planners) uploads."""
    return _page(_week(request.args.get("week")))


@bp.get("/weekly/<week>/<name>")
def download(week: str, name: str):
    """One export file of one week, built on demand."""
    iso = IsoWeek.parse(week)
    if name not in svc.FILES:
        from geoapp.domain.errors import NotFound

        raise NotFound(f"no bulletin file named {name!r}")
    core = _core()
    report = svc.weekly_report(core, iso)
    with tempfile.TemporaryDirectory() as tmp:
        data = svc.write_file(core, report, name, tmp).read_bytes()
    return _attachment(data, MIMETYPES[name], f"{iso}-{name}",
                       inline=name in ("map.png", "bulletin.txt"))


@bp.get("/weekly/<week>.zip")
def download_zip(week: str):
    """Every export of one week in one zip."""
    iso = IsoWeek.parse(week)
    core = _core()
    report = svc.weekly_report(core, iso)
    with tempfile.TemporaryDirectory() as tmp:
        paths = svc.write_weekly(core, report, Path(tmp) / "files")
        data = svc.zip_files(paths, Path(tmp) / "bulletin.zip", iso).read_bytes()
    return _attachment(data, "application/zip", f"{iso}-bulletin.zip")


def _attachment(data: bytes, mimetype: str, filename: str, *, inline: bool = False) -> Response:
    disposition = "inline" if inline and request.args.get("download") != "1" else "attachment"
    resp = Response(data, content_type=mimetype)
    resp.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return resp


@bp.post("/weekly/import")
@role_required("planner")
def upload():
    """Import a warnings or complaints file; a bad file is shown row by row, nothing saved."""
    kind = request.form.get("kind", "")
    week = _week(request.form.get("week"))
    if kind not in events.KINDS:
        raise InvalidInput(_("请选择导入类型"))
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput(_("请选择文件"))
    name = secure_filename(upload.filename) or "upload"
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidInput(_("文件须为 CSV 或 XLSX"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (Path(name).stem + suffix)
        upload.save(path)
        try:
            from flask_login import current_user

            result = events.import_events(_core(), kind, path, user=current_user.username,
                                          limits=upload_limits(_core().settings))
        except ValidationFailed as exc:
            return _page(week, import_errors=exc, status=400)
    flash(_("已导入 %(n)d 条记录", n=result["rows"]))
    return redirect(url_for("weekly.index", week=str(week)))

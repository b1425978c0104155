"""The duty officer's weekly bulletin page: preview, downloads, uploads and dispatch list.

``/weekly?week=2026-W47`` previews the text and the map of one ISO week (default: the last
full week, or the latest earlier week with warnings when it has none), lists the enterprises
inside the warned grids with each warned grid's last 8 weeks, and links every export.
Viewing needs any account; uploading warnings or complaints needs the planner role (admins
pass too), because an import changes every later bulletin.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.utils import secure_filename

from geoapp.domain.bulletin import IsoWeek
from geoapp.domain.errors import InvalidInput, NotFound, ValidationFailed
from geoapp.services import events, upload_limits
from geoapp.services import weekly as svc
from geoapp.web.auth import role_required
from geoapp.web.common import core, render_map_page, send_download

log = logging.getLogger(__name__)
bp = Blueprint("weekly", __name__)

MIMETYPES = {
    "bulletin.txt": "text/plain; charset=utf-8",
    "map.html": "text/html; charset=utf-8",
    "map.png": "image/png",
    "bulletin.docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "bulletin.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: Files a browser may show instead of saving (unless ``?download=1``).
INLINE = ("map.png", "bulletin.txt")
UPLOAD_SUFFIXES = (".csv", ".xlsx")


def _week(text: str | None) -> IsoWeek:
    return IsoWeek.parse(text) if text else svc.default_week(core())


def _page(week: IsoWeek, *, import_errors: ValidationFailed | None = None, status: int = 200):
    report = svc.weekly_report(core(), week)
    body = render_map_page(
        "weekly.html", svc.weekly_map(core(), report, gettext=_,
                                      site_link=request.script_root + "/sites/{id}"),
        report=report,
        week=str(week), files=svc.FILES, import_errors=import_errors,
        previous=str(week.previous()), next=str(week.shift(1)), **svc.page_tables(report))
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
        raise NotFound(f"no bulletin file named {name!r}")
    report = svc.weekly_report(core(), iso)
    with tempfile.TemporaryDirectory() as tmp:
        data = svc.write_file(core(), report, name, tmp).read_bytes()
    inline = name in INLINE and request.args.get("download") != "1"
    return send_download(data, f"{iso}-{name}", MIMETYPES[name], inline=inline)


@bp.get("/weekly/<week>.zip")
def download_zip(week: str):
    """Every export of one week in one zip."""
    iso = IsoWeek.parse(week)
    report = svc.weekly_report(core(), iso)
    with tempfile.TemporaryDirectory() as tmp:
        paths = svc.write_weekly(core(), report, Path(tmp) / "files")
        data = svc.zip_files(paths, Path(tmp) / "bulletin.zip", iso).read_bytes()
    return send_download(data, f"{iso}-bulletin.zip", "application/zip")


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
            result = events.import_events(core(), kind, path, user=current_user.username,
                                          limits=upload_limits(core().settings))
        except ValidationFailed as exc:
            return _page(week, import_errors=exc, status=400)
    flash(_("已导入 %(n)d 条记录", n=result["rows"]))
    return redirect(url_for("weekly.index", week=str(week)))

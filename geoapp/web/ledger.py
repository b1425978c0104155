"""/ledger (planners): import the bureau's ledger workbook, download it, download layers.

An upload is validated whole by ``services.ledger.import_ledger``: a bad file comes back as a
table of row / column / value / reason and nothing is imported. Downloads are built on
demand and sent as attachments whose Chinese file names survive every browser (RFC 6266
``filename*`` beside an ASCII fallback, :func:`geoapp.web.common.send_download`).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.utils import secure_filename

from geoapp.domain.errors import InvalidInput, NotFound, ValidationFailed
from geoapp.services import deadlines, interchange, ledger, upload_limits
from geoapp.web.auth import role_required
from geoapp.web.common import core, send_download

log = logging.getLogger(__name__)
bp = Blueprint("ledger", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Download formats of a layer: (label, MIME type).
LAYER_FORMATS: dict[str, tuple[str, str]] = {
    "gpkg": ("GeoPackage", "application/geopackage+sqlite3"),
    "geojson": ("GeoJSON", "application/geo+json"),
    "kml": ("KML", "application/vnd.google-earth.kml+xml"),
    "shp": ("Shapefile (zip)", "application/zip"),
}


def _page(*, result: dict | None = None, problems: ValidationFailed | None = None,
          status: int = 200):
    app = core()
    return render_template(
        "ledger.html", city=app.city, districts=list(app.city.county_names),
        layers=interchange.layer_choices(app), formats=LAYER_FORMATS, result=result,
        problems=problems), status


@bp.get("/ledger")
@role_required("planner")
def index():
    """Upload form, ledger download and the layer downloads."""
    return _page()


@bp.post("/ledger/import")
@role_required("planner")
def upload():
    """Import a ledger workbook all-or-nothing; show counts, or every problem and no change."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput(_("请选择文件"))
    if Path(upload.filename).suffix.lower() != ".xlsx":
        raise InvalidInput(_("台账须为 XLSX 文件"))
    name = Path(secure_filename(upload.filename) or "ledger").stem + ".xlsx"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        upload.save(path)
        try:
            result = ledger.import_ledger(core(), path, user=current_user.username,
                                          limits=upload_limits(core().settings))
        except ValidationFailed as exc:
            return _page(problems=exc, status=400)
    return _page(result=result)


@bp.get("/ledger/export")
@role_required("planner")
def export():
    """The ledger in the bureau's template: all or one district, hits as extra columns,
    ``deadlines=1`` the 整改完成时限's status and days overdue (as of ``as_of``, default today)."""
    app = core()
    district = (request.args.get("district") or "").strip() or None
    if district and district not in app.city.county_names:
        raise InvalidInput(_("未知辖区：%(name)s", name=district))
    with_hits = request.args.get("hits") in ("1", "true", "on")
    with_deadlines = request.args.get("deadlines") in ("1", "true", "on")
    as_of = deadlines.as_of_day(request.args.get("as_of")).date
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.xlsx"
        ledger.export_ledger(app, path, district=district, with_hits=with_hits,
                             with_deadlines=with_deadlines, as_of=as_of)
        data = path.read_bytes()
    title = f"{app.city.name}{district or ''}企业整治工作台账.xlsx"
    return send_download(data, title, XLSX, ascii_name="ledger.xlsx")


@bp.get("/ledger/layers/<name>.<fmt>")
@role_required("planner")
def layer(name: str, fmt: str):
    """One layer as GeoPackage, GeoJSON, KML or zipped Shapefile."""
    if fmt not in LAYER_FORMATS:
        raise NotFound(_("没有这种格式：%(fmt)s", fmt=fmt))
    app = core()
    titles = {c["name"]: c["title"] for c in interchange.layer_choices(app)}
    if name not in titles:
        raise NotFound(_("没有这个图层：%(name)s", name=name))
    with tempfile.TemporaryDirectory() as tmp:
        written = Path(interchange.export_layer(app, name, fmt, Path(tmp) / f"{name}.{fmt}")
                       ["path"])
        data = written.read_bytes()
    suffix = written.suffix  # a Shapefile comes as a .zip of its parts
    return send_download(data, f"{app.city.name}{titles[name]}{suffix}", LAYER_FORMATS[fmt][1],
                         ascii_name=f"{name}{suffix}")

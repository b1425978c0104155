"""The parcel siting check on the web: ``POST /api/parcels/check`` (a file or a GeoJSON
body, JSON answer) and the ``/parcel`` page (upload, draw or paste; the answer with its map,
rules, overlaps and control units; downloads and a printable page).

The page keeps no state: the answer carries the parcels (WGS84 GeoJSON), their source and
the project in a hidden form, sealed with the app's secret key, that the downloads and the
print page post back; they are checked again, and refused when the seal does not match
(see ``services.parcel_page``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from flask import Blueprint, Flask, current_app, jsonify, request
from flask_babel import gettext as _

from geoapp.domain.errors import GeoappError, InvalidInput
from geoapp.services import checks
from geoapp.services import parcel_page as svc
from geoapp.services import parcels as parcel_service
from geoapp.web.common import core, render_map_page, send_download

log = logging.getLogger(__name__)
bp = Blueprint("parcels", __name__)

#: Options of the API besides the rule attributes (form fields or query parameters).
_API_OPTIONS = frozenset({"crs", "towgs84", "site_type", "industry", "csrf_token", "file"})
_JSON_TYPES = ("application/json", "application/geo+json")
#: The longest uploaded file name kept (it is only a label and an extension).
_NAME_LIMIT = 200


def _upload_name(raw: str | None) -> str:
    """The uploaded file's own name as a label (never a path): its last part, printable
    characters only."""
    name = Path((raw or "").replace("\\", "/")).name
    name = "".join(c for c in name if c.isprintable())
    return name[:_NAME_LIMIT]


def _larger_forms() -> None:
    """The parcel forms carry whole parcel sets (a pasted list, a drawing, an answer's
    parcels): their fields may be as large as an upload, not Flask's 500 kB per field."""
    if request.blueprint == bp.name and request.method == "POST":
        request.max_form_memory_size = current_app.config["MAX_CONTENT_LENGTH"]


@bp.record_once
def _install(state) -> None:
    app: Flask = state.app
    # before CSRF protection, which reads the form first
    app.before_request_funcs.setdefault(None, []).insert(0, _larger_forms)


# --------------------------------------------------------------------------- the API


def _api_options(source) -> dict:
    crs = (source.get("crs") or "").strip()
    attrs = {k: v.strip() for k, v in source.items()
             if k not in _API_OPTIONS and isinstance(v, str) and v.strip()}
    return {"crs": None if crs.lower() in ("", "auto") else crs,
            "site_type": (source.get("site_type") or "").strip() or None,
            "industry": (source.get("industry") or "").strip() or None,
            "attrs": attrs or None}


@bp.post("/api/parcels/check")
def api_check():
    """Check the parcels of an uploaded file (multipart field ``file``) or of a GeoJSON body
    for a project; answer one result per parcel."""
    if (request.mimetype or "") in _JSON_TYPES:
        try:
            body = json.loads(request.get_data(cache=False) or b"null")
        except (ValueError, RecursionError):
            raise InvalidInput(_("请求体不是有效的 JSON")) from None
        if body is None:
            raise InvalidInput(_("请求体为空：请发送 GeoJSON（Geometry、Feature 或 "
                                 "FeatureCollection）"))
        body = svc.geojson_object(body)
        opts = _api_options(request.args)
        report = parcel_service.check_parcel_geojson(
            core(), body, crs=opts["crs"], towgs84=svc.parse_towgs84(request.args.get("towgs84")),
            site_type=opts["site_type"], industry=opts["industry"], attrs=opts["attrs"])
        return jsonify(report.to_dict())
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput(_("请以 multipart 字段 file 上传地块文件，或以 application/json "
                             "发送 GeoJSON"))
    name = _upload_name(upload.filename) or "upload"
    data = upload.read()
    if not data:
        raise InvalidInput(_("上传的文件是空的：%(file)s", file=name))
    form = request.form
    opts = _api_options(form)
    report = parcel_service.check_parcel_file(
        core(), data, filename=name, crs=opts["crs"],
        towgs84=svc.parse_towgs84(form.get("towgs84")), site_type=opts["site_type"],
        industry=opts["industry"], attrs=opts["attrs"])
    return jsonify(report.to_dict())


# --------------------------------------------------------------------------- the page


def _seal_keys() -> list[str | bytes]:
    """The keys that seal a carried answer: the app's secret key signs, and seals made with
    a key it replaced (``SECRET_KEY_FALLBACKS``) still open."""
    app = current_app
    return [*(app.config.get("SECRET_KEY_FALLBACKS") or ()), app.secret_key]


def _page(view: svc.ParcelView | None = None, query: svc.ParcelQuery | None = None, *,
          error: str | None = None, details: list[str] | None = None, status: int = 200):
    app = core()
    m = svc.page_map(app, view, gettext=_)
    page = render_map_page("parcel.html", m, view=view, query=query or svc.ParcelQuery(),
                           error=error, details=details or [],
                           source=svc.source_label(view.source) if view else None,
                           **svc.form_choices(app))
    return page, status


def _detail_lines(details) -> list[str]:
    if not details:
        return []
    if isinstance(details, dict):
        return [f"{k}: {v}" for k, v in details.items()]
    if isinstance(details, list | tuple):
        return [str(d) for d in details]
    return [str(details)]


def _query() -> tuple[svc.ParcelQuery, tuple[bytes, str] | None]:
    upload = request.files.get("file")
    has_file = upload is not None and bool(upload.filename)
    query = svc.ParcelQuery.from_form(request.form, checks.rule_attributes(core()),
                                      has_file=has_file)
    data = None
    if has_file and query.mode == "file":
        data = (upload.read(), _upload_name(upload.filename) or "upload")
    return query, data


@bp.get("/parcel")
def index():
    """The parcel form: upload a file, draw on the map or paste coordinates."""
    return _page()


@bp.post("/parcel")
def check():
    """Check the parcels the form sent; the answer page, or the form with the problems."""
    query, upload = _query()
    try:
        view = svc.run(core(), query, upload, seal_keys=_seal_keys())
    except GeoappError as exc:
        if exc.status >= 500:
            raise
        log.info("parcel check refused: %s", exc.message)
        return _page(query=query, error=str(exc.message),
                     details=_detail_lines(exc.details), status=exc.status)
    return _page(view, query)


def _carried_report():
    query, _upload = _query()
    query.mode = "carried"  # whatever the form says: only the carried parcels count here
    return query, svc.check(core(), query, seal_keys=_seal_keys())


@bp.post("/parcel/download")
def download():
    """The answer of the carried parcels as 报告 DOCX, XLSX, GeoPackage or JSON
    (``format``), checked again."""
    _q, report = _carried_report()
    data, filename, mimetype = svc.download(core(), report,
                                            (request.form.get("format") or "docx").strip())
    return send_download(data, filename, mimetype)


@bp.post("/parcel/print")
def print_page():
    """The printable A4 answer of the carried parcels, checked again."""
    query, report = _carried_report()
    view = svc.view_of(core(), query, report)
    m = svc.page_map(core(), view, gettext=_, draw=False)
    return render_map_page("parcel_print.html", m, view=view, query=query,
                           source=svc.source_label(view.source), detailed=svc.PRINT_DETAILED,
                           **svc.form_choices(core()))

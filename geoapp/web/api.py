"""JSON API: thin adapters over the services; errors come back as JSON (see errors.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from flask import Blueprint, jsonify, request
from werkzeug.utils import secure_filename

from geoapp.domain.errors import InvalidInput
from geoapp.services import checks, upload_limits
from geoapp.services.flagfile import FORMATS, FlagOptions, file_format, flag_file
from geoapp.web.common import core, send_download

bp = Blueprint("api", __name__, url_prefix="/api")

MIMETYPES = {"csv": "text/csv", "geojson": "application/geo+json",
             "gpkg": "application/geopackage+sqlite3",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _arg(name: str, default: str | None = None, source=None) -> str | None:
    if source is None:
        source = request.args if request.method == "GET" else request.values
    value = source.get(name, default)
    return value.strip() if isinstance(value, str) else value


_CHECK_ARGS = frozenset({"lon", "lat", "crs", "site_type", "industry"})


@bp.get("/check")
def check():
    """Check one point: lon/lat (or x/y) in the named crs, optional site type and industry,
    and any further attribute some rule reads (e.g. ``fuel=coal``); other parameters are
    ignored."""
    args = request.args  # the inspector's hot path: one lookup of the request proxy
    lon, lat = _arg("lon", source=args), _arg("lat", source=args)
    crs = _arg("crs", "wgs84", source=args) or "wgs84"
    # every other parameter goes on; the service keeps those some rule reads
    attrs = ({k: v for k, v in args.items() if k not in _CHECK_ARGS} if len(args) > 2
             else None)
    result = checks.check_point(core(), lon, lat, crs, site_type=_arg("site_type", source=args),
                                industry=_arg("industry", source=args), attrs=attrs)
    return jsonify(result.to_dict())


@bp.get("/sites/<site_id>/check")
def check_site(site_id: str):
    return jsonify(checks.check_site(core(), site_id).to_dict())


@bp.post("/flag")
def flag():
    """Flag an uploaded CSV/XLSX/GeoJSON/GeoPackage; answer the flagged file (same format
    unless ``format`` names another), its added columns in Chinese unless ``lang=en`` (form
    field or query)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("upload the file as multipart field 'file'")
    name = secure_filename(upload.filename) or "upload"
    fmt_in = file_format(name)
    if fmt_in not in MIMETYPES:  # Parquet is for `geoapp flag` on the command line
        raise InvalidInput(f"上传文件须为 CSV、XLSX、GeoJSON 或 GeoPackage The upload must be one of "
                           f"{', '.join(sorted(MIMETYPES))}; use `geoapp flag` for Parquet")
    fmt_out = _arg("format", fmt_in) or fmt_in
    if fmt_out not in MIMETYPES:
        raise InvalidInput(f"format must be one of {', '.join(sorted(MIMETYPES))}")
    ext_out = next(e for e, f in FORMATS.items() if f == fmt_out)
    work = Path(tempfile.mkdtemp(prefix="geoapp-flag-"))
    src = work / f"input{Path(name).suffix.lower()}"
    upload.save(src)
    dst = work / f"flagged{ext_out}"
    opts = FlagOptions(lon_col=_arg("lon_col", "lon"), lat_col=_arg("lat_col", "lat"),
                       crs=_arg("crs") or None, type_col=_arg("type_col", "site_type"),
                       industry_col=_arg("industry_col", "industry"),
                       skip_bad=_arg("skip_bad", "false").lower() in ("1", "true", "yes", "on"),
                       default_site_type=checks.parse_site_type(_arg("site_type")),
                       lang=(_arg("lang", "zh") or "zh").lower())
    try:
        summary = flag_file(core(), src, dst, opts, limits=upload_limits(core().settings),
                            name=name)
        body = dst.read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    resp = send_download(body, f"{Path(name).stem}-flagged{ext_out}", MIMETYPES[fmt_out])
    resp.headers["X-Geoapp-Rows"] = str(summary["rows"])
    resp.headers["X-Geoapp-Flagged"] = str(summary["flagged"])
    resp.headers["X-Geoapp-Passed"] = str(summary["passed"])
    resp.headers["X-Geoapp-Needs-Info"] = str(summary["needs_info"])
    resp.headers["X-Geoapp-Out-Of-Area"] = str(summary["out_of_area"])
    resp.headers["X-Geoapp-Bad-Rows"] = str(summary["bad_rows"])
    return resp


"""Layer management page: planners replace a zone layer from an uploaded file.

The route only saves the upload under a fixed name in a temporary folder (the user's file
name is never used as a path) and hands it to ``services.layer_import``, which checks
everything before one audited replacement.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from geoapp.domain.errors import GeoappError, InvalidInput
from geoapp.domain.vocab import Role
from geoapp.services import layer_import, layers
from geoapp.web.auth import role_required
from geoapp.web.common import core

log = logging.getLogger(__name__)

bp = Blueprint("layers", __name__)


def _detail_lines(details) -> list[str]:
    """An error's details as lines for the page: a list stays, a mapping becomes key: value."""
    if not details:
        return []
    if isinstance(details, dict):
        return [f"{k}: {v}" for k, v in details.items()]
    if isinstance(details, list | tuple):
        return [str(d) for d in details]
    return [str(details)]


def _page(status: int = 200, **ctx):
    is_admin = current_user.role == Role.ADMIN
    return render_template("layers.html", rows=layers.layer_summary(core()), is_admin=is_admin,
                           city=core().city, form=request.form, **ctx), status


@bp.get("/layers")
@role_required("planner")
def index():
    """Every layer with its feature count and last replacement, and the upload form."""
    return _page()


@bp.post("/layers/<name>")
@role_required("planner")
def upload(name: str):
    """Replace layer ``name`` from the uploaded file; the page shows the report or the error."""
    try:
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise InvalidInput(_("请选择要上传的文件"))
        suffix = Path(upload.filename.replace("\\", "/")).suffix.lower()
        if suffix not in layer_import.UPLOAD_TYPES:
            raise InvalidInput(_("只接受 .zip（Shapefile）、.geojson 或 .gpkg 文件"))
        with tempfile.TemporaryDirectory(prefix="geoapp-upload-") as tmp:
            path = Path(tmp) / f"upload{suffix}"
            upload.save(path)
            report = layer_import.import_layer(
                core(), name, path, user=current_user.username,
                is_admin=current_user.role == Role.ADMIN,
                crs=(request.form.get("crs") or "").strip() or None,
                encoding=(request.form.get("encoding") or "").strip() or None,
                filename=Path(upload.filename.replace("\\", "/")).name[:200])
    except GeoappError as exc:
        log.info("layer upload to %s refused: %s", name, exc.message)
        return _page(exc.status, error=exc.message, details=_detail_lines(exc.details),
                     target=name)
    return _page(report=report, target=name)

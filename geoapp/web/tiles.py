"""The app's own basemap tiles (TILES=local): ``GET /tiles/<z>/<x>/<y>.<ext>``.

Tiles come from the PMTiles or MBTiles file named by LOCAL_TILES (services/basemap.py),
checked once when the app starts: a missing or broken file stops the start with a message
naming it, never a 500 per tile. ``z``, ``x`` and ``y`` are whole numbers (Flask's ``int``
converter: no signs, dots or slashes) in range for the zoom, and ``ext`` the archive's own
format (pbf/mvt, png, jpg/jpeg, webp); anything else is 404, a tile the archive does not
hold is 204. Answers carry an ETag (304 on ``If-None-Match``) and ``Cache-Control: private``
(tiles are behind the login like every page).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, request

from geoapp.services import basemap
from geoapp.web.common import core

log = logging.getLogger(__name__)

bp = Blueprint("tiles", __name__)


@bp.record_once
def _check_archive(state) -> None:
    """With TILES=local, open LOCAL_TILES at start-up (a ConfigError naming the file)."""
    basemap.check_local_tiles(state.app.config)


@bp.get("/tiles/<int:z>/<int:x>/<int:y>.<ext>")
def tile(z: int, x: int, y: int, ext: str):
    """One tile of the local basemap."""
    try:
        answer = basemap.tile_response(core(), z, x, y, ext.lower(),
                                       accepts_gzip="gzip" in request.accept_encodings)
    except basemap.TileArchiveError as exc:  # removed or broken since the start
        log.error("%s", exc)
        abort(404)
    if answer.status == 404:
        abort(404)
    resp = Response(answer.data, status=answer.status)
    for name, value in answer.headers:
        resp.headers[name] = value
    if answer.status == 200:
        resp.set_etag(answer.etag)
        resp = resp.make_conditional(request)
    return resp

"""The app's own basemap tiles (TILES=local): ``GET /tiles/<z>/<x>/<y>.<ext>``.

Tiles come from the PMTiles or MBTiles file named by LOCAL_TILES (services/basemap.py),
checked once when the app starts: a missing or broken file stops the start with a message
naming it. A file that changes or breaks while the server runs is opened again; tiles it
cannot give answer 404 (logged once), never a 500. ``z``, ``x`` and ``y`` are whole numbers
in ASCII digits with no leading zero (no signs, dots, slashes, other scripts' digits) in
range for the zoom, and ``ext`` the archive's own format (pbf/mvt, png, jpg/jpeg, webp);
anything else is 404, a tile the archive does not hold is 204 with no body and no type.
Answers carry an ETag (304 on ``If-None-Match``) and ``Cache-Control: private`` (tiles are
behind the login like every page); gzip'd vector tiles are sent gzip'd only when the
request's ``Accept-Encoding`` gives gzip (or ``*``) a quality above 0.
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, abort, request

from geoapp.services import basemap
from geoapp.web.common import core

log = logging.getLogger(__name__)

bp = Blueprint("tiles", __name__)

#: A tile number: ASCII digits, no leading zero, at most 10 digits.
_NUMBER = re.compile(r"0|[1-9][0-9]{0,9}", re.ASCII)


def _number(text: str) -> int:
    if not _NUMBER.fullmatch(text):
        abort(404)
    return int(text)


@bp.record_once
def _check_archive(state) -> None:
    """With TILES=local, open LOCAL_TILES at start-up (a ConfigError naming the file)."""
    basemap.check_local_tiles(state.app.config)


@bp.get("/tiles/<z>/<x>/<y>.<ext>")
def tile(z: str, x: str, y: str, ext: str):
    """One tile of the local basemap."""
    zi, xi, yi = _number(z), _number(x), _number(y)
    answer = basemap.tile_response(core(), zi, xi, yi, ext.lower(),
                                   accepts_gzip=request.accept_encodings.quality("gzip") > 0)
    if answer.status == 404:
        abort(404)
    resp = Response(answer.data, status=answer.status)
    for name, value in answer.headers:
        resp.headers[name] = value
    if answer.status == 204:
        resp.headers.pop("Content-Type", None)
    if answer.status == 200:
        resp.set_etag(answer.etag)
        resp = resp.make_conditional(request)
    return resp

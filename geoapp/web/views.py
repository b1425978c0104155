"""Pages and the health probe."""

from __future__ import annotations

import logging
import sqlite3

from flask import Blueprint, jsonify, request
from flask_babel import gettext
from flask_login import current_user

from geoapp import services
from geoapp.domain.errors import GeoappError
from geoapp.services import overview as overview_svc
from geoapp.web.common import core, render_map_page, site_link

log = logging.getLogger(__name__)

bp = Blueprint("main", __name__)


@bp.get("/healthz")
def healthz():
    """``{"status": "ok"}`` when the database answers, else 503. Version, city, build time
    and uptime only for a logged-in admin: anonymous callers learn nothing to target."""
    try:
        details = services.health(core())
    except (GeoappError, sqlite3.Error, OSError) as exc:
        log.error("health check failed: %s", exc)
        return jsonify({"status": "unavailable"}), 503
    if current_user.is_authenticated and current_user.has_role("admin"):
        return jsonify(details)
    return jsonify({"status": "ok"})


@bp.get("/")
def overview():
    """The one-map overview; ``?tiles=osm|tianditu|amap|none`` overrides the TILES setting."""
    m = overview_svc.overview_map(core(), tiles=request.args.get("tiles") or None,
                                  site_link=site_link(), gettext=gettext)
    return render_map_page("overview.html", m)

"""Pages and the health probe."""

from __future__ import annotations

import logging
import sqlite3

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from geoapp import services
from geoapp.domain.errors import GeoappError
from geoapp.maps.assets import localize_assets
from geoapp.maps.base import split_figure

log = logging.getLogger(__name__)

bp = Blueprint("main", __name__)


def core() -> services.Geoapp:
    return current_app.extensions["geoapp"]


def render_map_page(template: str, m, **context):
    """Embed a folium figure in a page (header/html/script), assets local in intranet mode."""
    if current_app.config["INTRANET"]:
        localize_assets(m.get_root(), lambda p: url_for("static", filename=p))
    from geoapp.web.security import csp_nonce

    return render_template(template, map=split_figure(m, nonce=csp_nonce()), city=core().city,
                           **context)


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


def site_link() -> str:
    """The site page URL with an ``{id}`` placeholder, for popups built in the browser."""
    return request.script_root + "/sites/{id}"


@bp.get("/")
def overview():
    """The one-map overview; ``?tiles=osm|tianditu|amap|none`` overrides the TILES setting."""
    m = services.overview_map(core(), tiles=request.args.get("tiles") or None,
                              site_link=site_link(), gettext=gettext)
    return render_map_page("overview.html", m)

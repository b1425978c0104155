"""Pages and the health probe."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from flask_babel import gettext

from geoapp import services
from geoapp.maps.assets import localize_assets
from geoapp.maps.base import split_figure

bp = Blueprint("main", __name__)


def core() -> services.Geoapp:
    return current_app.extensions["geoapp"]


def render_map_page(template: str, m, **context):
    """Embed a folium figure in a page (header/html/script), assets local in intranet mode."""
    if current_app.config["INTRANET"]:
        localize_assets(m.get_root(), lambda p: url_for("static", filename=p))
    return render_template(template, map=split_figure(m), city=core().city, **context)


@bp.get("/healthz")
def healthz():
    return jsonify(services.health(core()))


def site_link() -> str:
    """The site page URL with an ``{id}`` placeholder, for popups built in the browser."""
    return request.script_root + "/sites/{id}"


@bp.get("/")
def overview():
    """The one-map overview; ``?tiles=osm|tianditu|amap|none`` overrides the TILES setting."""
    m = services.overview_map(core(), tiles=request.args.get("tiles") or None,
                              site_link=site_link(), gettext=gettext)
    return render_map_page("overview.html", m)

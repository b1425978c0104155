"""Pages and the health probe."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, url_for

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


@bp.get("/")
def overview():
    return render_map_page("overview.html", services.overview_map(core()))

"""The one-map overview use case: gather layers, rule buffers, sites and their hits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import folium

from geoapp.domain.errors import InvalidInput, NotFound
from geoapp.maps.overview import overview_map as draw_overview_map
from geoapp.maps.points import hits_by_site
from geoapp.services import complaints as complaint_points
from geoapp.services.checks import ZONES_LAYER, read_rules
from geoapp.services.core import Geoapp

log = logging.getLogger(__name__)

#: Source layers the overview does not draw (the city outline only frames the view; the
#: Yellow River lies on the southern edge and is drawn through its 1 km buffer).
SKIPPED_LAYERS = ("city", "yellow_river")

TILES = ("osm", "tianditu", "amap", "none", "local")

#: Site columns the overview's popups use (reading fewer columns keeps the page quick).
SITE_COLUMNS = ("name", "district", "industry", "classification", "stage", "progress",
                "species", "head_count", "scale", "status", "found_date")


def overview_map(app: Geoapp, *, tiles: str | None = None, site_link: str | None = None,
                 gettext: Callable[[str], str] | None = None) -> folium.Map:
    """The one-map overview with every layer, the rule buffers, every site and the 12369
    complaints of the last COMPLAINT_MAP_WEEKS weeks (with their suspected sources).

    ``tiles`` overrides the TILES setting (one of :data:`TILES`); ``site_link`` is the site
    page URL with ``{id}`` in it; ``gettext`` translates the map's labels.
    """
    tiles = tiles or app.settings["TILES"]
    if tiles not in TILES:
        raise InvalidInput(f"tiles must be one of {', '.join(TILES)}, not {tiles!r}")
    city = app.city
    layers = {name: app.repo.layer(name) for name in app.repo.layer_names()
              if name not in SKIPPED_LAYERS}
    titles = {name: spec.title_zh for name, spec in city.layers.items()}
    outline = app.repo.layer("city").geometry.union_all()
    c = outline.centroid
    sites = app.repo.sites(columns=SITE_COLUMNS)
    return draw_overview_map((c.y, c.x), city.zoom, layers, titles, sites,
                 tiles=tiles, tianditu_key=app.settings["TIANDITU_KEY"],
                 bounds=tuple(outline.bounds), zones=_zones(app),
                 hits=hits_by_site(app.repo.table("site_hits")), rules=_rules(app),
                 site_link=site_link, units_layer=city.units_layer, gettext=gettext,
                 complaints=complaint_points.recent(app))


def _zones(app: Geoapp):
    try:
        return app.repo.derived_layer(ZONES_LAYER)
    except NotFound:
        log.warning("no %s layer stored yet; the overview shows no rule buffers", ZONES_LAYER)
        return None


def _rules(app: Geoapp) -> dict[str, tuple[str, str]]:
    """Rule id -> (Chinese title, severity), for the hit lists in site popups."""

    def load(path: Path) -> dict[str, tuple[str, str]]:
        try:
            rules = read_rules(path)
        except Exception as exc:  # a broken rules file must not take the map down
            log.warning("rules file unreadable for the overview: %s", exc)
            return {}
        return {r.id: (r.title_zh, str(r.severity)) for r in rules}

    return app.file_cached("overview_rules", Path(app.settings["RULES_FILE"]), load)

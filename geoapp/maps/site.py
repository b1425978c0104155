"""The small map at the top of a site page: the site in its verdict's colour, the features of
the rules it breaks there (cut to the neighbourhood), and a relocation's new site joined to
it by a dashed line.

The site's marker carries the check page's verdict class (``ck-verdict-<verdict>`` in
static/css/check.css), so the four verdicts have one set of colours on every page.
"""

from __future__ import annotations

import math

import folium
import geopandas as gpd
import shapely

from geoapp.maps.base import Translate, base_map, identity, shift_for_tiles
from geoapp.maps.check import HIT_COLOUR
from geoapp.maps.legend import add_legend
from geoapp.maps.safe import SafeGeoJsonTooltip, TextTooltip
from geoapp.spatial.crs import WGS84

#: The four verdicts a site can have (their colours are the check page's CSS classes).
VERDICTS = ("fail", "pass", "needs_info", "out_of_area")
#: The map shows at least this many metres around the site.
MIN_EXTENT_M = 600.0
#: Hit features are cut to this many metres beyond the farthest hit (keeps the page small).
FEATURE_MARGIN_M = 800.0
NEW_SITE_COLOUR = "#333333"


def _box(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min lon, min lat, max lon, max lat) of a square ``radius_m`` around the point."""
    dlat = radius_m / 111320.0
    dlon = dlat / max(math.cos(math.radians(lat)), 0.1)
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def _clip(features: gpd.GeoDataFrame, lon: float, lat: float, radius_m: float,
          metric_crs: str) -> gpd.GeoDataFrame:
    """The features cut to a square of ``radius_m`` around the site, measured in metres."""
    centre = gpd.GeoSeries([shapely.Point(lon, lat)], crs=WGS84).to_crs(metric_crs).iloc[0]
    box = shapely.box(centre.x - radius_m, centre.y - radius_m,
                      centre.x + radius_m, centre.y + radius_m)
    out = features.to_crs(metric_crs)
    out["geometry"] = shapely.intersection(out.geometry.values, box)
    out = out[~out.geometry.is_empty & out.geometry.notna()]
    return out.to_crs(WGS84)


def _pin(css_class: str) -> folium.DivIcon:
    return folium.DivIcon(html=f'<span class="st-pin {css_class}"></span>', icon_size=(20, 20),
                          icon_anchor=(10, 10), class_name="st-pin-icon")


def site_map(lon: float, lat: float, *, verdict: str, name: str, metric_crs: str,
             hits: gpd.GeoDataFrame | None = None,
             new_site: tuple[float, float, str] | None = None, tiles: str = "osm",
             tianditu_key: str = "", gettext: Translate = identity) -> folium.Map:
    """The site page's map.

    ``hits``: the features of the rules broken at the site (``title``, ``name``,
    ``distance_m``, geometry in EPSG:4326); ``new_site``: (lon, lat, name) of a relocation's
    new site. ``gettext`` translates the map's words (Chinese without one).
    """
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}")
    _ = gettext
    m = base_map((lat, lon), 15, tiles=tiles, tianditu_key=tianditu_key, gettext=_)
    reach = MIN_EXTENT_M
    entries: list[tuple[str, str, str]] = []
    if hits is not None and not hits.empty:
        far = float(hits["distance_m"].fillna(0.0).max()) if "distance_m" in hits else 0.0
        reach = max(reach, far * 1.3)
        cut = _clip(hits[["title", "name", "geometry"]].copy(), lon, lat,
                    far + FEATURE_MARGIN_M, metric_crs)
        if not cut.empty:
            folium.GeoJson(
                shift_for_tiles(cut, tiles), name=_("触发规则的要素"),
                style_function=lambda f: {"color": HIT_COLOUR, "weight": 3,
                                          "fillColor": HIT_COLOUR, "fillOpacity": 0.12},
                marker=folium.CircleMarker(radius=6, fill=True),
                tooltip=SafeGeoJsonTooltip(["title", "name"], [_("图层"), _("名称")]),
            ).add_to(m)
            entries.append(("outline", HIT_COLOUR, _("触发规则的要素")))
    x0, y0, x1, y1 = _box(lon, lat, reach)
    points = [(lon, lat)]
    if new_site is not None:
        points.append((new_site[0], new_site[1]))
    drawn = shift_for_tiles(gpd.GeoDataFrame(geometry=[shapely.Point(p) for p in points],
                                             crs=WGS84), tiles).geometry
    site = drawn.iloc[0]
    if new_site is not None:
        new = drawn.iloc[1]
        folium.PolyLine([[site.y, site.x], [new.y, new.x]], color=NEW_SITE_COLOUR, weight=2,
                        dash_array="6 6").add_to(m)
        folium.Marker([new.y, new.x], icon=_pin("st-pin-new"),
                      tooltip=TextTooltip(f"{_('新址')}：{new_site[2] or '—'}")).add_to(m)
        entries.append(("line", NEW_SITE_COLOUR, _("新址（虚线连接）")))
        x0, y0 = min(x0, new_site[0]), min(y0, new_site[1])
        x1, y1 = max(x1, new_site[0]), max(y1, new_site[1])
    folium.Marker([site.y, site.x], icon=_pin(f"ck-verdict-{verdict}"),
                  tooltip=TextTooltip(name)).add_to(m)
    corners = shift_for_tiles(gpd.GeoDataFrame(
        geometry=[shapely.Point(x0, y0), shapely.Point(x1, y1)], crs=WGS84), tiles).geometry
    m.fit_bounds([[corners.iloc[0].y, corners.iloc[0].x], [corners.iloc[1].y, corners.iloc[1].x]])
    if entries:
        add_legend(m, _("图例"), entries)
    return m

"""The map of one site check: the point, the buffers of the rules it breaks, the features
that break them and a dashed, labelled distance line from the point to the nearest point of
each; rules that need the site type to decide in a muted grey; other layers switched off.

Distances and nearest points are computed in the city's metric CRS (never in degrees) and
only then turned back into lon/lat for drawing, so a line's label matches its drawn length.
"""

from __future__ import annotations

import logging
import math

import folium
import geopandas as gpd
import pandas as pd
import shapely
from shapely.ops import nearest_points

from geoapp.maps.base import Translate, base_map, identity, shift_for_tiles
from geoapp.maps.legend import add_legend
from geoapp.maps.safe import SafeGeoJsonTooltip, TextTooltip
from geoapp.spatial.crs import WGS84

log = logging.getLogger(__name__)

HIT_COLOUR = "#d62728"
NEAR_COLOUR = "#1f5fa8"
MUTED_COLOUR = "#8a8a8a"
POINT_COLOUR = "#111111"
#: Features are clipped to this many metres beyond their nearest point (keeps pages small).
FEATURE_MARGIN_M = 1500.0
#: Nothing is drawn farther than this from the point.
MAX_EXTENT_M = 40000.0


def _fmt_m(d: float | None) -> str:
    if d is None:
        return ""
    return f"{d:,.1f} m" if d < 10000 else f"{d / 1000:,.2f} km"


def _clip(gdf: gpd.GeoDataFrame, centre_m: shapely.Point, radius_m: float,
          metric_crs: str) -> gpd.GeoDataFrame:
    """Reproject to metres, cut to a square of ``radius_m`` around the point, back to lon/lat."""
    if gdf.empty:
        return gdf
    box = shapely.box(centre_m.x - radius_m, centre_m.y - radius_m,
                      centre_m.x + radius_m, centre_m.y + radius_m)
    out = gdf.to_crs(metric_crs)
    out["geometry"] = shapely.intersection(out.geometry.values, box)
    out = out[~out.geometry.is_empty]
    return out.to_crs(WGS84)


def distance_lines(lon: float, lat: float, features: gpd.GeoDataFrame,
                   metric_crs: str) -> gpd.GeoDataFrame:
    """One line per feature from the point to the feature's nearest point (EPSG:4326).

    ``length_m`` is measured in the metric CRS; it is 0 when the point lies inside.
    """
    cols = ["feature_id", "name", "title", "hit", "length_m", "geometry"]
    features = _with_flags(features)
    if features.empty:
        return gpd.GeoDataFrame(columns=cols, geometry="geometry", crs=WGS84)
    pt = gpd.GeoSeries([shapely.Point(lon, lat)], crs=WGS84).to_crs(metric_crs).iloc[0]
    feats = features.to_crs(metric_crs)
    rows = []
    for rec, geom in zip(feats.itertuples(index=False), feats.geometry, strict=True):
        if geom is None or geom.is_empty:
            continue
        a, b = nearest_points(pt, geom)
        rows.append({"feature_id": rec.feature_id, "name": rec.name, "title": rec.title,
                     "hit": bool(rec.hit), "length_m": round(a.distance(b), 1),
                     "geometry": shapely.LineString([a, b])})
    out = gpd.GeoDataFrame(rows, columns=cols, geometry="geometry", crs=metric_crs)
    return out.to_crs(WGS84)


def check_map(lon: float, lat: float, features: gpd.GeoDataFrame, zones: gpd.GeoDataFrame,
              *, metric_crs: str, tiles: str = "osm", tianditu_key: str = "",
              radius_m: float = 3000.0, gettext: Translate = identity) -> folium.Map:
    """The check map: what the verdict rests on, nothing else switched on.

    ``features``: layer, title, feature_id, name, hit, conditional, distance_m, geometry;
    ``zones``: rule_id, title_zh, hit, conditional, geometry (all EPSG:4326). Drawn: the
    buffers of the rules hit here, the hit features and a labelled distance line to each;
    the rules that would be hit with the missing site type (conditional) in a muted grey.
    The nearest features of the other layers are in a layer that starts switched off.
    ``gettext`` translates the map's words.
    """
    _ = gettext
    m = base_map((lat, lon), 14, tiles=tiles, tianditu_key=tianditu_key, gettext=_)
    centre_m = gpd.GeoSeries([shapely.Point(lon, lat)], crs=WGS84).to_crs(metric_crs).iloc[0]
    features = _with_flags(features)
    zones = _with_flags(zones)
    shown = features[features["hit"] | features["conditional"]]
    lines = distance_lines(lon, lat, shown, metric_crs)
    _add_zones(m, shift_for_tiles(_clip(zones, centre_m, radius_m, metric_crs), tiles), _)
    _add_features(m, shown, centre_m, metric_crs, tiles, _, name=_("触发规则的要素"), show=True)
    _add_lines(m, shift_for_tiles(lines, tiles), _)
    others = features[~(features["hit"] | features["conditional"])]
    if not others.empty:
        _add_features(m, others, centre_m, metric_crs, tiles, _, name=_("其他图层最近要素"),
                      show=False)
    point = shift_for_tiles(gpd.GeoDataFrame(geometry=[shapely.Point(lon, lat)],
                                             crs=WGS84), tiles).geometry.iloc[0]
    folium.CircleMarker([point.y, point.x], radius=9, color="#ffffff", weight=3,
                        fill=True, fill_color=POINT_COLOUR, fill_opacity=1.0,
                        tooltip=TextTooltip(f"{_('核查点')} {lon:.6f}, {lat:.6f} (WGS84)")
                        ).add_to(m)
    m.fit_bounds(_bounds(point, shift_for_tiles(lines, tiles), radius_m, lat))
    entries = [("point", POINT_COLOUR, _("核查点")),
               ("fill", HIT_COLOUR, _("触发规则的缓冲区/管控区")),
               ("outline", HIT_COLOUR, _("触发规则的要素")),
               ("line", HIT_COLOUR, _("距离线（虚线，标注距离）"))]
    if bool(features["conditional"].any()) or bool(zones["conditional"].any()):
        entries.append(("outline", MUTED_COLOUR, _("待核实：补充场所类型后可能触发")))
    add_legend(m, _("图例"), entries)
    if not others.empty:
        folium.LayerControl(collapsed=True, position="topright").add_to(m)
    return m


def _with_flags(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``hit`` and ``conditional`` as booleans (a frame without ``conditional`` has none)."""
    out = gdf.copy()
    for col in ("hit", "conditional"):
        out[col] = out[col].fillna(False).astype(bool) if col in out.columns else False
    return out


def _bounds(point: shapely.Point, lines: gpd.GeoDataFrame, radius_m: float,
            lat: float) -> list[list[float]]:
    """A box of ``radius_m`` around the point, widened to show every drawn distance line."""
    dlat = radius_m / 111320.0
    dlon = dlat / max(math.cos(math.radians(lat)), 0.1)
    minx, miny, maxx, maxy = point.x - dlon, point.y - dlat, point.x + dlon, point.y + dlat
    near = lines[lines["length_m"] <= MAX_EXTENT_M]
    if not near.empty:
        bx0, by0, bx1, by1 = near.total_bounds
        minx, miny, maxx, maxy = min(minx, bx0), min(miny, by0), max(maxx, bx1), max(maxy, by1)
    return [[miny, minx], [maxy, maxx]]


def _colour(props: dict) -> str:
    return HIT_COLOUR if props["hit"] else MUTED_COLOUR


def _add_zones(m: folium.Map, zones: gpd.GeoDataFrame, _: Translate) -> None:
    if zones.empty:
        return  # no empty group on the map: it has no bounds
    fg = folium.FeatureGroup(name=_("规则缓冲区"), show=True, control=False)
    folium.GeoJson(
        zones[["rule_id", "title_zh", "hit", "conditional", "geometry"]].copy(),
        name=_("规则缓冲区"),
        style_function=lambda f: {
            "color": _colour(f["properties"]), "weight": 1,
            "dashArray": None if f["properties"]["hit"] else "4 4",
            "fillColor": _colour(f["properties"]),
            "fillOpacity": 0.18 if f["properties"]["hit"] else 0.06},
        tooltip=SafeGeoJsonTooltip(["title_zh"], [_("规则")]),
    ).add_to(fg)
    fg.add_to(m)


def _add_features(m: folium.Map, features: gpd.GeoDataFrame, centre_m: shapely.Point,
                  metric_crs: str, tiles: str, _: Translate, *, name: str, show: bool) -> None:
    if features.empty:
        return
    parts = []
    for dist, group in features.groupby(features["distance_m"].fillna(0.0)):
        radius = min(float(dist) + FEATURE_MARGIN_M, MAX_EXTENT_M)
        parts.append(_clip(group, centre_m, radius, metric_crs))
    data = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=WGS84)
    data = shift_for_tiles(data[["title", "name", "hit", "conditional", "geometry"]].copy(),
                           tiles)
    if data.empty:
        return
    fg = folium.FeatureGroup(name=name, show=show, control=not show)
    folium.GeoJson(
        data, name=name,
        style_function=lambda f: {
            "color": (HIT_COLOUR if f["properties"]["hit"] else
                      MUTED_COLOUR if f["properties"]["conditional"] else NEAR_COLOUR),
            "weight": 3 if f["properties"]["hit"] else 2,
            "dashArray": "4 4" if f["properties"]["conditional"] else None,
            "fillOpacity": 0.05},
        marker=folium.CircleMarker(radius=6, fill=True),
        tooltip=SafeGeoJsonTooltip(["title", "name"], [_("图层"), _("名称")]),
    ).add_to(fg)
    fg.add_to(m)


def _add_lines(m: folium.Map, lines: gpd.GeoDataFrame, _: Translate) -> None:
    """A dashed line to each hit (red) or conditional (grey) feature, its length on it."""
    drawn = lines[(lines["length_m"] > 0) & (lines["length_m"] <= MAX_EXTENT_M)]
    if drawn.empty:
        return
    fg = folium.FeatureGroup(name=_("距离线"), show=True, control=False)
    for rec, geom in zip(drawn.itertuples(index=False), drawn.geometry, strict=True):
        coords = [[y, x] for x, y in geom.coords]
        colour = HIT_COLOUR if rec.hit else MUTED_COLOUR
        folium.PolyLine(coords, color=colour, weight=2, dash_array="6 6", opacity=0.9,
                        tooltip=TextTooltip(_fmt_m(rec.length_m), permanent=True,
                                            direction="right", offset=[10, 0], sticky=False,
                                            class_name="ck-dist-label"
                                            + ("" if rec.hit else " ck-dist-muted")),
                        ).add_to(fg)
    fg.add_to(m)

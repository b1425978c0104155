"""One small function per map layer: each adds one switchable FeatureGroup to a folium map.

Layers arrive as GeoDataFrames in EPSG:4326 (already shifted when the basemap is GCJ-02).
Sites are not drawn here: :func:`geoapp.maps.points.add_fast_points` embeds them as compact
arrays drawn on one canvas, never a marker or a GeoJSON feature per site.

Polygons and lines are serialised here, not by geopandas' per-row ``__geo_interface__``:
simplified to a few metres and rounded to 6 decimals, which keeps the page small and quick
to build without any visible change at city zoom levels.

Each function takes ``gettext`` for the words of its tooltips and popups (Chinese without).
"""

from __future__ import annotations

import json
import math
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely

from geoapp.domain.units import CATEGORY_COLOURS, UnitCategory, category_colour
from geoapp.domain.vocab import Classification, WorkshopStatus
from geoapp.maps.base import Translate, identity
from geoapp.maps.safe import SafeGeoJsonPopup, SafeGeoJsonTooltip, control_name

#: Line/fill style per zone layer: (colour, fill opacity, dash).
ZONE_STYLES: dict[str, tuple[str, float, str | None]] = {
    "urban_core": ("#d62728", 0.12, None),
    "dense_area": ("#ff7f0e", 0.08, "4 4"),
    "chemical_parks": ("#9467bd", 0.25, None),
    "industrial_clusters": ("#8c564b", 0.18, None),
    "water_source_zones": ("#17becf", 0.30, None),
    "eco_redline": ("#2ca02c", 0.20, None),
    "coal_ban_zones": ("#555555", 0.08, "2 6"),
}

#: Line/fill style of the 三线一单 control units (layer kind ``units``), by category: 优先保护
#: green, 重点管控 red-orange, 一般管控 blue-grey (colours from ``domain.units``).
UNIT_STYLES: dict[str, tuple[str, float]] = {
    UnitCategory.PRIORITY: (CATEGORY_COLOURS[UnitCategory.PRIORITY], 0.30),
    UnitCategory.KEY: (CATEGORY_COLOURS[UnitCategory.KEY], 0.25),
    UnitCategory.GENERAL: (CATEGORY_COLOURS[UnitCategory.GENERAL], 0.08),
}

CLASSIFICATION_COLOURS: dict[str, str] = {
    Classification.RELOCATE: "#d62728",
    Classification.UPGRADE: "#1f77b4",
    Classification.CLOSE: "#111111",
    Classification.CONVERT: "#9467bd",
    Classification.BANKRUPT: "#7f7f7f",
}
WORKSHOP_COLOURS: dict[str, str] = {
    WorkshopStatus.FOUND: "#ff7f0e",
    WorkshopStatus.BANNED: "#111111",
    WorkshopStatus.RECTIFYING: "#bcbd22",
}
FARM_COLOUR = "#8c6d31"


#: Display simplification of lines and polygons, in degrees (about 3 m).
SIMPLIFY_DEG = 0.00003

#: Colour per source layer of a rule buffer (the stored ``exclusion_zones`` layer).
BUFFER_COLOURS: dict[str, str] = {
    "rivers": "#2b7bba",
    "canal": "#08306b",
    "yellow_river": "#a6611a",
    "urban_core": "#d62728",
    "scattered_workshops": "#ff7f0e",
}


def _props(gdf: gpd.GeoDataFrame, keep: list[str]) -> gpd.GeoDataFrame:
    cols = [c for c in keep if c in gdf.columns]
    return gdf[[*cols, "geometry"]]


def _clean(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def geojson_dict(gdf: gpd.GeoDataFrame, keep: list[str],
                 tolerance: float = SIMPLIFY_DEG) -> dict[str, Any]:
    """A FeatureCollection of ``keep`` columns, simplified and rounded for display."""
    cols = [c for c in keep if c in gdf.columns]
    geoms = gdf.geometry.values
    if tolerance:
        geoms = shapely.simplify(geoms, tolerance, preserve_topology=True)
    geoms = shapely.transform(geoms, lambda c: np.round(c, 6))
    texts = shapely.to_geojson(geoms)
    records = gdf[cols].to_dict("records") if cols else [{} for _ in range(len(gdf))]
    features = []
    for text, rec in zip(texts, records, strict=True):
        if text is None:
            continue
        features.append({"type": "Feature", "geometry": json.loads(text),
                         "properties": {k: _clean(v) for k, v in rec.items()}})
    return {"type": "FeatureCollection", "features": features}


def _tooltip(fields: list[str], aliases: list[str]) -> SafeGeoJsonTooltip:
    return SafeGeoJsonTooltip(fields=fields, aliases=aliases, sticky=False)


def add_counties(m: folium.Map, gdf: gpd.GeoDataFrame, title: str, *,
                 gettext: Translate = identity) -> folium.FeatureGroup:
    _ = gettext
    fg = folium.FeatureGroup(name=control_name(title), show=True)
    folium.GeoJson(
        geojson_dict(gdf, ["id", "name", "adcode"]), name=title,
        style_function=lambda f: {"color": "#333333", "weight": 1.5, "dashArray": "6 4",
                                  "fillOpacity": 0.0},
        tooltip=_tooltip(["name"], [_("区县")]),
        popup=SafeGeoJsonPopup(fields=["name", "adcode"], aliases=[_("区县"), _("行政区划代码")]),
    ).add_to(fg)
    return fg.add_to(m)


def _feature_popup(_: Translate) -> SafeGeoJsonPopup:
    return SafeGeoJsonPopup(fields=["name", "id", "source"],
                            aliases=[_("名称"), _("编号"), _("来源")])


def add_lines(m: folium.Map, gdf: gpd.GeoDataFrame, title: str, colour: str,
              weight: float, *, gettext: Translate = identity) -> folium.FeatureGroup:
    _ = gettext
    fg = folium.FeatureGroup(name=control_name(title), show=True)
    folium.GeoJson(
        geojson_dict(gdf, ["id", "name", "name_en", "source"]), name=title,
        style_function=lambda f: {"color": colour, "weight": weight, "opacity": 0.9},
        tooltip=_tooltip(["name"], [_("名称")]),
        popup=_feature_popup(_),
    ).add_to(fg)
    return fg.add_to(m)


def add_zone(m: folium.Map, layer: str, gdf: gpd.GeoDataFrame, title: str,
             show: bool = True, *, gettext: Translate = identity) -> folium.FeatureGroup:
    colour, opacity, dash = ZONE_STYLES.get(layer, ("#444444", 0.1, None))
    fg = folium.FeatureGroup(name=control_name(title), show=show)
    folium.GeoJson(
        geojson_dict(gdf, ["id", "name", "level", "source"]), name=title,
        style_function=lambda f: {"color": colour, "weight": 1.5, "fillColor": colour,
                                  "fillOpacity": opacity, "dashArray": dash},
        tooltip=_tooltip(["name"], [title]),
        popup=_feature_popup(gettext),
    ).add_to(fg)
    return fg.add_to(m)


def unit_style(category: str | None) -> dict[str, Any]:
    """The Leaflet style of one control unit by its category (grey when unknown)."""
    colour, opacity = UNIT_STYLES.get(str(category or ""), (category_colour(category), 0.1))
    return {"color": colour, "weight": 1.2, "fillColor": colour, "fillOpacity": opacity}


def add_units(m: folium.Map, gdf: gpd.GeoDataFrame, title: str, show: bool = False, *,
              gettext: Translate = identity) -> folium.FeatureGroup:
    """The 三线一单 environmental control units, filled by category; popups give the code,
    name, category and county (the page /units/<code> holds the unit's 准入清单)."""
    _ = gettext
    fg = folium.FeatureGroup(name=control_name(title), show=show)
    data = _props(gdf, ["code", "name", "category", "county"]).copy()
    for col in ("code", "category", "county"):
        if col not in data.columns:
            data[col] = gdf["id"] if col == "code" and "id" in gdf.columns else ""
    data["category_label"] = [_(str(c)) if c else "" for c in data["category"]]
    folium.GeoJson(
        geojson_dict(data, ["code", "name", "category", "category_label", "county"]),
        name=title, style_function=lambda f: unit_style(f["properties"].get("category")),
        tooltip=_tooltip(["name", "category_label"], [_("环境管控单元"), _("管控单元分类")]),
        popup=SafeGeoJsonPopup(fields=["code", "name", "category_label", "county"],
                               aliases=[_("环境管控单元编码"), _("环境管控单元名称"), _("管控单元分类"),
                                        _("区县")]),
    ).add_to(fg)
    return fg.add_to(m)


def add_grids(m: folium.Map, gdf: gpd.GeoDataFrame, title: str, *,
              gettext: Translate = identity) -> folium.FeatureGroup:
    """Hotspot cells; key-monitored cells are set apart by a thick red outline."""
    _ = gettext
    fg = folium.FeatureGroup(name=control_name(title), show=True)
    data = _props(gdf, ["id", "code", "name", "key", "county"]).copy()
    data["key_label"] = data["key"].map({True: _("重点监控"), False: _("一般")})
    data = geojson_dict(data, ["id", "code", "name", "key", "county", "key_label"])

    def style(f):
        key = bool(f["properties"].get("key"))
        return {"color": "#c00000" if key else "#e6a000", "weight": 2.5 if key else 1,
                "fillColor": "#c00000" if key else "#ffd966",
                "fillOpacity": 0.12 if key else 0.06}

    folium.GeoJson(
        data, name=title, style_function=style,
        tooltip=_tooltip(["code", "county", "key_label"], [_("网格编号"), _("区县"), _("类别")]),
        popup=SafeGeoJsonPopup(fields=["code", "name", "county", "key_label"],
                               aliases=[_("网格编号"), _("名称"), _("区县"), _("类别")]),
    ).add_to(fg)
    return fg.add_to(m)


def add_rule_zones(m: folium.Map, zones: gpd.GeoDataFrame, title: str, rule_id: str,
                   colour: str, show: bool = False, *,
                   gettext: Translate = identity) -> folium.FeatureGroup:
    """One rule's buffer (a row of the stored ``exclusion_zones`` layer) as its own layer.

    Drawn dashed and lightly filled so the zones and sites under it stay readable.
    """
    _ = gettext
    fg = folium.FeatureGroup(name=control_name(title), show=show)
    data = zones[zones["rule_id"] == rule_id].copy()
    data["label"] = title
    folium.GeoJson(
        geojson_dict(data, ["rule_id", "label", "distance_m"]), name=title,
        style_function=lambda f: {"color": colour, "weight": 1.2, "dashArray": "5 5",
                                  "fillColor": colour, "fillOpacity": 0.10},
        tooltip=_tooltip(["label"], [_("规则")]),
        popup=SafeGeoJsonPopup(fields=["label", "rule_id", "distance_m"],
                               aliases=[_("规则"), _("规则编号"), _("距离（米）")]),
    ).add_to(fg)
    return fg.add_to(m)

"""The map of a parcel check, and the drawing tool of the parcel page.

:func:`parcel_map` draws what the check of each parcel found (``services.parcels.drawing``):
the parcel's outline (the 用地红线), the part of it each control unit covers coloured by the
unit's category, the part each restricted layer feature covers shaded and labelled with its
ground area, and the shortest line to the nearest feature of each rule layer the parcel does
not touch, labelled with the ground distance. Areas and distances come measured from the
check (ellipsoidal, in m² and m); the map only draws them.

A parcel of more than ``MAP_VERTICES`` vertices (a surveyed arc cut fine, a CAD outline) is
drawn from a simplified copy (:func:`map_copy`, within ``MAP_TOLERANCE_M`` on the ground),
and every coordinate on the map is rounded to 1e-7 degrees (about 1 cm): a web page need
not carry the parcel at full precision — the page's carried answer does, once.

:func:`add_draw_control` adds leaflet-draw (folium's ``Draw``) for a polygon or rectangle,
its words in the page's language; the page's own script reads what was drawn.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import MacroElement
from folium import plugins
from folium.template import Template

from geoapp.domain.units import category_colour
from geoapp.maps.base import Translate, base_map, identity, shift_for_tiles
from geoapp.maps.legend import add_legend
from geoapp.maps.safe import SafeGeoJsonTooltip, TextTooltip, control_name, script_json
from geoapp.spatial.crs import WGS84

PARCEL_COLOUR = "#d62728"
PIECE_COLOUR = "#ff7f0e"
LINK_COLOUR = "#1f4e79"
#: Lines to features farther than this are left off the map (they would shrink the parcel).
MAX_LINK_M = 3000.0
#: Parcels drawn with their overlaps, units and lines; the others only as outlines.
MAX_DETAILED = 20
#: A feature covering this share of a parcel covers all of it (for the labels).
WHOLE_SHARE = 0.999


#: A parcel with more vertices than this is drawn from a simplified copy.
MAP_VERTICES = 2_000
#: The simplified copy strays at most this far from the parcel on the ground (metres),
#: unless it would still have more than ``MAP_VERTICES`` vertices: then the tolerance is
#: doubled until it has not, up to ``MAP_TOLERANCE_MAX_M``.
MAP_TOLERANCE_M = 0.5
MAP_TOLERANCE_MAX_M = 64.0
#: The most metres a degree of latitude spans on the ellipsoid (at the poles); a degree of
#: longitude spans fewer, so a tolerance of t / this degrees is at most t metres anywhere.
_M_PER_DEGREE = 111_700.0
#: Decimals of a degree kept on the map (1e-7 degrees: about 1 cm).
MAP_DECIMALS = 7


def map_copy(geom_lonlat: Any) -> Any:
    """``geom_lonlat`` itself when it has at most ``MAP_VERTICES`` vertices, else a valid
    simplified copy for drawing (Douglas-Peucker keeping the topology, within
    ``MAP_TOLERANCE_M`` on the ground where that leaves few enough vertices)."""
    if geom_lonlat is None or shapely.get_num_coordinates(geom_lonlat) <= MAP_VERTICES:
        return geom_lonlat
    tolerance = MAP_TOLERANCE_M
    while True:
        copy = shapely.simplify(geom_lonlat, tolerance / _M_PER_DEGREE, preserve_topology=True)
        if shapely.get_num_coordinates(copy) <= MAP_VERTICES or \
                tolerance >= MAP_TOLERANCE_MAX_M:
            return copy
        tolerance *= 2


def _rounded(xy: np.ndarray) -> np.ndarray:
    return np.round(xy, MAP_DECIMALS)


def _fmt_area(m2: float) -> str:
    return f"{m2:,.0f} m²" if m2 >= 10 else f"{m2:,.1f} m²"


def _fmt_m(d: float) -> str:
    return f"{d:,.1f} m" if d < 10000 else f"{d / 1000:,.2f} km"


def _frame(rows: list[dict[str, Any]], tiles: str) -> gpd.GeoDataFrame:
    """``rows`` as a frame in the tiles' system, coordinates rounded to ``MAP_DECIMALS``
    (for display only: a rounded polygon is not measured or intersected)."""
    frame = shift_for_tiles(gpd.GeoDataFrame(rows, geometry="geometry", crs=WGS84), tiles)
    rounded = shapely.transform(frame.geometry.to_numpy(), _rounded)
    return frame.set_geometry(gpd.GeoSeries(rounded, index=frame.index, crs=frame.crs))


def parcel_map(parcels: Sequence[Mapping[str, Any]], *, tiles: str = "osm",
               tianditu_key: str = "", layer_titles: Mapping[str, str] | None = None,
               gettext: Translate = identity) -> folium.Map:
    """The map of a parcel check.

    ``parcels``: one mapping per parcel, in input order, with ``id``, ``name``,
    ``geometry`` (a lon/lat polygon, WGS84), ``area_m2``, ``verdict_label`` and
    ``drawing`` (``services.parcels.drawing`` of its answer, or None to draw the outline
    only). ``layer_titles`` names the layers in the labels. On an Amap basemap everything is
    shifted to GCJ-02. ``gettext`` translates the map's words.
    """
    _ = gettext
    titles = dict(layer_titles or {})
    geoms = [p["geometry"] for p in parcels]
    bounds = shapely.total_bounds(geoms) if geoms else (112.5, 34.8, 113.8, 35.5)
    centre = ((bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2)
    m = base_map(centre, 15, tiles=tiles, tianditu_key=tianditu_key, gettext=_)

    units, pieces, links = [], [], []
    for p in parcels:
        drawing = p.get("drawing") or {}
        for u in drawing.get("units", ()):
            units.append({"parcel": str(p["id"]), "code": u.get("code") or "",
                          "name": u.get("name") or "", "category": u.get("category") or "",
                          "area": _fmt_area(u["area_m2"]),
                          "colour": category_colour(u.get("category")),
                          "geometry": u["geometry"]})
        # Features covering the whole parcel share one label (they would all sit at its
        # centre); a feature covering part of it is labelled on its part.
        whole: list[str] = []
        area = float(p.get("area_m2") or 0.0)
        for piece in drawing.get("pieces", ()):
            layer = titles.get(piece["layer"], piece["layer"])
            name = f"{layer} {piece.get('feature_name') or ''}".strip()
            if area > 0 and piece["area_m2"] >= WHOLE_SHARE * area:
                whole.append(name)
                continue
            pieces.append({"label": f"{name}\n{_fmt_area(piece['area_m2'])}",
                           "geometry": piece["geometry"]})
        if whole:
            pieces.append({"label": "\n".join([_("整个地块位于（%(area)s）：")
                                                % {"area": _fmt_area(area)}, *whole]),
                           "geometry": p["geometry"]})
        for lk in drawing.get("links", ()):
            if lk["distance_m"] <= MAX_LINK_M:
                layer = titles.get(lk["layer"], lk["layer"])
                links.append({"label": f"{lk.get('feature_name') or layer} "
                              f"{_fmt_m(lk['distance_m'])}", "geometry": lk["geometry"]})

    categories = {}
    if units:
        data = _frame(units, tiles)
        fg = folium.FeatureGroup(name=control_name(_("环境管控单元")), show=True)
        folium.GeoJson(
            data, name=_("环境管控单元"),
            style_function=lambda f: {"color": f["properties"]["colour"], "weight": 1,
                                      "fillColor": f["properties"]["colour"],
                                      "fillOpacity": 0.28},
            tooltip=SafeGeoJsonTooltip(["code", "name", "category", "area"],
                                       [_("单元编码"), _("单元名称"), _("管控类别"),
                                        _("重叠面积")]),
        ).add_to(fg)
        fg.add_to(m)
        for u in units:
            categories.setdefault(u["category"], u["colour"])
    if pieces:
        fg = folium.FeatureGroup(name=control_name(_("与管控图层重叠部分")), show=True)
        for row, geom in zip(pieces, _frame(pieces, tiles).geometry, strict=True):
            folium.GeoJson(
                shapely.geometry.mapping(geom),
                style_function=lambda f: {"color": PIECE_COLOUR, "weight": 2,
                                          "fillColor": PIECE_COLOUR, "fillOpacity": 0.45,
                                          "dashArray": "4 3"},
                tooltip=TextTooltip(row["label"], permanent=True, direction="center",
                                    sticky=False, class_name="pc-area-label"),
            ).add_to(fg)
        fg.add_to(m)
    shown_links = _frame(links, tiles) if links else None
    if links:
        fg = folium.FeatureGroup(name=control_name(_("最短距离线")), show=True)
        for row, geom in zip(links, shown_links.geometry, strict=True):
            coords = [[y, x] for x, y in geom.coords]
            folium.PolyLine(coords, color=LINK_COLOUR, weight=2, dash_array="6 6",
                            opacity=0.9).add_to(fg)
            # labelled at the feature's end, away from the parcel's own labels
            folium.CircleMarker(coords[-1], radius=3, color=LINK_COLOUR, fill=True,
                                fill_opacity=1.0,
                                tooltip=TextTooltip(row["label"], permanent=True,
                                                    direction="auto", sticky=False,
                                                    class_name="pc-dist-label"),
                                ).add_to(fg)
        fg.add_to(m)

    outlines = _frame([{"id": str(p["id"]), "name": p.get("name") or "",
                        "area": _fmt_area(float(p.get("area_m2") or 0.0)),
                        "verdict": p.get("verdict_label") or "", "geometry": p["geometry"]}
                       for p in parcels], tiles)
    if not outlines.empty:
        fg = folium.FeatureGroup(name=control_name(_("地块（用地红线）")), show=True)
        folium.GeoJson(
            outlines, name=_("地块（用地红线）"),
            style_function=lambda f: {"color": PARCEL_COLOUR, "weight": 3,
                                      "fillOpacity": 0.0},
            tooltip=SafeGeoJsonTooltip(["id", "name", "area", "verdict"],
                                       [_("地块编号"), _("地块名称"), _("面积"), _("结论")]),
        ).add_to(fg)
        fg.add_to(m)
        # the parcels and every distance line drawn, as the report's map image
        x0, y0, x1, y1 = shapely.total_bounds(
            [*outlines.geometry, *(shown_links.geometry if shown_links is not None else [])])
        m.fit_bounds([[y0, x0], [y1, x1]], padding=(30, 30))

    entries = [("outline", PARCEL_COLOUR, _("地块（用地红线）"))]
    entries += [("fill", colour, _("%(category)s单元") % {"category": _(cat) if cat else
                                                          _("未分类")})
                for cat, colour in categories.items()]
    if pieces:
        entries.append(("fill", PIECE_COLOUR, _("与管控图层重叠部分（标注面积）")))
    if links:
        entries.append(("line", LINK_COLOUR, _("至最近管控要素的最短距离（标注距离）")))
    add_legend(m, _("图例"), entries)
    if units or pieces or links:
        folium.LayerControl(collapsed=True, position="topright").add_to(m)
    return m


class DrawWords(MacroElement):
    """leaflet-draw's words (``L.drawLocal``) in the page's language; added to the map before
    the Draw control, which reads them when it is built. leaflet-draw shows them as HTML, so
    each is escaped."""

    _template = Template("""
{% macro script(this, kwargs) %}
    (function (words) {
      var set = function (path, value) {
        var parts = path.split('.'), obj = L.drawLocal;
        for (var i = 0; i < parts.length - 1; i++) { obj = obj[parts[i]]; }
        obj[parts[parts.length - 1]] = value;
      };
      Object.keys(words).forEach(function (k) { set(k, words[k]); });
    })({{ this.words_json }});
{% endmacro %}
""")

    def __init__(self, words: Mapping[str, str]) -> None:
        super().__init__()
        self._name = "DrawWords"
        self.words_json = script_json({k: html.escape(str(v)) for k, v in words.items()})


def draw_words(gettext: Translate = identity) -> dict[str, str]:
    """The leaflet-draw texts of the tools the parcel page offers, in the page's language."""
    _ = gettext
    return {
        "draw.toolbar.actions.title": _("取消绘制"),
        "draw.toolbar.actions.text": _("取消"),
        "draw.toolbar.finish.title": _("完成绘制"),
        "draw.toolbar.finish.text": _("完成"),
        "draw.toolbar.undo.title": _("删除最后一个点"),
        "draw.toolbar.undo.text": _("删除最后一点"),
        "draw.toolbar.buttons.polygon": _("画地块（多边形）"),
        "draw.toolbar.buttons.rectangle": _("画地块（矩形）"),
        "draw.handlers.polygon.tooltip.start": _("点击地图开始画地块边界。"),
        "draw.handlers.polygon.tooltip.cont": _("继续点击添加界址点。"),
        "draw.handlers.polygon.tooltip.end": _("点击第一个点闭合地块。"),
        "draw.handlers.polyline.error": _("错误：地块边界不能自相交！"),
        "draw.handlers.rectangle.tooltip.start": _("按住并拖动鼠标画矩形。"),
        "draw.handlers.simpleshape.tooltip.end": _("松开鼠标完成绘制。"),
        "edit.toolbar.actions.save.title": _("保存修改"),
        "edit.toolbar.actions.save.text": _("保存"),
        "edit.toolbar.actions.cancel.title": _("取消编辑，放弃所有修改"),
        "edit.toolbar.actions.cancel.text": _("取消"),
        "edit.toolbar.actions.clearAll.title": _("清除全部地块"),
        "edit.toolbar.actions.clearAll.text": _("全部清除"),
        "edit.toolbar.buttons.edit": _("编辑地块"),
        "edit.toolbar.buttons.editDisabled": _("没有可编辑的地块"),
        "edit.toolbar.buttons.remove": _("删除地块"),
        "edit.toolbar.buttons.removeDisabled": _("没有可删除的地块"),
        "edit.handlers.edit.tooltip.text": _("拖动顶点修改地块。"),
        "edit.handlers.edit.tooltip.subtext": _("点击“取消”撤销修改。"),
        "edit.handlers.remove.tooltip.text": _("点击要删除的地块。"),
    }


def add_draw_control(m: folium.Map, *, gettext: Translate = identity) -> plugins.Draw:
    """leaflet-draw on ``m`` for polygons and rectangles (no lines, circles or markers; a
    polygon may not cross itself), editable and deletable, no alert on click. The page's
    script listens to the map's ``draw:created`` / ``draw:edited`` / ``draw:deleted``."""
    DrawWords(draw_words(gettext)).add_to(m)
    shape = {"color": PARCEL_COLOUR, "weight": 3, "fillOpacity": 0.1}
    draw = plugins.Draw(
        position="topleft", show_geometry_on_click=False,
        draw_options={"polyline": False, "circle": False, "marker": False,
                      "circlemarker": False,
                      "polygon": {"allowIntersection": False, "showArea": False,
                                  "shapeOptions": shape},
                      "rectangle": {"showArea": False, "shapeOptions": shape}},
        edit_options={"poly": {"allowIntersection": False}})
    draw.add_to(m)
    return draw


def bounds_of(geoms: Iterable[Any]) -> list[list[float]] | None:
    """[[south, west], [north, east]] of lon/lat geometries, or None without any."""
    items = [g for g in geoms if g is not None and not shapely.is_empty(g)]
    if not items:
        return None
    x0, y0, x1, y1 = shapely.total_bounds(items)
    return [[float(y0), float(x0)], [float(y1), float(x1)]]


__all__ = ["MAP_TOLERANCE_M", "MAP_VERTICES", "MAX_DETAILED", "add_draw_control", "bounds_of",
           "draw_words", "map_copy", "parcel_map"]

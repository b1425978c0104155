"""The base map every page starts from: tiles, controls and the page-embedding split."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

import folium
import geopandas as gpd
import shapely
from branca.element import MacroElement
from folium import plugins
from folium.elements import JSCSSMixin
from jinja2 import Template

from geoapp.maps import safe  # noqa: F401  (makes folium's rendered output literal)
from geoapp.maps.assets import localize_assets, own_asset
from geoapp.maps.safe import script_json
from geoapp.spatial.crs import wgs84_to_gcj02

log = logging.getLogger(__name__)

TIANDITU_URL = ("https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
                "&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
                "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}")
AMAP_URL = ("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
            "&x={x}&y={y}&z={z}")


class MetricScale(MacroElement):
    """Leaflet's scale bar in metres and kilometres only (folium's also shows miles)."""

    _template = Template("""
{% macro script(this, kwargs) %}
    L.control.scale({metric: true, imperial: false}).addTo({{ this._parent.get_name() }});
{% endmacro %}
""")

    def __init__(self) -> None:
        super().__init__()
        self._name = "MetricScale"


@dataclass(frozen=True)
class MapParts:
    """A rendered folium figure split for embedding in a page template (no iframe)."""

    header: str
    html: str
    script: str
    map_id: str
    #: The coordinate system of the map's lon/lat (what a click or the mouse readout gives):
    #: ``gcj02`` on an Amap basemap, ``wgs84`` otherwise.
    crs: str = "wgs84"


#: The coordinate system each basemap draws in. Amap tiles are GCJ-02, so every overlay is
#: shifted to GCJ-02 and a click on the map is a GCJ-02 point; the others are WGS84 (Tianditu's
#: ``_w`` tiles are CGCS2000, which agrees with WGS84 to centimetres).
TILES_CRS = {"osm": "wgs84", "tianditu": "wgs84", "amap": "gcj02", "none": "wgs84",
             "local": "wgs84"}
#: Every basemap choice of the TILES setting (``local``: the app's own tile archive).
TILES = tuple(TILES_CRS)
#: The vector layers of the city's own basemap package, which ``static/js/geoapp-basemap.js``
#: styles (any other vector layer gets a plain grey style).
LOCAL_TILE_LAYERS = ("city", "counties", "urban_core", "rivers", "yellow_river", "canal",
                     "places")
#: The longest attribution a page shows (characters, before escaping).
ATTRIBUTION_MAX = 200
_CRS_LABELS = {"wgs84": "WGS84", "gcj02": "GCJ-02"}

#: How every map builder is told the page's language: a gettext callable (the msgid is the
#: Chinese text); without one the map speaks Chinese.
Translate = Callable[[str], str]


def identity(text: str) -> str:
    """The default ``gettext`` of every map builder: the Chinese text as it is."""
    return text


def tiles_crs(tiles: str) -> str:
    """``gcj02`` for Amap tiles, ``wgs84`` for the other basemaps."""
    return TILES_CRS.get(tiles, "wgs84")


def base_map(center: tuple[float, float], zoom: int, tiles: str = "osm",
             tianditu_key: str = "", *, gettext: Translate = identity) -> folium.Map:
    """A map with the configured basemap and the standard controls.

    ``center`` is (lat, lon). With tiles ``none`` the page still works offline (no basemap).
    The mouse readout names the system the map's coordinates are in (GCJ-02 on Amap), and
    :func:`split_figure` hands that system to the page so its click handler can say it too.
    ``gettext`` translates the controls' words.
    """
    _ = gettext
    m = folium.Map(location=list(center), zoom_start=zoom, tiles=None, control_scale=False,
                   prefer_canvas=True, max_zoom=19)
    MetricScale().add_to(m)
    m.geoapp_crs = tiles_crs(tiles)
    _add_tiles(m, tiles, tianditu_key, _)
    plugins.Fullscreen(position="topleft", title=_("全屏"),
                       title_cancel=_("退出全屏")).add_to(m)
    plugins.MeasureControl(position="topleft", primary_length_unit="meters",
                           secondary_length_unit="kilometers", primary_area_unit="sqmeters",
                           secondary_area_unit="hectares").add_to(m)
    plugins.MousePosition(position="bottomright", separator=" , ", lng_first=True,
                          empty_string=_("无 —"),
                          prefix=f"{_('经纬度')} ({_CRS_LABELS[m.geoapp_crs]}):",
                          num_digits=6).add_to(m)
    return m


def _add_tiles(m: folium.Map, tiles: str, key: str, _: Translate) -> None:
    if tiles == "none":
        return
    if tiles == "local":
        LocalTiles().add_to(m)
        return
    if tiles == "osm":
        folium.TileLayer("OpenStreetMap", name=_("OpenStreetMap 底图"), control=False).add_to(m)
    elif tiles == "tianditu":
        if not key:
            log.warning("TILES=tianditu but TIANDITU_KEY is empty; no basemap drawn")
            return
        for layer, name in (("vec", _("天地图 矢量")), ("cva", _("天地图 注记"))):
            folium.TileLayer(TIANDITU_URL.format(layer=layer, key=key, s="{s}"), name=name,
                             attr="天地图 Tianditu", subdomains="01234567", control=False).add_to(m)
    elif tiles == "amap":
        folium.TileLayer(AMAP_URL, name=_("高德地图"), attr="高德地图 Amap (GCJ-02)",
                         subdomains="1234", control=False).add_to(m)
    else:
        raise ValueError(f"unknown tiles {tiles!r}")


class LocalTiles(JSCSSMixin, MacroElement):
    """The app's own basemap (TILES=local), drawn by ``static/js/geoapp-basemap.js``.

    The map builders do not know where the tiles are served: :func:`set_local_tiles` gives
    every such element of a figure its ``spec`` before it is rendered — a page's tile URL and
    the archive's metadata (:func:`local_tiles_spec`), or for a file opened from disk the
    base layers themselves as GeoJSON (``{"mode": "inline", "layers": {...}}``). Raster tiles
    are a plain ``L.tileLayer``; vector tiles are drawn on canvas by the vendored
    protomaps-leaflet, with no worker and nothing from outside the app.
    """

    _template = Template("""
{% macro script(this, kwargs) %}
    geoappBasemap.add({{ this._parent.get_name() }}, {{ this.spec_json }});
{% endmacro %}
""")

    def __init__(self) -> None:
        super().__init__()
        self._name = "LocalTiles"
        self.set_spec(None)

    def set_spec(self, spec: dict | None) -> None:
        """What to draw, and the scripts that draw it (the renderer only for vector tiles)."""
        self.spec = spec
        mode = (spec or {}).get("mode")
        js = [("geoapp-basemap", own_asset("js/geoapp-basemap.js"))]
        if mode == "vector":
            js.insert(0, ("protomaps-leaflet",
                          own_asset("vendor/protomaps-leaflet/protomaps-leaflet.js")))
        self.default_js = js
        self.default_css = [("geoapp-basemap-css", own_asset("css/geoapp-basemap.css"))]

    @property
    def spec_json(self) -> str:
        return script_json(self.spec or {"mode": "none"})


def local_tiles_spec(meta, url: str) -> dict:
    """The ``spec`` of a page's :class:`LocalTiles`: ``url`` with {z}/{x}/{y}, and from the
    archive's metadata ``meta`` (a :class:`geoapp.storage.tiles.TileMeta`) the format, zooms,
    bounds and attribution, so Leaflet asks only for tiles the archive holds and draws
    deeper zooms from the deepest one (maxNativeZoom).

    The attribution comes from a file anyone may have made: it is plain text, HTML-escaped
    here (Leaflet's attribution control takes HTML) and capped in length, so a link or
    script in a file's metadata shows as text. Bounds that are not finite degrees are left
    out (the layer is then unbounded) rather than handed to Leaflet."""
    spec = {"mode": "vector" if meta.vector else "raster", "url": url, "format": meta.format,
            "minzoom": meta.minzoom, "maxzoom": meta.maxzoom,
            "attribution": escape(" ".join(str(meta.attribution).split())[:ATTRIBUTION_MAX],
                                  quote=True),
            "layers": list(meta.vector_layers)}
    w, s, e, n = meta.bounds
    if all(math.isfinite(v) for v in (w, s, e, n)) and w < e and s < n:
        spec["bounds"] = [[s, w], [n, e]]
    return spec


def local_tiles_of(m: folium.Map) -> list[LocalTiles]:
    """Every :class:`LocalTiles` of the figure of ``m``."""
    found, stack = [], [m.get_root()]
    while stack:
        el = stack.pop()
        if isinstance(el, LocalTiles):
            found.append(el)
        stack.extend(getattr(el, "_children", {}).values())
    return found


def set_local_tiles(m: folium.Map, spec: dict) -> int:
    """Give every :class:`LocalTiles` of ``m`` its ``spec``; returns how many there were."""
    found = local_tiles_of(m)
    for el in found:
        el.set_spec(spec)
    return len(found)


def outline_map(outline, zoom: int, tiles: str = "osm", tianditu_key: str = "", *,
                gettext: Translate = identity) -> folium.Map:
    """A base map framing ``outline`` (a shapely geometry in EPSG:4326, e.g. the city)."""
    c = outline.centroid
    m = base_map((c.y, c.x), zoom, tiles, tianditu_key, gettext=gettext)
    x0, y0, x1, y1 = outline.bounds
    m.fit_bounds([[y0, x0], [y1, x1]])
    return m


def shift_for_tiles(gdf: gpd.GeoDataFrame, tiles: str) -> gpd.GeoDataFrame:
    """Amap tiles are GCJ-02: shift WGS84 overlays so they line up with the basemap.

    Every overlay drawn on an Amap basemap (boundaries, zones, rule buffers, sites) must go
    through this, or it sits 300-700 m off the streets it belongs to.
    """
    if tiles != "amap" or gdf.empty:
        return gdf

    def _shift(coords):
        lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        coords = coords.copy()
        coords[:, 0], coords[:, 1] = lon, lat
        return coords

    out = gdf.copy()
    out[out.geometry.name] = shapely.transform(out.geometry.values, _shift)
    return out


_SCRIPT_TAG = re.compile(r"<script(?=[\s>])", re.IGNORECASE)


def split_figure(m: folium.Map, nonce: str = "") -> MapParts:
    """Render ``m`` and split it into header, body html and script for a Jinja template.

    With ``nonce`` (the page's Content-Security-Policy nonce) every ``<script`` tag of the
    header gets ``nonce="..."``: the header is folium's own asset links and settings, no data.
    The body html must hold no script at all (a CSP without 'unsafe-inline' blocks any), and
    the script part is for the page template to put inside its own nonce'd ``<script>``.
    """
    root = m.get_root()
    root.render()
    header = root.header.render()
    if nonce:
        header = _SCRIPT_TAG.sub(f'<script nonce="{escape(nonce)}"', header)
    return MapParts(header=header, html=root.html.render(), script=root.script.render(),
                    map_id=m.get_name(), crs=getattr(m, "geoapp_crs", "wgs84"))


def page_parts(m: folium.Map, static_url: Callable[[str], str], *, nonce: str = "",
               intranet: bool = False) -> MapParts:
    """``m`` ready for a page, then :func:`split_figure`: geoapp's own assets at the URLs
    ``static_url`` gives for paths under static/, and with ``intranet`` every CDN asset too
    (the vendored copies, :mod:`geoapp.maps.assets`)."""
    localize_assets(m.get_root(), static_url, cdn=intranet)
    return split_figure(m, nonce=nonce)

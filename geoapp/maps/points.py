"""Thousands of sites as one compact canvas layer.

folium's GeoJson writes a full GeoJSON feature (and, with a Python style function, one style
``case``) per point: 10,000 sites cost about 6 s to generate and 3.7 MB of HTML. This element
writes parallel arrays instead (integer micro-degrees, small category codes, lookup tables for
repeated text), so 10,000 sites cost a few tenths of a second and about half a megabyte.

In the browser the arrays are drawn by one Leaflet layer, ``GeoappPoints`` in
``static/js/geoapp-points.js`` (styled by ``static/css/geoapp-points.css``), rather than one
``L.circleMarker`` per point: creating 10,000 Leaflet objects took longer than drawing them.
The layer owns one ``<canvas>`` in the overlay pane and redraws every visible point in one pass
(one path, fill and stroke per category, scaled for ``devicePixelRatio``) on add, pan/zoom end
and resize. A click is matched to the nearest drawn point through a grid of screen cells and
opens a popup built on demand (attributes, rule hits, site link); the click is taken before any
polygon underneath sees it, so a site inside a zone opens the site. Given segment ends, the
layer draws segments (old site -> new site) instead, not clickable.

Both files are folium assets of the element (:func:`geoapp.maps.assets.own_asset`): a page
links them from the app's static folder, a standalone file carries them inline.

The element is a folium ``Layer``: added to a map it appears in the LayerControl as an
overlay; added to a FeatureGroup it draws inside that group. When the points have been drawn
it sets ``window.__geoappDrawn`` (and ``__geoappDrawnAt``, ms since navigation start) so a
browser test or bench can tell the map is really on screen; ``pointCount()`` and
``visibleCount()`` on the layer say how many points it holds and how many it last drew.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Template
from folium.elements import JSCSSMixin
from folium.map import Layer

from geoapp.maps.assets import own_asset
from geoapp.maps.base import Translate, identity
from geoapp.maps.safe import control_name, script_json

log = logging.getLogger(__name__)

#: Coordinates are written as integers in units of 1e-6 degree (about 0.1 m).
SCALE = 1_000_000

#: A category's look, all keys optional: ``stroke`` colour (None: no outline), ``weight`` (px),
#: ``fill_opacity``, ``opacity`` (of the stroke), ``radius`` (px), ``dash`` (e.g. [6, 4]).
#: Unset: a white 1 px outline, both opacities 0.9, the layer's radius, solid.
Style = Mapping[str, Any]
_STYLE_KEYS = {"stroke": "s", "weight": "w", "fill_opacity": "fa", "opacity": "sa",
               "radius": "r", "dash": "dash"}

_TEMPLATE = """
{% macro script(this, kwargs) %}
var {{ this.get_name() }} = new window.GeoappPoints({{ this.data_json }});
{% endmacro %}
"""


class FastPoints(JSCSSMixin, Layer):
    """Points as compact arrays drawn by one canvas layer (see the module docstring).

    Build it with :meth:`from_frame`; the constructor takes the already encoded payload.
    """

    _template = Template(_TEMPLATE)
    default_js = [("geoapp_points", own_asset("js/geoapp-points.js"))]
    default_css = [("geoapp_points_css", own_asset("css/geoapp-points.css"))]

    def __init__(self, payload: dict[str, Any], name: str, show: bool = True,
                 control: bool = True) -> None:
        super().__init__(name=control_name(name), overlay=True, control=control, show=show)
        self._name = "FastPoints"
        self.payload = payload
        # Names, ids and fields are user data: escaped so none can end the inline script.
        self.data_json = script_json(payload)

    @property
    def count(self) -> int:
        return len(self.payload["x"])

    @classmethod
    def from_frame(cls, gdf: gpd.GeoDataFrame, name: str, *, show: bool = True,
                   **kwargs: Any) -> FastPoints:
        """Encode a point frame (EPSG:4326, already shifted for the basemap); keyword
        arguments are those of :func:`encode_points`."""
        return cls(encode_points(gdf, name, **kwargs), name, show=show)


def _located(geoms: gpd.GeoSeries) -> np.ndarray:
    """Which rows hold a point with finite coordinates (not missing, empty or NaN)."""
    return np.isfinite(geoms.x.to_numpy(float)) & np.isfinite(geoms.y.to_numpy(float))


def _coords(geoms: gpd.GeoSeries) -> tuple[np.ndarray, np.ndarray]:
    geoms = geoms.values
    x = np.round(np.asarray(geoms.x, dtype=float) * SCALE).astype(np.int64)
    y = np.round(np.asarray(geoms.y, dtype=float) * SCALE).astype(np.int64)
    return x, y


def _text(series: pd.Series) -> list[str]:
    """Values as display text: missing → '', 12.0 → '12'."""
    values = series.to_numpy(dtype=object)
    missing = pd.isna(values)
    return ["" if gone else (v if type(v) is str else _fmt(v))
            for v, gone in zip(values.tolist(), missing.tolist(), strict=True)]


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, bool | np.bool_):
        return "✓" if v else ""
    return str(v)


def _column(series: pd.Series, label: str) -> dict[str, Any]:
    """A popup column: plain values, or codes into a lookup table when values repeat."""
    values = _text(series)
    lut = list(dict.fromkeys(values))
    if len(lut) <= 0.5 * len(values) and len(lut) < 65536:
        index = {v: i for i, v in enumerate(lut)}
        return {"k": label, "lut": lut, "v": [index[v] for v in values]}
    return {"k": label, "v": values}


def encode_points(gdf: gpd.GeoDataFrame, title: str, *, colour_by: str | None = None,
                  categories: Mapping[str, tuple[str, str]] | None = None,
                  default: tuple[str, str] = ("", "#1f77b4"),
                  styles: Mapping[str, Style] | None = None, default_style: Style | None = None,
                  fields: Sequence[tuple[str, str]] = (), id_field: str = "id",
                  name_field: str | None = "name",
                  hits: Mapping[str, list[tuple[str, float | None, str]]] | None = None,
                  rules: Mapping[str, tuple[str, str]] | None = None,
                  link: str | None = None, radius: float = 5,
                  ends: gpd.GeoSeries | None = None, tooltip: int = 0,
                  popup_class: str = "", gettext: Translate | None = identity,
                  id_label: str | None = None, category_label: str | None = None,
                  hits_label: str | None = None, nohits_label: str | None = None,
                  link_label: str | None = None) -> dict[str, Any]:
    """The compact payload :class:`FastPoints` embeds (plain JSON-able lists).

    ``categories`` maps values of ``colour_by`` to (label, colour); values not listed get
    ``default``. ``styles`` maps the same values to a :data:`Style` (``default_style`` for
    ``default``). ``fields`` are (column, label) pairs shown in the popup. ``hits`` maps a site
    id to (rule id, distance in m or None, feature name) tuples and ``rules`` a rule id to
    (title, severity); with ``hits`` given, the popup lists them (or says there are none).
    ``link`` is a URL with ``{id}`` in it (the site page). ``name_field`` None writes no
    names (the ids stand in for them). ``ends`` (points, aligned with
    ``gdf``) makes each item a segment from its point to its end. ``tooltip`` 1 shows the
    name on hover, 2 also the rules the point breaks. ``popup_class`` is added to the popup's
    class.

    ``gettext`` translates the popup's words (identity: Chinese); a ``*_label`` replaces one
    of them (already translated; ``""`` for ``id_label`` or ``category_label`` leaves that
    row out).
    """
    _ = gettext or identity  # None: Chinese
    keep = _located(gdf.geometry)
    if ends is not None:
        ends = gpd.GeoSeries(ends).reset_index(drop=True)
        if len(ends) != len(gdf):
            raise ValueError(f"{len(ends)} segment ends for {len(gdf)} points")
        keep &= _located(ends)
    gdf = gdf[keep]
    x, y = _coords(gdf.geometry)
    keys = list((categories or {}).keys()) if colour_by in gdf.columns else []
    cats: list[tuple[str, str]] = [default, *[(categories or {})[k] for k in keys]]
    codes = None
    if colour_by is not None and colour_by in gdf.columns:
        lookup = {k: i + 1 for i, k in enumerate(keys)}
        codes = [lookup.get(v, 0) for v in gdf[colour_by].tolist()]
    ids = _text(gdf[id_field]) if id_field in gdf.columns else [str(i) for i in range(len(gdf))]
    names = None if name_field is None else \
        _text(gdf[name_field]) if name_field in gdf.columns else ids
    cols = [_column(gdf[col], label) for col, label in fields if col in gdf.columns]
    labels = {"id": _("编号") if id_label is None else id_label,
              "cat": _("类别") if category_label is None else category_label,
              "hits": hits_label or _("规则命中"), "nohits": nohits_label or _("无命中"),
              "link": link_label or _("详情"), "sep": _("、")}
    payload: dict[str, Any] = {
        "title": title, "s": SCALE, "r": radius, "x": x.tolist(), "y": y.tolist(),
        "c": codes, "cats": [list(c) for c in cats], "id": ids, "name": names, "cols": cols,
        "labels": labels, "link": link, "hits": None, "rules": None,
    }
    if styles or default_style:
        given = [default_style, *[(styles or {}).get(k) for k in keys]]
        payload["st"] = [_style(st) for st in given]
    if ends is not None:
        payload["x2"], payload["y2"] = (a.tolist() for a in _coords(ends[keep]))
    if tooltip:
        payload["tip"] = int(tooltip)
    if popup_class:
        payload["cls"] = popup_class
    if hits is not None:
        payload.update(_encode_hits(set(ids), hits, rules or {}))
    return payload


def _style(style: Style | None) -> dict[str, Any] | None:
    """A :data:`Style` in the short keys the browser reads."""
    if not style:
        return None
    unknown = set(style) - set(_STYLE_KEYS)
    if unknown:
        raise ValueError(f"unknown point style keys {sorted(unknown)}")
    return {_STYLE_KEYS[k]: (list(v) if k == "dash" and v is not None else v)
            for k, v in style.items()}


def _encode_hits(ids: set[str], hits: Mapping[str, list[tuple[str, float | None, str]]],
                 rules: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """Hits per site id as [rule code, distance (null: unknown), feature name]; rules as a
    lookup table."""
    rule_ids: list[str] = []
    code: dict[str, int] = {}
    out: dict[str, list] = {}
    for site_id, rows in hits.items():
        if site_id not in ids or not rows:
            continue
        enc = []
        for rule_id, dist, feature in rows:
            if rule_id not in code:
                code[rule_id] = len(rule_ids)
                rule_ids.append(rule_id)
            d = None if dist is None or pd.isna(dist) else float(dist)
            enc.append([code[rule_id], None if d is None else (round(d, 1) if d % 1 else int(d)),
                        feature or ""])
        out[site_id] = enc
    table = [list(rules.get(r, (r, ""))) for r in rule_ids]
    return {"hits": out, "rules": table}


def hits_by_site(table: pd.DataFrame) -> dict[str, list[tuple[str, float, str]]]:
    """Group a ``site_hits`` table into what :meth:`FastPoints.from_frame` takes, nearest
    first. Only the hits at the site itself: a relocation's hits at its new site (``point``
    ``new_site``) are not the current site's."""
    out: dict[str, list[tuple[str, float, str]]] = {}
    if table is None or table.empty:
        return out
    if "point" in table.columns:
        table = table[table["point"].fillna("site") != "new_site"]
    cols = ["site_id", "rule_id", "distance_m", "feature_name"]
    rows = table[cols].sort_values(["site_id", "distance_m"], kind="stable")
    for site_id, rule_id, dist, feature in rows.itertuples(index=False, name=None):
        feature = "" if feature is None or (isinstance(feature, float) and pd.isna(feature)) \
            else str(feature)
        out.setdefault(str(site_id), []).append((str(rule_id), dist, feature))
    return out


def add_fast_points(parent, gdf: gpd.GeoDataFrame, name: str, **kwargs: Any) -> FastPoints:
    """Add a :class:`FastPoints` layer to a map (LayerControl overlay) or a FeatureGroup.

    Keyword arguments are ``show`` and those of :func:`encode_points`.
    """
    layer = FastPoints.from_frame(gdf, name, **kwargs)
    layer.add_to(parent)
    log.debug("fast points %r: %d sites, %d bytes", name, layer.count, len(layer.data_json))
    return layer

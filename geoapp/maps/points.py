"""Thousands of sites as one compact canvas layer.

folium's GeoJson writes a full GeoJSON feature (and, with a Python style function, one style
``case``) per point: 10,000 sites cost about 1.3 s and 2.7 MB of HTML. This element writes
parallel arrays instead (integer micro-degrees, small category codes, lookup tables for
repeated text), and a few lines of JavaScript draw them as ``L.circleMarker`` on one shared
``L.canvas`` renderer and build a popup only when a point is clicked. 10,000 sites then cost
a few hundredths of a second and a few hundred KB.

The element is a folium ``Layer``: added to a map it appears in the LayerControl as an
overlay; added to a FeatureGroup it draws inside that group. When the points have been drawn
it sets ``window.__geoappDrawn`` (and ``__geoappDrawnAt``, ms since navigation start) so a
browser test or bench can tell the map is really on screen.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Template
from folium.map import Layer

log = logging.getLogger(__name__)

#: Coordinates are written as integers in units of 1e-6 degree (about 0.1 m).
SCALE = 1_000_000

_TEMPLATE = """
{% macro script(this, kwargs) %}
var {{ this.get_name() }} = (function () {
  var d = {{ this.data_json }};
  var host = {{ this._parent.get_name() }};
  var map = host._map || host;
  if (!(map instanceof L.Map)) { map = null; }
  // One canvas renderer for every point layer of the page: one <canvas>, one redraw.
  var renderer = (map && map._geoappPoints) || window.__geoappCanvas || L.canvas({padding: 0.5});
  window.__geoappCanvas = renderer;
  if (map) { map._geoappPoints = renderer; }
  var group = L.featureGroup();
  var colours = d.cats.map(function (c) { return c[1]; });
  for (var i = 0; i < d.x.length; i++) {
    var m = L.circleMarker([d.y[i] / d.s, d.x[i] / d.s], {
      renderer: renderer, radius: d.r, color: '#ffffff', weight: 1, opacity: 0.9,
      fillColor: colours[d.c ? d.c[i] : 0], fillOpacity: 0.9, bubblingMouseEvents: false});
    m._gi = i;
    group.addLayer(m);
  }
  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (ch) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[ch];
    });
  }
  function value(col, i) { return col.lut ? col.lut[col.v[i]] : col.v[i]; }
  function popupHtml(i) {
    var h = '<div class="ga-popup"><strong>' + esc(d.name[i]) + '</strong><table>';
    h += '<tr><th>' + esc(d.labels.id) + '</th><td>' + esc(d.id[i]) + '</td></tr>';
    if (d.cats.length > 1) {
      h += '<tr><th>' + esc(d.labels.cat) + '</th><td>' + esc(d.cats[d.c[i]][0]) + '</td></tr>';
    }
    d.cols.forEach(function (col) {
      var v = value(col, i);
      if (v !== '' && v !== null) {
        h += '<tr><th>' + esc(col.k) + '</th><td>' + esc(v) + '</td></tr>';
      }
    });
    h += '</table>';
    if (d.hits) {
      var hs = d.hits[d.id[i]] || [];
      h += '<div class="ga-popup-hits"><b>' + esc(d.labels.hits) + ' (' + hs.length + ')</b>';
      if (hs.length) {
        h += '<ul>' + hs.map(function (x) {
          var rule = d.rules[x[0]];
          return '<li class="sev-' + esc(rule[1]) + '">' + esc(rule[0]) +
            (x[2] ? ' · ' + esc(x[2]) : '') + ' · ' + esc(x[1]) + ' m</li>';
        }).join('') + '</ul>';
      } else {
        h += '<div>' + esc(d.labels.nohits) + '</div>';
      }
      h += '</div>';
    }
    if (d.link) {
      h += '<a class="ga-popup-link" href="' + esc(d.link.replace('{id}',
        encodeURIComponent(d.id[i]))) + '">' + esc(d.labels.link) + '</a>';
    }
    return h + '</div>';
  }
  group.on('click', function (e) {
    var i = e.layer._gi;
    L.popup({maxWidth: 320}).setLatLng(e.layer.getLatLng()).setContent(popupHtml(i))
      .openOn(e.layer._map);
  });
  group.on('add', function () {
    L.Util.requestAnimFrame(function () {
      window.requestAnimationFrame(function () {
        window.__geoappDrawn = true;
        window.__geoappDrawnAt = performance.now();
        window.__geoappPoints = window.__geoappPoints || {};
        window.__geoappPoints[d.title] = d.x.length;
      });
    });
  });
  group.geoappPopup = popupHtml;
  group.geoappCount = d.x.length;
  return group;
})();
{% endmacro %}
"""


class FastPoints(Layer):
    """Points as compact arrays drawn as canvas circle markers (see the module docstring).

    Build it with :meth:`from_frame`; the constructor takes the already encoded payload.
    """

    _template = Template(_TEMPLATE)

    def __init__(self, payload: dict[str, Any], name: str, show: bool = True,
                 control: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=control, show=show)
        self._name = "FastPoints"
        self.payload = payload
        self.data_json = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))

    @property
    def count(self) -> int:
        return len(self.payload["x"])

    @classmethod
    def from_frame(cls, gdf: gpd.GeoDataFrame, name: str, *,
                   colour_by: str | None = None,
                   categories: Mapping[str, tuple[str, str]] | None = None,
                   default: tuple[str, str] = ("", "#1f77b4"),
                   fields: Sequence[tuple[str, str]] = (),
                   id_field: str = "id", name_field: str = "name",
                   hits: Mapping[str, list[tuple[str, float, str]]] | None = None,
                   rules: Mapping[str, tuple[str, str]] | None = None,
                   link: str | None = None, labels: Mapping[str, str] | None = None,
                   radius: float = 5, show: bool = True) -> FastPoints:
        """Encode a point frame (EPSG:4326, already shifted for the basemap).

        ``categories`` maps values of ``colour_by`` to (label, colour); values not listed get
        ``default``. ``fields`` are (column, label) pairs shown in the popup. ``hits`` maps a
        site id to (rule id, distance in m, feature name) tuples and ``rules`` a rule id to
        (title, severity); with ``hits`` given, the popup lists them (or says there are none).
        ``link`` is a URL with ``{id}`` in it (the site page).
        """
        payload = encode_points(gdf, name, colour_by=colour_by, categories=categories,
                                default=default, fields=fields, id_field=id_field,
                                name_field=name_field, hits=hits, rules=rules, link=link,
                                labels=labels, radius=radius)
        return cls(payload, name, show=show)


DEFAULT_LABELS = {"id": "编号", "cat": "类别", "hits": "规则命中", "nohits": "无命中",
                  "link": "详情"}


def _coords(gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    geoms = gdf.geometry.values
    x = np.round(np.asarray(geoms.x, dtype=float) * SCALE).astype(np.int64)
    y = np.round(np.asarray(geoms.y, dtype=float) * SCALE).astype(np.int64)
    return x, y


def _text(series: pd.Series) -> list[str]:
    """Values as display text: missing → '', 12.0 → '12'."""
    out = series.astype(object).where(series.notna(), "")
    return [_fmt(v) for v in out.tolist()]


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
                  fields: Sequence[tuple[str, str]] = (), id_field: str = "id",
                  name_field: str = "name",
                  hits: Mapping[str, list[tuple[str, float, str]]] | None = None,
                  rules: Mapping[str, tuple[str, str]] | None = None,
                  link: str | None = None, labels: Mapping[str, str] | None = None,
                  radius: float = 5) -> dict[str, Any]:
    """The compact payload :class:`FastPoints` embeds (plain JSON-able lists)."""
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    x, y = _coords(gdf)
    cats: list[tuple[str, str]] = [default]
    codes = None
    if colour_by is not None and colour_by in gdf.columns:
        keys = list((categories or {}).keys())
        cats = [default, *[(categories or {})[k] for k in keys]]
        lookup = {k: i + 1 for i, k in enumerate(keys)}
        codes = [lookup.get(v, 0) for v in gdf[colour_by].tolist()]
    ids = _text(gdf[id_field]) if id_field in gdf.columns else [str(i) for i in range(len(gdf))]
    names = _text(gdf[name_field]) if name_field in gdf.columns else ids
    cols = [_column(gdf[col], label) for col, label in fields if col in gdf.columns]
    payload: dict[str, Any] = {
        "title": title, "s": SCALE, "r": radius, "x": x.tolist(), "y": y.tolist(),
        "c": codes, "cats": [list(c) for c in cats], "id": ids, "name": names, "cols": cols,
        "labels": {**DEFAULT_LABELS, **(labels or {})}, "link": link, "hits": None,
        "rules": None,
    }
    if hits is not None:
        payload.update(_encode_hits(set(ids), hits, rules or {}))
    return payload


def _encode_hits(ids: set[str], hits: Mapping[str, list[tuple[str, float, str]]],
                 rules: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """Hits per site id as [rule code, distance, feature name]; rules as a lookup table."""
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
            d = float(dist) if dist is not None and not pd.isna(dist) else 0.0
            enc.append([code[rule_id], round(d, 1) if d % 1 else int(d), feature or ""])
        out[site_id] = enc
    table = [list(rules.get(r, (r, ""))) for r in rule_ids]
    return {"hits": out, "rules": table}


def hits_by_site(table: pd.DataFrame) -> dict[str, list[tuple[str, float, str]]]:
    """Group a ``site_hits`` table into what :meth:`FastPoints.from_frame` takes, nearest
    first."""
    out: dict[str, list[tuple[str, float, str]]] = {}
    if table is None or table.empty:
        return out
    cols = ["site_id", "rule_id", "distance_m", "feature_name"]
    rows = table[cols].sort_values(["site_id", "distance_m"], kind="stable")
    for site_id, rule_id, dist, feature in rows.itertuples(index=False, name=None):
        feature = "" if feature is None or (isinstance(feature, float) and pd.isna(feature)) \
            else str(feature)
        out.setdefault(str(site_id), []).append((str(rule_id), dist, feature))
    return out


def add_fast_points(parent, gdf: gpd.GeoDataFrame, name: str, **kwargs: Any) -> FastPoints:
    """Add a :class:`FastPoints` layer to a map (LayerControl overlay) or a FeatureGroup.

    Keyword arguments are those of :meth:`FastPoints.from_frame`.
    """
    layer = FastPoints.from_frame(gdf, name, **kwargs)
    layer.add_to(parent)
    log.debug("fast points %r: %d sites, %d bytes", name, layer.count, len(layer.data_json))
    return layer

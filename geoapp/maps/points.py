"""Thousands of sites as one compact canvas layer.

folium's GeoJson writes a full GeoJSON feature (and, with a Python style function, one style
``case``) per point: 10,000 sites cost about 6 s to generate and 3.7 MB of HTML. This element
writes parallel arrays instead (integer micro-degrees, small category codes, lookup tables for
repeated text), so 10,000 sites cost a few tenths of a second and about half a megabyte.

In the browser the arrays are drawn by one hand-written Leaflet layer (``GeoappPoints``, an
``L.Layer``) rather than one ``L.circleMarker`` per point: creating 10,000 Leaflet objects took
longer than drawing them. The layer owns one ``<canvas>`` in the overlay pane and redraws every
visible point in one pass (one path and one fill per colour, scaled for ``devicePixelRatio``)
on add, pan/zoom end and resize. A click is matched to the nearest drawn point through a grid
of screen cells and opens a popup built on demand (attributes, rule hits, site link); the
click is taken before any polygon underneath sees it, so a site inside a zone opens the site.

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
from folium.map import Layer

from geoapp.maps.safe import control_name, script_json

log = logging.getLogger(__name__)

#: Coordinates are written as integers in units of 1e-6 degree (about 0.1 m).
SCALE = 1_000_000

_TEMPLATE = """
{% macro script(this, kwargs) %}
// One Leaflet layer per point set: one <canvas>, every visible point drawn in one pass
// (one path and one fill per colour), clicks found through a grid of the drawn points.
// Defined once per page; later point layers reuse the class.
window.GeoappPoints = window.GeoappPoints || L.Layer.extend({
  options: {pane: 'overlayPane', padding: 0.2, dense: 20000},
  initialize: function (d, options) {
    L.setOptions(this, options);
    this._d = d;
    var n = d.x.length, ncat = d.cats.length, i, k;
    this._lat = new Float64Array(n);
    this._lng = new Float64Array(n);
    var counts = new Int32Array(ncat);
    for (i = 0; i < n; i++) {
      this._lat[i] = d.y[i] / d.s;
      this._lng[i] = d.x[i] / d.s;
      counts[d.c ? d.c[i] : 0]++;
    }
    // Point indices grouped by colour: start[k] .. start[k + 1] in order.
    var start = new Int32Array(ncat + 1), next = new Int32Array(ncat);
    for (k = 0; k < ncat; k++) { start[k + 1] = start[k] + counts[k]; next[k] = start[k]; }
    var order = new Int32Array(n);
    for (i = 0; i < n; i++) { order[next[d.c ? d.c[i] : 0]++] = i; }
    this._start = start;
    this._order = order;
    this._colours = d.cats.map(function (c) { return c[1]; });
    this._vis = new Int32Array(n);
    this._vx = new Float32Array(n);
    this._vy = new Float32Array(n);
    this._nvis = 0;
    this._grid = null;
    this._crs = null;
  },
  getEvents: function () {
    var ev = {viewreset: this._redraw, moveend: this._redraw, resize: this._redraw,
              zoom: this._onZoom};
    if (this._zoomAnimated) { ev.zoomanim = this._onAnimZoom; }
    return ev;
  },
  onAdd: function (map) {
    var c = this._canvas = L.DomUtil.create('canvas', 'ga-points leaflet-zoom-' +
      (this._zoomAnimated ? 'animated' : 'hide'));
    c.style.pointerEvents = 'none';  // polygons underneath keep their tooltips
    this.getPane().appendChild(c);
    // Clicks are taken in the capture phase, before a polygon under the point opens its own
    // popup; pointer moves only set the cursor.
    this._onDomClick = L.Util.bind(this._click, this);
    this._onDomMove = L.Util.bind(this._hover, this);
    this._onDomOut = L.Util.bind(this._setHover, this, false);
    var box = map.getContainer();
    box.addEventListener('click', this._onDomClick, true);
    box.addEventListener('mousemove', this._onDomMove, true);
    box.addEventListener('mouseleave', this._onDomOut, false);
    this._project(map);
    this._redraw();
    var d = this._d;
    L.Util.requestAnimFrame(function () {
      window.requestAnimationFrame(function () {
        window.__geoappDrawn = true;
        window.__geoappDrawnAt = performance.now();
        window.__geoappPoints = window.__geoappPoints || {};
        window.__geoappPoints[d.title] = d.x.length;
      });
    });
  },
  onRemove: function (map) {
    var box = map.getContainer();
    box.removeEventListener('click', this._onDomClick, true);
    box.removeEventListener('mousemove', this._onDomMove, true);
    box.removeEventListener('mouseleave', this._onDomOut, false);
    this._setHover(false);
    L.DomUtil.remove(this._canvas);
    this._canvas = null;
    this._nvis = 0;
    this._grid = null;
  },
  // Pixel coordinates at zoom 0, once per CRS: a redraw only scales and shifts them.
  _project: function (map) {
    if (this._crs === map.options.crs) { return; }
    var n = this._lat.length;
    this._px = new Float64Array(n);
    this._py = new Float64Array(n);
    for (var i = 0; i < n; i++) {
      var p = map.project([this._lat[i], this._lng[i]], 0);
      this._px[i] = p.x;
      this._py[i] = p.y;
    }
    this._crs = map.options.crs;
  },
  _redraw: function () {
    var map = this._map, c = this._canvas;
    if (!map || !c) { return; }
    var size = map.getSize(), pad = size.multiplyBy(this.options.padding).round();
    var w = size.x + 2 * pad.x, h = size.y + 2 * pad.y;
    var topLeft = map.containerPointToLayerPoint([-pad.x, -pad.y]).round();
    L.DomUtil.setPosition(c, topLeft);
    this._topLeft = topLeft;
    this._size = size;
    this._pad = pad;
    this._w = w;
    this._h = h;
    this._center = map.getCenter();
    this._zoom = map.getZoom();
    var dpr = window.devicePixelRatio || 1;
    var cw = Math.round(w * dpr), ch = Math.round(h * dpr);
    if (c.width !== cw || c.height !== ch) {
      c.width = cw;
      c.height = ch;
      c.style.width = w + 'px';
      c.style.height = h + 'px';
    }
    var ctx = c.getContext('2d');
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, cw, ch);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.globalAlpha = 0.9;
    ctx.lineWidth = 1;
    ctx.strokeStyle = '#ffffff';
    var s = map.getZoomScale(this._zoom, 0), origin = map.getPixelOrigin();
    var ox = origin.x + topLeft.x, oy = origin.y + topLeft.y;
    var r = this._d.r, m = r + 1, xmax = w + m, ymax = h + m, tau = 2 * Math.PI;
    var px = this._px, py = this._py, order = this._order, start = this._start;
    var vis = this._vis, vx = this._vx, vy = this._vy, nv = 0, k, j;
    var ncat = this._colours.length, seg = new Int32Array(ncat + 1);
    // Pass 1: the points in view, still grouped by colour.
    for (k = 0; k < ncat; k++) {
      seg[k] = nv;
      for (j = start[k]; j < start[k + 1]; j++) {
        var i = order[j], x = px[i] * s - ox, y = py[i] * s - oy;
        if (x < -m || y < -m || x > xmax || y > ymax) { continue; }
        vis[nv] = i;
        vx[nv] = x;
        vy[nv] = y;
        nv++;
      }
    }
    seg[ncat] = nv;
    // Pass 2: one path and one fill per colour. Software canvases rasterise arcs slowly (a
    // path of 100,000 outlined circles took seconds), so a crowded view draws plain squares:
    // a few pixels apart they read the same, and they rasterise several times faster.
    var dense = nv > this.options.dense;
    for (k = 0; k < ncat; k++) {
      if (seg[k + 1] === seg[k]) { continue; }
      ctx.beginPath();
      for (j = seg[k]; j < seg[k + 1]; j++) {
        if (dense || r < 2) {
          ctx.rect(vx[j] - r, vy[j] - r, 2 * r, 2 * r);
        } else {
          ctx.moveTo(vx[j] + r, vy[j]);
          ctx.arc(vx[j], vy[j], r, 0, tau);
        }
      }
      ctx.fillStyle = this._colours[k];
      ctx.fill();
      if (!dense) { ctx.stroke(); }
    }
    this._nvis = nv;
    this._grid = null;
  },
  _onZoom: function () {
    this._updateTransform(this._map.getCenter(), this._map.getZoom());
  },
  _onAnimZoom: function (e) { this._updateTransform(e.center, e.zoom); },
  // Scale and move the drawn canvas with a zoom until the next redraw (as L.Renderer does).
  _updateTransform: function (center, zoom) {
    if (!this._canvas || !this._size) { return; }
    var map = this._map, scale = map.getZoomScale(zoom, this._zoom);
    var half = this._size.multiplyBy(0.5).add(this._pad);
    var offset = half.multiplyBy(-scale).add(map.project(this._center, zoom))
      .subtract(map._getNewPixelOrigin(center, zoom));
    if (L.Browser.any3d) {
      L.DomUtil.setTransform(this._canvas, offset, scale);
    } else {
      L.DomUtil.setPosition(this._canvas, offset);
    }
  },
  // Grid over the drawn points (canvas pixels), built on the first click or hover after a
  // redraw: cells at least as wide as the hit radius, so a lookup reads 3 x 3 cells.
  _index: function () {
    if (this._grid) { return this._grid; }
    var cell = Math.max(16, 2 * this._radius()), cols = Math.ceil(this._w / cell) + 1;
    var rows = Math.ceil(this._h / cell) + 1, nv = this._nvis;
    var head = new Int32Array(cols * rows + 1), key = new Int32Array(nv);
    var items = new Int32Array(nv), j;
    for (j = 0; j < nv; j++) {
      var gx = Math.min(cols - 1, Math.max(0, Math.floor(this._vx[j] / cell)));
      var gy = Math.min(rows - 1, Math.max(0, Math.floor(this._vy[j] / cell)));
      key[j] = gy * cols + gx;
      head[key[j] + 1]++;
    }
    for (j = 0; j < cols * rows; j++) { head[j + 1] += head[j]; }
    var fill = head.slice(0, cols * rows);
    for (j = 0; j < nv; j++) { items[fill[key[j]]++] = j; }
    this._grid = {cell: cell, cols: cols, rows: rows, head: head, items: items};
    return this._grid;
  },
  _radius: function () { return this._d.r + (L.Browser.mobile ? 8 : 2); },
  // The nearest drawn point within the hit radius of a layer point: {i, d2} or null.
  _hit: function (lp) {
    if (!this._map || !this._canvas || !this._nvis || this._map._animatingZoom) { return null; }
    var g = this._index(), x = lp.x - this._topLeft.x, y = lp.y - this._topLeft.y;
    var R = this._radius(), best = -1, bd = R * R;
    var cx = Math.floor(x / g.cell), cy = Math.floor(y / g.cell);
    for (var gy = Math.max(0, cy - 1); gy <= Math.min(g.rows - 1, cy + 1); gy++) {
      for (var gx = Math.max(0, cx - 1); gx <= Math.min(g.cols - 1, cx + 1); gx++) {
        var cellNo = gy * g.cols + gx;
        for (var t = g.head[cellNo]; t < g.head[cellNo + 1]; t++) {
          var j = g.items[t], dx = this._vx[j] - x, dy = this._vy[j] - y, d2 = dx * dx + dy * dy;
          if (d2 <= bd) { bd = d2; best = j; }
        }
      }
    }
    return best < 0 ? null : {i: this._vis[best], d2: bd};
  },
  // Only events on the map itself: not on controls, popups or markers.
  _eventPoint: function (ev) {
    var map = this._map, t = ev.target;
    if (!map || (t.closest && t.closest('.leaflet-control, .leaflet-popup, .leaflet-marker-icon'))) {
      return null;
    }
    return map.containerPointToLayerPoint(map.mouseEventToContainerPoint(ev));
  },
  _click: function (ev) {
    var map = this._map;
    if (!map || (map.dragging && map.dragging.moved()) || (map.boxZoom && map.boxZoom.moved())) {
      return;
    }
    var lp = this._eventPoint(ev), hit = lp && this._hit(lp);
    if (!hit) { return; }
    ev.stopPropagation();  // the point wins over the polygons under it
    // With several point layers on one map, the nearest point of all of them opens.
    if (ev.__gaBest !== undefined && ev.__gaBest <= hit.d2) { return; }
    ev.__gaBest = hit.d2;
    this.openPopup(hit.i);
  },
  _hover: function (ev) {
    if (!this._map || ev.buttons) { return; }
    var lp = this._eventPoint(ev);
    this._setHover(!!(lp && this._hit(lp)));
  },
  _setHover: function (on) {
    var map = this._map;
    if (!map || on === !!this._hovered) { return; }
    this._hovered = on;
    var box = map.getContainer(), ids = box._gaHover = box._gaHover || {};
    if (on) { ids[L.stamp(this)] = true; } else { delete ids[L.stamp(this)]; }
    box.style.cursor = Object.keys(ids).length ? 'pointer' : '';
  },
  openPopup: function (i) {
    L.popup({maxWidth: 320}).setLatLng(this.latLngAt(i)).setContent(this.geoappPopup(i))
      .openOn(this._map);
    return this;
  },
  latLngAt: function (i) { return L.latLng(this._lat[i], this._lng[i]); },
  indexOf: function (id) { return this._d.id.indexOf(String(id)); },
  pointCount: function () { return this._d.x.length; },
  visibleCount: function () { return this._canvas ? this._nvis : 0; },
  getBounds: function () {
    var b = L.latLngBounds([]);
    for (var i = 0; i < this._lat.length; i++) { b.extend([this._lat[i], this._lng[i]]); }
    return b;
  }
});
var {{ this.get_name() }} = (function () {
  var d = {{ this.data_json }};
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
  var layer = new window.GeoappPoints(d);
  layer.geoappPopup = popupHtml;
  layer.geoappCount = d.x.length;
  return layer;
})();
{% endmacro %}
"""


class FastPoints(Layer):
    """Points as compact arrays drawn by one canvas layer (see the module docstring).

    Build it with :meth:`from_frame`; the constructor takes the already encoded payload.
    """

    _template = Template(_TEMPLATE)

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

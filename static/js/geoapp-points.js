// GeoappPoints: thousands of points (or of short segments) as one Leaflet layer on one canvas.
//
// Built by geoapp.maps.points.FastPoints, which writes the data as parallel arrays: integer
// micro-degrees for lon/lat, a small category code per item with a style table, and popup
// columns as plain values or codes into a lookup table. There is no Leaflet object per point:
// the layer owns one <canvas> in the overlay pane and redraws every visible item in one pass
// (one path per category) on add, pan/zoom end and resize. A click is matched to the nearest
// drawn point through a grid of screen cells and opens a popup built on demand (attributes,
// rule hits, site link); the click is taken before any polygon underneath sees it, so a site
// inside a zone opens the site. With ``x2``/``y2`` in the data the items are segments from
// (x, y) to (x2, y2), drawn but not clickable.
//
// When the layer has drawn it sets window.__geoappDrawn (and __geoappDrawnAt, ms since
// navigation start) so a browser test or bench can tell the map is really on screen;
// pointCount() and visibleCount() say how many items it holds and how many it last drew.
(function () {
  "use strict";
  if (window.GeoappPoints) { return; }

  var DEFAULT_STYLE = {s: "#ffffff", w: 1, fa: 0.9, sa: 0.9, dash: null};

  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (ch) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[ch];
    });
  }

  function value(col, i) { return col.lut ? col.lut[col.v[i]] : col.v[i]; }

  window.GeoappPoints = L.Layer.extend({
    options: {pane: "overlayPane", padding: 0.2, dense: 20000},

    initialize: function (d, options) {
      L.setOptions(this, options);
      this._d = d;
      var n = d.x.length, ncat = d.cats.length, i, k;
      this._lines = !!d.x2;
      this._lat = new Float64Array(n);
      this._lng = new Float64Array(n);
      if (this._lines) {
        this._lat2 = new Float64Array(n);
        this._lng2 = new Float64Array(n);
      }
      var counts = new Int32Array(ncat);
      for (i = 0; i < n; i++) {
        this._lat[i] = d.y[i] / d.s;
        this._lng[i] = d.x[i] / d.s;
        if (this._lines) {
          this._lat2[i] = d.y2[i] / d.s;
          this._lng2[i] = d.x2[i] / d.s;
        }
        counts[d.c ? d.c[i] : 0]++;
      }
      // Item indices grouped by category: start[k] .. start[k + 1] in order.
      var start = new Int32Array(ncat + 1), next = new Int32Array(ncat);
      for (k = 0; k < ncat; k++) { start[k + 1] = start[k] + counts[k]; next[k] = start[k]; }
      var order = new Int32Array(n);
      for (i = 0; i < n; i++) { order[next[d.c ? d.c[i] : 0]++] = i; }
      this._start = start;
      this._order = order;
      // One style per category: fill colour f, stroke s (null: none), stroke width w, fill and
      // stroke opacity fa / sa, radius r, dash pattern.
      var rmax = 0;
      this._styles = d.cats.map(function (c, k) {
        var st = L.extend({}, DEFAULT_STYLE, {f: c[1], r: d.r}, d.st ? d.st[k] : null);
        rmax = Math.max(rmax, st.r);
        return st;
      });
      this._rmax = rmax;
      this._vis = new Int32Array(n);
      this._vx = new Float32Array(n);
      this._vy = new Float32Array(n);
      if (this._lines) {
        this._vx2 = new Float32Array(n);
        this._vy2 = new Float32Array(n);
      }
      this._nvis = 0;
      this._grid = null;
      this._crs = null;
      this._tipAt = -1;
    },

    getEvents: function () {
      var ev = {viewreset: this._redraw, moveend: this._redraw, resize: this._redraw,
                zoom: this._onZoom};
      if (this._zoomAnimated) { ev.zoomanim = this._onAnimZoom; }
      return ev;
    },

    onAdd: function (map) {
      var c = this._canvas = L.DomUtil.create("canvas", "ga-points leaflet-zoom-" +
        (this._zoomAnimated ? "animated" : "hide"));
      c.style.pointerEvents = "none";  // polygons underneath keep their tooltips
      if (this._zIndex !== undefined) { c.style.zIndex = this._zIndex; }
      this.getPane().appendChild(c);
      // Clicks are taken in the capture phase, before a polygon under the point opens its own
      // popup; pointer moves set the cursor (and show the tooltip, if the layer has one).
      var box = map.getContainer();
      if (!this._lines) {
        this._onDomClick = L.Util.bind(this._click, this);
        this._onDomMove = L.Util.bind(this._hover, this);
        this._onDomOut = L.Util.bind(this._out, this);
        box.addEventListener("click", this._onDomClick, true);
        box.addEventListener("mousemove", this._onDomMove, true);
        box.addEventListener("mouseleave", this._onDomOut, false);
      }
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
      if (!this._lines) {
        var box = map.getContainer();
        box.removeEventListener("click", this._onDomClick, true);
        box.removeEventListener("mousemove", this._onDomMove, true);
        box.removeEventListener("mouseleave", this._onDomOut, false);
        this._out();
      }
      L.DomUtil.remove(this._canvas);
      this._canvas = null;
      this._nvis = 0;
      this._grid = null;
    },

    // The LayerControl keeps overlays in their order with this (autoZIndex).
    setZIndex: function (z) {
      this._zIndex = z;
      if (this._canvas) { this._canvas.style.zIndex = z; }
      return this;
    },

    // Pixel coordinates at zoom 0, once per CRS: a redraw only scales and shifts them.
    _project: function (map) {
      if (this._crs === map.options.crs) { return; }
      var n = this._lat.length, i, p;
      this._px = new Float64Array(n);
      this._py = new Float64Array(n);
      for (i = 0; i < n; i++) {
        p = map.project([this._lat[i], this._lng[i]], 0);
        this._px[i] = p.x;
        this._py[i] = p.y;
      }
      if (this._lines) {
        this._px2 = new Float64Array(n);
        this._py2 = new Float64Array(n);
        for (i = 0; i < n; i++) {
          p = map.project([this._lat2[i], this._lng2[i]], 0);
          this._px2[i] = p.x;
          this._py2[i] = p.y;
        }
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
        c.style.width = w + "px";
        c.style.height = h + "px";
      }
      var ctx = c.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, cw, ch);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      var s = map.getZoomScale(this._zoom, 0), origin = map.getPixelOrigin();
      var ox = origin.x + topLeft.x, oy = origin.y + topLeft.y;
      var m = this._rmax + 4, xmax = w + m, ymax = h + m;
      var px = this._px, py = this._py, px2 = this._px2, py2 = this._py2;
      var order = this._order, start = this._start, lines = this._lines;
      var vis = this._vis, vx = this._vx, vy = this._vy, vx2 = this._vx2, vy2 = this._vy2;
      var nv = 0, k, j, ncat = this._styles.length, seg = new Int32Array(ncat + 1);
      // Pass 1: the items in view, still grouped by category.
      for (k = 0; k < ncat; k++) {
        seg[k] = nv;
        for (j = start[k]; j < start[k + 1]; j++) {
          var i = order[j], x = px[i] * s - ox, y = py[i] * s - oy;
          if (lines) {
            var x2 = px2[i] * s - ox, y2 = py2[i] * s - oy;
            if (Math.max(x, x2) < -m || Math.max(y, y2) < -m || Math.min(x, x2) > xmax ||
                Math.min(y, y2) > ymax) { continue; }
            vx2[nv] = x2;
            vy2[nv] = y2;
          } else if (x < -m || y < -m || x > xmax || y > ymax) {
            continue;
          }
          vis[nv] = i;
          vx[nv] = x;
          vy[nv] = y;
          nv++;
        }
      }
      seg[ncat] = nv;
      // Pass 2: one path, one fill and one stroke per category. Software canvases rasterise
      // arcs slowly (a path of 100,000 outlined circles took seconds), so a crowded view draws
      // plain squares: a few pixels apart they read the same, and they rasterise faster.
      var dense = nv > this.options.dense, tau = 2 * Math.PI;
      for (k = 0; k < ncat; k++) {
        if (seg[k + 1] === seg[k]) { continue; }
        var st = this._styles[k], r = st.r;
        ctx.beginPath();
        for (j = seg[k]; j < seg[k + 1]; j++) {
          if (lines) {
            ctx.moveTo(vx[j], vy[j]);
            ctx.lineTo(vx2[j], vy2[j]);
          } else if (dense || r < 2) {
            ctx.rect(vx[j] - r, vy[j] - r, 2 * r, 2 * r);
          } else {
            ctx.moveTo(vx[j] + r, vy[j]);
            ctx.arc(vx[j], vy[j], r, 0, tau);
          }
        }
        if (!lines && st.f) {
          ctx.globalAlpha = st.fa;
          ctx.fillStyle = st.f;
          ctx.fill();
        }
        if (st.s && st.w > 0 && (lines || !dense)) {
          ctx.globalAlpha = st.sa;
          ctx.lineWidth = st.w;
          ctx.strokeStyle = st.s;
          ctx.setLineDash(st.dash || []);
          ctx.stroke();
        }
      }
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
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

    _radius: function () { return this._rmax + (L.Browser.mobile ? 8 : 2); },

    // The nearest drawn point within the hit radius of a layer point: {i, d2} or null.
    _hit: function (lp) {
      if (this._lines || !this._map || !this._canvas || !this._nvis ||
          this._map._animatingZoom) { return null; }
      var g = this._index(), x = lp.x - this._topLeft.x, y = lp.y - this._topLeft.y;
      var R = this._radius(), best = -1, bd = R * R;
      var cx = Math.floor(x / g.cell), cy = Math.floor(y / g.cell);
      for (var gy = Math.max(0, cy - 1); gy <= Math.min(g.rows - 1, cy + 1); gy++) {
        for (var gx = Math.max(0, cx - 1); gx <= Math.min(g.cols - 1, cx + 1); gx++) {
          var cellNo = gy * g.cols + gx;
          for (var t = g.head[cellNo]; t < g.head[cellNo + 1]; t++) {
            var j = g.items[t], dx = this._vx[j] - x, dy = this._vy[j] - y;
            var d2 = dx * dx + dy * dy;
            if (d2 <= bd) { bd = d2; best = j; }
          }
        }
      }
      return best < 0 ? null : {i: this._vis[best], d2: bd};
    },

    // Only events on the map itself: not on controls, popups or markers.
    _eventPoint: function (ev) {
      var map = this._map, t = ev.target;
      if (!map || (t.closest &&
                   t.closest(".leaflet-control, .leaflet-popup, .leaflet-marker-icon"))) {
        return null;
      }
      return map.containerPointToLayerPoint(map.mouseEventToContainerPoint(ev));
    },

    _click: function (ev) {
      var map = this._map;
      if (!map || (map.dragging && map.dragging.moved()) ||
          (map.boxZoom && map.boxZoom.moved())) {
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
      var lp = this._eventPoint(ev), hit = lp && this._hit(lp);
      this._setHover(!!hit);
      this._showTip(hit ? hit.i : -1);
    },

    _out: function () {
      this._setHover(false);
      this._showTip(-1);
    },

    _setHover: function (on) {
      var map = this._map;
      if (!map || on === !!this._hovered) { return; }
      this._hovered = on;
      var box = map.getContainer(), ids = box._gaHover = box._gaHover || {};
      if (on) { ids[L.stamp(this)] = true; } else { delete ids[L.stamp(this)]; }
      box.style.cursor = Object.keys(ids).length ? "pointer" : "";
    },

    // A tooltip with the point's name (and, for d.tip > 1, the rules it breaks) while the
    // pointer is over it; only for layers whose data asks for one.
    _showTip: function (i) {
      if (!this._d.tip || !this._map || i === this._tipAt) { return; }
      this._tipAt = i;
      if (i < 0) {
        if (this._tip) { this._map.closeTooltip(this._tip); }
        return;
      }
      this._tip = this._tip || L.tooltip({direction: "top", offset: [0, -this._rmax]});
      this._map.openTooltip(this._tip.setContent(this.tooltipContent(i)), this.latLngAt(i));
    },

    // The rules a point breaks, each once, in the order of its hits.
    ruleTitles: function (i) {
      var d = this._d, seen = [];
      ((d.hits && d.hits[d.id[i]]) || []).forEach(function (x) {
        var title = d.rules[x[0]][0];
        if (seen.indexOf(title) < 0) { seen.push(title); }
      });
      return seen;
    },

    // Names are user data: the tooltip is built with textContent, never as HTML.
    tooltipContent: function (i) {
      var d = this._d, box = document.createElement("div");
      box.className = "ga-tip";
      box.textContent = String(this.nameAt(i));
      var titles = d.tip > 1 ? this.ruleTitles(i) : [];
      if (titles.length) {
        var warn = document.createElement("div");
        warn.className = "ga-tip-hits";
        warn.textContent = d.labels.hits + ": " + titles.join(d.labels.sep);
        box.appendChild(warn);
      }
      return box;
    },

    // The popup of point i as HTML; every value is escaped.
    geoappPopup: function (i) {
      var d = this._d;
      var h = '<div class="ga-popup' + (d.cls ? " " + esc(d.cls) : "") + '"><strong>' +
        esc(this.nameAt(i)) + "</strong><table>";
      if (d.labels.id) {
        h += "<tr><th>" + esc(d.labels.id) + "</th><td>" + esc(d.id[i]) + "</td></tr>";
      }
      if (d.cats.length > 1 && d.labels.cat) {
        h += "<tr><th>" + esc(d.labels.cat) + "</th><td>" + esc(d.cats[d.c[i]][0]) +
          "</td></tr>";
      }
      d.cols.forEach(function (col) {
        var v = value(col, i);
        if (v !== "" && v !== null) {
          h += "<tr><th>" + esc(col.k) + "</th><td>" + esc(v) + "</td></tr>";
        }
      });
      h += "</table>";
      if (d.hits) {
        var hs = d.hits[d.id[i]] || [];
        h += '<div class="ga-popup-hits' + (hs.length ? " ga-has-hits" : "") + '"><b>' +
          esc(d.labels.hits) + " (" + hs.length + ")</b>";
        if (hs.length) {
          h += "<ul>" + hs.map(function (x) {
            var rule = d.rules[x[0]];
            return '<li class="sev-' + esc(rule[1]) + '">' + esc(rule[0]) +
              (x[2] ? " · " + esc(x[2]) : "") +
              (x[1] === null ? "" : " · " + esc(x[1]) + " m") + "</li>";
          }).join("") + "</ul>";
        } else {
          h += "<div>" + esc(d.labels.nohits) + "</div>";
        }
        h += "</div>";
      }
      if (d.link) {
        h += '<a class="ga-popup-link" href="' + esc(d.link.replace("{id}",
          encodeURIComponent(d.id[i]))) + '">' + esc(d.labels.link) + "</a>";
      }
      return h + "</div>";
    },

    openPopup: function (i) {
      L.popup({maxWidth: 320}).setLatLng(this.latLngAt(i)).setContent(this.geoappPopup(i))
        .openOn(this._map);
      return this;
    },

    layerTitle: function () { return this._d.title; },
    idAt: function (i) { return this._d.id[i]; },
    nameAt: function (i) { return this._d.name ? this._d.name[i] : this._d.id[i]; },
    latLngAt: function (i) { return L.latLng(this._lat[i], this._lng[i]); },
    indexOf: function (id) { return this._d.id.indexOf(String(id)); },
    pointCount: function () { return this._d.x.length; },
    visibleCount: function () { return this._canvas ? this._nvis : 0; },
    // The category code of item i (the order of the categories given in Python).
    categoryOf: function (i) { return this._d.c ? this._d.c[i] : 0; },
    styleOf: function (i) { return this._styles[this.categoryOf(i)]; },

    getBounds: function () {
      var b = L.latLngBounds([]);
      for (var i = 0; i < this._lat.length; i++) {
        b.extend([this._lat[i], this._lng[i]]);
        if (this._lines) { b.extend([this._lat2[i], this._lng2[i]]); }
      }
      return b;
    }
  });
})();

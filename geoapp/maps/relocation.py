"""The relocation map: enterprises by classification and stage, old site -> new site.

Every layer is ONE GeoJSON layer on the map's canvas renderer, and styles and popups are
computed in the browser from each feature's few short properties (no per-feature style table,
no Marker per site), so ten thousand enterprises stay a small, fast page. Popups and tooltips
are built with ``textContent``: enterprise names are user-edited data and never become HTML.

A relocating enterprise whose new site breaks a rule (the stored hits with point ``new_site``)
gets a warning: its new site is drawn as a thick dark-red ring, the old->new line as a solid
red line, and the new site's popup and tooltip name the rules broken there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import folium
import numpy as np
import pandas as pd
from folium.utilities import JsCode

from geoapp.domain.vocab import Classification, Stage
from geoapp.maps.base import base_map
from geoapp.maps.layers import CLASSIFICATION_COLOURS
from geoapp.maps.legend import add_legend
from geoapp.maps.safe import control_name, script_json

#: Marker outline per progress stage: (colour, weight, dash, fill opacity).
STAGE_OUTLINES: dict[str, tuple[str, float, str | None, float]] = {
    Stage.NOT_STARTED: ("#ffffff", 1.0, None, 0.45),
    Stage.STARTED: ("#ffb000", 3.0, None, 0.9),
    Stage.COMPLETED: ("#33cc33", 3.0, None, 0.9),
    Stage.ACCEPTED: ("#00c8e0", 3.0, None, 0.9),
}
SITE_RADIUS = 7
NEW_SITE_RADIUS = 5
#: A new site that breaks a rule: ring colour, ring weight, radius; and its old->new line.
WARN_RING = ("#a50f15", 4.0, 8)
WARN_LINE = ("#a50f15", 3.0)

_STYLE_JS = """
function(feature, layer) {
  var P = feature.properties, CLS = %(cls)s, STAGES = %(stages)s, T = %(labels)s;
  var WARN = %(warn)s, WARN_LINE = %(warn_line)s;
  var fill = CLS[P.c] || "#1f77b4";
  if (P.k === "site") {
    var st = STAGES[P.s] || STAGES["not_started"];
    layer.setStyle({color: st[0], weight: st[1], dashArray: st[2], fillColor: fill,
                    fillOpacity: st[3], opacity: 1, radius: %(r)s});
  } else if (P.k === "new" && P.w) {
    layer.setStyle({color: WARN[0], weight: WARN[1], fillColor: "#ffffff", fillOpacity: 1,
                    opacity: 1, radius: WARN[2]});
  } else if (P.k === "new") {
    layer.setStyle({color: fill, weight: 3, fillColor: "#ffffff", fillOpacity: 1,
                    opacity: 1, radius: %(rn)s});
  } else if (P.w) {
    layer.setStyle({color: WARN_LINE[0], weight: WARN_LINE[1], opacity: 0.95, dashArray: null});
    return;
  } else {
    layer.setStyle({color: fill, weight: 1.5, opacity: 0.8, dashArray: "6 4"});
    return;
  }
  function rules(list) {
    var seen = [];
    (list || []).forEach(function (x) { if (seen.indexOf(x[0]) < 0) seen.push(x[0]); });
    return seen;
  }
  layer.bindTooltip(function () {
    var tip = document.createElement("div");
    tip.textContent = String(P.n || "");
    if (P.k === "new" && P.w) {
      var warn = document.createElement("div");
      warn.className = "rl-tip-warn";
      warn.textContent = T.new_site_hits + ": " + rules(P.h).join(T.sep);
      tip.appendChild(warn);
    }
    return tip;
  }, {sticky: false});
  layer.bindPopup(function () {
    var box = document.createElement("div");
    box.className = "rl-popup";
    var h = document.createElement("strong");
    h.textContent = P.n || "";
    box.appendChild(h);
    var t = document.createElement("table");
    function row(k, v) {
      if (v === null || v === undefined || v === "") return;
      var tr = t.insertRow(), th = document.createElement("th");
      th.textContent = k; tr.appendChild(th); tr.insertCell().textContent = String(v);
    }
    if (P.k === "new") row(T.moved_from, P.from);
    row(T.district, P.d); row(T.industry, P.i); row(T.classification, T.cls[P.c] || P.c);
    row(T.stage, T.stage_names[P.s] || P.s);
    box.appendChild(t);
    if (P.k === "site" || P.k === "new") {
      var hh = document.createElement("div");
      hh.className = P.k === "new" && P.w ? "rl-popup-hits rl-popup-warn" : "rl-popup-hits";
      hh.textContent = (P.k === "new" ? T.new_site_hits : T.hits) +
        " (" + (P.h ? P.h.length : 0) + ")";
      box.appendChild(hh);
      if (P.h && P.h.length) {
        var ul = document.createElement("ul");
        P.h.forEach(function (x) {
          var li = document.createElement("li");
          li.textContent = x[0] + (x[1] ? " · " + x[1] : "") +
            (x[2] === null ? "" : " · " + x[2] + " m");
          ul.appendChild(li);
        });
        box.appendChild(ul);
      } else {
        var none = document.createElement("div");
        none.textContent = P.k === "new" ? T.no_new_site_hits : T.no_hits;
        box.appendChild(none);
      }
    }
    var a = document.createElement("a");
    a.href = T.site_url + encodeURIComponent(P.id);
    a.textContent = T.site_page;
    box.appendChild(a);
    return box;
  }, {maxWidth: 300});
}
"""


def _round(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]


def _coords(lon: np.ndarray, lat: np.ndarray, tiles: str) -> tuple[np.ndarray, np.ndarray]:
    """Amap tiles are GCJ-02: shift the WGS84 points so they line up with the basemap."""
    if tiles != "amap" or len(lon) == 0:
        return lon, lat
    from geoapp.spatial.crs import wgs84_to_gcj02

    glon, glat = wgs84_to_gcj02(lon, lat)
    return np.asarray(glon, dtype=float), np.asarray(glat, dtype=float)


def _text(v: Any) -> str:
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)


def site_features(sites: pd.DataFrame, hits: Mapping[str, Sequence[Mapping[str, Any]]],
                  lang: str = "zh", tiles: str = "osm",
                  new_site_hits: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                  ) -> dict[str, list[dict]]:
    """Three FeatureCollections' features: current sites, new sites, old->new lines.

    ``h`` holds a point's hits as [title, feature, distance]; a new site with hits and its
    line carry ``w: 1`` (the warning style)."""
    new_site_hits = new_site_hits or {}
    lon, lat = _coords(sites["lon"].to_numpy(float), sites["lat"].to_numpy(float), tiles)
    nlon_all = pd.to_numeric(sites["new_lon"], errors="coerce").to_numpy(float)
    nlat_all = pd.to_numeric(sites["new_lat"], errors="coerce").to_numpy(float)
    moved = ~(np.isnan(nlon_all) | np.isnan(nlat_all))
    nlon, nlat = np.full(len(sites), np.nan), np.full(len(sites), np.nan)
    if moved.any():
        nlon[moved], nlat[moved] = _coords(nlon_all[moved], nlat_all[moved], tiles)
    title_key = "title_en" if lang == "en" else "title_zh"
    out: dict[str, list[dict]] = {"sites": [], "new": [], "lines": []}
    x, y, nx, ny = _round(lon), _round(lat), _round(nlon), _round(nlat)
    for i, r in enumerate(sites[["id", "name", "district", "industry", "classification",
                                 "stage", "new_site_name"]].itertuples(index=False)):
        base = {"id": r.id, "c": r.classification, "s": r.stage}
        h = [[x_[title_key], x_["feature"], x_["distance_m"]] for x_ in hits.get(r.id, [])]
        nh = [[x_[title_key], x_["feature"], x_["distance_m"]]
              for x_ in new_site_hits.get(r.id, [])]
        out["sites"].append({"type": "Feature", "geometry": {"type": "Point",
                                                             "coordinates": [x[i], y[i]]},
                             "properties": {**base, "k": "site", "n": _text(r.name),
                                            "d": _text(r.district), "i": _text(r.industry),
                                            "h": h}})
        if moved[i]:
            out["new"].append({"type": "Feature", "geometry": {"type": "Point",
                                                               "coordinates": [nx[i], ny[i]]},
                               "properties": {**base, "k": "new",
                                              "n": _text(r.new_site_name) or _text(r.name),
                                              "from": _text(r.name), "d": "", "i": _text(r.industry),
                                              "h": nh, "w": 1 if nh else 0}})
            out["lines"].append({"type": "Feature", "geometry": {
                "type": "LineString", "coordinates": [[x[i], y[i]], [nx[i], ny[i]]]},
                "properties": {"c": r.classification, "k": "line", "w": 1 if nh else 0}})
    return out


def _bounds(sites: pd.DataFrame) -> list[list[float]] | None:
    lon = pd.concat([sites["lon"], pd.to_numeric(sites["new_lon"], errors="coerce")]).dropna()
    lat = pd.concat([sites["lat"], pd.to_numeric(sites["new_lat"], errors="coerce")]).dropna()
    if lon.empty:
        return None
    return [[float(lat.min()), float(lon.min())], [float(lat.max()), float(lon.max())]]


def relocation_map(sites: pd.DataFrame, hits: Mapping[str, Sequence[Mapping[str, Any]]], *,
                   new_site_hits: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                   center: tuple[float, float], zoom: int,
                   city_bounds: tuple[float, float, float, float] | None,
                   labels: Mapping[str, str], lang: str = "zh", tiles: str = "osm",
                   tianditu_key: str = "", site_url: str = "/sites/") -> folium.Map:
    """Build the map. ``center`` is (lat, lon); the view fits the filtered sites (old and new),
    or the city when nothing matches. ``labels`` holds the translated UI words; ``hits`` and
    ``new_site_hits`` are the rule hits at the current and at the new site, by site id."""
    m = base_map(center, zoom, tiles, tianditu_key)
    fit = _bounds(sites)
    if fit is not None:
        m.fit_bounds(fit, max_zoom=15, padding=(20, 20))
    elif city_bounds is not None:
        b = city_bounds
        m.fit_bounds([[b[1], b[0]], [b[3], b[2]]])
    feats = site_features(sites, hits, lang, tiles, new_site_hits)
    name_of = (lambda e: e.en) if lang == "en" else (lambda e: e.zh)
    words = {**labels, "site_url": labels.get("site_url", site_url),
             "sep": "; " if lang == "en" else "、",
             "cls": {c.value: name_of(c) for c in Classification},
             "stage_names": {s.value: name_of(s) for s in Stage}}
    js = JsCode(_STYLE_JS % {
        "cls": script_json({str(k): v for k, v in CLASSIFICATION_COLOURS.items()}),
        "stages": script_json({str(k): list(v) for k, v in STAGE_OUTLINES.items()}),
        "labels": script_json(words), "r": SITE_RADIUS,
        "warn": script_json(list(WARN_RING)), "warn_line": script_json(list(WARN_LINE)),
        "rn": NEW_SITE_RADIUS})
    # Lines first so the markers sit on top of them.
    for key, title, marker in (
            ("lines", labels["lines"], None),
            ("new", labels["new_sites"], folium.CircleMarker(radius=NEW_SITE_RADIUS)),
            ("sites", labels["sites"], folium.CircleMarker(radius=SITE_RADIUS))):
        fg = folium.FeatureGroup(name=control_name(f"{title} ({len(feats[key])})"), show=True)
        if feats[key]:
            folium.GeoJson({"type": "FeatureCollection", "features": feats[key]}, name=title,
                           marker=marker, on_each_feature=js).add_to(fg)
        fg.add_to(m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    add_legend(m, labels["legend"], _legend(labels, name_of))
    return m


def _legend(labels: Mapping[str, str], name_of) -> list[tuple[str, str, str]]:
    entries = [("point", CLASSIFICATION_COLOURS[c], name_of(c)) for c in Classification]
    entries += [("outline", STAGE_OUTLINES[s][0] if s != Stage.NOT_STARTED else "#bbbbbb",
                 f"{labels['outline']}: {name_of(s)}") for s in Stage]
    entries += [("outline", "#d62728", labels["new_site_ring"]),
                ("line", "#d62728", labels["lines"]),
                ("outline", WARN_RING[0], labels.get("new_site_warn", "新址违反规则")),
                ("line", WARN_LINE[0], labels.get("line_warn", "搬迁路线（新址违反规则）"))]
    return entries

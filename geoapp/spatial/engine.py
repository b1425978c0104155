"""The rule engine: measures distances from sites to the city's layers, lets the rules decide.

Built once per process (layers projected once, one index per layer, see ``index.py``), then:

* ``check_point`` — one site, the inspector's fast path: no GeoDataFrame, no per-layer tree
  query; one cell lookup and one numpy pass over the cell's candidate segments of all layers.
* ``flag`` — many sites at once, vectorised over sites (loops only over rules and layers).
* ``exclusion_zones`` — buffered, dissolved zones for maps and exports (never for verdicts:
  a buffer polygon is inscribed in the true zone and misses sites right at its edge).

Verdicts use *measured* distances. Distances are measured in the metric CRS and then the
distance to the nearest point is recomputed geodesically, so figures agree with
``pyproj.Geod`` on the city's ellipsoid everywhere in the city, not only near the central
meridian of the projection.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from geoapp.domain.results import CheckResult, Nearest, round_distance
from geoapp.domain.rules import RuleSet, RuleSpec, applies, evaluate, is_hit
from geoapp.spatial.batch import flag_sites, search_radius
from geoapp.spatial.ground import GroundScale
from geoapp.spatial.index import (
    INSIDE_TOLERANCE_M,
    SEARCH_SLACK,
    CellGeometry,
    Grid,
    LayerIndex,
    Measure,
    expand,
    make_grid,
    near_segments,
    project_cells,
)
from geoapp.spatial.zones import exclusion_zones

log = logging.getLogger(__name__)

CELL_M = 500.0


def _derived_layer(sites: gpd.GeoDataFrame | None, rule: RuleSpec) -> gpd.GeoDataFrame | None:
    """The site-register layer a rule's ``source`` names, e.g. banned workshops."""
    if sites is None or rule.source is None:
        return None
    keep = sites.get("site_type", pd.Series(index=sites.index, dtype=object)).astype(str) \
        == rule.source.sites
    for cond in rule.source.where:
        col = sites.get(cond.attr)
        keep &= col.map(cond.matches).astype(bool) if col is not None else False
    return sites.loc[keep]


class RuleEngine:
    """Layers and rules, projected and indexed once; then cheap checks (see module doc)."""

    def __init__(self) -> None:  # use RuleEngine.build
        self.rules: RuleSet
        self.metric_crs: str
        self.layer_names: list[str] = []

    # -- construction -----------------------------------------------------------------
    @classmethod
    def build(cls, layers: Mapping[str, gpd.GeoDataFrame], rules: RuleSet, metric_crs: str,
              sites: gpd.GeoDataFrame | None = None, cell_m: float = CELL_M,
              extent: tuple[float, float, float, float] | None = None) -> RuleEngine:
        """Project every layer once, cut and index it; ``layers`` are in lon/lat (EPSG:4326).

        ``extent`` (lon/lat bounds, e.g. the city's outline) is where sites are expected: the
        cell grid covers it as well as the layers, since a site outside the grid falls back
        to a much slower per-point tree search.
        """
        self = cls()
        self.rules, self.metric_crs = rules, metric_crs
        frames = self._collect_layers(layers, rules, sites)
        geographic = next((f.crs for f in frames.values() if f.crs is not None), None) \
            or CRS(metric_crs).geodetic_crs
        self.geographic_crs = CRS(geographic)
        self._fwd = Transformer.from_crs(self.geographic_crs, metric_crs, always_xy=True)
        self._inv = Transformer.from_crs(metric_crs, self.geographic_crs, always_xy=True)
        self._geod = CRS(metric_crs).get_geod()
        self.layer_names = list(frames)
        self.projected = {n: (f.to_crs(metric_crs) if len(f) else f.set_crs(metric_crs,
                              allow_override=True)).geometry.values for n, f in frames.items()}
        self._features = {n: self._feature_table(f, rules, n) for n, f in frames.items()}
        self.grid = self._make_grid(frames, rules, cell_m, extent)
        g = self.grid
        self._scale = GroundScale(metric_crs, (g.lon0, g.lat0, g.lon0 + g.nx * g.dlon,
                                               g.lat0 + g.ny * g.dlat), self._fwd.transform)
        cells = project_cells(self.grid, self._fwd.transform)
        self.index = {n: LayerIndex(n, np.asarray(self.projected[n], dtype=object), cells)
                      for n in self.layer_names}
        self._layer_radius = {}
        for rule in rules:
            radius = max(self._layer_radius.get(rule.layer, 0.0), search_radius(rule))
            self._layer_radius[rule.layer] = radius
        for layer, radius in self._layer_radius.items():
            self.index[layer].add_radius(radius, cells)
        self._build_point_table(cells)
        self._layer_pos = {n: i for i, n in enumerate(self.layer_names)}
        self._id_lists = [(n, self._features[n]["id"].tolist(), self._features[n]["name"].tolist())
                          for n in self.layer_names]
        self._applies_cache: dict[tuple, list[RuleSpec]] = {}
        self._rule_severity = {r.id: np.array([r.severity_for(f) for f in
                                               self._feature_dicts(r.layer)], dtype=object)
                               for r in rules}
        log.info("rule engine built: %d layers, %d rules, grid %dx%d in %s",
                 len(self.layer_names), len(rules), self.grid.nx, self.grid.ny, metric_crs)
        return self

    @staticmethod
    def _collect_layers(layers, rules, sites) -> dict[str, gpd.GeoDataFrame]:
        frames = {n: f for n, f in layers.items()}
        for rule in rules:
            if rule.source is not None and rule.layer not in frames:
                derived = _derived_layer(sites, rule)
                if derived is None:
                    log.warning("rule %s: no sites given for %s; rule never fires",
                                rule.id, rule.layer)
                frames[rule.layer] = derived
            if frames.get(rule.layer) is None:
                if rule.source is None:
                    log.warning("rule %s: layer %s missing; rule never fires", rule.id, rule.layer)
                frames[rule.layer] = gpd.GeoDataFrame({"id": [], "name": []}, geometry=[])
            elif len(frames[rule.layer]) == 0:
                log.warning("rule %s: layer %s is empty; rule never fires", rule.id, rule.layer)
        return frames

    @staticmethod
    def _feature_table(frame: gpd.GeoDataFrame, rules: RuleSet, name: str) -> dict[str, np.ndarray]:
        def col(c: str) -> np.ndarray:
            if c not in frame:
                return np.full(len(frame), None, dtype=object)
            v = frame[c].to_numpy(dtype=object)
            return np.array([None if pd.isna(x) else (x if c not in ("id", "name") else str(x))
                             for x in v], dtype=object)
        wanted = {"id", "name"} | {r.severity_attr for r in rules
                                   if r.layer == name and r.severity_attr}
        return {c: col(c) for c in wanted}

    def _feature_dicts(self, layer: str) -> list[dict[str, Any]]:
        table = self._features[layer]
        n = len(next(iter(table.values())))
        return [{k: v[i] for k, v in table.items()} for i in range(n)]

    def _make_grid(self, frames, rules, cell_m, extent=None) -> Grid:
        bounds = [f.total_bounds for f in frames.values() if len(f) and not f.is_empty.all()]
        if extent is not None and np.all(np.isfinite(extent)):
            bounds.append(np.asarray(extent, dtype=float))
        b = np.array(bounds) if bounds else np.array([[0.0, 0.0, 1e-3, 1e-3]])
        total = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        reach = max([r.distance_m or 0.0 for r in rules] + [0.0])
        return make_grid(total, margin_m=reach * SEARCH_SLACK + 2 * cell_m, cell_m=cell_m)

    def _build_point_table(self, cells: CellGeometry) -> None:
        """Per cell, everything one point needs across all layers (see ``_measure_point``).

        For each cell and layer, the segments that can be nearest to some point of the cell:
        with c the cell's centre and r its radius, every point p of the cell has a segment
        within min_s d(c, s) + r, and d(p, s) >= d(c, s) - r, so a segment farther than
        min_s d(c, s) + 2r from c cannot be nearest. The survivors of all layers go into one
        (layers, width) index matrix per cell, each layer's row padded with a far-away dummy,
        so one gather, a dozen array operations and one ``argmin(axis=1)`` give every
        layer's nearest segment (the first in index order on ties, as in the batch path).
        Cells a polygon covers whole answer "inside" from a list, with no geometry at all.
        """
        idx = [self.index[n] for n in self.layer_names]
        nl, ncell = len(idx), self.grid.size
        seg_off = np.cumsum([0] + [len(i.x0) for i in idx]).astype(np.int64)
        dummy = int(seg_off[-1])
        table = np.zeros((dummy + 1, 5))
        table[dummy, :2] = 1e12
        seg_feat = np.full(dummy + 1, -1, dtype=np.int64)
        parts = []
        for k, (i, o) in enumerate(zip(idx, seg_off[:-1], strict=True)):
            n = len(i.x0)
            if n:
                table[o:o + n] = np.stack([i.x0, i.y0, i.dx, i.dy, i.inv_ll], 1)
                seg_feat[o:o + n] = i.seg_feat
            if len(i.chunk_idx):
                cell, seg = near_segments(i, cells)
                parts.append((cell, np.full(len(cell), k, dtype=np.int64), seg + o))
        self._pt_seg, self._pt_feat = np.ascontiguousarray(table.T), seg_feat
        cat = np.concatenate
        cellv, layerv, segv = (cat([p[j] for p in parts] + [np.empty(0, np.int64)])
                               for j in range(3))
        order = np.argsort(cellv, kind="stable")  # -> (cell, layer, segment) order
        cellv, layerv, segv = cellv[order], layerv[order], segv[order]
        key = cellv * max(nl, 1) + layerv
        g_start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else key
        g_len = np.diff(np.r_[g_start, len(key)])
        g_cell, g_layer = cellv[g_start], layerv[g_start]
        width = np.zeros(ncell, dtype=np.int64)
        np.maximum.at(width, g_cell, g_len)
        nrows = np.bincount(g_cell, minlength=ncell)
        cell_off = np.r_[0, np.cumsum(nrows * width)]
        first_group = np.r_[0, np.cumsum(nrows)]
        g_rank = np.arange(len(g_start)) - first_group[g_cell]
        group = np.repeat(np.arange(len(g_start)), g_len)
        pos = (cell_off[cellv] + g_rank[group] * width[cellv]
               + np.arange(len(key)) - g_start[group])
        flat = np.full(int(cell_off[-1]), dummy, dtype=np.int32)
        flat[pos] = segv
        polys = [i.polys for i in idx]
        cover = np.stack([i.cover for i in idx], 1) if idx else np.full((ncell, 0), -1)
        poly_lists = [expand(i.poly_ptr, i.poly_idx, np.arange(ncell)) for i in idx]
        cell_polys: dict[int, list[tuple[int, int]]] = {}
        for k, (owner, f) in enumerate(poly_lists):
            for c, g in zip(owner.tolist(), f.tolist(), strict=True):
                cell_polys.setdefault(c, []).append((k, g))
        entries = []
        no_cover = [-1] * nl
        for c in range(ncell):
            row = cover[c].tolist()
            rows, w = int(nrows[c]), int(width[c])
            seg = None
            if rows:
                o = int(cell_off[c])
                seg = (flat[o:o + rows * w].reshape(rows, w),
                       g_layer[first_group[c]:first_group[c + 1]].tolist(),
                       np.arange(rows) * w)
            pl = cell_polys.get(c)
            if pl:
                pl = (np.array([polys[k][g] for k, g in pl], dtype=object),
                      [k for k, _ in pl], [g for _, g in pl])
            entries.append((row if max(row, default=-1) >= 0 else no_cover, pl, seg))
        self._pt_cells = entries
        log.debug("point table: %d cell-segment entries (%d padded) over %d cells",
                  len(segv), len(flat), ncell)

    # -- distances --------------------------------------------------------------------
    def _ground(self, lon, lat, x, y, m: Measure) -> np.ndarray:
        """Ground distance to each measured nearest point (0 inside, inf where none)."""
        out = np.where(m.inside, 0.0, np.inf)
        todo = np.flatnonzero((m.feat >= 0) & ~m.inside)
        if len(todo) == 0:
            return out
        if self._scale.ok:
            out[todo] = self._scale.ground(np.asarray(x)[todo], np.asarray(y)[todo],
                                           m.nx[todo], m.ny[todo], m.dist[todo])
        else:
            nlon, nlat = self._inv.transform(m.nx[todo], m.ny[todo])
            out[todo] = self._geod.inv(np.asarray(lon)[todo], np.asarray(lat)[todo],
                                       nlon, nlat)[2]
        return out

    def _measure_point(self, lon: float, lat: float) -> tuple[list, list, list]:
        """All layers at once for one point; the same arithmetic as ``LayerIndex.measure``.

        Returns per layer: feature index (-1 none), ground distance, inside flag. Plain
        lists: for a dozen layers Python beats numpy's per-call overhead.
        """
        nl = len(self.layer_names)
        x, y = self._fwd.transform(lon, lat)
        c = self.grid.cell(lon, lat)
        if c < 0:
            return self._measure_off_grid(lon, lat, x, y)
        cover, polys, segs = self._pt_cells[c]
        feat = list(cover)
        inside = [f >= 0 for f in feat]
        dist = [0.0 if i else math.inf for i in inside]
        near: list[tuple[float, float] | None] = [None] * nl
        if polys is not None:
            geoms, layers, feats = polys
            for j in np.flatnonzero(shapely.intersects_xy(geoms, x, y)).tolist():
                layer = layers[j]
                if not inside[layer]:
                    feat[layer], dist[layer], inside[layer] = feats[j], 0.0, True
        if segs is not None:
            sids, layers, base = segs
            x0, y0, dx, dy, inv_ll = self._pt_seg[:, sids]
            ex, ey = x - x0, y - y0
            t = (ex * dx + ey * dy) * inv_ll
            np.minimum(np.maximum(t, 0.0, out=t), 1.0, out=t)
            rx, ry = ex - t * dx, ey - t * dy
            best = (rx * rx + ry * ry).argmin(1) + base
            bx, by = np.take(rx, best).tolist(), np.take(ry, best).tolist()
            bf = self._pt_feat[np.take(sids, best)].tolist()
            hypot = math.hypot
            for j, layer in enumerate(layers):
                if not inside[layer]:
                    d = hypot(bx[j], by[j])
                    feat[layer], dist[layer] = bf[j], d
                    if d < INSIDE_TOLERANCE_M:
                        inside[layer] = True
                    else:
                        near[layer] = (x - bx[j], y - by[j])
        ground = [0.0 if i else math.inf for i in inside]
        todo = [i for i in range(nl) if near[i] is not None]
        if todo and self._scale.ok:
            scale = self._scale.ground_scalar
            for i in todo:
                ground[i] = scale(x, y, near[i][0], near[i][1], dist[i])
        elif todo:
            k = len(todo)
            m = Measure(np.zeros(k, dtype=np.int64), np.array([dist[i] for i in todo]),
                        np.zeros(k, dtype=bool), np.array([near[i][0] for i in todo]),
                        np.array([near[i][1] for i in todo]))
            g = self._ground(np.full(k, lon), np.full(k, lat), np.full(k, x), np.full(k, y), m)
            for i, v in zip(todo, g.tolist(), strict=True):
                ground[i] = v
        return feat, ground, inside

    def _measure_off_grid(self, lon: float, lat: float, x: float, y: float):
        """A point outside the grid (far from every layer): each layer's STRtree."""
        nl = len(self.layer_names)
        xs, ys = np.array([x]), np.array([y])
        per = [self.index[n].measure(xs, ys, np.array([-1])) for n in self.layer_names]
        m = Measure(*(np.concatenate([getattr(p, f) for p in per] + [np.empty(0)])
                      for f in ("feat", "dist", "inside", "nx", "ny")))
        m.feat, m.inside = m.feat.astype(np.int64), m.inside.astype(bool)
        ground = self._ground(np.full(nl, lon), np.full(nl, lat), np.full(nl, x),
                              np.full(nl, y), m)
        return m.feat.tolist(), ground.tolist(), m.inside.tolist()

    def _applicable(self, site: dict[str, Any], point: str) -> list[RuleSpec]:
        """Rules that concern this kind of site, memoised: inspectors check few kinds."""
        try:
            key = (point, tuple(sorted(site.items())))
            hash(key)
        except TypeError:
            return [r for r in self.rules if applies(r, site, point)]
        found = self._applies_cache.get(key)
        if found is None:
            if len(self._applies_cache) > 4096:
                self._applies_cache.clear()
            found = [r for r in self.rules if applies(r, site, point)]
            self._applies_cache[key] = found
        return found

    # -- public API -------------------------------------------------------------------
    def check_point(self, lon: float, lat: float, site_type: str | None = None,
                    industry: str | None = None, attrs: Mapping[str, Any] | None = None,
                    point: str = "site") -> CheckResult:
        """Check one WGS84 point against every rule that applies to the described site.

        A rule whose filter reads an attribute the caller did not give does not apply (an
        unknown site is not assumed to be a chemical plant); ``nearest`` still lists every
        layer, so the inspector sees the distances anyway.
        """
        site = dict(attrs or {})
        if site_type is not None:
            site["site_type"] = site_type
        if industry is not None:
            site["industry"] = industry
        feat, ground, inside = self._measure_point(float(lon), float(lat))
        hits, nearest = [], []
        for i, (name, ids, names) in enumerate(self._id_lists):
            f = feat[i]
            if f >= 0:
                nearest.append(Nearest(name, ids[f], names[f], round_distance(ground[i])))
        for rule in self._applicable(site, point):
            i = self._layer_pos[rule.layer]
            f = feat[i]
            if f < 0 or not is_hit(rule, ground[i], inside[i]):
                continue
            feature = {k: v[f] for k, v in self._features[rule.layer].items()}
            hits.append(evaluate(rule, ground[i], inside[i], feature))
        echo = {"lon": lon, "lat": lat, "point": point, **site}
        return CheckResult(input=echo, lon=float(lon), lat=float(lat), hits=tuple(hits),
                           nearest=tuple(nearest))

    def flag(self, lon: np.ndarray, lat: np.ndarray, site_type: np.ndarray,
             industry: np.ndarray, **columns: Any) -> pd.DataFrame:
        """Every rule hit of many sites at once: one row per (site row, rule).

        Extra keyword columns (``classification``, ``stage``, ``status``, ``fuel``…) feed
        the rules' filters; ``new_lon``/``new_lat`` give the new site of a relocation for
        rules checked at ``point: new_site``.
        """
        return flag_sites(self, np.asarray(lon, dtype=float), np.asarray(lat, dtype=float),
                          {"site_type": site_type, "industry": industry, **columns})

    def exclusion_zones(self) -> gpd.GeoDataFrame:
        """Buffered, dissolved zones per rule in lon/lat, for maps and exports only."""
        if not hasattr(self, "_zones"):
            self._zones = exclusion_zones(self.rules, self.projected, self.metric_crs,
                                          self.geographic_crs)
        return self._zones.copy()

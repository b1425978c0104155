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
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from geoapp.domain.results import CheckResult, Nearest, round_distance
from geoapp.domain.rules import RuleSet, RuleSpec, applies, evaluate
from geoapp.spatial.batch import flag_sites, search_radius
from geoapp.spatial.ground import GroundScale
from geoapp.spatial.index import (
    CHUNK,
    INSIDE_TOLERANCE_M,
    SEARCH_SLACK,
    Grid,
    LayerIndex,
    Measure,
    make_grid,
    project_cells,
    segment_distance,
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
              sites: gpd.GeoDataFrame | None = None, cell_m: float = CELL_M) -> RuleEngine:
        """Project every layer once, cut and index it; ``layers`` are in lon/lat (EPSG:4326)."""
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
        self.grid = self._make_grid(frames, rules, cell_m)
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
        self._merge_for_single_point()
        self._layer_pos = {n: i for i, n in enumerate(self.layer_names)}
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

    def _make_grid(self, frames, rules, cell_m) -> Grid:
        bounds = [f.total_bounds for f in frames.values() if len(f) and not f.is_empty.all()]
        b = np.array(bounds) if bounds else np.array([[0.0, 0.0, 1e-3, 1e-3]])
        total = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        reach = max([r.distance_m or 0.0 for r in rules] + [0.0])
        return make_grid(total, margin_m=reach * SEARCH_SLACK + 2 * cell_m, cell_m=cell_m)

    def _merge_for_single_point(self) -> None:
        """Concatenate every layer's per-cell candidates so one point needs one numpy pass."""
        idx = [self.index[n] for n in self.layer_names]
        ncell = self.grid.size
        # Segments of all layers in one (n, 6) table [x0, y0, dx, dy, 1/len², layer], each
        # layer padded to whole chunks with far-away dummies so a chunk is always CHUNK rows.
        padded = [-(-len(i.x0) // CHUNK) * CHUNK for i in idx]
        seg_off = np.cumsum([0] + padded)
        table = np.zeros((seg_off[-1], 6))
        table[:, 0] = table[:, 1] = 1e12
        self._gseg_feat = np.full(seg_off[-1], -1, dtype=np.int64)
        for k, (i, o) in enumerate(zip(idx, seg_off[:-1], strict=True)):
            n = len(i.x0)
            table[o:o + n, :5] = np.stack([i.x0, i.y0, i.dx, i.dy, i.inv_ll], 1)
            table[o:o + padded[k], 5] = k
            self._gseg_feat[o:o + n] = i.seg_feat
        self._gseg = table
        feat_off = np.cumsum([0] + [i.n_features for i in idx])
        cat = np.concatenate
        self._gpolys = cat([i.polys for i in idx] + [np.empty(0, object)])
        self._gpoly_layer = np.repeat(np.arange(len(idx)), np.diff(feat_off))
        self._gpoly_feat = np.arange(len(self._gpolys)) - feat_off[self._gpoly_layer]
        self._cover = np.stack([i.cover for i in idx], 1) if idx else np.empty((ncell, 0))

        def merge(ptrs, idxs, offs):
            rows = cat([np.repeat(np.arange(ncell), np.diff(p)) for p in ptrs] + [[]])
            cols = cat([ix + o for ix, o in zip(idxs, offs, strict=True)] + [[]])
            order = np.lexsort((cols, rows))
            ptr = np.r_[0, np.cumsum(np.bincount(rows.astype(np.int64), minlength=ncell))]
            return ptr, cols[order].astype(np.int64)

        chunk_off = np.cumsum([0] + [len(i.chunk_start) for i in idx])
        self._mchunk_ptr, self._mchunk = merge([i.chunk_ptr for i in idx],
                                               [i.chunk_idx for i in idx], chunk_off[:-1])
        self._gchunk_start = cat([i.chunk_start + o for i, o in zip(idx, seg_off[:-1], strict=True)]
                                 + [np.empty(0, np.int64)]).astype(np.int64)
        self._chunk_steps = np.arange(CHUNK)
        self._mpoly_ptr, self._mpoly = merge([i.poly_ptr for i in idx],
                                             [i.poly_idx for i in idx], feat_off[:-1])

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
            xs, ys = np.array([x]), np.array([y])
            per = [self.index[n].measure(xs, ys, np.array([-1])) for n in self.layer_names]
            m = Measure(*(np.concatenate([getattr(p, f) for p in per] + [np.empty(0)])
                          for f in ("feat", "dist", "inside", "nx", "ny")))
            m.feat, m.inside = m.feat.astype(np.int64), m.inside.astype(bool)
            ground = self._ground(np.full(nl, lon), np.full(nl, lat), np.full(nl, x),
                                  np.full(nl, y), m)
            return m.feat.tolist(), ground.tolist(), m.inside.tolist()
        feat = self._cover[c].tolist()
        inside = [f >= 0 for f in feat]
        dist = [0.0 if i else np.inf for i in inside]
        near = [(x, y)] * nl
        p0, p1 = self._mpoly_ptr[c], self._mpoly_ptr[c + 1]
        if p1 > p0:
            pids = self._mpoly[p0:p1]
            for g in pids[shapely.intersects_xy(self._gpolys[pids], x, y)].tolist():
                layer = self._gpoly_layer[g]
                if not inside[layer]:
                    feat[layer], dist[layer], inside[layer] = self._gpoly_feat[g], 0.0, True
        s0, s1 = self._mchunk_ptr[c], self._mchunk_ptr[c + 1]
        if s1 > s0:
            sids = (self._gchunk_start[self._mchunk[s0:s1]][:, None] + self._chunk_steps).ravel()
            seg = self._gseg[sids]
            lay = seg[:, 5]
            d, rx, ry = segment_distance(x, y, seg[:, 0], seg[:, 1], seg[:, 2], seg[:, 3],
                                         seg[:, 4])
            # First minimum per layer run (runs are contiguous, segments in index order).
            starts = np.flatnonzero(np.concatenate(([True], lay[1:] != lay[:-1])))
            lowest = np.minimum.reduceat(d, starts)
            pos = np.where(d == np.repeat(lowest, np.diff(np.append(starts, len(d)))),
                           np.arange(len(d)), len(d))
            best = np.minimum.reduceat(pos, starts).tolist()
            for b, layer in zip(best, lay[starts].astype(int).tolist(), strict=True):
                if not inside[layer]:
                    feat[layer] = int(self._gseg_feat[sids[b]])
                    dist[layer] = float(d[b])
                    near[layer] = (x - float(rx[b]), y - float(ry[b]))
        for i in range(nl):
            if not inside[i] and dist[i] < INSIDE_TOLERANCE_M:
                inside[i] = True
        todo = [i for i in range(nl) if feat[i] >= 0 and not inside[i]]
        ground = [0.0 if inside[i] else np.inf for i in range(nl)]
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
        for i, name in enumerate(self.layer_names):
            f = feat[i]
            if f >= 0:
                t = self._features[name]
                nearest.append(Nearest(name, t["id"][f], t["name"][f],
                                       round_distance(ground[i])))
        for rule in self._applicable(site, point):
            i = self._layer_pos[rule.layer]
            f = feat[i]
            feature = None if f < 0 else {k: v[f] for k, v in self._features[rule.layer].items()}
            hit = evaluate(rule, ground[i], inside[i], feature)
            if hit is not None:
                hits.append(hit)
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

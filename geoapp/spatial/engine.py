"""The rule engine: measures distances from sites to the city's layers, lets the rules decide.

Built once per process (layers projected once, one index per layer, see ``index.py``), then:

* ``check_point`` — one site, the inspector's fast path: no GeoDataFrame, no per-layer tree
  query; one cell lookup and one numpy pass over the cell's candidate segments of all layers.
* ``flag`` — many sites at once, vectorised over sites (loops only over rules and layers).
* ``covered`` — whether points lie in the area the city's data covers (the city outline
  buffered by the largest rule distance); outside it no check can pass.
* ``exclusion_zones`` — buffered, dissolved zones for maps and exports (never for verdicts:
  a buffer polygon is inscribed in the true zone and misses sites right at its edge).

The engine measures (which feature of each layer is nearest, how far on the ground, inside
or not); ``domain.rules.decide`` decides, for both paths: ``check_point`` with one row per
rule (the rule side, ``RuleRows``, prepared once per kind of site), ``flag`` (in
``batch.py``) with one row per site. What both read is prepared once in a
``spatial.prepared.PreparedRules``; ``batch`` reads nothing else and never imports this module.

Verdicts use *measured* distances. Distances are measured in the metric CRS and then the
distance to the nearest point is recomputed geodesically, so figures agree with
``pyproj.Geod`` on the city's ellipsoid everywhere in the city, not only near the central
meridian of the projection.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from geoapp.domain.results import CheckResult, Nearest, round_distance
from geoapp.domain.rules import (
    CONDITIONAL_HIT,
    INSIDE_TOLERANCE_M,
    RuleRows,
    RuleSet,
    RuleSpec,
    conditional_hit,
    make_hit,
    rules_for_site,
)
from geoapp.spatial.batch import flag_sites
from geoapp.spatial.ground import UNIT, GroundDistance
from geoapp.spatial.index import (
    SEARCH_SLACK,
    CellGeometry,
    Grid,
    LayerIndex,
    Measure,
    expand,
    make_grid,
    project_cells,
    projected_reach,
)
from geoapp.spatial.prepared import HitTexts, PreparedRules
from geoapp.spatial.zones import exclusion_zones

log = logging.getLogger(__name__)

CELL_M = 500.0
#: Coverage polygon edges are segmentized to this (metres) before going back to lon/lat.
COVERAGE_SEGMENT_M = 200.0


def _feature_dicts(table: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """One dict per feature from a layer's feature table."""
    n = len(next(iter(table.values())))
    return [{k: v[i] for k, v in table.items()} for i in range(n)]


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


def _outline_geometry(outline: Any) -> Any:
    """One lon/lat geometry from a geometry, GeoSeries, GeoDataFrame or array (None: none)."""
    if outline is None:
        return None
    if isinstance(outline, gpd.GeoDataFrame):
        outline = outline.geometry
    if isinstance(outline, shapely.Geometry):
        geoms = np.array([outline], dtype=object)
    else:
        geoms = np.asarray(getattr(outline, "values", outline), dtype=object).ravel()
    geoms = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)] if len(geoms) else geoms
    if len(geoms) == 0:
        return None
    return shapely.make_valid(shapely.union_all(geoms))


@dataclass(frozen=True)
class _Plan:
    """The rules to decide for one kind of site at one point (see ``RuleEngine._plan``):
    the rules that apply or may apply, one row each, and their layers."""

    rules: tuple[RuleSpec, ...]
    #: The rule side of the decision, one row per rule (``domain.rules.RuleRows``).
    rows: RuleRows
    layer_pos: np.ndarray
    layer_pos_list: list[int]
    #: Per rule: None if it applies, else (missing attributes, condition text).
    conditions: tuple[Any, ...]


class RuleEngine:
    """Layers and rules, projected and indexed once; then cheap checks (see module doc).

    ``prepared`` (a ``spatial.prepared.PreparedRules``) holds what both check paths read;
    ``rules``, ``metric_crs``, ``geographic_crs``, ``layer_names``, ``grid``, ``index`` and
    ``projected`` (each layer's geometries in the metric CRS) are public too."""

    def __init__(self) -> None:  # use RuleEngine.build
        self.rules: RuleSet
        self.metric_crs: str
        self.layer_names: list[str] = []
        self.prepared: PreparedRules

    # -- construction -----------------------------------------------------------------
    @classmethod
    def build(cls, layers: Mapping[str, gpd.GeoDataFrame], rules: RuleSet, metric_crs: str,
              sites: gpd.GeoDataFrame | None = None, cell_m: float = CELL_M,
              extent: tuple[float, float, float, float] | None = None,
              outline: Any = None) -> RuleEngine:
        """Project every layer once, cut and index it; ``layers`` are in lon/lat (EPSG:4326).

        ``extent`` (lon/lat bounds, e.g. the city's outline) is where sites are expected: the
        cell grid covers it as well as the layers, since a site outside the grid falls back
        to a much slower per-point tree search.

        ``outline`` (the city's polygon(s) in lon/lat: a geometry, GeoSeries or GeoDataFrame)
        bounds the area the city's data covers: buffered by the largest finite rule distance
        it is the coverage area of ``covered``. Without it every point is covered.
        """
        self = cls()
        self.rules, self.metric_crs = rules, metric_crs
        frames = self._collect_layers(layers, rules, sites)
        geographic = next((f.crs for f in frames.values() if f.crs is not None), None) \
            or CRS(metric_crs).geodetic_crs
        self.geographic_crs = CRS(geographic)
        outline_geom = _outline_geometry(outline)
        if outline_geom is not None:
            b = np.asarray(outline_geom.bounds, dtype=float)
            extent = tuple(b) if extent is None else (
                min(extent[0], b[0]), min(extent[1], b[1]), max(extent[2], b[2]),
                max(extent[3], b[3]))
        to_metric = Transformer.from_crs(self.geographic_crs, metric_crs, always_xy=True)
        self.layer_names = list(frames)
        self.projected = {n: (f.to_crs(metric_crs) if len(f) else f.set_crs(metric_crs,
                              allow_override=True)).geometry.values for n, f in frames.items()}
        features = {n: self._feature_table(f, rules, n) for n, f in frames.items()}
        self.grid = self._make_grid(frames, rules, cell_m, extent)
        g = self.grid
        ground = GroundDistance(metric_crs, self.geographic_crs,
                                (g.lon0, g.lat0, g.lon0 + g.nx * g.dlon, g.lat0 + g.ny * g.dlat),
                                to_metric.transform)
        cells = project_cells(self.grid, to_metric.transform)
        self.index = {n: LayerIndex(n, np.asarray(self.projected[n], dtype=object), cells)
                      for n in self.layer_names}
        reach: dict[str, float] = {}
        for rule in rules:
            reach[rule.layer] = max(reach.get(rule.layer, 0.0),
                                    projected_reach(rule.search_distance_m))
        for layer, radius in reach.items():
            self.index[layer].add_radius(radius, cells)
        for layer in self.layer_names:
            if np.isfinite(reach.get(layer, 0.0)):
                self.index[layer].drop_centre_distances()
        severities = {r.id: np.array([r.severity_for(f) for f in
                                      _feature_dicts(features[r.layer])], dtype=object)
                      for r in rules}
        self.prepared = PreparedRules(
            rules=rules, metric_crs=metric_crs, layer_names=tuple(self.layer_names),
            grid=self.grid, index=self.index, features=features, severities=severities,
            reach=reach, to_metric=to_metric, ground=ground,
            texts=HitTexts.build(rules, self.layer_names, features, severities))
        self._nl = len(self.layer_names)
        self._build_point_table(cells)
        self._layer_pos = {n: i for i, n in enumerate(self.layer_names)}
        self._id_lists = [(n, features[n]["id"].tolist(), features[n]["name"].tolist())
                          for n in self.layer_names]
        self._plans: dict[Any, _Plan] = {}
        self._build_coverage(outline_geom)
        log.info("rule engine built: %d layers, %d rules, grid %dx%d in %s",
                 len(self.layer_names), len(rules), self.grid.nx, self.grid.ny, metric_crs)
        return self

    @staticmethod
    def _collect_layers(layers, rules, sites) -> dict[str, gpd.GeoDataFrame]:
        frames = {n: f for n, f in layers.items()}
        for rule in rules:
            if rule.layer_where and rule.layer not in frames:
                base = layers.get(rule.base_layer)
                if base is not None:
                    keep = np.ones(len(base), dtype=bool)
                    for cond in rule.layer_where:
                        col = base.get(cond.attr)
                        keep &= (col.map(cond.matches).to_numpy(dtype=bool) if col is not None
                                 else False)
                    frames[rule.layer] = base.loc[keep]
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
        # a stored layer read only through subsets is not a layer of its own here
        subset_only = {r.base_layer for r in rules if r.layer_where} - {r.layer for r in rules}
        return {n: f for n, f in frames.items() if n not in subset_only}

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

    def _make_grid(self, frames, rules, cell_m, extent=None) -> Grid:
        bounds = [f.total_bounds for f in frames.values() if len(f) and not f.is_empty.all()]
        if extent is not None and np.all(np.isfinite(extent)):
            bounds.append(np.asarray(extent, dtype=float))
        b = np.array(bounds) if bounds else np.array([[0.0, 0.0, 1e-3, 1e-3]])
        total = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        return make_grid(total, margin_m=rules.reach_m() * SEARCH_SLACK + 2 * cell_m,
                         cell_m=cell_m)

    def _build_point_table(self, cells: CellGeometry) -> None:
        """Per cell, everything one point needs across all layers (see ``_measure_point``).

        Each layer's index holds, per cell, the segments that can be nearest to some point of
        the cell (see ``index.candidate_lists``). Here they are laid end to end per cell, by
        layer then segment, into one flat array of global segment numbers, with the start and
        length of each layer's run: one gather, a dozen array operations and a per-run minimum
        give every layer's nearest segment (the first in index order on ties, as in the batch
        path). Cells a polygon covers whole answer "inside" from a list, with no geometry.
        """
        idx = [self.index[n] for n in self.layer_names]
        nl, ncell = len(idx), self.grid.size
        seg_off = np.cumsum([0] + [len(i.x0) for i in idx]).astype(np.int64)
        table = np.zeros((5, int(seg_off[-1])))
        seg_feat = np.zeros(int(seg_off[-1]), dtype=np.int64)
        for i, o in zip(idx, seg_off[:-1], strict=True):
            n = len(i.x0)
            if n:
                table[:, o:o + n] = np.stack([i.x0, i.y0, i.dx, i.dy, i.inv_ll])
                seg_feat[o:o + n] = i.seg_feat
        self._pt_seg, self._pt_feat = table, seg_feat
        counts = (np.stack([np.diff(i.cand_ptr) for i in idx], 1) if nl
                  else np.zeros((ncell, 0), dtype=np.int64))
        cell_off = np.r_[0, np.cumsum(counts.sum(1))].astype(np.int64)
        run_start = cell_off[:-1, None] + np.cumsum(counts, 1) - counts
        flat = np.empty(int(cell_off[-1]), dtype=np.intp)
        for k, (i, o) in enumerate(zip(idx, seg_off[:-1], strict=True)):
            if len(i.cand_idx):
                cell = np.repeat(np.arange(ncell), counts[:, k])
                pos = run_start[cell, k] + np.arange(len(cell)) - i.cand_ptr[cell]
                flat[pos] = i.cand_idx + o
        run_cell, run_layer = np.nonzero(counts)  # by cell, then layer
        self._pt_flat = flat
        self._pt_cell_off = cell_off.tolist()
        self._pt_run_off = np.r_[0, np.cumsum(np.bincount(run_cell, minlength=ncell))].tolist()
        self._pt_run_layer = run_layer.tolist()
        self._pt_run_start = (run_start[run_cell, run_layer] - cell_off[run_cell]).astype(np.intp)
        self._pt_run_len = counts[run_cell, run_layer].astype(np.intp)
        cover = np.stack([i.cover for i in idx], 1) if idx else np.full((ncell, 0), -1)
        self._pt_cover = {int(c): cover[c].tolist() for c in np.flatnonzero((cover >= 0).any(1))}
        polys = [i.polys for i in idx]
        cell_polys: dict[int, list[tuple[int, int]]] = {}
        for k, i in enumerate(idx):
            owner, f = expand(i.poly_ptr, i.poly_idx, np.arange(ncell))
            for c, g in zip(owner.tolist(), f.tolist(), strict=True):
                cell_polys.setdefault(c, []).append((k, g))
        self._pt_polys = {c: (np.array([polys[k][g] for k, g in pl], dtype=object),
                              [k for k, _ in pl], [g for _, g in pl])
                          for c, pl in cell_polys.items()}
        log.debug("point table: %d cell-segment entries over %d cells", len(flat), ncell)

    def _build_coverage(self, outline: Any) -> None:
        """The coverage polygon in lon/lat and, per grid cell, whether it lies wholly inside
        it (1), wholly outside (0) or across its edge (2, tested exactly per point)."""
        self.coverage = None
        self._cov_state = None
        self._cov_state_list: list[int] = []
        if outline is None:
            return
        # beyond the limit as far as the engine searches: a buffer is inscribed in the
        # true zone (chords), and the projection's scale differs from the ground's
        reach = projected_reach(self.rules.reach_m())
        metric = gpd.GeoSeries([outline], crs=self.geographic_crs).to_crs(self.metric_crs)
        zone = shapely.segmentize(metric.buffer(reach).values[0], COVERAGE_SEGMENT_M)
        cov = gpd.GeoSeries([zone], crs=self.metric_crs).to_crs(self.geographic_crs).values[0]
        cov = shapely.make_valid(cov)
        shapely.prepare(cov)
        self.coverage = cov
        boxes = shapely.polygons(self.grid.boxes(1e-9))
        state = np.full(len(boxes), 2, dtype=np.int8)
        state[shapely.contains_properly(cov, boxes)] = 1
        state[~shapely.intersects(cov, boxes)] = 0
        self._cov_state = state
        self._cov_state_list = state.tolist()

    def covered(self, lon: Any, lat: Any) -> np.ndarray:
        """Whether each lon/lat point lies in the area the city's data covers (see ``build``);
        NaN is not covered. Vectorised: a grid lookup, exact tests only in edge cells."""
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        if self.coverage is None:
            return np.isfinite(lon) & np.isfinite(lat)
        c = self.grid.cells(lon, lat)
        state = np.where(c >= 0, self._cov_state[np.maximum(c, 0)], 2)
        out = state == 1
        todo = np.flatnonzero(state == 2)
        if len(todo):
            out[todo] = shapely.contains_xy(self.coverage, lon[todo], lat[todo])
        return out

    def _covered_point(self, lon: float, lat: float) -> bool:
        if self.coverage is None:
            return True
        c = self.grid.cell(lon, lat)
        state = self._cov_state_list[c] if c >= 0 else 2
        if state == 2:
            return bool(shapely.contains_xy(self.coverage, lon, lat))
        return state == 1

    # -- distances --------------------------------------------------------------------
    def _measure_point(self, lon: float, lat: float) -> tuple[list, list, list]:
        """All layers at once for one point; the same arithmetic as ``LayerIndex.measure``.

        Returns per layer: feature index (-1 none), ground distance, inside flag. Plain
        lists and floats: for a dozen layers Python beats numpy's per-call overhead.
        """
        x, y = self.prepared.to_metric.transform(lon, lat)
        c = self.grid.cell(lon, lat)
        if c < 0:
            return self._measure_off_grid(lon, lat, x, y)
        nl = self._nl
        cover = self._pt_cover.get(c)
        if cover is None:
            feat, inside, ground = [-1] * nl, [False] * nl, [math.inf] * nl
        else:
            feat = list(cover)
            inside = [f >= 0 for f in feat]
            ground = [0.0 if i else math.inf for i in inside]
        polys = self._pt_polys.get(c)
        if polys is not None:
            geoms, layers, feats = polys
            for j in shapely.intersects_xy(geoms, x, y).nonzero()[0].tolist():
                layer = layers[j]
                if not inside[layer]:
                    feat[layer], ground[layer], inside[layer] = feats[j], 0.0, True
        r0, r1 = self._pt_run_off[c], self._pt_run_off[c + 1]
        if r0 == r1:
            return feat, ground, inside
        sids = self._pt_flat[self._pt_cell_off[c]:self._pt_cell_off[c + 1]]
        g = self._pt_seg.take(sids, axis=1)  # rows x0, y0, dx, dy, 1/length²
        e = np.array([[x], [y]]) - g[:2]  # (x, y) rows at once: fewer numpy calls
        w = g[2:4]
        t = e * w
        t = t[0] + t[1]
        t *= g[4]
        np.minimum(np.maximum(t, 0.0, out=t), 1.0, out=t)
        r = e - t * w
        d = np.hypot(r[0], r[1])
        starts = self._pt_run_start[r0:r1]
        low = np.minimum.reduceat(d, starts)
        at = (d == low.repeat(self._pt_run_len[r0:r1])).nonzero()[0]
        # one minimum per run (the usual case) or the first of each run's tied minima
        best = at if len(at) == r1 - r0 else at.take(at.searchsorted(starts))
        bd, (bx, by) = low.tolist(), r.take(best, axis=1).tolist()
        bf = self._pt_feat.take(sids.take(best)).tolist()
        scale = self.prepared.ground.scale
        todo = []
        if scale.ok:
            c0, c1, c2, c3, c4, c5 = scale.coef_list
            sx0, sy0 = scale.x0, scale.y0
        for j, layer in enumerate(self._pt_run_layer[r0:r1]):
            if inside[layer]:
                continue
            dj = bd[j]
            feat[layer] = bf[j]
            if dj < INSIDE_TOLERANCE_M:
                inside[layer], ground[layer] = True, 0.0
            elif scale.ok:  # GroundScale.ground, inlined: the same operations, same result
                X = ((x + (x - bx[j])) * 0.5 - sx0) / UNIT
                Y = ((y + (y - by[j])) * 0.5 - sy0) / UNIT
                ground[layer] = dj / (c0 + X * (c1 + c3 * X + c4 * Y) + Y * (c2 + c5 * Y))
            else:
                todo.append((layer, dj, x - bx[j], y - by[j]))
        if todo:
            k = len(todo)
            m = Measure(np.zeros(k, dtype=np.int64), np.array([t[1] for t in todo]),
                        np.zeros(k, dtype=bool), np.array([t[2] for t in todo]),
                        np.array([t[3] for t in todo]))
            g = self.prepared.ground(np.full(k, lon), np.full(k, lat), np.full(k, x),
                                     np.full(k, y), m)
            for (layer, *_), v in zip(todo, g.tolist(), strict=True):
                ground[layer] = v
        return feat, ground, inside

    def _measure_off_grid(self, lon: float, lat: float, x: float, y: float):
        """A point outside the grid (far from every layer): each layer's STRtree."""
        nl = len(self.layer_names)
        xs, ys = np.array([x]), np.array([y])
        per = [self.index[n].measure(xs, ys, np.array([-1])) for n in self.layer_names]
        m = Measure(*(np.concatenate([getattr(p, f) for p in per] + [np.empty(0)])
                      for f in ("feat", "dist", "inside", "nx", "ny")))
        m.feat, m.inside = m.feat.astype(np.int64), m.inside.astype(bool)
        ground = self.prepared.ground(np.full(nl, lon), np.full(nl, lat), np.full(nl, x),
                                      np.full(nl, y), m)
        return m.feat.tolist(), ground.tolist(), m.inside.tolist()

    def _plan(self, site: dict[str, Any], point: str) -> _Plan:
        """The rules that apply (or may apply: conditional) to this site at ``point``, laid
        out as rows for ``domain.rules.RuleRows``, with their layer positions."""
        rules, conditions = rules_for_site(self.rules, site, point)
        pos = [self._layer_pos[r.layer] for r in rules]
        rows = RuleRows.of(np.array([r.test_code for r in rules], dtype=np.int64),
                           np.array([r.limit_m for r in rules], dtype=float),
                           np.array([c is None for c in conditions], dtype=bool),
                           np.array([c is not None for c in conditions], dtype=bool))
        return _Plan(rules=tuple(rules), rows=rows, layer_pos=np.array(pos, dtype=np.intp),
                     layer_pos_list=pos, conditions=tuple(conditions))

    def _applicable(self, site: dict[str, Any], point: str, key: Any = None) -> _Plan:
        """``_plan``, memoised: inspectors check few kinds of site."""
        try:
            if key is None:
                key = (point, tuple(sorted(site.items())))
            found = self._plans.get(key)
        except TypeError:  # unhashable or unorderable attributes: no memo
            return self._plan(site, point)
        if found is None:
            if len(self._plans) > 4096:
                self._plans.clear()
            found = self._plan(site, point)
            self._plans[key] = found
        return found

    # -- public API -------------------------------------------------------------------
    def check_point(self, lon: float, lat: float, site_type: str | None = None,
                    industry: str | None = None, attrs: Mapping[str, Any] | None = None,
                    point: str = "site") -> CheckResult:
        """Check one WGS84 point against every rule that applies to the described site.

        A rule whose filter needs an attribute the caller did not give is decided on the
        geometry alone and, if it holds, reported as a conditional hit (the verdict is then
        needs_info, never pass); ``nearest`` lists every layer. ``point="new_site"`` checks
        the new site of a relocation: every rule, hits marked ``new_site``. A point outside
        the area the data covers gets the verdict out_of_area.

        The layers are measured here; the domain decides (``RuleRows.decide``, the rows of
        ``domain.rules.decide`` prepared once per kind of site), one row per rule.
        """
        site = dict(attrs) if attrs else {}
        if site_type is not None:
            site["site_type"] = site_type
        if industry is not None:
            site["industry"] = industry
        feat, ground, inside = self._measure_point(float(lon), float(lat))
        nearest = [Nearest(name, ids[f], names[f], round_distance(g))
                   for (name, ids, names), f, g in zip(self._id_lists, feat, ground, strict=True)
                   if f >= 0]
        hits, conditional = [], []
        plan = self._applicable(site, point, None if attrs else (point, site_type, industry))
        if plan.rules:
            measured = np.array((feat, ground, inside), dtype=float).take(plan.layer_pos, 1)
            decision = plan.rows.decide(measured[1], measured[2] > 0.0, measured[0] >= 0.0)
            features = self.prepared.features
            for j in decision.nonzero()[0].tolist():
                rule, i = plan.rules[j], plan.layer_pos_list[j]
                f = feat[i]
                hit = make_hit(rule, ground[i], inside[i],
                               {k: v[f] for k, v in features[rule.layer].items()}, point)
                if decision[j] == CONDITIONAL_HIT:
                    conditional.append(conditional_hit(hit, rule, *plan.conditions[j]))
                else:
                    hits.append(hit)
        echo = {"lon": lon, "lat": lat, "point": point, **site}
        return CheckResult(input=echo, lon=float(lon), lat=float(lat), hits=tuple(hits),
                           nearest=tuple(nearest), conditional_hits=tuple(conditional),
                           covered=self._covered_point(float(lon), float(lat)))

    def flag(self, lon: np.ndarray, lat: np.ndarray, site_type: np.ndarray,
             industry: np.ndarray, **columns: Any) -> pd.DataFrame:
        """Every rule hit of many sites at once: one row per (site row, point, rule).

        Extra keyword columns (any attribute a rule reads: ``classification``, ``status``,
        ``fuel``…) feed the rules' filters; ``new_lon``/``new_lat`` give the new site of a
        relocation, checked by every rule (``point: new_site`` rules only there). Columns:
        ``row, rule_id, feature_id, feature_name, distance_m, severity, conditional, point``;
        ``conditional`` rows are hits of rules that apply only if a missing attribute has
        the value the rule names (see ``domain.rules.applicability``), ``point`` is ``site``
        or ``new_site``.
        """
        return flag_sites(self.prepared, np.asarray(lon, dtype=float),
                          np.asarray(lat, dtype=float),
                          {"site_type": site_type, "industry": industry, **columns})

    def exclusion_zones(self) -> gpd.GeoDataFrame:
        """Buffered, dissolved zones per rule in lon/lat, for maps and exports only."""
        if not hasattr(self, "_zones"):
            self._zones = exclusion_zones(self.rules, self.projected, self.metric_crs,
                                          self.geographic_crs)
        return self._zones.copy()

"""The parcel siting check: a polygon of land against the rule engine's layers and rules.

``check_parcel(engine, polygon_lonlat, site_type=…, industry=…, attrs=…)`` measures and
lets ``domain.rules.decide`` decide, the same decision as ``RuleEngine.check_point``:

* **area**: the parcel's ground area, ``pyproj.Geod(ellps="GRS80").geometry_area_perimeter``
  on the lon/lat polygon (rings oriented first, so holes subtract; multipolygons sum);
* **overlaps**: every polygon feature of every layer the parcel overlaps; the intersection
  is computed in the engine's metric CRS, taken back to lon/lat and measured with ``Geod``
  like the parcel itself; its share is of the parcel's ground area;
* **rules**: per rule that applies or may apply, the minimum ground distance from the
  parcel to the rule layer's features — 0 when they intersect, else the nearest pair of
  points found in the metric CRS (``shapely.shortest_line``) measured with ``Geod.inv`` —
  and, for area rules, the overlap. ``inside`` rules see the parcel as inside when it
  overlaps a feature (or touches one: distance below ``INSIDE_TOLERANCE_M``, as a point on
  a boundary is inside); ``not_inside`` rules (an allowed area) see it as inside only when
  the layer's features cover it wholly — a project half outside its park breaks the rule;
* **verdict**: out_of_area when the parcel lies wholly outside ``engine.coverage`` (the
  city outline buffered by the largest rule distance), else fail / needs_info / pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer

from geoapp.domain.parcels import (
    GroundArea,
    Overlap,
    ParcelHit,
    ParcelResult,
    RuleMeasure,
)
from geoapp.domain.rules import (
    CONDITIONAL_HIT,
    HIT,
    INSIDE,
    INSIDE_TOLERANCE_M,
    NOT_INSIDE,
    conditional_hit,
    decide,
    make_hit,
    rules_for_site,
    split_layer_key,
)
from geoapp.spatial.crs import WGS84

#: The ellipsoid areas and distances are measured on (CGCS2000 uses GRS80).
GEOD = Geod(ellps="GRS80")
#: Relative tolerance under which an overlap equals the whole parcel (round-trip error).
WHOLE_TOLERANCE = 1e-7

#: The window of a parcel map reaches this far around the parcel at least, and as far as
#: the nearest features up to ``CONTEXT_MAX_M``.
CONTEXT_MIN_M = 300.0
CONTEXT_MAX_M = 3000.0

OUTCOMES = {0: "no_hit", HIT: "hit", CONDITIONAL_HIT: "conditional_hit"}


@lru_cache(maxsize=16)
def _to_geographic(metric_crs: str, geographic_wkt: str) -> Transformer:
    return Transformer.from_crs(metric_crs, CRS.from_wkt(geographic_wkt), always_xy=True)


def to_geographic(engine: Any) -> Transformer:
    """The engine's metric CRS back to its lon/lat (``always_xy``), made once per CRS pair."""
    return _to_geographic(engine.metric_crs, engine.geographic_crs.to_wkt())


def ground_area_m2(geom_lonlat: Any) -> float:
    """The ground area (m², GRS80) of a lon/lat polygon or multipolygon; holes subtract,
    parts add, whatever the rings' orientation. Lines, points and empties have none."""
    if geom_lonlat is None or shapely.is_empty(geom_lonlat):
        return 0.0
    parts = shapely.get_parts(geom_lonlat)
    polys = parts[shapely.get_type_id(parts) == 3]
    if not len(polys):
        return 0.0
    geom = shapely.orient_polygons(shapely.multipolygons(polys), exterior_cw=False)
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def _reproject(geom: Any, transformer: Transformer) -> Any:
    return shapely.transform(geom, lambda xy: np.column_stack(
        transformer.transform(xy[:, 0], xy[:, 1])))


def _polygonal(geom: Any) -> Any:
    """Only the polygon parts of a geometry (an intersection may carry lines/points)."""
    parts = shapely.get_parts(geom)
    polys = parts[shapely.get_type_id(parts) == 3]
    return shapely.multipolygons(polys) if len(polys) else None


def ground_overlaps(parcel_metric: Any, parcel_area_m2: float, features: list[int],
                    polys: Any, back: Transformer) -> list[tuple[int, float]]:
    """(feature, ground overlap m²) for each of ``features`` (positions in ``polys``, the
    layer's polygons in the metric CRS) whose intersection with the parcel has an area: the
    intersection is taken back to lon/lat with ``back`` and measured with ``Geod``; a
    feature covering the whole parcel gives exactly the parcel's area."""
    out: list[tuple[int, float]] = []
    for f in features:
        poly = polys[f]
        if poly.contains(parcel_metric):
            out.append((f, parcel_area_m2))
            continue
        part = _polygonal(shapely.intersection(parcel_metric, poly))
        if part is None:
            continue
        area = ground_area_m2(_reproject(part, back))
        if area >= parcel_area_m2 * (1.0 - WHOLE_TOLERANCE):
            area = parcel_area_m2
        if area > 0.0:
            out.append((f, min(area, parcel_area_m2)))
    return out


class AreaLayer:
    """A polygon layer measured against parcels outside the rule engine (the 三线一单
    control units, the counties): its features projected once to ``metric_crs`` and indexed.

    ``overlaps(parcel_lonlat)`` gives (feature position, ground overlap m², share of the
    parcel) for every feature the parcel overlaps, in feature order.
    """

    def __init__(self, geoms_lonlat: Any, metric_crs: str,
                 geographic_crs: Any = WGS84) -> None:
        geographic = CRS(geographic_crs)
        self.metric_crs = metric_crs
        self.to_metric = Transformer.from_crs(geographic, metric_crs, always_xy=True)
        self.back = _to_geographic(metric_crs, geographic.to_wkt())
        geoms = np.asarray(list(geoms_lonlat), dtype=object)
        self.polys = np.array([_polygonal(g) if g is not None and not shapely.is_empty(g)
                               else None for g in geoms], dtype=object)
        have = np.array([p is not None for p in self.polys], dtype=bool)
        self.polys[have] = [_reproject(p, self.to_metric) for p in self.polys[have]]
        shapely.prepare(self.polys[have])
        self.feats = np.flatnonzero(have)
        self.tree = shapely.STRtree(self.polys[have])

    def __len__(self) -> int:
        return len(self.polys)

    def overlaps(self, parcel_lonlat: Any, *, area_m2: float | None = None
                 ) -> list[tuple[int, float, float]]:
        metric = _reproject(parcel_lonlat, self.to_metric)
        area = ground_area_m2(parcel_lonlat) if area_m2 is None else area_m2
        cand = self.tree.query(metric, predicate="intersects") if len(self.feats) \
            else np.empty(0, dtype=np.intp)
        feats = [int(self.feats[k]) for k in np.sort(cand).tolist()]
        return [(f, a, min(a / area, 1.0) if area > 0 else 0.0)
                for f, a in ground_overlaps(metric, area, feats, self.polys, self.back)]

    def piece(self, parcel_lonlat: Any, feature: int) -> Any:
        """The part of ``parcel_lonlat`` feature ``feature`` covers, in lon/lat (or None)."""
        metric = _reproject(parcel_lonlat, self.to_metric)
        poly = self.polys[feature]
        part = None if poly is None else _polygonal(shapely.intersection(metric, poly))
        return None if part is None else _reproject(part, self.back)


def _site(site_type: str | None, industry: str | None,
          attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    site = dict(attrs) if attrs else {}
    if site_type is not None:
        site["site_type"] = site_type
    if industry is not None:
        site["industry"] = industry
    return site


class _Measurer:
    """Measures one parcel against the engine's layers, each layer once at most."""

    def __init__(self, engine: Any, parcel_lonlat: Any) -> None:
        self.engine = engine
        self.prepared = engine.prepared
        self.lonlat = parcel_lonlat
        self.back = to_geographic(engine)
        self.metric = _reproject(parcel_lonlat, self.prepared.to_metric)
        shapely.prepare(self.metric)
        self.area_m2 = ground_area_m2(parcel_lonlat)
        self._overlaps: dict[str, list[tuple[int, float]]] = {}
        self._nearest: dict[str, tuple[int, float] | None] = {}
        self._covered: dict[str, float] = {}
        #: The shortest line (lon/lat) to the nearest feature, per layer measured apart.
        self.links: dict[str, Any] = {}

    def overlaps(self, layer: str) -> list[tuple[int, float]]:
        """(feature, ground overlap m²) of every polygon feature of ``layer`` the parcel
        overlaps with a positive area, in feature order."""
        found = self._overlaps.get(layer)
        if found is not None:
            return found
        index = self.prepared.index[layer]
        cand = index.poly_tree.query(self.metric, predicate="intersects") \
            if len(index.poly_feats) else np.empty(0, dtype=np.intp)
        feats = [int(index.poly_feats[k]) for k in np.sort(cand).tolist()]
        out = ground_overlaps(self.metric, self.area_m2, feats, index.polys, self.back)
        self._overlaps[layer] = out
        return out

    def nearest(self, layer: str) -> tuple[int, float] | None:
        """(feature, ground distance m) of the feature of ``layer`` nearest to the parcel:
        0 when they intersect; None when the layer has no feature."""
        if layer in self._nearest:
            return self._nearest[layer]
        index = self.prepared.index[layer]
        result: tuple[int, float] | None = None
        if len(index.poly_feats):
            hit = index.poly_tree.query(self.metric, predicate="intersects")
            if len(hit):
                result = (int(index.poly_feats[int(np.min(hit))]), 0.0)
        if result is None and len(index.tree):
            segs = index.tree.query_nearest(self.metric, all_matches=True)
            if len(segs):
                geoms = index.tree.geometries.take(segs)
                lines = shapely.shortest_line(self.metric, geoms)
                xy = shapely.get_coordinates(lines).reshape(-1, 2, 2)
                lon, lat = self.back.transform(xy[:, :, 0].ravel(), xy[:, :, 1].ravel())
                lon, lat = np.asarray(lon).reshape(-1, 2), np.asarray(lat).reshape(-1, 2)
                _, _, dist = GEOD.inv(lon[:, 0], lat[:, 0], lon[:, 1], lat[:, 1])
                dist = np.atleast_1d(np.asarray(dist, dtype=float))
                j = int(np.argmin(dist))
                result = (int(index.seg_feat[segs[j]]), float(dist[j]))
                self.links[layer] = shapely.linestrings(
                    np.column_stack([lon[j], lat[j]]))
        self._nearest[layer] = result
        return result

    def covered(self, layer: str) -> float:
        """The ground area (m²) of the parcel inside ANY feature of ``layer``: the union of
        the overlaps, so features that overlap each other (a start-up zone drawn inside its
        park, two protection rings sharing a strip) are not counted twice."""
        if layer in self._covered:
            return self._covered[layer]
        ov = self.overlaps(layer)
        if not ov:
            total = 0.0
        elif len(ov) == 1:
            total = ov[0][1]
        elif any(a >= self.area_m2 for _, a in ov):
            total = self.area_m2
        else:
            polys = self.prepared.index[layer].polys
            part = _polygonal(shapely.intersection(
                self.metric, shapely.union_all([polys[f] for f, _ in ov])))
            total = 0.0 if part is None else ground_area_m2(_reproject(part, self.back))
            if total >= self.area_m2 * (1.0 - WHOLE_TOLERANCE):
                total = self.area_m2
        total = min(float(total), self.area_m2)
        self._covered[layer] = total
        return total

    def pieces(self, layer: str) -> list[tuple[int, float, Any]]:
        """(feature, ground overlap m², the overlap in lon/lat) per overlapped feature."""
        index = self.prepared.index[layer]
        out = []
        for f, area in self.overlaps(layer):
            part = _polygonal(shapely.intersection(self.metric, index.polys[f]))
            if part is not None:
                out.append((f, area, _reproject(part, self.back)))
        return out


def _feature(engine: Any, layer: str, f: int) -> dict[str, Any]:
    return {k: v[f] for k, v in engine.prepared.features[layer].items()}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _overlap_layers(engine: Any) -> list[str]:
    """The layers whose overlaps are listed: a subset layer (``water_source_zones?level=一级``)
    only when its whole layer is not itself among the engine's layers."""
    names = list(engine.prepared.layer_names)
    have = set(names)
    return [n for n in names if "?" not in n or split_layer_key(n)[0] not in have]


def parcel_drawing(engine: Any, polygon_lonlat: Any, result: ParcelResult
                   ) -> dict[str, list[dict[str, Any]]]:
    """What a map of a parcel check draws, in lon/lat: ``pieces``, the part of the parcel
    each overlapped feature covers (layer, feature id and name, ground area); ``links``, the
    shortest line from the parcel to the nearest feature of each rule layer measured apart
    from it (rule id, layer, feature name, ground distance); ``features``, those overlapped
    and nearest features whole, cut to a window around the parcel and its links (at least
    ``CONTEXT_MIN_M``; links longer than ``CONTEXT_MAX_M`` do not widen it)."""
    geom = _polygonal(shapely.make_valid(polygon_lonlat))
    m = _Measurer(engine, geom)
    pieces = []
    wanted: set[tuple[str, int]] = set()
    for layer in _overlap_layers(engine):
        for f, area, part in m.pieces(layer):
            wanted.add((layer, f))
            feature = _feature(engine, layer, f)
            pieces.append({"layer": layer, "feature_id": _text(feature.get("id")),
                           "feature_name": _text(feature.get("name")), "area_m2": area,
                           "geometry": part})
    links, seen = [], set()
    near_features: list[tuple[str, int]] = []
    for r in result.rules:
        if r.distance_m is None or r.distance_m <= 0 or r.layer in seen:
            continue
        seen.add(r.layer)
        near = m.nearest(r.layer)
        line = m.links.get(r.layer)
        if line is not None and near is not None:
            near_features.append((r.layer, near[0]))
            links.append({"rule_id": r.rule_id, "layer": r.layer,
                          "feature_name": r.feature_name, "distance_m": r.distance_m,
                          "geometry": line})
    # the whole features around the parcel, cut to a window around it and its links
    reach = max([lk["distance_m"] for lk in links if lk["distance_m"] <= CONTEXT_MAX_M]
                + [CONTEXT_MIN_M])
    window = shapely.box(*m.metric.bounds).buffer(reach * 1.2, join_style="mitre")
    wanted |= set(near_features)
    features = []
    for layer, f in sorted(wanted, key=lambda lf: (_overlap_order(engine, lf[0]), lf[1])):
        geom = engine.projected[layer][f] if layer in engine.projected else None
        if geom is None or shapely.is_empty(geom):
            continue
        cut = shapely.intersection(geom, window)
        if shapely.is_empty(cut):
            continue
        feature = _feature(engine, layer, f)
        features.append({"layer": layer, "feature_id": _text(feature.get("id")),
                         "feature_name": _text(feature.get("name")),
                         "geometry": _reproject(cut, m.back)})
    return {"pieces": pieces, "links": links, "features": features}


def _overlap_order(engine: Any, layer: str) -> int:
    names = list(engine.prepared.layer_names)
    return names.index(layer) if layer in names else len(names)


def check_parcel(engine: Any, polygon_lonlat: Any, *, site_type: str | None = None,
                 industry: str | None = None, attrs: Mapping[str, Any] | None = None,
                 point: str = "site") -> ParcelResult:
    """Check one parcel (a lon/lat polygon or multipolygon, in the engine's geographic CRS,
    WGS84 for the stored layers) against every rule that applies or may apply to the
    described project. See the module docstring for what is measured and how."""
    geom = shapely.make_valid(polygon_lonlat) if not shapely.is_valid(polygon_lonlat) \
        else polygon_lonlat
    geom = _polygonal(geom)
    if geom is None or shapely.is_empty(geom):
        raise ValueError("a parcel must be a polygon or multipolygon with an area")
    site = _site(site_type, industry, attrs)
    m = _Measurer(engine, geom)
    area = m.area_m2

    overlaps = []
    for layer in _overlap_layers(engine):
        ids = engine.prepared.features[layer]
        for f, a in m.overlaps(layer):
            overlaps.append(Overlap(layer, _text(ids["id"][f]), _text(ids["name"][f]), a,
                                    min(a / area, 1.0) if area > 0 else 0.0))

    rules, conditions = rules_for_site(engine.rules, site, point)

    n = len(rules)
    distance = np.full(n, np.inf)
    inside = np.zeros(n, dtype=bool)
    found = np.zeros(n, dtype=bool)
    feats = np.full(n, -1, dtype=np.int64)
    overlap_m2: list[float | None] = [None] * n
    for j, r in enumerate(rules):
        near = m.nearest(r.layer)
        if near is not None:
            found[j] = True
            feats[j], distance[j] = near
        if r.test_code in (INSIDE, NOT_INSIDE):
            ov = m.overlaps(r.layer)
            total = m.covered(r.layer)
            overlap_m2[j] = min(total, area)
            if ov:
                feats[j] = max(ov, key=lambda fa: fa[1])[0]
            if r.test_code == INSIDE:
                inside[j] = total > 0.0 or (near is not None and near[1] < INSIDE_TOLERANCE_M)
            else:
                inside[j] = area > 0 and total >= area * (1.0 - WHOLE_TOLERANCE)
        elif near is not None:
            inside[j] = near[1] < INSIDE_TOLERANCE_M

    decision = decide(np.array([r.test_code for r in rules], dtype=np.int64),
                      np.array([r.limit_m for r in rules], dtype=float), distance, inside,
                      found, np.array([c is None for c in conditions], dtype=bool),
                      np.array([c is not None for c in conditions], dtype=bool)) \
        if n else np.zeros(0, dtype=np.int64)

    measures, hits, conditional = [], [], []
    for j, r in enumerate(rules):
        f = int(feats[j])
        feature = _feature(engine, r.layer, f) if f >= 0 else {}
        d = float(distance[j]) if found[j] else None
        measures.append(RuleMeasure(
            rule_id=r.id, test=r.test, layer=r.layer, applies=conditions[j] is None,
            feature_id=_text(feature.get("id")), feature_name=_text(feature.get("name")),
            distance_m=d, overlap_m2=overlap_m2[j], outcome=OUTCOMES[int(decision[j])]))
        if decision[j] == 0:
            continue
        hit = make_hit(r, float(distance[j]), bool(inside[j]) and r.test_code != NOT_INSIDE,
                       feature, point)
        if decision[j] == CONDITIONAL_HIT:
            conditional.append(ParcelHit(conditional_hit(hit, r, *conditions[j]),
                                         overlap_m2[j]))
        else:
            hits.append(ParcelHit(hit, overlap_m2[j]))

    coverage = getattr(engine, "coverage", None)
    covered = True if coverage is None else bool(shapely.intersects(coverage, geom))
    return ParcelResult(area=GroundArea(area), overlaps=tuple(overlaps), rules=tuple(measures),
                        hits=tuple(hits), conditional_hits=tuple(conditional), covered=covered,
                        input={"point": point, **site})

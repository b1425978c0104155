"""The parcel siting check on the Jiaozuo data: ground areas, overlaps, distances, verdicts.

Parcels are built in the city's metric CRS (EPSG:4547, CGCS2000 3° zone 38) where their
size is known exactly, taken to lon/lat, and the answers are checked against
``pyproj.Geod`` on GRS80, not against the engine's own figures.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import MultiPolygon, Polygon, box

from geoapp.domain.parcels import MU_M2
from geoapp.spatial.parcels import check_parcel, ground_area_m2

GEOD = Geod(ellps="GRS80")
TO_LONLAT = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)


def lonlat(geom_metric):
    return shapely.transform(geom_metric, lambda xy: np.column_stack(
        TO_LONLAT.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture(scope="module")
def engine(jiaozuo_engine):
    eng = jiaozuo_engine.engine
    assert eng.metric_crs.upper() == "EPSG:4547"
    return eng


def long_segment(geom, min_len: float):
    """The midpoint and unit direction of the longest straight piece of a line or polygon
    boundary, which must be at least ``min_len`` m long."""
    lines = shapely.boundary(geom) if geom.geom_type.endswith("Polygon") else geom
    best = None
    for ring in shapely.get_parts(lines):
        xy = shapely.get_coordinates(ring)
        d = np.diff(xy, axis=0)
        ln = np.hypot(d[:, 0], d[:, 1])
        i = int(np.argmax(ln))
        if best is None or ln[i] > best[0]:
            best = (ln[i], (xy[i] + xy[i + 1]) / 2, d[i] / ln[i])
    assert best is not None and best[0] >= min_len, "no straight piece long enough"
    return best[1], best[2]


def square(cx: float, cy: float, side: float, u=(1.0, 0.0)):
    """A square in metric coordinates centred on (cx, cy), one side along ``u``."""
    ux, uy = u
    vx, vy = -uy, ux
    h = side / 2
    return Polygon([(cx + sx * h * ux + sy * h * vx, cy + sx * h * uy + sy * h * vy)
                    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])


def test_square_of_100_m_is_a_hectare_and_15_mu(engine):
    c = engine.projected["urban_core"][0].centroid
    result = check_parcel(engine, lonlat(square(c.x, c.y, 100.0)), site_type="enterprise",
                          industry="电子")
    assert result.area.m2 == pytest.approx(10000.0, rel=1e-3)
    assert result.area.mu == pytest.approx(15.0, rel=1e-3)
    assert result.area.ha == pytest.approx(1.0, rel=1e-3)
    assert result.area.m2 / MU_M2 == pytest.approx(result.area.mu)
    d = result.to_dict()
    assert d["area_m2"] == pytest.approx(10000.0, rel=1e-3)
    # wholly inside the urban core: the whole parcel overlaps it
    core = [o for o in result.overlaps if o.layer == "urban_core"]
    assert core and core[0].share == pytest.approx(1.0)
    assert core[0].area_m2 == pytest.approx(result.area.m2)


def test_parcel_across_a_zone_edge_is_half_inside(engine):
    mid, u = long_segment(engine.projected["urban_core"][0], 250.0)
    parcel = lonlat(square(mid[0], mid[1], 100.0, u))
    result = check_parcel(engine, parcel, site_type="livestock_farm")
    core = [o for o in result.overlaps if o.layer == "urban_core"]
    assert len(core) == 1
    assert core[0].share == pytest.approx(0.5, abs=0.01)
    assert core[0].area_m2 == pytest.approx(result.area.m2 / 2, rel=0.02)
    rule = next(r for r in result.rules if r.layer == "urban_core" and r.test == "inside")
    assert rule.overlap_m2 == pytest.approx(core[0].area_m2)
    assert rule.distance_m == 0.0 and rule.outcome == "hit"
    hit = next(h for h in result.hits if h.hit.rule_id == rule.rule_id)
    assert hit.to_dict()["overlap_m2"] == pytest.approx(core[0].area_m2, abs=0.1)


def _brute_force_distance(engine, parcel_metric, layer: str) -> float:
    """Minimum Geod distance between the parcel's boundary and the layer's lines, both
    densified to a few metres and taken to lon/lat (vertex to vertex)."""
    pb = lonlat(shapely.segmentize(parcel_metric.boundary, 2.0))
    near = parcel_metric.buffer(5000.0)
    lines = [shapely.segmentize(shapely.intersection(g, near), 2.0)
             for g in engine.projected[layer] if g.intersects(near)]
    assert lines
    a = shapely.get_coordinates(pb)
    b = np.concatenate([shapely.get_coordinates(lonlat(g)) for g in lines])
    best = math.inf
    for lon, lat in a:
        _, _, d = GEOD.inv(np.full(len(b), lon), np.full(len(b), lat), b[:, 0], b[:, 1])
        best = min(best, float(np.min(d)))
    return best


def test_distance_to_a_river_agrees_with_geod(engine):
    mid, u = long_segment(engine.projected["rivers"][0], 300.0)
    n = np.array([-u[1], u[0]])
    centre = mid + n * 1500.0
    parcel_metric = square(centre[0], centre[1], 120.0, (0.6, 0.8))
    result = check_parcel(engine, lonlat(parcel_metric), site_type="livestock_farm")
    rule = next(r for r in result.rules if r.layer == "rivers")
    expected = _brute_force_distance(engine, parcel_metric, "rivers")
    assert rule.distance_m == pytest.approx(expected, abs=0.5)
    assert rule.distance_m > 400.0  # the geometry was placed away from every river


def test_livestock_farm_100_m_from_a_river_fails(engine):
    mid, u = long_segment(engine.projected["rivers"][0], 500.0)
    n = np.array([-u[1], u[0]])
    side = 60.0
    centre = mid + n * (100.0 + side / 2)
    parcel_metric = square(centre[0], centre[1], side, u)
    result = check_parcel(engine, lonlat(parcel_metric), site_type="livestock_farm")
    assert result.verdict == "fail"
    rule = next(r for r in result.rules if r.rule_id == "riverside_livestock")
    assert rule.outcome == "hit" and rule.distance_m == pytest.approx(100.0, abs=0.5)
    assert rule.distance_m == pytest.approx(
        _brute_force_distance(engine, parcel_metric, "rivers"), abs=0.5)
    hit = next(h for h in result.hits if h.hit.rule_id == "riverside_livestock")
    assert hit.hit.distance_m == pytest.approx(100.0, abs=0.5)
    assert hit.overlap_m2 is None
    # without a site type the same geometry is a conditional hit: needs information
    unknown = check_parcel(engine, lonlat(parcel_metric))
    assert "riverside_livestock" in {h.hit.rule_id for h in unknown.conditional_hits}
    assert "riverside_livestock" not in {h.hit.rule_id for h in unknown.hits}


KINDS = [(None, None), ("livestock_farm", None), ("enterprise", "化工"),
         ("enterprise", "电子"), ("enterprise", None), ("scattered_workshop", "家具")]


def test_tiny_parcel_gets_the_point_verdict(engine):
    rng = np.random.default_rng(14)
    lon0, lat0, lon1, lat1 = engine.coverage.bounds
    pts = np.column_stack([rng.uniform(lon0, lon1, 40), rng.uniform(lat0, lat1, 40)])
    pts = np.vstack([pts, [[116.4, 39.9]]])  # Beijing: outside the city's data
    seen = set()
    to_metric = engine.prepared.to_metric
    for lon, lat in pts:
        x, y = to_metric.transform(lon, lat)
        parcel = lonlat(box(x - 0.05, y - 0.05, x + 0.05, y + 0.05))
        c = parcel.centroid
        for site_type, industry in KINDS:
            p = engine.check_point(c.x, c.y, site_type=site_type, industry=industry)
            q = check_parcel(engine, parcel, site_type=site_type, industry=industry)
            assert q.verdict == p.verdict, (lon, lat, site_type, industry)
            assert {h.hit.rule_id for h in q.hits} == {h.rule_id for h in p.hits}
            assert {h.hit.rule_id for h in q.conditional_hits} == \
                {h.rule_id for h in p.conditional_hits}
            for h in q.hits if p.covered else ():  # far outside, distances are rough
                ph = next(k for k in p.hits if k.rule_id == h.hit.rule_id)
                assert h.hit.distance_m == pytest.approx(ph.distance_m, abs=0.5)
            seen.add(str(q.verdict))
    assert {"fail", "pass", "needs_info", "out_of_area"} <= seen


def test_parcel_outside_the_city_is_out_of_area(engine):
    x, y = engine.prepared.to_metric.transform(116.4, 39.9)
    result = check_parcel(engine, lonlat(square(x, y, 100.0)), site_type="enterprise",
                          industry="电子")
    assert result.verdict == "out_of_area" and not result.covered


def test_hole_and_multipolygon(engine):
    c = engine.projected["urban_core"][0].centroid
    outer = square(c.x, c.y, 200.0)
    inner = square(c.x, c.y, 100.0)
    # both rings counter-clockwise: the area must not depend on the holes' orientation
    holed = Polygon(outer.exterior.coords, [inner.exterior.coords])
    outer_ll, inner_ll = lonlat(outer), lonlat(inner)
    expected = abs(GEOD.geometry_area_perimeter(outer_ll)[0]) - \
        abs(GEOD.geometry_area_perimeter(inner_ll)[0])
    result = check_parcel(engine, lonlat(holed), site_type="enterprise", industry="电子")
    assert result.area.m2 == pytest.approx(expected, rel=1e-9)
    assert result.area.m2 == pytest.approx(30000.0, rel=1e-3)
    core = next(o for o in result.overlaps if o.layer == "urban_core")
    assert core.area_m2 == pytest.approx(expected, rel=1e-6)

    # one part in the urban core, one far outside it (but inside the city's data)
    far = None
    x0, y0 = c.x, c.y
    for dx in np.arange(5000.0, 60000.0, 1000.0):
        for sgn in (1, -1):
            cand = square(x0 + sgn * dx, y0, 100.0)
            if not any(g.intersects(cand.buffer(10)) for g in engine.projected["urban_core"]) \
                    and engine.coverage.contains(lonlat(cand)):
                far = cand
                break
        if far is not None:
            break
    assert far is not None
    multi = MultiPolygon([square(c.x, c.y, 100.0), far])
    parts_area = ground_area_m2(lonlat(square(c.x, c.y, 100.0))) + ground_area_m2(lonlat(far))
    result = check_parcel(engine, lonlat(multi), site_type="enterprise", industry="电子")
    assert result.area.m2 == pytest.approx(parts_area, rel=1e-9)
    assert result.area.m2 == pytest.approx(20000.0, rel=1e-3)
    core = next(o for o in result.overlaps if o.layer == "urban_core")
    assert core.share == pytest.approx(0.5, abs=1e-3)


def test_thousand_vertex_parcel_measures_its_circle(engine):
    """A 1,000-vertex parcel (a 300 m circle) is measured as a circle; its speed is measured
    by bench/bench_parcels.py, not asserted here."""
    c = engine.projected["urban_core"][0].centroid
    circle = lonlat(shapely.Point(c.x, c.y).buffer(300.0, quad_segs=250))
    assert len(shapely.get_coordinates(circle)) >= 1000
    result = check_parcel(engine, circle, site_type="enterprise", industry="化工")
    assert result.area.m2 == pytest.approx(math.pi * 300.0 ** 2, rel=1e-3)


def test_features_overlapping_each_other_are_not_counted_twice(engine):
    """Two grade-2 water-source rings share a strip: a parcel over the strip and around it is
    inside the rule's layer by the area of the UNION of the features, never more than the
    parcel (a parcel 60 % in a park whose start-up zone overlaps it must stay 60 %)."""
    layer = next(r.layer for r in engine.rules if r.id == "water_source_protection_2")
    geoms = list(engine.projected[layer])
    pairs = [(a, b) for i, a in enumerate(geoms) for b in geoms[i + 1:]
             if a.intersection(b).area > 1000.0]
    assert pairs, "the shipped grade-2 zones overlap somewhere"
    a, b = pairs[0]
    shared = a.intersection(b)
    c = shared.representative_point()
    side = max(200.0, math.sqrt(shared.area) * 2.0)
    parcel_metric = box(c.x - side / 2, c.y - side / 2, c.x + side / 2, c.y + side / 2)
    result = check_parcel(engine, lonlat(parcel_metric), site_type="livestock_farm")
    rule = next(r for r in result.rules if r.rule_id == "water_source_protection_2")
    union = shapely.union_all([g for g in geoms if g.intersects(parcel_metric)])
    inside = shapely.orient_polygons(lonlat(parcel_metric.intersection(union)),
                                     exterior_cw=False)
    expected = abs(GEOD.geometry_area_perimeter(inside)[0])
    assert rule.overlap_m2 == pytest.approx(expected, rel=1e-3)
    grade2 = {str(i) for i in engine.prepared.features[layer]["id"]}
    summed = sum(o.area_m2 for o in result.overlaps if str(o.feature_id) in grade2)
    assert rule.overlap_m2 <= result.area.m2
    assert summed > expected * 1.01, "the case would be counted twice by a sum"

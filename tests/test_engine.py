"""The rule engine on tiny hand-built layers near Jiaozuo (lon/lat, WGS84).

Test points are placed with ``pyproj.Geod.fwd`` at a known ground distance from a feature,
so the engine's figures are checked against geodesy, not against themselves.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import LineString, MultiLineString, Point, box

from geoapp.domain.results import round_distance
from geoapp.domain.rules import load_rules
from geoapp.spatial.crs import array_to_wgs84, to_wgs84
from geoapp.spatial.engine import RuleEngine

METRIC = "EPSG:4547"
GEOD = Geod(ellps="GRS80")
RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "rules.yaml"

RULES = """
version: 1
rules:
  - id: riverside_livestock
    title: {zh: 河道禁养, en: No farms near rivers}
    applies_to: {any_of: [{site_types: [livestock_farm]}, {industries: [畜禽养殖]}]}
    layer: rivers
    test: within_distance
    distance_m: 400
    severity: high
    basis: 《畜禽规模养殖污染防治条例》第十一条
    action: 责令搬迁
  - id: canal_protection_1
    title: {zh: 总干渠一级保护区, en: Canal 50 m}
    applies_to: {industries: [化工, 家具]}
    layer: canal
    test: within_distance
    distance_m: 50
    severity: high
    basis: 《南水北调工程供用水管理条例》
    action: 关闭
  - id: canal_protection_2
    title: {zh: 总干渠二级保护区, en: Canal 1 km}
    applies_to: {industries: [化工, 家具]}
    layer: canal
    test: within_distance
    distance_m: 1000
    severity: medium
    basis: 《南水北调工程供用水管理条例》
    action: 整改
  - id: urban_core_heavy_industry
    title: {zh: 主城区重点行业, en: Key industry in the core}
    applies_to: {industries: [化工, 家具]}
    layer: urban_core
    test: inside
    severity: medium
    basis: 国发〔2018〕22号
    action: 纳入台账
  - id: chemical_outside_park
    title: {zh: 化工未入园, en: Chemical outside park}
    applies_to: {industries: [化工]}
    layer: chemical_parks
    test: not_inside
    severity: high
    basis: 国办发〔2017〕77号
    action: 搬迁入园
  - id: hotspot_grid
    title: {zh: 热点网格, en: Hotspot grid}
    applies_to: {site_types: [enterprise]}
    layer: hotspot_grids
    test: inside
    severity: low
    severity_by: {attr: key, map: {"true": medium, "false": low}}
    basis: 生态环境部
    action: 巡查
  - id: eco_redline
    title: {zh: 生态红线, en: Red line}
    applies_to: {}
    layer: eco_redline
    test: inside
    severity: high
    basis: 厅字〔2017〕2号
    action: 恢复原状
  - id: relocation_destination
    title: {zh: 新址不在集聚区, en: New site outside a cluster}
    applies_to: {classifications: [relocate], point: new_site}
    layer: industrial_clusters
    test: not_inside
    severity: medium
    basis: 百企退城实施方案
    action: 退回选址
  - id: scattered_relapse
    title: {zh: 疑似死灰复燃, en: Possible relapse}
    applies_to: {site_types: [scattered_workshop], statuses: [found]}
    source: {sites: scattered_workshop, where: {statuses: [banned]}}
    test: within_distance
    distance_m: 500
    severity: high
    basis: 国发〔2018〕22号
    action: 两断三清
"""

# A river at the western edge of the city (far from the 114°E central meridian, where the
# projection's scale error is largest), running roughly north-south.
RIVER = [(112.62, 35.02), (112.63, 35.10), (112.625, 35.20)]
CANAL = [(113.00, 35.05), (113.20, 35.15)]
CORE = box(113.20, 35.20, 113.30, 35.26)
PARK = box(112.90, 35.20, 112.95, 35.24)


def _layer(geoms, **cols) -> gpd.GeoDataFrame:
    ids = [f"{i}" for i in range(len(geoms))]
    return gpd.GeoDataFrame({"id": cols.pop("id", ids), "name": cols.pop("name", ids), **cols},
                            geometry=list(geoms), crs="EPSG:4326")


def tiny_layers() -> dict[str, gpd.GeoDataFrame]:
    return {
        "rivers": _layer([LineString(RIVER),
                          MultiLineString([[(113.40, 35.00), (113.40, 35.05)],
                                           [(113.50, 35.30), (113.55, 35.30)]])],
                         id=["r1", "r2"], name=["大沙河", "蟒河"]),
        "canal": _layer([LineString(CANAL)], id=["c1"], name=["南水北调总干渠"]),
        "urban_core": _layer([CORE], id=["u1"], name=["主城区"]),
        "chemical_parks": _layer([PARK], id=["p1"], name=["化工园区"]),
        "hotspot_grids": _layer([box(113.00, 35.30, 113.03, 35.33), box(113.03, 35.30, 113.06, 35.33)],
                                id=["g1", "g2"], name=["网格1", "网格2"], key=[True, False]),
        "eco_redline": _layer([]),
        "industrial_clusters": _layer([box(113.10, 35.00, 113.15, 35.04)], id=["i1"],
                                      name=["集聚区"]),
    }


def tiny_sites() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"id": ["w1", "w2"], "name": ["旧作坊", "在查作坊"],
                             "site_type": ["scattered_workshop"] * 2,
                             "status": ["banned", "found"]},
                            geometry=[Point(113.30, 35.10), Point(113.35, 35.10)], crs="EPSG:4326")


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return RuleEngine.build(tiny_layers(), load_rules(RULES), METRIC, sites=tiny_sites())


def _offset(lon, lat, towards_lon, towards_lat, distance, side=90.0):
    """A point ``distance`` metres from (lon, lat), perpendicular to the line towards the other."""
    az = GEOD.inv(lon, lat, towards_lon, towards_lat)[0]
    x, y, _ = GEOD.fwd(lon, lat, az + side, distance)
    return x, y


def _hits(result) -> dict[str, object]:
    return {h.rule_id: h for h in result.hits}


@pytest.mark.parametrize("vertex", [1, 0])
def test_farm_395m_from_river_is_flagged_and_405m_is_not(engine, vertex):
    lon, lat = RIVER[vertex]
    other = RIVER[vertex + 1]
    near = engine.check_point(*_offset(lon, lat, *other, 395.0), site_type="livestock_farm")
    far = engine.check_point(*_offset(lon, lat, *other, 405.0), site_type="livestock_farm")
    hit = _hits(near)["riverside_livestock"]
    assert hit.feature_name == "大沙河" and hit.severity == "high"
    assert hit.distance_m == pytest.approx(395.0, abs=0.15)
    assert "riverside_livestock" not in _hits(far)
    assert far.verdict == "pass"


def test_point_on_the_middle_of_a_river_segment_is_at_distance_zero(engine):
    lon, lat, _ = GEOD.fwd(*RIVER[0], GEOD.inv(*RIVER[0], *RIVER[1])[0], 4000.0)
    hit = _hits(engine.check_point(lon, lat, site_type="livestock_farm"))["riverside_livestock"]
    assert hit.distance_m == pytest.approx(0.0, abs=0.5)


@pytest.mark.parametrize(("distance", "expected"), [
    (45.0, {"canal_protection_1", "canal_protection_2"}),
    (55.0, {"canal_protection_2"}),
    (995.0, {"canal_protection_2"}),
    (1005.0, set()),
])
def test_canal_bands_of_50m_and_1km(engine, distance, expected):
    mid_lon, mid_lat, _ = GEOD.fwd(*CANAL[0], GEOD.inv(*CANAL[0], *CANAL[1])[0], 5000.0)
    for side in (90.0, -90.0):
        lon, lat = _offset(mid_lon, mid_lat, *CANAL[1], distance, side)
        got = {h.rule_id for h in engine.check_point(lon, lat, "enterprise", "家具").hits}
        assert got & {"canal_protection_1", "canal_protection_2"} == expected
        if expected:
            d = _hits(engine.check_point(lon, lat, "enterprise", "家具"))["canal_protection_2"]
            assert d.distance_m == pytest.approx(distance, abs=0.15)


@pytest.mark.parametrize(("lon", "lat", "inside"), [
    (113.25, 35.23, True),       # well inside
    (113.20, 35.20, True),       # on a corner
    (113.25, 35.26, True),       # on the middle of an edge
    (113.25, 35.2605, False),    # 55 m outside
    (113.35, 35.23, False),
])
def test_inside_outside_and_on_the_boundary_of_a_zone(engine, lon, lat, inside):
    hits = _hits(engine.check_point(lon, lat, "enterprise", "家具"))
    assert ("urban_core_heavy_industry" in hits) is inside
    if inside:
        assert hits["urban_core_heavy_industry"].distance_m == 0.0


def test_hit_names_the_multipart_feature_whose_part_is_near(engine):
    lon, lat = _offset(113.50, 35.30, 113.55, 35.30, 200.0, side=-90.0)
    hit = _hits(engine.check_point(lon, lat, "livestock_farm"))["riverside_livestock"]
    assert (hit.feature_id, hit.feature_name) == ("r2", "蟒河")
    assert hit.distance_m == pytest.approx(200.0, abs=0.15)


def test_empty_layer_gives_no_hit_and_no_nearest_entry(engine):
    result = engine.check_point(113.25, 35.23, "enterprise", "家具")
    assert "eco_redline" not in _hits(result)
    assert "eco_redline" not in {n.layer for n in result.nearest}


def test_chemical_plant_outside_the_park_is_flagged_with_distance_to_it(engine):
    lon, lat, _ = GEOD.fwd(112.95, 35.22, 90.0, 2500.0)
    hit = _hits(engine.check_point(lon, lat, "enterprise", "化工"))["chemical_outside_park"]
    assert hit.feature_name == "化工园区"
    assert hit.distance_m == pytest.approx(2500.0, abs=0.5)
    inside = engine.check_point(112.92, 35.22, "enterprise", "化工")
    assert "chemical_outside_park" not in _hits(inside)


def test_furniture_enterprise_next_to_a_river_is_not_checked_by_the_livestock_rule(engine):
    lon, lat = _offset(*RIVER[1], *RIVER[2], 100.0)
    assert "riverside_livestock" not in _hits(engine.check_point(lon, lat, "enterprise", "家具"))
    assert "riverside_livestock" in _hits(engine.check_point(lon, lat, "enterprise", "畜禽养殖"))


def test_key_hotspot_cell_ranks_higher(engine):
    key = _hits(engine.check_point(113.01, 35.31, "enterprise", "食品"))["hotspot_grid"]
    plain = _hits(engine.check_point(113.05, 35.31, "enterprise", "食品"))["hotspot_grid"]
    assert (key.feature_id, key.severity) == ("g1", "medium")
    assert (plain.feature_id, plain.severity) == ("g2", "low")


def test_new_find_near_a_banned_workshop_is_a_possible_relapse(engine):
    lon, lat, _ = GEOD.fwd(113.30, 35.10, 30.0, 480.0)
    hit = _hits(engine.check_point(lon, lat, "scattered_workshop",
                                   attrs={"status": "found"}))["scattered_relapse"]
    assert hit.feature_id == "w1" and hit.distance_m == pytest.approx(480.0, abs=0.15)
    assert "scattered_relapse" not in _hits(engine.check_point(
        113.35, 35.10, "scattered_workshop", attrs={"status": "found"}))


def test_nearest_lists_every_layer_with_features(engine):
    result = engine.check_point(113.0, 35.1, "enterprise", "食品")
    layers = {n.layer for n in result.nearest}
    assert {"rivers", "canal", "urban_core", "chemical_parks", "hotspot_grids"} <= layers
    assert result.to_dict()["point"] == {"lon": 113.0, "lat": 35.1}


def _random_sites(n, seed=7):
    rng = np.random.default_rng(seed)
    lon = rng.uniform(112.55, 113.6, n)
    lat = rng.uniform(34.98, 35.36, n)
    # Pull a third of the sites close to the river and the canal so bands are exercised.
    k = n // 3
    t = rng.uniform(0, 1, k)
    lon[:k] = np.where(t < 0.5, 112.625, 113.0 + 0.2 * t) + rng.normal(0, 0.006, k)
    lat[:k] = np.where(t < 0.5, 35.02 + 0.35 * t, 35.05 + 0.1 * t) + rng.normal(0, 0.004, k)
    site_type = rng.choice(["enterprise", "livestock_farm", "scattered_workshop"], n)
    industry = rng.choice(["化工", "家具", "畜禽养殖", "食品"], n)
    status = rng.choice(["found", "banned", None], n)
    classification = rng.choice(["relocate", "upgrade"], n)
    new_lon = lon + rng.normal(0, 0.05, n)
    new_lat = lat + rng.normal(0, 0.03, n)
    return lon, lat, site_type, industry, status, classification, new_lon, new_lat


def test_flag_and_check_point_agree_on_random_sites(engine):
    lon, lat, st, ind, status, cls, nlon, nlat = _random_sites(3000)
    flagged = engine.flag(lon, lat, st, ind, status=status, classification=cls,
                          new_lon=nlon, new_lat=nlat)
    assert list(flagged.columns) == ["row", "rule_id", "feature_id", "feature_name",
                                     "distance_m", "severity", "conditional", "point"]
    expected = []
    for i in range(len(lon)):
        attrs = {"status": status[i], "classification": cls[i]}
        for point, (x, y) in (("site", (lon[i], lat[i])), ("new_site", (nlon[i], nlat[i]))):
            result = engine.check_point(x, y, st[i], ind[i], attrs=attrs, point=point)
            for h in (*result.hits, *result.conditional_hits):
                expected.append((i, h.rule_id, h.feature_id, h.severity, h.point,
                                 h in result.conditional_hits, h.distance_m))
    got = list(flagged[["row", "rule_id", "feature_id", "severity", "point", "conditional",
                        "distance_m"]].itertuples(index=False, name=None))
    assert len(got) > 500
    assert sorted(g[:6] for g in got) == sorted(e[:6] for e in expected)
    exp = {e[:6]: e[6] for e in expected}
    assert max(abs(g[6] - exp[g[:6]]) for g in got) <= 0.1 + 1e-9
    assert {"riverside_livestock", "canal_protection_1", "canal_protection_2",
            "chemical_outside_park", "relocation_destination"} <= set(flagged.rule_id)


def test_flag_handles_no_sites_and_sites_no_rule_concerns(engine):
    empty = engine.flag(np.array([]), np.array([]), np.array([]), np.array([]))
    assert len(empty) == 0 and "distance_m" in empty.columns
    none = engine.flag(np.array([113.0]), np.array([35.1]), np.array(["enterprise"]),
                       np.array(["食品"]))
    assert len(none) == 0


def _geodesic_distance_to_line(lon, lat, line):
    """Brute force: densify each segment along the geodesic, take the smallest distance."""
    best = np.inf
    for (a_lon, a_lat), (b_lon, b_lat) in zip(line[:-1], line[1:], strict=True):
        pts = np.array([(a_lon, a_lat), *GEOD.npts(a_lon, a_lat, b_lon, b_lat, 20000),
                        (b_lon, b_lat)])
        d = GEOD.inv(np.full(len(pts), lon), np.full(len(pts), lat), pts[:, 0], pts[:, 1])[2]
        best = min(best, d.min())
    return best


def test_distances_agree_with_geodesy_within_half_a_metre_at_the_western_edge(engine):
    rng = np.random.default_rng(3)
    for _ in range(25):
        i = rng.integers(0, 2)
        frac = rng.uniform(0.05, 0.95)
        az = GEOD.inv(*RIVER[i], *RIVER[i + 1])[0]
        seg_len = GEOD.inv(*RIVER[i], *RIVER[i + 1])[2]
        on_lon, on_lat, _ = GEOD.fwd(*RIVER[i], az, frac * seg_len)
        lon, lat, _ = GEOD.fwd(on_lon, on_lat, az + rng.choice([90, -90]) + rng.normal(0, 10),
                               rng.uniform(50, 2000))
        truth = _geodesic_distance_to_line(lon, lat, RIVER)
        near = {n.layer: n for n in engine.check_point(lon, lat).nearest}["rivers"]
        assert near.distance_m == pytest.approx(truth, abs=0.5)
        assert abs(near.distance_m - truth) < 0.1  # in practice far better than required


def test_relocation_new_site_outside_clusters_is_flagged(engine):
    df = engine.flag(np.array([113.25, 113.25]), np.array([35.23, 35.23]),
                     np.array(["enterprise"] * 2), np.array(["家具"] * 2),
                     classification=np.array(["relocate", "relocate"]),
                     new_lon=np.array([113.12, 113.30]), new_lat=np.array([35.02, 35.02]))
    reloc = df[df.rule_id == "relocation_destination"]
    assert list(reloc.row) == [1]
    assert reloc.distance_m.iloc[0] == pytest.approx(
        GEOD.inv(113.30, 35.02, 113.15, 35.02)[2], abs=0.5)


def test_sites_outside_the_indexed_extent_are_still_measured(engine):
    result = engine.check_point(114.5, 35.9, "enterprise", "化工")
    hit = _hits(result)["chemical_outside_park"]
    assert hit.distance_m > 100_000
    df = engine.flag(np.array([114.5]), np.array([35.9]), np.array(["enterprise"]),
                     np.array(["化工"]))
    assert df.distance_m.iloc[0] == hit.distance_m


def test_exclusion_zones_are_buffers_in_lon_lat_for_drawing(engine):
    zones = engine.exclusion_zones()
    assert zones.crs.to_epsg() == 4326
    by_rule = zones.set_index("rule_id")
    assert {"riverside_livestock", "canal_protection_2", "urban_core_heavy_industry",
            "chemical_outside_park", "scattered_relapse"} <= set(by_rule.index)
    assert "eco_redline" not in by_rule.index
    river_zone = by_rule.loc["riverside_livestock", "geometry"]
    assert by_rule.loc["riverside_livestock", "distance_m"] == 400
    inner = Point(_offset(*RIVER[1], *RIVER[2], 390.0))
    outer = Point(_offset(*RIVER[1], *RIVER[2], 410.0))
    assert river_zone.contains(inner) and not river_zone.contains(outer)


def test_engine_builds_with_the_shipped_rules_and_missing_layers(caplog):
    rules = load_rules(RULES_FILE.read_text(encoding="utf-8"))
    eng = RuleEngine.build({"rivers": tiny_layers()["rivers"]}, rules, METRIC)
    lon, lat = _offset(*RIVER[1], *RIVER[2], 300.0)
    result = eng.check_point(lon, lat, "livestock_farm", "畜禽养殖")
    assert [h.rule_id for h in result.hits] == ["riverside_livestock"]
    assert "layer canal missing" in caplog.text
    assert not shapely.is_empty(eng.exclusion_zones().geometry).any()


def test_single_point_nearest_matches_a_brute_force_search_on_thousands_of_points(engine):
    """The per-cell candidate lists only prune: every layer's nearest feature and distance
    must be what measuring against every feature of the layer gives."""
    lon, lat, *_ = _random_sites(1000, seed=11)
    x, y = engine.prepared.to_metric.transform(lon, lat)
    pts = shapely.points(x, y)
    checked = 0
    for name in engine.layer_names:
        geoms = np.asarray(engine.projected[name], dtype=object)
        if len(geoms) == 0:
            continue
        ids = engine.prepared.features[name]["id"]
        dist = shapely.distance(pts[:, None], geoms[None, :])
        best = dist.argmin(axis=1)
        near = shapely.get_coordinates(shapely.shortest_line(pts, geoms[best]))[1::2]
        want = np.where(dist.min(axis=1) < 0.05, 0.0, engine.prepared.ground.scale.ground(
            x, y, near[:, 0], near[:, 1], dist.min(axis=1)))
        for i in range(len(lon)):
            got = {n.layer: n for n in engine.check_point(lon[i], lat[i]).nearest}[name]
            assert abs(got.distance_m - want[i]) <= 0.051, (name, i)
            if np.sort(dist[i])[1:2].tolist() != [dist[i, best[i]]]:  # no tie
                assert got.feature_id == ids[best[i]], (name, i)
            checked += 1
    assert checked > 5000


@pytest.mark.parametrize("crs", ["wgs84", "cgcs2000", "EPSG:4490", "EPSG:4326"])
def test_scalar_coordinate_fast_path_gives_the_array_path_result(crs):
    rng = np.random.default_rng(3)
    x, y = rng.uniform(112.5, 113.7, 300), rng.uniform(34.8, 35.5, 300)
    lon, lat, bad, _ = array_to_wgs84(x, y, crs)
    assert not bad.any()
    got = np.array([to_wgs84(float(a), float(b), crs) for a, b in zip(x, y, strict=True)])
    assert np.array_equal(got, np.stack([lon, lat], 1))


def test_non_conformal_metric_crs_falls_back_to_geodesic_distances_and_paths_agree():
    """An equal-area projection has no single scale factor per point: distances are then
    taken geodesically between the site and its nearest point, in both paths."""
    albers = "+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80 +units=m +no_defs"
    eng = RuleEngine.build(tiny_layers(), load_rules(RULES), albers, sites=tiny_sites())
    assert not eng.prepared.ground.scale.ok
    lon, lat = RIVER[1]
    near = eng.check_point(*_offset(lon, lat, *RIVER[2], 395.0), site_type="livestock_farm")
    far = eng.check_point(*_offset(lon, lat, *RIVER[2], 405.0), site_type="livestock_farm")
    assert _hits(near)["riverside_livestock"].distance_m == pytest.approx(395.0, abs=0.5)
    assert "riverside_livestock" not in _hits(far)
    lon, lat, st, ind, status, cls, nlon, nlat = _random_sites(600, seed=21)
    flagged = eng.flag(lon, lat, st, ind, status=status, classification=cls,
                       new_lon=nlon, new_lat=nlat)
    expected = set()
    for i in range(len(lon)):
        attrs = {"status": status[i], "classification": cls[i]}
        for point, (x, y) in (("site", (lon[i], lat[i])), ("new_site", (nlon[i], nlat[i]))):
            for h in eng.check_point(x, y, st[i], ind[i], attrs=attrs, point=point).hits:
                expected.add((i, h.rule_id, h.feature_id, h.distance_m))
    got = set(flagged[["row", "rule_id", "feature_id", "distance_m"]]
              .itertuples(index=False, name=None))
    assert len(got) > 100
    assert {g[:3] for g in got} == {e[:3] for e in expected}


def test_distances_round_to_a_tenth_exactly_as_pythons_round():
    """``round_distance`` takes a faster path than ``round(d, 1)``; it must agree to the bit
    (and the sign of zero), ties included."""
    rng = np.random.default_rng(8)
    halves = np.arange(0, 400_000) / 20.0  # every .x5 up to 20 km: the tie cases
    values = np.concatenate([
        rng.uniform(0, 1, 200_000), rng.uniform(0, 60_000, 200_000),
        rng.exponential(500, 200_000), halves,
        np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf),
        -rng.uniform(0, 100, 1000),
        [0.0, -0.0, 0.05, 0.15, 0.25, 2.675, 1e-300, 399.95, 400.05, 123456.75, 5e8, 1e12,
         np.inf, -0.04, -np.inf]]).tolist()
    for v in values:
        got, want = round_distance(v), round(v + 0.0, 1)
        assert got == want and math.copysign(1.0, got) == math.copysign(1.0, want), v
    assert math.isnan(round_distance(float("nan")))

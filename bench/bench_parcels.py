"""Benchmark of the parcel siting check on the Jiaozuo layers.

Prints the median time of ``check_parcel`` (the rule engine alone) for a 1,000-vertex parcel
(a 300 m circle in the urban core) per kind of site, and the time for 1,000 parcels (random
50-300 m squares over the city) checked one after another; then the same through the whole
service (``services.parcels``: the rules, the 三线一单 control units with their 准入清单 and the
counties) on a database built in a temporary folder, the 1,000 parcels read from a GeoJSON
file, and the time to write their answer as XLSX and GeoPackage. Not part of the test suite.

    .venv/bin/python bench/bench_parcels.py [--runs 20] [--parcels 1000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely
import shapely.geometry
from pyproj import Transformer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's geoapp, not an installed one
sys.path.insert(0, str(ROOT / "bench"))

from bench_flag import load_city, rule_layers  # noqa: E402

from geoapp.config import load_settings  # noqa: E402
from geoapp.services import open_geoapp  # noqa: E402
from geoapp.services import parcels as service  # noqa: E402
from geoapp.spatial.engine import RuleEngine  # noqa: E402
from geoapp.spatial.parcels import check_parcel  # noqa: E402
from geoapp.storage.parcel_in import parcels_from_geojson  # noqa: E402

KINDS = [("no site type", None, None), ("enterprise 化工", "enterprise", "化工"),
         ("livestock farm", "livestock_farm", None)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--parcels", type=int, default=1000)
    args = ap.parse_args()

    layers, sites, rules, metric = load_city()
    engine = RuleEngine.build(rule_layers(layers, rules), rules, metric, sites=sites,
                              extent=tuple(layers["city"].total_bounds),
                              outline=layers["city"])
    to_lonlat = Transformer.from_crs(metric, "EPSG:4326", always_xy=True)
    to_metric = Transformer.from_crs("EPSG:4326", metric, always_xy=True)

    def lonlat(geom):
        return shapely.transform(geom, lambda xy: np.column_stack(
            to_lonlat.transform(xy[:, 0], xy[:, 1])))

    core = layers["urban_core"].union_all().centroid
    cx, cy = to_metric.transform(core.x, core.y)
    circle = lonlat(shapely.Point(cx, cy).buffer(300.0, quad_segs=250))
    print(f"metric CRS {metric}; parcel of {len(shapely.get_coordinates(circle))} vertices")
    for label, site_type, industry in KINDS:
        check_parcel(engine, circle, site_type=site_type, industry=industry)  # warm-up
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            check_parcel(engine, circle, site_type=site_type, industry=industry)
            times.append(time.perf_counter() - t)
        print(f"  1,000-vertex parcel, {label:<16} median {statistics.median(times) * 1e3:7.1f} ms"
              f"  (min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f}; {args.runs} runs)")

    rng = np.random.default_rng(7)
    x0, y0, x1, y1 = layers["city"].to_crs(metric).total_bounds
    n = args.parcels
    xs, ys, sides = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n), rng.uniform(50, 300, n)
    parcels = [lonlat(shapely.box(x - s / 2, y - s / 2, x + s / 2, y + s / 2))
               for x, y, s in zip(xs, ys, sides, strict=True)]
    t = time.perf_counter()
    verdicts: dict[str, int] = {}
    for p in parcels:
        v = str(check_parcel(engine, p, site_type="enterprise", industry="化工").verdict)
        verdicts[v] = verdicts.get(v, 0) + 1
    total = time.perf_counter() - t
    print(f"  {args.parcels:,} parcels (50-300 m squares over the city): {total:.2f} s "
          f"({total / args.parcels * 1e3:.2f} ms each); verdicts {verdicts}")
    service_figures(circle, parcels, args.runs)


def service_figures(circle, parcels, runs: int) -> None:
    """The whole parcel service on a freshly built database of the embedded data."""
    with tempfile.TemporaryDirectory(prefix="bench-parcels-") as tmp:
        core = open_geoapp(load_settings(Path(tmp), environ={}))
        one = parcels_from_geojson(json.dumps({"type": "Feature", "properties": {"id": "C"},
                                               "geometry": shapely.geometry.mapping(circle)}))
        service.check_parcels(core, one, site_type="enterprise", industry="化工")  # warm-up
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            report = service.check_parcels(core, one, site_type="enterprise", industry="化工")
            times.append(time.perf_counter() - t)
        units = len(report.answers[0].units)
        print(f"service: 1,000-vertex parcel with units and counties ({units} units) "
              f"median {statistics.median(times) * 1e3:.1f} ms (min {min(times) * 1e3:.1f}, "
              f"max {max(times) * 1e3:.1f}; {runs} runs)")
        fc = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"id": f"P{i:04d}"},
             "geometry": shapely.geometry.mapping(p)} for i, p in enumerate(parcels)]}
        src = Path(tmp) / "parcels.geojson"
        src.write_text(json.dumps(fc), encoding="utf-8")
        t = time.perf_counter()
        report = service.check_parcel_file(core, src, filename=src.name,
                                           site_type="enterprise", industry="化工")
        total = time.perf_counter() - t
        print(f"service: {len(parcels):,} parcels read from GeoJSON and checked: {total:.2f} s "
              f"({total / len(parcels) * 1e3:.2f} ms each)")
        for ext in (".xlsx", ".gpkg"):
            t = time.perf_counter()
            service.write_answer(core, report, Path(tmp) / f"answer{ext}")
            print(f"service: their answer written as {ext}: {time.perf_counter() - t:.2f} s")
        core.repo.close()


if __name__ == "__main__":
    main()

"""Timings of the coordinate conversions: a single form point and a batch file.

Run: python bench/bench_crs.py
"""

from __future__ import annotations

import time

import numpy as np

from geoapp.spatial import crs


def _best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    lon, lat = rng.uniform(73, 135, n), rng.uniform(18, 53, n)
    glon, glat = crs.wgs84_to_gcj02(lon, lat)
    x, y = crs.to_metric(lon[:100_000], lat[:100_000], "EPSG:4547")
    crs.to_wgs84(113.25, 35.2, "gcj02")  # warm the caches

    rows = [
        ("wgs84_to_gcj02, 1e6 points", _best(lambda: crs.wgs84_to_gcj02(lon, lat)), n),
        ("gcj02_to_wgs84 (iterated), 1e6 points", _best(lambda: crs.gcj02_to_wgs84(glon, glat)), n),
        ("array_to_wgs84 gcj02, 1e6 rows", _best(lambda: crs.array_to_wgs84(glon, glat, "gcj02")), n),
        ("array_to_wgs84 gk, 1e5 rows",
         _best(lambda: crs.array_to_wgs84(x, y, "gk", metric_crs="EPSG:4547")), 100_000),
        ("to_wgs84 gcj02, one point", _best(lambda: crs.to_wgs84(113.25, 35.2, "gcj02"), 50), 1),
        ("parse_dms, one text",
         _best(lambda: crs.parse_dms("东经113度14分30.5秒 北纬35度12分10秒"), 50), 1),
    ]
    for label, seconds, count in rows:
        print(f"{label:42s} {seconds * 1e3:9.2f} ms  ({seconds / count * 1e6:8.3f} µs each)")


if __name__ == "__main__":
    main()

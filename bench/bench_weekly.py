"""Benchmark of the whole weekly bulletin: 99 grids, 10,000 enterprises, 1,000 complaints.

    .venv/bin/python bench/bench_weekly.py [--runs 3] [--enterprises 10000] [--complaints 1000]

Setup (not timed): the embedded data folder is copied, its enterprise file grown to
--enterprises rows (synthetic copies spread over the hotspot grids' extent), and a database
built from it. A warnings file (120 warnings over the week and the 7 before) and a complaints
file (--complaints rows in the week, half with coordinates) are written as CSV.
Timed, per run: reading and validating both files, counting (per grid, per county, per
category, enterprises inside warned grids by spatial join, consecutive weeks, 8-week history)
and writing bulletin.txt, map.html, map.png, bulletin.docx and bulletin.xlsx. Target: < 10 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WEEK = "2026-W47"


def grow_enterprises(data: Path, n: int, bounds, rng) -> None:
    path = data / "sites" / "enterprises.csv"
    base = pd.read_csv(path, dtype=str, keep_default_na=False)
    extra = base.sample(n - len(base), replace=True, random_state=1).reset_index(drop=True)
    extra["id"] = [f"B{i:06d}" for i in range(len(extra))]
    extra["seq"] = ""
    extra["credit_code"] = ""
    extra["discharge_permit"] = ""
    extra["lon"] = rng.uniform(bounds[0], bounds[2], len(extra)).round(6).astype(str)
    extra["lat"] = rng.uniform(bounds[1], bounds[3], len(extra)).round(6).astype(str)
    for col in ("new_lon", "new_lat", "new_site_name"):
        extra[col] = ""
    pd.concat([base, extra], ignore_index=True).to_csv(path, index=False)


def event_files(folder: Path, codes: list[str], n_complaints: int, bounds, rng) -> tuple[Path, Path]:
    monday = pd.Timestamp("2026-11-16")
    start = monday - pd.Timedelta(days=49)
    times = start + pd.to_timedelta(rng.uniform(0, 56 * 24, 120), unit="h")
    w = pd.DataFrame({"grid_code": rng.choice(codes, 120),
                      "warned_at": times.strftime("%Y-%m-%dT%H:%M:%S"),
                      "pollutant": rng.choice(["PM2.5", "PM10", "O3"], 120),
                      "value": rng.integers(80, 300, 120)})
    ct = monday + pd.to_timedelta(rng.uniform(0, 7 * 24, n_complaints), unit="h")
    located = rng.random(n_complaints) < 0.5
    cx = (bounds[0] + bounds[2]) / 2
    cy = (bounds[1] + bounds[3]) / 2
    c = pd.DataFrame({
        "received_at": ct.strftime("%Y-%m-%dT%H:%M:%S"),
        "category": rng.choice(["大气", "噪声", "水", "固废", "其他"], n_complaints),
        "lon": np.where(located, (cx + rng.normal(0, 0.05, n_complaints)).round(6), np.nan),
        "lat": np.where(located, (cy + rng.normal(0, 0.03, n_complaints)).round(6), np.nan),
        "crs": np.where(located, "wgs84", ""),
        "district": np.where(located, "", "温县"),
    })
    wp, cp = folder / "warnings.csv", folder / "complaints.csv"
    w.to_csv(wp, index=False)
    c.to_csv(cp, index=False)
    return wp, cp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--enterprises", type=int, default=10_000)
    ap.add_argument("--complaints", type=int, default=1_000)
    args = ap.parse_args()

    import geopandas as gpd

    from geoapp.config import load_settings
    from geoapp.services import events, open_geoapp
    from geoapp.services.weekly import weekly_report, write_weekly

    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        shutil.copytree(ROOT / "data", data)
        grids = gpd.read_file(data / "boundaries" / "hotspot_grids.geojson")
        bounds = grids.total_bounds
        grow_enterprises(data, args.enterprises, bounds, rng)
        t = time.perf_counter()
        core = open_geoapp(load_settings(tmp / "instance", overrides={"DATA_DIR": str(data)},
                                         environ={}))
        print(f"setup: database with {len(core.repo.sites('enterprise'))} enterprises and "
              f"{len(grids)} grids built in {time.perf_counter() - t:.1f} s (not timed below)")
        wp, cp = event_files(tmp, list(grids["code"]), args.complaints, bounds, rng)
        timings = []
        for run in range(args.runs):
            t0 = time.perf_counter()
            warnings = events.load_events(core, "warnings", wp)
            complaints = events.load_events(core, "complaints", cp)
            t1 = time.perf_counter()
            report = weekly_report(core, WEEK, warnings=warnings, complaints=complaints)
            t2 = time.perf_counter()
            write_weekly(core, report, tmp / f"out{run}")
            t3 = time.perf_counter()
            timings.append(t3 - t0)
            print(f"run {run + 1}: total {t3 - t0:.2f} s (read+validate {t1 - t0:.2f}, "
                  f"count {t2 - t1:.2f}, write 5 files {t3 - t2:.2f}); "
                  f"{report.warnings_total} warnings, {report.complaints_total} complaints, "
                  f"{len(report.enterprises)} enterprises in warned grids")
        print(f"median {statistics.median(timings):.2f} s over {args.runs} runs "
              f"(first run includes importing matplotlib/python-docx); target < 10 s")
        core.repo.close()


if __name__ == "__main__":
    main()

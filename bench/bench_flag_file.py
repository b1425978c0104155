"""`geoapp flag` on a big CSV, against pandas just reading and writing the same file.

    .venv/bin/python bench/bench_flag_file.py [--rows 1000000] [--runs 3]

Makes a CSV of synthetic sites spread over the city (id, name, site_type, industry, status,
classification, lon, lat), opens a throw-away instance (built from data/ on first start), and
times, alternately so machine load hits both alike:

* pandas alone: ``pd.read_csv`` then ``DataFrame.to_csv`` of the same file (the floor any
  CSV-in, CSV-out tool pays);
* ``services.flagfile.flag_file`` end to end (read, coordinates, rules, hit columns, write),
  with the rule engine already built (its one-off build is timed and printed separately).

and, as the user runs them, in fresh processes:

* ``python -c 'pandas.read_csv(...).to_csv(...)'`` (interpreter, pandas import, read, write);
* ``geoapp flag sites.csv -o flagged.csv`` (interpreter, imports, the instance opened, the rule
  engine loaded from its disk cache, the file flagged a partition at a time).

Prints each run, the medians and their ratios, and the sizes of the files written. Temporary
files are deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import bench_flag  # noqa: E402  (sibling script)

from geoapp.config import load_settings  # noqa: E402
from geoapp.services import open_geoapp  # noqa: E402
from geoapp.services.checks import engine  # noqa: E402
from geoapp.services.flagfile import flag_file  # noqa: E402


def make_csv(path: Path, rows: int, seed: int = 7) -> None:
    bounds = gpd.read_file(bench_flag.DATA / "boundaries" / "city.geojson").total_bounds
    s = bench_flag.synthetic_sites(rows, bounds, seed=seed)
    df = pd.DataFrame({
        "id": [f"S{i:07d}" for i in range(rows)],
        "name": [f"企业{i}" for i in range(rows)],
        "site_type": s["site_type"], "industry": s["industry"], "status": s["status"],
        "classification": s["classification"],
        "lon": np.round(s["lon"], 6), "lat": np.round(s["lat"], 6),
    })
    df.to_csv(path, index=False)


def pandas_round_trip(src: Path, dst: Path) -> float:
    t0 = time.perf_counter()
    pd.read_csv(src).to_csv(dst, index=False)
    return time.perf_counter() - t0


PANDAS_SCRIPT = "import sys, pandas as pd; pd.read_csv(sys.argv[1]).to_csv(sys.argv[2], index=False)"


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="geoapp-flagfile-"))
    try:
        src = tmp / "sites.csv"
        make_csv(src, args.rows)
        print(f"{args.rows} rows, {src.stat().st_size / 1e6:.0f} MB CSV", flush=True)
        app = open_geoapp(load_settings(tmp / "instance",
                                         overrides={"MAX_ROWS": args.rows,
                                                    "ENGINE_CACHE": True}))
        app.cache.clear()
        t0 = time.perf_counter()
        engine(app)
        print(f"engine build (once per process): {time.perf_counter() - t0:.2f} s", flush=True)
        base, flag = [], []
        for run in range(args.runs):
            base.append(pandas_round_trip(src, tmp / "plain.csv"))
            t0 = time.perf_counter()
            summary = flag_file(app, src, tmp / "flagged.csv")
            flag.append(time.perf_counter() - t0)
            print(f"run {run + 1}: pandas read+write {base[-1]:.2f} s, flag_file "
                  f"{flag[-1]:.2f} s ({summary['flagged']} flagged, {summary['hits']} hits)",
                  flush=True)
        b, f = statistics.median(base), statistics.median(flag)
        print(f"median: pandas {b:.2f} s, flag_file {f:.2f} s, ratio {f / b:.2f}x")
        env = {**os.environ, "GEOAPP_INSTANCE_PATH": str(tmp / "instance"),
               "GEOAPP_DATABASE": str(app.settings["DATABASE"])}
        geoapp = str(Path(sys.executable).with_name("geoapp"))
        subprocess.run([geoapp, "flag", str(src), "-o", str(tmp / "warm.csv")], check=True,
                       env=env, stdout=subprocess.DEVNULL)  # the engine cache is written once
        cli_base, cli_flag = [], []
        for run in range(args.runs):
            cli_base.append(timed([sys.executable, "-c", PANDAS_SCRIPT, str(src),
                                   str(tmp / "plain.csv")]))
            cli_flag.append(timed([geoapp, "flag", str(src), "-o", str(tmp / "flagged.csv")],
                                  env))
            print(f"process run {run + 1}: python+pandas {cli_base[-1]:.2f} s, geoapp flag "
                  f"{cli_flag[-1]:.2f} s ({cli_flag[-1] / cli_base[-1]:.2f}x; load "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
        b, f = statistics.median(cli_base), statistics.median(cli_flag)
        pairs = statistics.median(x / y for x, y in zip(cli_flag, cli_base, strict=True))
        print(f"median, fresh processes: python+pandas {b:.2f} s, geoapp flag {f:.2f} s, "
              f"ratio {f / b:.2f}x (median of the per-run ratios {pairs:.2f}x)")
        size_in, size_out = src.stat().st_size, (tmp / "flagged.csv").stat().st_size
        print(f"flagged CSV {size_out / 1e6:.0f} MB ({size_out / size_in:.1f}x the input); "
              f"pandas' copy {(tmp / 'plain.csv').stat().st_size / 1e6:.0f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

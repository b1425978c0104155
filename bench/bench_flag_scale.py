"""`geoapp flag` at scale: one process against a Dask cluster of one and of two workers.

    .venv/bin/python bench/bench_flag_scale.py [--rows 10000000] [--partition-rows 250000]
                                               [--out parquet|csv|folder] [--runs 1] [--quick]

Writes N synthetic sites spread over the city (the columns of bench/bench_flag_file.py) as
Parquet with one row group per partition, generated a partition at a time so this script
never holds all the rows; opens a throw-away instance (built from data/ on first start, the
rule engine built once and kept in the instance's engine cache), then times each of these
as a subprocess, alternately when ``--runs`` > 1:

* ``single``: ``geoapp flag IN.parquet -o OUT`` in one process;
* ``dask-1``: a fresh ``dask scheduler`` and one ``dask worker --nthreads 1 --no-nanny``
  (the worker's own process does the work), ``geoapp flag ... --cluster ADDR``;
* ``dask-2``: the same with two workers.

Each gives wall time, rows/s, the peak RSS of the ``geoapp`` process (``/usr/bin/time``)
and, on a cluster, each worker's peak (VmHWM from /proc/PID/status just before it is
stopped), with the 1-minute load average before and after. Scaling efficiency is
T(dask-1) / (2 x T(dask-2)). Fixed costs are timed apart: a 1,000-row run in one process
and on a 1-worker cluster (start-up, engine loaded from the cache file, scatter), the
engine's load and pickled size, ``Client.scatter(broadcast=True)`` to two workers; and the
per-partition cost in this process: ``flag_part`` (read, rules, output columns) and the
write of its answer for the first few partitions. Temporary files are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from distributed import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import bench_flag  # noqa: E402  (sibling script)

from geoapp.config import load_settings  # noqa: E402
from geoapp.services import open_geoapp  # noqa: E402
from geoapp.services.checks import engine  # noqa: E402
from geoapp.services.flagcluster import EngineOnWorkers  # noqa: E402
from geoapp.services.flagfile import FlagJob, FlagOptions, added_headers, flag_part  # noqa: E402
from geoapp.services.flagout import open_writer  # noqa: E402
from geoapp.services.flagparts import parquet_source  # noqa: E402

BIN = Path(sys.executable).parent
#: Partitions timed in this process for the per-partition cost.
TIMED_PARTS = 3
#: Rows of the run that measures the fixed costs (start-up, engine, scatter).
TINY_ROWS = 1_000
#: ... run this many times (median): a few seconds each, and the machine is noisy.
TINY_RUNS = 3


def load() -> float:
    return os.getloadavg()[0]


# -- input -------------------------------------------------------------------------------
def make_parquet(path: Path, rows: int, group_rows: int, seed: int = 7) -> None:
    """``rows`` synthetic sites, one row group of ``group_rows`` at a time."""
    bounds = gpd.read_file(bench_flag.DATA / "boundaries" / "city.geojson").total_bounds
    writer: pq.ParquetWriter | None = None
    try:
        for k, row0 in enumerate(range(0, rows, group_rows)):
            n = min(group_rows, rows - row0)
            s = bench_flag.synthetic_sites(n, bounds, seed=seed + k)
            ids = np.arange(row0, row0 + n).astype(str)
            table = pa.table({
                "id": np.char.add("S", np.char.zfill(ids, 8)).astype(object),
                "name": np.char.add("企业", ids).astype(object),
                "site_type": s["site_type"], "industry": s["industry"],
                "status": s["status"], "classification": s["classification"],
                "lon": np.round(s["lon"], 6), "lat": np.round(s["lat"], 6),
            })
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema, compression="zstd")
            writer.write_table(table, row_group_size=group_rows)
    finally:
        if writer is not None:
            writer.close()


# -- processes ---------------------------------------------------------------------------
def geoapp_flag(env: dict, src: Path, dst: Path, partition_rows: int, tmp: Path,
                cluster: str | None = None) -> dict:
    """Run ``geoapp flag``: wall seconds, peak RSS (MB), CPU seconds and its JSON summary."""
    peak_file = tmp / "peak.txt"
    out = f"{dst}/" if dst.suffix == "" else str(dst)  # no extension: a folder output
    cmd = ["/usr/bin/time", "-f", "%M %U %S", "-o", str(peak_file), str(BIN / "geoapp"), "flag",
           str(src), "-o", out, "--partition-rows", str(partition_rows)]
    if cluster:
        cmd += ["--cluster", cluster]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"geoapp flag failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    peak, user, system = peak_file.read_text().split("\n")[-2].split()
    return {"wall": wall, "peak_mb": int(peak) / 1024, "cpu": float(user) + float(system),
            "summary": json.loads(r.stdout)}


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Cluster:
    """A ``dask scheduler`` and ``n`` single-threaded ``dask worker --no-nanny`` processes."""

    def __init__(self, n: int, tmp: Path, env: dict) -> None:
        self.tmp, self.env = tmp, env
        self.file = tmp / f"scheduler-{time.monotonic_ns()}.json"
        self.procs: list[subprocess.Popen] = []
        t0 = time.perf_counter()
        self.scheduler = self._start(["scheduler", "--host", "127.0.0.1", "--port", "0",
                                      "--no-dashboard", "--scheduler-file", str(self.file)])
        while not self.file.exists():
            self._alive()
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole, but give it the moment
        self.address = json.loads(self.file.read_text())["address"]
        self.workers = [self._start(["worker", "--scheduler-file", str(self.file),
                                     "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                     "--name", f"w{i}",
                                     "--local-directory", str(tmp / f"dask-w{i}")])
                        for i in range(n)]
        with Client(self.address, timeout=60) as c:
            c.wait_for_workers(n, timeout=120)
        self.start_s = time.perf_counter() - t0

    def _start(self, args: list[str]) -> subprocess.Popen:
        p = subprocess.Popen([str(BIN / "dask"), *args], env=self.env, cwd=self.tmp,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def _alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise SystemExit(f"dask process {p.args} exited with {p.returncode}")

    def worker_peaks(self) -> list[float]:
        self._alive()
        return [vm_hwm_mb(w.pid) for w in self.workers]

    def stop(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def timed_run(mode: str, env: dict, src: Path, dst: Path, partition_rows: int,
              tmp: Path) -> dict:
    before = load()
    if mode == "single":
        r = geoapp_flag(env, src, dst, partition_rows, tmp)
        r["workers_mb"] = []
    else:
        cluster = Cluster(int(mode.split("-")[1]), tmp, env)
        try:
            r = geoapp_flag(env, src, dst, partition_rows, tmp, cluster=cluster.address)
            r["workers_mb"] = cluster.worker_peaks()
            r["cluster_start"] = cluster.start_s
        finally:
            cluster.stop()
    r["load"] = (before, load())
    if dst.is_dir():
        r["out_bytes"] = sum(p.stat().st_size for p in dst.iterdir())
        shutil.rmtree(dst)
    else:
        r["out_bytes"] = dst.stat().st_size
        dst.unlink()
    return r


# -- in this process ---------------------------------------------------------------------
def per_partition(app, eng, src: Path, partition_rows: int, fmt_out: str, tmp: Path) -> dict:
    """Read, flag_part and write of the first partitions, in this process."""
    source = parquet_source(src, src.name, None, partition_rows)
    opts = FlagOptions()
    job = FlagJob(opts, opts.lang, "parquet", fmt_out, tuple(source.columns),
                  tuple(added_headers(opts.lang, list(source.columns))), app.metric_crs,
                  source.geometry, source.file_crs)
    writer = open_writer(tmp / f"parts.{fmt_out}", fmt_out, job.output_names(), source.rows)
    reads, flags, writes, rows = [], [], [], []
    try:
        for part in source.parts[:TIMED_PARTS]:
            t0 = time.perf_counter()
            part.read()
            reads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            result = flag_part(eng, job, part)
            flags.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            if result.data is not None:
                writer.write_bytes(result.data, result.rows)
            else:
                writer.write(result.table)
            writes.append(time.perf_counter() - t0)
            rows.append(part.rows)
    finally:
        writer.abort()
    return {"parts": len(source.parts), "rows": statistics.median(rows),
            "read": statistics.median(reads), "flag_part": statistics.median(flags),
            "write": statistics.median(writes)}


def scatter_cost(eng, tmp: Path, env: dict, tiny: Path, partition_rows: int) -> dict:
    """Engine pickle size, its delivery to two workers (the worker plugin the cluster runner
    registers: it returns once every worker has unpickled it), and a 1,000-row run on one
    worker."""
    out: dict = {}
    t0 = time.perf_counter()
    payload = pickle.dumps(eng, protocol=5)
    out["pickled_mb"] = len(payload) / 1e6
    out["pickle_s"] = time.perf_counter() - t0
    cluster = Cluster(2, tmp, env)
    try:
        out["cluster_start_2"] = cluster.start_s
        with Client(cluster.address) as c:
            out["load"] = load()
            t0 = time.perf_counter()
            c.register_plugin(EngineOnWorkers("geoapp-engine-bench", payload))
            out["scatter_2_s"] = time.perf_counter() - t0
            c.unregister_worker_plugin("geoapp-engine-bench")
    finally:
        cluster.stop()
    dst = tmp / "tiny-out.parquet"
    cluster = Cluster(1, tmp, env)
    try:
        out["tiny_cluster_s"] = statistics.median(
            geoapp_flag(env, tiny, dst, partition_rows, tmp, cluster=cluster.address)["wall"]
            for _ in range(TINY_RUNS))
    finally:
        cluster.stop()
    out["tiny_single_s"] = statistics.median(
        geoapp_flag(env, tiny, dst, partition_rows, tmp)["wall"] for _ in range(TINY_RUNS))
    return out


# -- report ------------------------------------------------------------------------------
def median_of(runs: list[dict], key) -> float:
    return statistics.median(key(r) for r in runs)


def report(results: dict[str, list[dict]], rows: int) -> None:
    print(f"\n{'mode':8s} {'wall s':>8s} {'rows/s':>10s} {'client MB':>10s} {'client CPU s':>12s} "
          f"{'worker MB (each)':>18s}  load before→after  runs")
    for mode, runs in results.items():
        wall = median_of(runs, lambda r: r["wall"])
        client = median_of(runs, lambda r: r["peak_mb"])
        cpu = median_of(runs, lambda r: r["cpu"])
        workers = [statistics.median(ws) for ws in zip(*(r["workers_mb"] for r in runs),
                                                       strict=True)]
        loads = ", ".join(f"{r['load'][0]:.1f}→{r['load'][1]:.1f}" for r in runs)
        walls = ", ".join(f"{r['wall']:.1f}" for r in runs)
        print(f"{mode:8s} {wall:8.1f} {rows / wall:10,.0f} {client:10.0f} {cpu:12.1f} "
              f"{' / '.join(f'{w:.0f}' for w in workers) or '-':>18s}  {loads}  [{walls}]")
    if "dask-1" in results and "dask-2" in results:
        t1 = median_of(results["dask-1"], lambda r: r["wall"])
        t2 = median_of(results["dask-2"], lambda r: r["wall"])
        print(f"scaling efficiency T(1 worker) / (2 x T(2 workers)) = {t1 / (2 * t2):.2f}")
    if "single" in results and "dask-1" in results:
        t0 = median_of(results["single"], lambda r: r["wall"])
        t1 = median_of(results["dask-1"], lambda r: r["wall"])
        print(f"dask-1 / single = {t1 / t0:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=None, help="default 10,000,000 (quick: 200,000)")
    ap.add_argument("--partition-rows", type=int, default=None,
                    help="default 250,000 (quick: 50,000)")
    ap.add_argument("--out", choices=["parquet", "csv", "folder"], default="parquet",
                    help="output: one Parquet file, one CSV file, or a folder of one GeoParquet "
                         "file per partition (written by the workers themselves)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--modes", default="single,dask-1,dask-2")
    ap.add_argument("--quick", action="store_true", help="small sizes, for run_all.py")
    args = ap.parse_args()
    rows = args.rows or (200_000 if args.quick else 10_000_000)
    part_rows = args.partition_rows or (50_000 if args.quick else 250_000)
    modes = args.modes.split(",")

    tmp = Path(tempfile.mkdtemp(prefix="geoapp-flagscale-"))
    try:
        src, tiny = tmp / "sites.parquet", tmp / "tiny.parquet"
        t0 = time.perf_counter()
        make_parquet(src, rows, part_rows)
        make_parquet(tiny, TINY_ROWS, part_rows)
        print(f"{rows:,} rows in {-(-rows // part_rows)} row groups of {part_rows:,}: "
              f"{src.stat().st_size / 1e6:.0f} MB Parquet, made in "
              f"{time.perf_counter() - t0:.1f} s (load {load():.1f})", flush=True)
        inst = tmp / "instance"
        t0 = time.perf_counter()
        app = open_geoapp(load_settings(inst))
        engine(app)  # the first start built it (and wrote the instance's engine cache)
        build = time.perf_counter() - t0
        app.cache.clear()
        t0 = time.perf_counter()
        eng = engine(app)  # what every geoapp process does: load it from the cache file
        print(f"first start (database and engine built): {build:.2f} s; engine loaded from "
              f"its cache file in {time.perf_counter() - t0:.2f} s", flush=True)
        env = {**os.environ, "GEOAPP_INSTANCE_PATH": str(inst),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                           os.environ.get("PYTHONPATH")]))}

        fixed = scatter_cost(eng, tmp, env, tiny, part_rows)
        print(f"engine pickled {fixed['pickled_mb']:.0f} MB in {fixed['pickle_s']:.2f} s; "
              f"sent to 2 workers (worker plugin) {fixed['scatter_2_s']:.2f} s (load {fixed['load']:.1f}); "
              f"2-worker cluster start {fixed['cluster_start_2']:.1f} s", flush=True)
        print(f"{TINY_ROWS:,}-row run (median of {TINY_RUNS}): single process {fixed['tiny_single_s']:.2f} s, "
              f"1-worker cluster {fixed['tiny_cluster_s']:.2f} s (start-up, engine, scatter)",
              flush=True)
        pp = per_partition(app, eng, src, part_rows,
                           "parquet" if args.out == "folder" else args.out, tmp)
        per_row = (pp["flag_part"] + pp["write"]) / pp["rows"]
        print(f"per partition of {pp['rows']:,.0f} rows (median of {TIMED_PARTS}, this "
              f"process, load {load():.1f}): read {pp['read']:.2f} s, flag_part "
              f"{pp['flag_part']:.2f} s, write {pp['write']:.2f} s; "
              f"{per_row * 1e6:.1f} µs/row", flush=True)
        del eng
        app.cache.clear()

        results: dict[str, list[dict]] = {m: [] for m in modes}
        dst = tmp / ("flagged" if args.out == "folder" else f"flagged.{args.out}")
        for run in range(args.runs):
            for mode in modes:
                r = timed_run(mode, env, src, dst, part_rows, tmp)
                results[mode].append(r)
                s = r["summary"]
                assert s["rows"] == rows, s
                spread = ""
                if "workers" in s:
                    spread = " rows per worker " + ", ".join(
                        f"{n:,}" for n in sorted(s["workers"].values()))
                print(f"run {run + 1} {mode}: {r['wall']:.1f} s ({rows / r['wall']:,.0f} rows/s)"
                      f", client peak {r['peak_mb']:.0f} MB, CPU {r['cpu']:.1f} s"
                      + (f", workers {' / '.join(f'{w:.0f}' for w in r['workers_mb'])} MB"
                         if r["workers_mb"] else "")
                      + f", load {r['load'][0]:.1f}→{r['load'][1]:.1f}, output "
                      f"{r['out_bytes'] / 1e6:.0f} MB; {s['flagged']:,} flagged, "
                      f"{s['hits']:,} hits{spread}", flush=True)
        report(results, rows)
        if "single" in results:
            wall = median_of(results["single"], lambda r: r["wall"])
            parts = pp["parts"]
            peak = max(r["peak_mb"] for r in results["single"])
            print(f"single process: {parts} partitions, "
                  f"{(wall - fixed['tiny_single_s']) / parts:.2f} s per partition "
                  f"(wall less the {TINY_ROWS:,}-row run, / partitions); peak RSS "
                  f"{peak:,.0f} MB ({'under' if peak < 4096 else 'OVER'} 4 GiB)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The GeoPackage and the PostGIS backend side by side, and one server against two.

    .venv/bin/python bench/bench_backends.py [--quick] [--seconds 15] [--rounds 3]
        [--clients 16,64] [--sites 100000] [--parcels 1000] [--client auto|wrk|python]
        [--server waitress|granian] [--workers N] [--threads T]

On the embedded Jiaozuo data, in one run:

* ``GET /api/check`` (random points in the city, logged in as an inspector) through real
  ``geoapp serve`` processes (waitress; with ``--server granian`` ``geoapp serve --prod``):
  latency p50/p99 and requests/s with each number of concurrent clients, on the GeoPackage
  backend (one server) and on the PostGIS backend (one server, and two servers on different
  ports on one database with the clients spread over both). The clients are wrk
  (``bench_check_http.run_wrk``; for two servers each wrk thread is given one server's
  address) or, without wrk, the Python clients of ``load.py``.
* In this process, on each backend: the rule engine's build, ``geoapp flag`` on a CSV of
  --sites synthetic sites (``services.flagfile.flag_file``, engine built), the re-flag of the
  stored sites with their hits written (``checks.flag_all``), and --parcels parcels
  (50-300 m squares over the city) read from GeoJSON and checked through
  ``services.parcels``.

Every figure is measured --rounds times, the configurations taking turns within a round so
the machine's load hits them alike; printed are each measurement, the medians and the medians
of the ratios paired within a round. PostgreSQL is a throw-away cluster (``postgis.Cluster``:
a temporary folder, a free loopback port, ``fsync=off``), deleted at the end. Without
PostgreSQL, PostGIS or psycopg it says so and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
import shapely.geometry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's geoapp, not an installed one
sys.path.insert(0, str(ROOT / "bench"))
import bench_check_http  # noqa: E402  (sibling scripts)
import bench_flag  # noqa: E402
import bench_flag_file  # noqa: E402
import load  # noqa: E402
import postgis  # noqa: E402

from geoapp import services  # noqa: E402
from geoapp.config import load_settings  # noqa: E402
from geoapp.services import accounts, checks, open_geoapp  # noqa: E402
from geoapp.services import parcels as parcel_service  # noqa: E402
from geoapp.services.flagfile import flag_file  # noqa: E402

ROLE = "inspector"
USERNAME = f"bench-{ROLE}"  # load.login's account name and password
BACKEND_NAMES = {"gpkg": "GeoPackage", "postgis": "PostGIS"}

#: Appended to bench_check_http.WRK_SCRIPT for several servers: wrk thread i talks to server
#: i (its connections are the clients divided over the threads). ``%`` doubled: the script is
#: a %-template.
WRK_SPREAD = """
local ports = {%(ports)s}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread.addr = wrk.lookup("127.0.0.1", tostring(ports[((threads - 1) %%%% #ports) + 1]))[1]
end
"""


# --------------------------------------------------------------------------- setting up
def settings_for(backend: str, folder: Path, url: str, rows: int) -> dict:
    overrides = {"MAX_ROWS": rows, "LOG_LEVEL": "WARNING"}
    if backend == "postgis":
        overrides |= {"STORAGE_BACKEND": "postgis", "DATABASE_URL": url}
    return load_settings(folder, overrides=overrides, environ={})


def build_store(settings: dict) -> float:
    """Build the store from the shipped data and add the bench account; seconds taken."""
    t0 = time.perf_counter()
    services.init_db(settings)
    elapsed = time.perf_counter() - t0
    core = open_geoapp(settings, build=False)
    accounts.create_user(core, USERNAME, load.ACCOUNTS[ROLE], ROLE, by="bench")
    core.repo.close()
    return elapsed


def server_env(backend: str, folder: Path, url: str, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOAPP_")}
    env |= {"GEOAPP_INSTANCE_PATH": str(folder), "GEOAPP_LOG_LEVEL": "WARNING",
            "GEOAPP_SECRET_KEY": secret}
    if backend == "postgis":
        env |= {"GEOAPP_STORAGE_BACKEND": "postgis", "GEOAPP_DATABASE_URL": url}
    return env


def check_once(port: int, cookie: str) -> None:
    """One check must answer 200 (on a second server: the login made on the first one holds)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("GET", "/api/check?lon=113.2&lat=35.2&site_type=enterprise&industry=%E5%8C%96%E5%B7%A5",
              headers={"Cookie": cookie})
    r = c.getresponse()
    body = r.read()
    if r.status != 200 or "hits" not in json.loads(body):
        raise SystemExit(f"/api/check on port {port} answered {r.status}: {body[:200]!r}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- HTTP load
@contextlib.contextmanager
def spread_over(ports: list[int]):
    """bench_check_http's wrk script, its threads spread over ``ports``."""
    base = bench_check_http.WRK_SCRIPT
    bench_check_http.WRK_SCRIPT = base + WRK_SPREAD % {"ports": ", ".join(map(str, ports))}
    try:
        yield
    finally:
        bench_check_http.WRK_SCRIPT = base


def python_phase(pool, ports: list[int], cookie: str, clients: int, seconds: float,
                 procs: int) -> dict:
    """load.py's keep-alive clients in ``procs`` processes, the processes spread over
    ``ports``; the latencies of every client summarised together."""
    per_proc = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    deadline = time.time() + seconds
    jobs = [(ports[i % len(ports)], {ROLE: cookie}, {"check": 1.0}, "/", deadline, 10**9, n,
             random.randrange(1 << 30)) for i, n in enumerate(per_proc) if n]
    t0 = time.perf_counter()
    parts = pool.map(load._client_process, jobs)
    s = load.summarise([x for out, _ in parts for x in out],
                       [e for _, es in parts for e in es], time.perf_counter() - t0)
    return {"requests": s["requests"], "rps": s["throughput_rps"], "p50": s["p50_ms"],
            "p99": s["p99_ms"], "errors": s["errors"]}


def phase(kind: str, pool, ports: list[int], cookie: str, clients: int, args) -> dict:
    if kind == "python":
        return python_phase(pool, ports, cookie, clients, args.seconds, args.procs)
    if len(ports) == 1:
        return bench_check_http.run_wrk(ports[0], cookie, clients, args.seconds)
    if clients < len(ports):
        raise SystemExit("fewer clients than servers")
    with spread_over(ports):
        return bench_check_http.run_wrk(ports[0], cookie, clients, args.seconds)


def socket_note(r: dict) -> str:
    """wrk's socket errors (timeouts: no answer within 2 s), when there were any."""
    return "" if r.get("socket", "0") == "0" else f", socket errors: {r['socket']}"


def paired_ratio(rows: list[dict], num: str, den: str, key: str) -> float:
    """Median over the rounds of num's figure / den's figure in the same round."""
    by = {(r["round"], r["config"]): r[key] for r in rows}
    return statistics.median(by[(i, num)] / by[(i, den)] for i, c in by if c == den)


def http_figures(kind: str, servers: dict[str, list[int]], cookies: dict[str, str],
                 args) -> None:
    configs = list(servers)
    server = (f"waitress ({args.threads} threads)" if args.server == "waitress" else
              f"granian ({args.workers} workers x {args.threads} threads)")
    print(f"\nGET /api/check, one server: {server}; {kind} clients, {args.seconds:g} s per "
          f"phase, {args.rounds} round(s)", flush=True)
    rows: list[dict] = []
    pool = mp.get_context("fork").Pool(args.procs) if kind == "python" else None
    try:
        for rnd in range(args.rounds):
            order = configs[rnd % len(configs):] + configs[:rnd % len(configs)]
            for clients in args.clients:
                for config in order:
                    r = phase(kind, pool, servers[config], cookies[config], clients, args)
                    rows.append({"round": rnd, "config": config, "clients": clients, **r})
                    print(f"  round {rnd + 1} {config:<20} {clients:3} clients: "
                          f"p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms  "
                          f"{r['rps']:7.1f} req/s  ({r['requests']} requests, errors "
                          f"{r['errors']}{socket_note(r)}); load {os.getloadavg()[0]:.1f}",
                          flush=True)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    print(f"\n  medians over {args.rounds} round(s):")
    print(f"  {'':<20} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>7}")
    for clients in args.clients:
        for config in configs:
            sel = [r for r in rows if r["config"] == config and r["clients"] == clients]
            med = {k: statistics.median(r[k] for r in sel) for k in ("p50", "p99", "rps")}
            print(f"  {config:<20} {clients:>7} {med['p50']:>8.2f} {med['p99']:>8.2f} "
                  f"{med['rps']:>8.1f} {sum(r['errors'] for r in sel):>7}")
    pairs = [("PostGIS/GeoPackage, one server", configs[1], configs[0]),
             ("PostGIS two servers/one server", configs[2], configs[1])]
    print("  ratios (median of the per-round ratios):")
    for clients in args.clients:
        sel = [r for r in rows if r["clients"] == clients]
        for label, num, den in pairs:
            print(f"  {clients:3} clients, {label:<32} p50 "
                  f"{paired_ratio(sel, num, den, 'p50'):5.2f}x  p99 "
                  f"{paired_ratio(sel, num, den, 'p99'):5.2f}x  req/s "
                  f"{paired_ratio(sel, num, den, 'rps'):5.2f}x")


# --------------------------------------------------------------------------- in process
def parcel_file(path: Path, n: int, seed: int = 7) -> None:
    """``n`` squares of 50-300 m side spread over the city's bounding box, as GeoJSON."""
    x0, y0, x1, y1 = gpd.read_file(bench_flag.DATA / "boundaries" / "city.geojson").total_bounds
    rng = np.random.default_rng(seed)
    lon, lat, side = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n), rng.uniform(50, 300, n)
    half_lat = side / 2 / 111_320
    half_lon = half_lat / np.cos(np.radians(lat))
    feats = [{"type": "Feature", "properties": {"id": f"P{i:05d}"},
              "geometry": shapely.geometry.mapping(shapely.box(lon[i] - half_lon[i],
                                                               lat[i] - half_lat[i],
                                                               lon[i] + half_lon[i],
                                                               lat[i] + half_lat[i]))}
             for i in range(n)]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}),
                    encoding="utf-8")


def in_process_figures(cores: dict, tmp: Path, args) -> None:
    csv = tmp / "sites.csv"
    bench_flag_file.make_csv(csv, args.sites)
    parcels = tmp / "parcels.geojson"
    parcel_file(parcels, args.parcels)
    stored = {b: len(core.repo.sites()) for b, core in cores.items()}

    def build(core) -> None:
        core.cache.clear()
        checks.engine(core)

    def flag(core) -> None:
        summary = flag_file(core, csv, tmp / "flagged.csv")
        assert summary["rows"] == args.sites and not summary["bad_rows"], summary

    def parcel(core) -> None:
        report = parcel_service.check_parcel_file(core, parcels, filename=parcels.name,
                                                  site_type="enterprise", industry="化工")
        assert len(report.answers) == args.parcels

    work = [("rule engine build", "", lambda c: 1, build),
            (f"geoapp flag, {args.sites:,} CSV rows", "rows", lambda c: args.sites, flag),
            ("re-flag of the stored sites, hits written", "sites",
             lambda c: stored[c], lambda core: checks.flag_all(core, user="bench")),
            (f"{args.parcels:,} parcels from GeoJSON through the service", "parcels",
             lambda c: args.parcels, parcel)]
    print(f"\nIn this process, {args.rounds} round(s), the backends taking turns; stored "
          "sites: " + ", ".join(f"{BACKEND_NAMES[b]} {n}" for b, n in stored.items()),
          flush=True)
    for core in cores.values():  # each backend's engine built once before the timings
        checks.engine(core)
    times: dict[tuple[str, str], list[float]] = {}
    for rnd in range(args.rounds):
        for label, _unit, _count, fn in work:
            order = list(cores) if rnd % 2 == 0 else list(cores)[::-1]
            for backend in order:
                t0 = time.perf_counter()
                fn(cores[backend])
                times.setdefault((label, backend), []).append(time.perf_counter() - t0)
            print(f"  round {rnd + 1} {label}: " + ", ".join(
                f"{BACKEND_NAMES[b]} {times[(label, b)][-1]:.3f} s" for b in cores), flush=True)
    print(f"\n  medians over {args.rounds} round(s):")
    for label, unit, count, _fn in work:
        med = {b: statistics.median(times[(label, b)]) for b in cores}
        ratio = statistics.median(p / g for p, g in zip(times[(label, "postgis")],
                                                         times[(label, "gpkg")], strict=True))
        print(f"  {label:<50} " + "  ".join(
            f"{BACKEND_NAMES[b]} {med[b]:.3f} s"
            + (f" ({count(b) / med[b]:,.0f} {unit}/s)" if unit else "") for b in cores)
            + f"  PostGIS/GeoPackage time {ratio:.2f}x")


# --------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a short run: 5 s phases, one round, 10,000 sites, 200 parcels")
    ap.add_argument("--seconds", type=float, default=15, help="seconds per load phase")
    ap.add_argument("--rounds", type=int, default=3, help="times each figure is measured")
    ap.add_argument("--clients", default="16,64", help="concurrent clients per phase")
    ap.add_argument("--server", choices=("waitress", "granian"), default="waitress",
                    help="geoapp serve (waitress, one process) or geoapp serve --prod (granian)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="granian worker processes per server")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads per server process (default: geoapp serve's own, 8 for "
                         "waitress, 2 per granian worker)")
    ap.add_argument("--sites", type=int, default=100_000, help="CSV rows for geoapp flag")
    ap.add_argument("--parcels", type=int, default=1000)
    ap.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    ap.add_argument("--procs", type=int, default=4, help="client processes (python clients)")
    ap.add_argument("--skip-http", action="store_true", help="only the in-process figures")
    args = ap.parse_args()
    if args.quick:  # shorter defaults; options given still win
        ap.set_defaults(seconds=5, rounds=1, sites=10_000, parcels=200)
        args = ap.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    args.threads = args.threads or (8 if args.server == "waitress" else 2)
    if args.server == "waitress":
        args.workers = 1
    kind = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "python")

    pg_bin = postgis.find_pg_bin()
    if pg_bin is None or not postgis.has_postgis(pg_bin):
        print("PostgreSQL with PostGIS is not installed; no backend comparison "
              "(Debian: apt-get install postgresql-15 postgresql-15-postgis-3, or "
              "scripts/system-deps.sh).")
        return
    try:
        import psycopg
    except ImportError:
        print("psycopg is not installed; no backend comparison (pip install 'psycopg[binary]').")
        return

    tmp = Path(tempfile.mkdtemp(prefix="geoapp-backends-"))
    cluster = postgis.Cluster(pg_bin)
    procs: list[subprocess.Popen] = []
    cores: dict = {}
    try:
        cluster.start()
        url = f"postgresql://bench@127.0.0.1:{cluster.port}/geoapp"
        with cluster.connect() as conn:
            conn.execute("CREATE DATABASE geoapp")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
            pg_version = conn.execute("SHOW server_version").fetchone()[0]
            gis_version = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        folders = {b: tmp / b for b in BACKEND_NAMES}
        settings = {b: settings_for(b, folders[b], url, args.sites) for b in BACKEND_NAMES}
        built = {b: build_store(settings[b]) for b in BACKEND_NAMES}
        print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; PostgreSQL {pg_version} "
              f"with PostGIS {gis_version} on the loopback (fsync off); stores built from the "
              "shipped data in " + ", ".join(f"{BACKEND_NAMES[b]} {built[b]:.2f} s"
                                            for b in BACKEND_NAMES), flush=True)

        if not args.skip_http:
            secret = secrets.token_urlsafe(48)
            servers: dict[str, list[int]] = {}
            for config, backend, count in (("GeoPackage, 1 server", "gpkg", 1),
                                           ("PostGIS, 1 server", "postgis", 1),
                                           ("PostGIS, 2 servers", "postgis", 2)):
                ports = servers.get("PostGIS, 1 server", [])[:1] if count == 2 else []
                while len(ports) < count:
                    port = load.free_port()
                    procs.append(load.start_server(args.server, server_env(
                        backend, folders[backend], url, secret), port, args.workers,
                        args.threads))
                    ports.append(port)
                servers[config] = ports
            # one login per backend: the PostGIS login cookie, made on the first server, is the
            # one the clients of both PostGIS servers send
            login = {b: load.login(servers[c][0], ROLE) for b, c in
                     (("gpkg", "GeoPackage, 1 server"), ("postgis", "PostGIS, 1 server"))}
            cookies = {c: login["gpkg" if c.startswith("GeoPackage") else "postgis"]
                       for c in servers}
            for config, ports in servers.items():
                for port in ports:
                    check_once(port, cookies[config])
                    bench_check_http.warm_up(port, cookies[config])
            http_figures(kind, servers, cookies, args)
            for proc in procs:
                stop(proc)
            procs.clear()

        cores = {b: open_geoapp(settings[b], build=False) for b in BACKEND_NAMES}
        in_process_figures(cores, tmp, args)
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    finally:
        for proc in procs:
            stop(proc)
        for core in cores.values():
            core.repo.close()
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

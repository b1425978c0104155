"""Load and soak bench of the production server: throughput, latency, errors and memory.

Loopback only, bounded in requests and time. Builds a throw-away instance (database, two
accounts, a random SECRET_KEY) in a temporary folder, then for each server -- `geoapp serve
--prod` (granian workers) and, for comparison, `geoapp serve` (waitress threads) -- runs
GET /api/check (random points in the city) and GET /relocation (the planners' page) under 16
and 64 concurrent clients for --duration seconds each, and finally a --soak of mixed traffic
at 16 clients against granian, sampling the server processes' resident memory (main process plus
workers) at the start and end. Prints every figure; --json writes them to a file.

    .venv/bin/python bench/load.py [--duration 60] [--soak 600] [--clients 16,64]

Clients run in several processes (threads inside each) so the client's own GIL does not cap
the figures; on a small machine clients and server still share the cores.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

BIN = Path(sys.executable).parent
ACCOUNTS = {"inspector": "Load-Inspector-Jz-2026", "planner": "Load-Planner-Jz-2026"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_instance() -> tuple[Path, dict[str, str]]:
    inst = Path(tempfile.mkdtemp(prefix="geoapp-load-"))
    env = {**os.environ, "GEOAPP_INSTANCE_PATH": str(inst), "GEOAPP_LOG_LEVEL": "WARNING",
           "GEOAPP_SECRET_KEY": secrets.token_urlsafe(48)}
    subprocess.run([BIN / "geoapp", "init-db"], env=env, check=True, capture_output=True)
    for role, pw in ACCOUNTS.items():
        subprocess.run([BIN / "geoapp", "users", "create", "--username", f"bench-{role}",
                        "--role", role, "--password", pw], env=env, check=True,
                       capture_output=True)
    return inst, env


def start_server(kind: str, env: dict[str, str], port: int, workers: int,
                 threads: int) -> subprocess.Popen:
    cmd = [str(BIN / "geoapp"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if kind == "granian":
        cmd += ["--prod", "--workers", str(workers), "--threads", str(threads)]
    else:
        cmd += ["--threads", str(threads * workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{kind} exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"{kind} did not start")


def login(port: int, role: str) -> str:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/login")
    r = c.getresponse()
    body = r.read().decode()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)
    form = urlencode({"username": f"bench-{role}", "password": ACCOUNTS[role],
                      "csrf_token": token})
    c.request("POST", "/login", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    r = c.getresponse()
    r.read()
    if r.status != 302:
        raise SystemExit(f"login as {role} failed: {r.status}")
    return r.getheader("Set-Cookie").split(";")[0]


def _check_path(rnd: random.Random) -> str:
    q = urlencode({"lon": f"{rnd.uniform(112.7, 113.6):.6f}",
                   "lat": f"{rnd.uniform(34.85, 35.45):.6f}",
                   "site_type": rnd.choice(["livestock_farm", "enterprise"]),
                   "industry": rnd.choice(["畜禽养殖", "化工", "商混站", "家具"])})
    return f"/api/check?{q}"


def _client(port: int, cookies: dict[str, str], mix: dict[str, float], page: str,
            deadline: float, budget: int, seed: int, out: list, errors: list) -> None:
    """One keep-alive client: requests until the deadline or its request budget."""
    rnd = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(budget):
        if time.time() >= deadline:
            break
        kind = "check" if rnd.random() < mix["check"] else "page"
        path, cookie = ((_check_path(rnd), cookies["inspector"]) if kind == "check"
                        else (page, cookies["planner"]))
        t = time.perf_counter()
        try:
            conn.request("GET", path, headers={"Cookie": cookie})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                errors.append(f"{kind} {r.status}")
            elif kind == "check":
                json.loads(body)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            errors.append(f"{kind} {type(exc).__name__}: {exc}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        out.append((kind, time.perf_counter() - t))


def _client_process(args: tuple) -> tuple[list, list]:
    port, cookies, mix, page, deadline, budget, threads, seed = args
    out: list = []
    errors: list = []
    ts = [threading.Thread(target=_client, args=(port, cookies, mix, page, deadline, budget,
                                                 seed * 1000 + i, out, errors))
          for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out, errors


def run_phase(pool: mp.pool.Pool, port: int, cookies: dict[str, str], *, clients: int,
              seconds: float, mix: dict[str, float], page: str, max_requests: int,
              procs: int) -> dict:
    """``clients`` concurrent clients spread over ``procs`` processes for ``seconds``."""
    per_proc = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    budget = max(1, max_requests // clients)
    deadline = time.time() + seconds
    t0 = time.perf_counter()
    parts = pool.map(_client_process, [(port, cookies, mix, page, deadline, budget, n,
                                        random.randrange(1 << 30)) for n in per_proc if n])
    wall = time.perf_counter() - t0
    lat = [x for out, _ in parts for x in out]
    errs = [e for _, es in parts for e in es]
    return summarise(lat, errs, wall)


def summarise(lat: list[tuple[str, float]], errs: list[str], wall: float) -> dict:
    times = sorted(t for _, t in lat)
    q = statistics.quantiles(times, n=100) if len(times) >= 2 else [float("nan")] * 99
    return {"requests": len(times), "seconds": round(wall, 1),
            "throughput_rps": round(len(times) / wall, 1),
            "p50_ms": round(q[49] * 1e3, 1), "p99_ms": round(q[98] * 1e3, 1),
            "errors": len(errs), "error_samples": sorted(set(errs))[:5]}


def process_tree(pid: int) -> list[int]:
    """The server process and its children (granian main process and workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        m = re.search(r"^PPid:\s+(\d+)", status, re.M)
        if m:
            children.setdefault(int(m.group(1)), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def rss_mb(pid: int) -> dict:
    """Resident memory of the server's processes in MB (psutil if present, else /proc)."""
    pids = process_tree(pid)
    per = {}
    for p in pids:
        try:
            import psutil

            per[p] = psutil.Process(p).memory_info().rss / 2**20
        except ImportError:
            try:
                text = Path(f"/proc/{p}/status").read_text()
            except OSError:
                continue
            m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
            per[p] = int(m.group(1)) / 1024 if m else 0.0
        except Exception:  # noqa: BLE001 - a worker may exit between listing and reading
            continue
    return {"total_mb": round(sum(per.values()), 1), "processes": len(per)}


def page_path(port: int, cookie: str) -> tuple[str, str]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("GET", "/relocation", headers={"Cookie": cookie})
    r = c.getresponse()
    r.read()
    if r.status == 200:
        return "/relocation", "the relocation page"
    return "/", f"/relocation answered {r.status}; the overview page / instead"


def bench_server(kind: str, env: dict, pool, args) -> dict:
    port = free_port()
    proc = start_server(kind, env, port, args.workers, args.threads)
    results: dict = {"server": kind}
    try:
        cookies = {role: login(port, role) for role in ACCOUNTS}
        page, note = page_path(port, cookies["planner"])
        results["page"], results["page_note"] = page, note
        results["warmup_s"] = warm_up(pool, port, cookies, page, args)
        results["rss_after_warmup"] = rss_mb(proc.pid)
        for label, mix in (("api_check", {"check": 1.0}), ("page", {"check": 0.0})):
            for clients in args.clients:
                r = run_phase(pool, port, cookies, clients=clients, seconds=args.duration,
                              mix=mix, page=page, max_requests=args.max_requests,
                              procs=args.procs)
                results[f"{label}_{clients}"] = r
                print(f"{kind:8} {label:9} {clients:3} clients: {r['requests']:6} req in "
                      f"{r['seconds']} s, {r['throughput_rps']:7.1f} req/s, p50 "
                      f"{r['p50_ms']} ms, p99 {r['p99_ms']} ms, errors {r['errors']} "
                      f"{r['error_samples'] or ''}", flush=True)
        if kind == "granian" and args.soak > 0:
            results["soak"] = soak(pool, port, cookies, page, proc.pid, args)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return results


def warm_up(pool, port: int, cookies: dict, page: str, args) -> float:
    """Until every worker has built its rule engine: slices of mixed traffic until fast.

    A worker builds its engine on its first check (seconds of CPU), so the first slices are
    slow; measuring starts once a slice of checks has a p99 under two seconds (or after
    300 s) and one slice of pages has been served.
    """
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 300:
        r = run_phase(pool, port, cookies, clients=16, seconds=args.warmup,
                      mix={"check": 1.0}, page=page, max_requests=10**6, procs=args.procs)
        if r["requests"] > 50 and r["p99_ms"] < 2000:
            break
    run_phase(pool, port, cookies, clients=16, seconds=args.warmup, mix={"check": 0.0},
              page=page, max_requests=10**6, procs=args.procs)
    return round(time.perf_counter() - t0, 1)


def soak(pool, port: int, cookies: dict, page: str, pid: int, args) -> dict:
    """Mixed traffic at 16 clients in one-minute slices, memory sampled between slices."""
    samples = [rss_mb(pid)]
    lat_total: list = []
    errors = 0
    slices = max(1, round(args.soak / 60))
    t0 = time.perf_counter()
    for i in range(slices):
        r = run_phase(pool, port, cookies, clients=16, seconds=args.soak / slices,
                      mix={"check": 0.75}, page=page, max_requests=args.max_requests,
                      procs=args.procs)
        samples.append(rss_mb(pid))
        lat_total.append(r["requests"])
        errors += r["errors"]
        print(f"soak {i + 1}/{slices}: {r['requests']} req, {r['throughput_rps']} req/s, p99 "
              f"{r['p99_ms']} ms, errors {r['errors']}, server RSS "
              f"{samples[-1]['total_mb']} MB", flush=True)
    start, end = samples[0]["total_mb"], samples[-1]["total_mb"]
    out = {"seconds": round(time.perf_counter() - t0), "requests": sum(lat_total),
           "errors": errors, "rss_start_mb": start, "rss_end_mb": end,
           "rss_growth_mb": round(end - start, 1),
           "rss_growth_pct": round(100 * (end - start) / start, 1) if start else None,
           "rss_samples_mb": [s["total_mb"] for s in samples],
           "processes": samples[-1]["processes"]}
    print(f"soak: {out['requests']} requests in {out['seconds']} s, errors {errors}; RSS "
          f"{start} MB -> {end} MB ({out['rss_growth_mb']:+} MB, {out['rss_growth_pct']}%)",
          flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60, help="seconds per phase")
    ap.add_argument("--soak", type=float, default=600, help="soak seconds (0: none)")
    ap.add_argument("--warmup", type=float, default=10, help="warm-up seconds per server")
    ap.add_argument("--clients", default="16,64", help="concurrent clients per phase")
    ap.add_argument("--servers", default="granian,waitress")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="granian worker processes (waitress gets workers x threads threads)")
    ap.add_argument("--threads", type=int, default=2, help="threads per granian worker")
    ap.add_argument("--procs", type=int, default=4, help="client processes")
    ap.add_argument("--max-requests", type=int, default=200_000, help="request cap per phase")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    inst, env = make_instance()
    report = {"cpu_count": os.cpu_count(), "workers": args.workers, "threads": args.threads,
              "duration_s": args.duration, "servers": []}
    print(f"{os.cpu_count()} CPUs; granian {args.workers} workers x {args.threads} threads; "
          f"waitress {args.workers * args.threads} threads; {args.procs} client processes",
          flush=True)
    try:
        with mp.get_context("fork").Pool(args.procs) as pool:
            for kind in args.servers.split(","):
                report["servers"].append(bench_server(kind, env, pool, args))
    finally:
        shutil.rmtree(inst, ignore_errors=True)
    for s in report["servers"]:
        print(f"{s['server']}: page measured = {s['page']} ({s['page_note']})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()

"""Single-point check through a real WSGI server: latency under concurrent clients.

Starts `geoapp serve` (waitress, one process) or, with ``--workers N``, `geoapp serve --prod`
(granian, N worker processes, a throw-away random SECRET_KEY) on a free loopback port with a
throw-away instance, logs in, waits until every worker has built its rule engine, then runs
16 (or --clients) concurrent keep-alive clients sending GET /api/check for random points in
the city, and prints throughput and p50/p90/p99 latency. Loopback only; bounded in time; stops
the server itself.

The clients are wrk (Debian package ``wrk``, a C load generator with a Lua script choosing
the points) when it is installed, else Python threads (``--client python``); Python clients
share one GIL on the same two cores as the server, so their figures include their own
queueing and are worse.

    .venv/bin/python bench/bench_check_http.py [--clients 16] [--seconds 15] [--workers N]
        [--threads T] [--client auto|wrk|python]
"""

from __future__ import annotations

import argparse
import http.client
import json
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
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCH_PASSWORD = "Jiaozuo-Bench-Check-2026"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(inst: Path, port: int, threads: int | None,
                 workers: int = 0) -> subprocess.Popen:
    env = {**os.environ, "GEOAPP_INSTANCE_PATH": str(inst), "GEOAPP_LOG_LEVEL": "WARNING",
           "GEOAPP_SECRET_KEY": secrets.token_urlsafe(48)}
    subprocess.run([BIN / "geoapp", "init-db"], env=env, check=True, capture_output=True)
    subprocess.run([BIN / "geoapp", "users", "create", "--username", "bench", "--role",
                    "inspector", "--password", BENCH_PASSWORD], env=env, check=True,
                   capture_output=True)
    prod = ["--prod", "--workers", str(workers)] if workers else []
    per = ["--threads", str(threads)] if threads else []
    proc = subprocess.Popen([BIN / "geoapp", "serve", "--host", "127.0.0.1", "--port", str(port),
                             *per, *prod], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


def logged_in_cookie(port: int) -> str:
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("GET", "/login")
    r = c.getresponse()
    body = r.read().decode()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)
    form = urlencode({"username": "bench", "password": BENCH_PASSWORD, "csrf_token": token})
    c.request("POST", "/login", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    r = c.getresponse()
    r.read()
    assert r.status == 302, r.status
    return r.getheader("Set-Cookie").split(";")[0]


def client(port: int, cookie: str, n: int, seed: int, out: list, errors: list,
           timeout: float = 10.0) -> None:
    rnd = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    for _ in range(n):
        q = urlencode({"lon": f"{rnd.uniform(112.7, 113.6):.6f}",
                       "lat": f"{rnd.uniform(34.85, 35.45):.6f}",
                       "site_type": rnd.choice(["livestock_farm", "enterprise"]),
                       "industry": rnd.choice(["畜禽养殖", "化工", "商混站", "家具"])})
        t = time.perf_counter()
        try:
            conn.request("GET", f"/api/check?{q}", headers={"Cookie": cookie})
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                errors.append(r.status)
            else:
                json.loads(body)
        except OSError as exc:
            errors.append(str(exc))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            continue
        out.append(time.perf_counter() - t)


WRK_SCRIPT = """
math.randomseed(%(seed)d)
local types = {"livestock_farm", "enterprise"}
local industries = {%(industries)s}
request = function()
  local path = string.format("/api/check?lon=%%.6f&lat=%%.6f&site_type=%%s&industry=%%s",
    112.7 + math.random() * 0.9, 34.85 + math.random() * 0.6,
    types[math.random(#types)], industries[math.random(#industries)])
  return wrk.format("GET", path)
end
"""


def warm_up(port: int, cookie: str, limit_s: float = 300.0) -> float:
    """Send checks on several connections until 100 in a row answer within 50 ms (every
    worker has built its engine); return the seconds it took."""
    t0 = time.perf_counter()
    fast = 0
    while fast < 100:
        if time.perf_counter() - t0 > limit_s:
            raise SystemExit("the server did not warm up")
        lat: list[float] = []
        threads = [threading.Thread(target=client, args=(port, cookie, 5, -i, lat, [], 600.0))
                   for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fast = fast + len(lat) if lat and max(lat) < 0.05 else 0
    return time.perf_counter() - t0


def run_wrk(port: int, cookie: str, clients: int, seconds: int) -> dict:
    industries = ", ".join(f'"{quote(i)}"' for i in ("畜禽养殖", "化工", "商混站", "家具"))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % {"seed": 42, "industries": industries})
    try:
        out = subprocess.run(["wrk", f"-t{min(2, clients)}", f"-c{clients}", f"-d{seconds}s",
                              "--latency", "-H", f"Cookie: {cookie}", "-s", f.name,
                              f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                             check=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(f.name)

    def ms(label: str) -> float:
        value = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(value.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[value.group(2)]

    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"requests": total, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": ms("50%"), "p90": ms("90%"), "p99": ms("99%"),
            "errors": (int(bad.group(1)) if bad else 0), "socket": errors.group(1) if errors else "0"}


def run_python(port: int, cookie: str, clients: int, seconds: int) -> dict:
    per = max(50, int(seconds * 250 / clients))
    lat: list[float] = []
    errs: list = []
    threads = [threading.Thread(target=client, args=(port, cookie, per, i + 1, lat, errs))
               for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - t0
    lat.sort()
    q = statistics.quantiles(lat, n=100)
    return {"requests": len(lat), "rps": len(lat) / wall, "p50": q[49] * 1e3,
            "p90": q[89] * 1e3, "p99": q[98] * 1e3, "errors": len(errs), "socket": "0"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=15, help="measured load duration")
    ap.add_argument("--threads", type=int, default=None,
                    help="server threads per process (default: geoapp serve's own)")
    ap.add_argument("--workers", type=int, default=0,
                    help="worker processes (geoapp serve --prod, granian); 0: waitress")
    ap.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    args = ap.parse_args()
    kind = args.client
    if kind == "auto":
        kind = "wrk" if shutil.which("wrk") else "python"
    inst = Path(tempfile.mkdtemp(prefix="geoapp-bench-"))
    port = free_port()
    proc = start_server(inst, port, args.threads, args.workers)
    try:
        cookie = logged_in_cookie(port)
        warm = warm_up(port, cookie)
        run = run_wrk if kind == "wrk" else run_python
        r = run(port, cookie, args.clients, args.seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(inst, ignore_errors=True)
    threads = args.threads or ("2 (default)" if args.workers else "8 (default)")
    server = (f"granian ({args.workers} processes x {threads} threads)" if args.workers
              else f"waitress ({threads} threads)")
    print(f"GET /api/check through {server}, {args.clients} concurrent {kind} clients on "
          f"loopback, {r['requests']} requests in {args.seconds} s (warm-up {warm:.0f} s); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  throughput {r['rps']:.0f} req/s; latency p50 {r['p50']:.2f} ms, "
          f"p90 {r['p90']:.2f} ms, p99 {r['p99']:.2f} ms; errors {r['errors']}, "
          f"socket errors {r['socket']}")


if __name__ == "__main__":
    main()

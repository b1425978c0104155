"""Single-point check through a real WSGI server: latency under concurrent clients.

Starts `geoapp serve` (waitress, one process) or, with ``--workers N``, `geoapp serve --prod`
(gunicorn, N worker processes, a throw-away random SECRET_KEY) on a free loopback port with a
throw-away instance, logs in 16 (or --clients) HTTP clients, each sending GET /api/check for
random points in the city for a bounded number of requests, and prints throughput and
p50/p90/p99 latency. Loopback only; bounded in requests and time; stops the server itself.

    .venv/bin/python bench/bench_check_http.py [--clients 16] [--requests 4000] [--workers N]
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
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(inst: Path, port: int, threads: int, workers: int = 0) -> subprocess.Popen:
    env = {**os.environ, "GEOAPP_INSTANCE_PATH": str(inst), "GEOAPP_LOG_LEVEL": "WARNING",
           "GEOAPP_SECRET_KEY": secrets.token_urlsafe(48)}
    subprocess.run([BIN / "geoapp", "users", "create", "--username", "bench", "--role",
                    "inspector", "--password", "bench-password"], env=env, check=True,
                   capture_output=True)
    prod = ["--prod", "--workers", str(workers)] if workers else []
    proc = subprocess.Popen([BIN / "geoapp", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--threads", str(threads), *prod], env=env,
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
    form = urlencode({"username": "bench", "password": "bench-password", "csrf_token": token})
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=4000, help="total requests")
    ap.add_argument("--threads", type=int, default=16, help="server threads (per process)")
    ap.add_argument("--workers", type=int, default=0,
                    help="gunicorn worker processes (geoapp serve --prod); 0: waitress")
    args = ap.parse_args()
    inst = Path(tempfile.mkdtemp(prefix="geoapp-bench-"))
    port = free_port()
    proc = start_server(inst, port, args.threads, args.workers)
    try:
        cookie = logged_in_cookie(port)
        # warm-up: each process builds its engine on its first check
        warm = [threading.Thread(target=client, args=(port, cookie, 20, -i, [], [], 600.0))
                for i in range(max(1, 2 * args.workers))]
        for t in warm:
            t.start()
        for t in warm:
            t.join(timeout=600)
        lat: list[float] = []
        errs: list = []
        per = args.requests // args.clients
        threads = [threading.Thread(target=client, args=(port, cookie, per, i + 1, lat, errs))
                   for i in range(args.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(inst, ignore_errors=True)
    lat.sort()
    q = statistics.quantiles(lat, n=100)
    server = (f"gunicorn ({args.workers} processes x {args.threads} threads)" if args.workers
              else f"waitress ({args.threads} threads)")
    print(f"GET /api/check through {server}, {args.clients} concurrent "
          f"clients on loopback, {len(lat)} requests in {wall:.2f} s")
    print(f"  throughput {len(lat) / wall:.0f} req/s; latency p50 {q[49] * 1e3:.2f} ms, "
          f"p90 {q[89] * 1e3:.2f} ms, p99 {q[98] * 1e3:.2f} ms; errors {len(errs)}")


if __name__ == "__main__":
    main()

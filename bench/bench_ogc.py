"""OGC API – Features bench: how long /ogc answers as the sites grow.

On a copy of the embedded Jiaozuo database with N extra livestock farms (synthetic, spread
over the city), logged in as a planner (the site collections are for planners and admins)
through the test client (no network, one thread):
/ogc/collections, the first items page of 10 and of 1,000 farms, a page deep in the
collection, one feature, a bbox page, and a whole read of the farms as GDAL's OAPIF driver
pages through it (1,000 per page).

    .venv/bin/python bench/bench_ogc.py [--sites 10000 100000] [--repeat 5]
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

from geoapp.config import load_settings
from geoapp.services import open_geoapp
from geoapp.web import create_app

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from webutil import login, make_users  # noqa: E402

BBOX = (112.9, 35.1, 113.5, 35.35)  # inside Jiaozuo


def farms(n: int, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    lon = rng.uniform(BBOX[0], BBOX[2], n)
    lat = rng.uniform(BBOX[1], BBOX[3], n)
    return [{"site_type": "livestock_farm", "id": f"B{i:06d}", "name": f"养殖场{i:06d}",
             "district": "解放区", "species": "生猪", "head_count": int(50 + i % 900),
             "scale": "规模养殖场", "industry": "畜禽养殖", "lon": float(lon[i]),
             "lat": float(lat[i])} for i in range(n)]


def timed(client, url: str, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (url, r.status_code, r.get_data(as_text=True)[:300])
        size = len(r.get_data())
    return statistics.median(times), size


def walk(client, url: str) -> tuple[float, int]:
    t, pages = time.perf_counter(), 0
    while url:
        body = client.get(url).get_json()
        pages += 1
        nxt = [lk["href"] for lk in body["links"] if lk["rel"] == "next"]
        url = nxt[0].replace("http://localhost", "") if nxt else None
    return (time.perf_counter() - t) * 1000, pages


def run(n: int, repeat: int, work: Path) -> None:
    inst = work / f"inst-{n}"
    core = open_geoapp(load_settings(inst, environ={}))
    if n:
        t = time.perf_counter()
        core.repo.import_sites(farms(n), user="bench")
        print(f"  imported {n:,} farms in {time.perf_counter() - t:.1f} s")
    core.repo.close()
    app = create_app({"INSTANCE_PATH": str(inst), "TESTING": True, "INTRANET": True,
                      "TILES": "none"})
    make_users(app)
    c = app.test_client()
    login(c, "planner")
    total = len(app.extensions["geoapp"].repo.sites("livestock_farm", columns=["id"]))
    print(f"{total:,} farms")
    for label, url in (
            ("collections", "/ogc/collections"),
            ("items, 10", "/ogc/collections/farms/items"),
            ("items, 1,000", "/ogc/collections/farms/items?limit=1000"),
            ("items, 1,000 at the end", f"/ogc/collections/farms/items?limit=1000&offset="
                                         f"{max(0, total - 1000)}"),
            ("items, bbox", "/ogc/collections/farms/items?limit=1000&bbox=113.2,35.2,113.25,"
                            "35.25"),
            ("one feature", "/ogc/collections/farms/items/F0001"),
            ("items, EPSG:4547", "/ogc/collections/farms/items?limit=1000&crs=http://www."
                                 "opengis.net/def/crs/EPSG/0/4547")):
        ms, size = timed(c, url, repeat)
        print(f"  {label:<26} {ms:8.1f} ms  {size / 1024:8.1f} KiB")
    ms, pages = walk(c, "/ogc/collections/farms/items?limit=1000")
    print(f"  {'whole read, 1,000 a page':<26} {ms:8.1f} ms  {pages} pages")
    app.extensions["geoapp"].repo.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, nargs="*", default=[0, 10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="geoapp-bench-ogc-"))
    try:
        for n in args.sites:
            run(n, args.repeat, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Benchmark of the follow-up work: suspected sources of complaints, deadlines, photos, pages.

    .venv/bin/python bench/bench_followup.py [--runs 5] [--complaints 100000] [--sites 100000]

Setup (not timed): the embedded Jiaozuo data built into a temporary instance.
Timed (median of --runs, with the fastest and slowest):
- suspected sources: every complaint with coordinates linked to the registered sites within
  COMPLAINT_SOURCE_RADIUS_M of a matching type — the embedded complaints against the embedded
  sites, then --complaints synthetic complaints against --sites synthetic sites over the city;
- deadlines: every obligation of every stored site as of a day (the /overdue list), and the
  same rules over --sites synthetic enterprises;
- photos: judging one photo (type, pixels, full decode, EXIF time and GPS, thumbnail) for a
  phone-shrunk 1920×1440 JPEG and an unshrunk 4000×3000 one;
- pages: /overdue, /interviews, /emergency, /weekly and a site page through the app's test
  client (a planner), so template and service time without the network.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geoapp.config import load_settings  # noqa: E402
from geoapp.domain.vocab import ComplaintCategory  # noqa: E402
from geoapp.services import complaints, deadlines, open_geoapp, photos  # noqa: E402
from geoapp.web import create_app  # noqa: E402

BBOX = (112.6, 34.8, 113.7, 35.5)  # Jiaozuo, roughly


def timed(fn, runs: int) -> tuple[float, float, float, object]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times), out


def report(label: str, stats, extra: str = "") -> None:
    med, lo, hi, _ = stats
    print(f"{label:<58} median {med * 1000:9.1f} ms  (min {lo * 1000:.1f}, "
          f"max {hi * 1000:.1f}){'  ' + extra if extra else ''}", flush=True)


def synthetic_complaints(n: int, rng) -> pd.DataFrame:
    lon = rng.uniform(BBOX[0], BBOX[2], n)
    lat = rng.uniform(BBOX[1], BBOX[3], n)
    return pd.DataFrame({
        "id": [f"X{i:07d}" for i in range(n)],
        "category": rng.choice([c.value for c in ComplaintCategory], n),
        "geometry": gpd.points_from_xy(lon, lat)})


def synthetic_sites(n: int, rng) -> gpd.GeoDataFrame:
    lon = rng.uniform(BBOX[0], BBOX[2], n)
    lat = rng.uniform(BBOX[1], BBOX[3], n)
    kinds = rng.choice(["enterprise", "livestock_farm", "scattered_workshop"], n,
                       p=[0.6, 0.2, 0.2])
    return gpd.GeoDataFrame({
        "id": [f"S{i:07d}" for i in range(n)], "name": [f"企业{i:07d}" for i in range(n)],
        "site_type": kinds, "industry": rng.choice(["钢铁", "化工", "家具", "畜禽养殖"], n),
        "district": "温县"}, geometry=gpd.points_from_xy(lon, lat), crs=4326)


def synthetic_enterprises(n: int, rng) -> pd.DataFrame:
    day0 = np.datetime64("2019-01-01")
    due = day0 + rng.integers(0, 3000, n).astype("timedelta64[D]")
    done = rng.random(n) < 0.6
    return pd.DataFrame({
        "id": [f"E{i:07d}" for i in range(n)], "name": [f"企业{i:07d}" for i in range(n)],
        "site_type": "enterprise", "district": "温县",
        "deadline": pd.Series(due).dt.strftime("%Y-%m-%d"),
        "stage": np.where(done, "completed", "started"),
        "planned_start": pd.Series(due - 300).dt.strftime("%Y-%m-%d"),
        "actual_start": pd.Series(due - 280).dt.strftime("%Y-%m-%d"),
        "planned_completion": pd.Series(due).dt.strftime("%Y-%m-%d"),
        "actual_completion": np.where(done, pd.Series(due - 5).dt.strftime("%Y-%m-%d"), "")})


def jpeg_with_gps(width: int, height: int) -> bytes:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    im = Image.fromarray(pixels).resize((width, height))
    exif = Image.Exif()
    exif[0x9003] = "2026:11:20 10:15:00"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (35.0, 14.0, 30.0), 3: "E", 4: (113.0, 14.0, 0.0)})
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--complaints", type=int, default=100_000)
    ap.add_argument("--sites", type=int, default=100_000)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GEOAPP_ENGINE_CACHE": "false"}
        core = open_geoapp(load_settings(tmp, environ=env))
        stored = core.repo.table("complaints")
        sites = core.repo.sites(columns=list(complaints.SITE_COLUMNS))
        n_located = int(stored.geometry.notna().sum()) if "geometry" in stored else 0
        res = timed(lambda: complaints.suspected_sources(core, stored, sites=sites), args.runs)
        report(f"suspected sources, embedded ({len(stored)} complaints, {len(sites)} sites)",
               res, f"{len(res[3])} links, {n_located} located")
        many_c, many_s = synthetic_complaints(args.complaints, rng), synthetic_sites(args.sites,
                                                                                     rng)
        res = timed(lambda: complaints.suspected_sources(core, many_c, sites=many_s), args.runs)
        report(f"suspected sources, {args.complaints:,} complaints × {args.sites:,} sites", res,
               f"{len(res[3]):,} links, {res[0] / args.complaints * 1e6:.1f} µs a complaint")

        day = deadlines.local_today()
        res = timed(lambda: deadlines.obligations(core, day), args.runs)
        report("deadlines, every stored site (the /overdue list)", res,
               f"{len(res[3])} obligations")
        frame, rules = synthetic_enterprises(args.sites, rng), deadlines.rules(core)
        res = timed(lambda: deadlines.deadline_columns(frame, day, rules), args.runs)
        report(f"deadline status column, {args.sites:,} enterprises", res,
               f"{res[0] / args.sites * 1e6:.2f} µs an enterprise")
        limits = photos.Limits.of(core)
        for w, h in ((1920, 1440), (4000, 3000)):
            data = jpeg_with_gps(w, h)
            up = photos.Upload(f"{w}x{h}.jpg", data)
            res = timed(lambda up=up: photos.read_photo(up, limits), args.runs)
            report(f"photo judged and read, {w}×{h} JPEG ({len(data) / 1e6:.1f} MB)", res,
                   f"thumbnail {len(res[3]['thumb']) / 1e3:.0f} kB")
        core.repo.close()

        app = create_app({"INSTANCE_PATH": tmp, "TESTING": True, "WTF_CSRF_ENABLED": False,
                          "ENGINE_CACHE": False})
        from geoapp.services.accounts import create_user  # noqa: PLC0415

        password = "Bench-password-8d7f"
        create_user(app.extensions["geoapp"], "bench", password, "planner", by="bench")
        client = app.test_client()
        client.post("/login", data={"username": "bench", "password": password})
        for url in ("/overdue", "/interviews?week=2026-W40", "/emergency",
                    "/weekly?week=2026-W47", "/sites/E0008"):
            client.get(url)  # warm: engine, templates
            res = timed(lambda url=url: client.get(url), args.runs)
            status = res[3].status_code
            report(f"page {url}", res, f"HTTP {status}, {len(res[3].data) / 1e3:.0f} kB")


if __name__ == "__main__":
    main()

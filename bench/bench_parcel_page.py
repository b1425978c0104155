"""The /parcel answer page for one parcel of very many vertices: time and bytes.

Builds a throw-away instance, logs in through the test client and uploads, as a GeoJSON
file, one parcel in Jiaozuo's urban core with ``--vertices`` vertices: a smooth circle (a
drawing's arc cut fine) and a jagged one (a circle with ±2 m of noise on every vertex, the
worst case for simplification). Prints, for each, the time of POST /parcel, the page's size
and how much of it is the map and the carried (signed) answer form; then the time and size
of the Word report downloaded from that page. Not part of the test suite.

    .venv/bin/python bench/bench_parcel_page.py [--vertices 199000] [--radius 400]
"""

from __future__ import annotations

import argparse
import io
import json
import re
import secrets
import shutil
import sys
import tempfile
import time
from html import unescape
from pathlib import Path

import numpy as np
from pyproj import Transformer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's geoapp, not an installed one

from geoapp.services import accounts  # noqa: E402
from geoapp.web import create_app  # noqa: E402

#: Centre of the parcels (CGCS2000 3-degree zone 38 without prefix): Jiaozuo's urban core.
CENTRE = (427146.805, 3897074.574)
PASSWORD = "Jiaozuo-Bench-Parcel-2026"


def parcel(vertices: int, radius: float, noise: float) -> dict:
    rnd = np.random.default_rng(7)
    t = np.linspace(0.0, 2 * np.pi, vertices, endpoint=False)
    r = radius + (rnd.uniform(-noise, noise, vertices) if noise else 0.0)
    x, y = CENTRE[0] + r * np.cos(t), CENTRE[1] + r * np.sin(t)
    lon, lat = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True).transform(x, y)
    ring = np.column_stack([lon, lat]).tolist()
    ring.append(ring[0])
    return {"type": "Feature", "properties": {"id": "BIG", "name": "多顶点地块"},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def _carry_form(page: str) -> tuple[str, dict[str, str]]:
    m = re.search(r'<form class="pc-carry".*?</form>', page, re.S)
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', m.group(0))
    return m.group(0), {k: unescape(v) for k, v in fields}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vertices", type=int, default=199_000)
    ap.add_argument("--radius", type=float, default=400.0)
    args = ap.parse_args()
    inst = Path(tempfile.mkdtemp(prefix="geoapp-bench-"))
    try:
        app = create_app({"INSTANCE_PATH": str(inst), "INTRANET": True, "TILES": "none",
                          "SECRET_KEY": secrets.token_urlsafe(48), "LOG_LEVEL": "WARNING"})
        accounts.create_user(app.extensions["geoapp"], "bench", PASSWORD, "viewer", by="bench")
        c = app.test_client()
        login = c.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
        c.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token})
        c.get("/parcel")  # warm: the rule engine, the templates
        for label, noise in (("smooth circle", 0.0), ("jagged circle ±2 m", 2.0)):
            data = json.dumps(parcel(args.vertices, args.radius, noise)).encode()
            t = time.perf_counter()
            r = c.post("/parcel", data={"csrf_token": token, "mode": "file",
                                        "file": (io.BytesIO(data), "big.geojson")},
                       content_type="multipart/form-data")
            took = time.perf_counter() - t
            page = r.get_data(as_text=True)
            print(f"{label}, {args.vertices:,} vertices, upload {len(data) / 1e6:.1f} MB: "
                  f"POST /parcel {r.status_code} in {took:.2f} s, page "
                  f"{len(page.encode()) / 1e6:.2f} MB")
            if r.status_code != 200:
                print("  " + re.sub(r"\s+", " ", page)[:300])
                continue
            form, fields = _carry_form(page)
            script = page[page.rfind('<script nonce="'):]
            mapdiv = re.search(r'<div class="ck-map pc-map".*?</section>', page, re.S).group(0)
            vertices = len(re.findall(r"\]\s*,\s*\[", script))
            print(f"  carried answer form {len(form.encode()) / 1e6:.2f} MB, map script "
                  f"{len(script.encode()) / 1e6:.2f} MB, map html {len(mapdiv.encode()) / 1e6:.2f}"
                  f" MB, vertices on the map ~{vertices:,}")
            t = time.perf_counter()
            d = c.post("/parcel/download", data={**fields, "format": "docx"},
                       content_type="multipart/form-data")
            print(f"  DOCX download {d.status_code} in {time.perf_counter() - t:.2f} s, "
                  f"{len(d.data) / 1e6:.2f} MB")
    finally:
        shutil.rmtree(inst, ignore_errors=True)


if __name__ == "__main__":
    main()

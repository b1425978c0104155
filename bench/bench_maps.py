"""Map performance bench: generation time, HTML size and time to a drawn map in Chromium.

For 10,000 and 100,000 synthetic sites spread over the city it builds a page with the compact
canvas point layer (geoapp.maps.points), and at 10,000 the same page with plain folium
GeoJson and with FastMarkerCluster for comparison, and the relocation map
(geoapp.maps.relocation) of 10,000 enterprises, a third of them relocating. Pages are served
from a local HTTP server with every asset local (intranet mode); the drawn time runs from
navigation start until the layer has drawn (``window.__geoappDrawnAt``) or, for folium's
layers, until two animation frames after the load event.

    .venv/bin/python bench/bench_maps.py [--write docs/performance.md] [--only relocation]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import logging
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Element
from folium import plugins
from playwright.sync_api import sync_playwright

from geoapp.maps.assets import localize_assets
from geoapp.maps.base import base_map
from geoapp.maps.points import add_fast_points
from geoapp.maps.relocation import relocation_map

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
BBOX = (112.6, 34.8, 113.7, 35.5)  # Jiaozuo, roughly
DRAWN_AFTER_LOAD = Element("""<script>
window.addEventListener('load', function () {
  requestAnimationFrame(function () { requestAnimationFrame(function () {
    if (!window.__geoappDrawnAt) { window.__geoappDrawnAt = performance.now(); }
  }); });
});
</script>""")
CATS = {"relocate": ("搬迁升级", "#d62728"), "upgrade": ("改造提升", "#1f77b4"),
        "close": ("原址关闭", "#111111")}


def synthetic_sites(n: int, seed: int = 1) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    lon = rng.uniform(BBOX[0], BBOX[2], n)
    lat = rng.uniform(BBOX[1], BBOX[3], n)
    return gpd.GeoDataFrame(
        {"id": [f"S{i:06d}" for i in range(n)], "name": [f"企业{i:06d}" for i in range(n)],
         "district": rng.choice(["解放区", "中站区", "马村区", "山阳区", "修武县", "温县"], n),
         "industry": rng.choice(["铸造", "化工", "水泥", "家具", "砖瓦"], n),
         "classification": rng.choice(list(CATS), n)},
        geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


def _map() -> folium.Map:
    return base_map((35.15, 113.15), 10, "none")


def page_fast(sites: gpd.GeoDataFrame) -> folium.Map:
    m = _map()
    add_fast_points(m, sites, "企业", colour_by="classification", categories=CATS,
                    fields=[("district", "辖区"), ("industry", "行业")], link="/sites/{id}")
    folium.LayerControl().add_to(m)
    return m


def page_geojson(sites: gpd.GeoDataFrame) -> folium.Map:
    m = _map()
    colours = {k: v[1] for k, v in CATS.items()}
    folium.GeoJson(
        sites, marker=folium.CircleMarker(radius=5, fill=True),
        style_function=lambda f: {"fillColor": colours[f["properties"]["classification"]],
                                  "color": "#fff", "weight": 1, "fillOpacity": .9},
        popup=folium.GeoJsonPopup(fields=["id", "name", "district", "industry"]),
    ).add_to(m)
    return m


STAGES = ("not_started", "started", "completed", "accepted")
RULES = (("chemical_outside_park", "化工企业未入园", "Chemical plant outside a park", "high"),
         ("canal_protection_2", "南水北调总干渠二级保护区", "Canal protection zone II", "high"))


def synthetic_enterprises(n: int, seed: int = 2) -> tuple[pd.DataFrame, dict, dict]:
    """A relocation ledger of ``n`` enterprises (a third relocating, with a new site) and
    rule hits for one in five at the site and one in ten at the new site."""
    sites = synthetic_sites(n, seed)
    rng = np.random.default_rng(seed)
    moving = rng.random(n) < 1 / 3
    frame = pd.DataFrame({
        "id": sites["id"], "name": sites["name"], "district": sites["district"],
        "industry": sites["industry"],
        "classification": np.where(moving, "relocate", sites["classification"]),
        "stage": rng.choice(STAGES, n), "lon": sites.geometry.x, "lat": sites.geometry.y,
        "new_lon": np.where(moving, rng.uniform(BBOX[0], BBOX[2], n), np.nan),
        "new_lat": np.where(moving, rng.uniform(BBOX[1], BBOX[3], n), np.nan),
        "new_site_name": np.where(moving, [f"新址{i:06d}" for i in range(n)], None),
        "vacated_mu": np.round(rng.uniform(5, 200, n), 1)})

    def hit(i: int) -> dict:
        rule_id, zh, en, severity = RULES[i % len(RULES)]
        return {"rule_id": rule_id, "title_zh": zh, "title_en": en, "severity": severity,
                "feature": "修武县化工产业园", "distance_m": float(i % 900)}

    ids = frame["id"].tolist()
    hits = {ids[i]: [hit(i)] for i in range(0, n, 5)}
    new_hits = {ids[i]: [hit(i + 1)] for i in np.flatnonzero(moving)[::3]}
    return frame, hits, new_hits


def page_relocation(data) -> folium.Map:
    frame, hits, new_hits = data
    return relocation_map(frame, hits, new_site_hits=new_hits, center=(35.15, 113.15), zoom=10,
                          city_bounds=BBOX, tiles="none")


def page_fastcluster(sites: gpd.GeoDataFrame) -> folium.Map:
    m = _map()
    plugins.FastMarkerCluster(list(zip(sites.geometry.y, sites.geometry.x, strict=True))).add_to(m)
    return m


def generate(build, sites) -> tuple[float, str]:
    """Median of 3 of build + render; returns (seconds, the page with local assets)."""
    times = []
    for _ in range(3):
        t = time.perf_counter()
        m = build(sites)
        m.get_root().render()
        times.append(time.perf_counter() - t)
    m.get_root().html.add_child(DRAWN_AFTER_LOAD)
    localize_assets(m.get_root(), lambda p: "/static/" + p)
    return statistics.median(times), m.get_root().render()


def _server(folder: Path):
    (folder / "static").symlink_to(ROOT / "static")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def drawn_ms(browser, url: str, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        pg = ctx.new_page()
        pg.goto(url, wait_until="commit")
        pg.wait_for_function("window.__geoappDrawnAt > 0", timeout=120_000, polling=50)
        times.append(pg.evaluate("window.__geoappDrawnAt"))
        ctx.close()
    return statistics.median(times)


CASES = [("canvas points (geoapp)", page_fast, synthetic_sites, 10_000),
         ("folium GeoJson", page_geojson, synthetic_sites, 10_000),
         ("FastMarkerCluster", page_fastcluster, synthetic_sites, 10_000),
         ("canvas points (geoapp)", page_fast, synthetic_sites, 100_000),
         ("relocation map", page_relocation, synthetic_enterprises, 10_000)]


def run(only: str | None = None) -> list[dict]:
    cases = [c for c in CASES if not only or only in c[0]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        folder = Path(tmp)
        srv = _server(folder)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu",
                                           "--disable-background-networking"])
        try:
            for i, (label, build, make, n) in enumerate(cases):
                sites = make(n)
                gen, html = generate(build, sites)
                name = f"page{i}.html"
                (folder / name).write_text(html, encoding="utf-8")
                url = f"http://127.0.0.1:{srv.server_port}/{name}"
                rows.append({"layer": label, "sites": n, "generate_s": gen,
                             "html_mb": len(html.encode()) / 1e6,
                             "drawn_s": drawn_ms(browser, url) / 1000})
                r = rows[-1]
                print(f"{label:24s} {n:>7,d}  generate {r['generate_s']:6.2f} s  "
                      f"html {r['html_mb']:6.2f} MB  drawn {r['drawn_s']:6.2f} s", flush=True)
        finally:
            browser.close()
            srv.shutdown()
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| layer | sites | generate (s, median of 3) | HTML (MB) | drawn in Chromium (s) |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['sites']:,} | {r['generate_s']:.2f} | "
                     f"{r['html_mb']:.2f} | {r['drawn_s']:.2f} |")
    fast = next((r for r in rows if r["sites"] == 10_000 and "geoapp" in r["layer"]), None)
    for r in rows:
        if fast and r["sites"] == 10_000 and r is not fast and "relocation" not in r["layer"]:
            lines.append("")
            lines.append(f"- {r['layer']} / canvas points at 10,000: generation "
                         f"x{r['generate_s'] / fast['generate_s']:.2f}, HTML "
                         f"x{r['html_mb'] / fast['html_mb']:.2f}, drawn "
                         f"x{r['drawn_s'] / fast['drawn_s']:.2f}")
    # The machine may be shared: the load average says how far to trust the figures.
    lines.append(f"- load average (1 min) at the end of the run: {os.getloadavg()[0]:.1f} "
                 f"on {os.cpu_count()} CPUs")
    return "\n".join(lines).replace("\n\n- ", "\n- ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, help="replace the bench table in this markdown file")
    ap.add_argument("--only", help="run only the cases whose label contains this text")
    args = ap.parse_args()
    table = markdown(run(args.only))
    print(table)
    if args.write:
        text = args.write.read_text(encoding="utf-8") if args.write.exists() else ""
        start, end = "<!-- bench_maps:start -->", "<!-- bench_maps:end -->"
        block = f"{start}\n{table}\n{end}"
        if start in text and end in text:
            text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
        else:
            text += "\n" + block + "\n"
        args.write.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

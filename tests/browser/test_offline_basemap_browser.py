"""The basemap with no internet, in Chromium: with TILES=local on the embedded Jiaozuo data
and every request off the app's own origin aborted, map pages ask the app for their tiles,
get them, and draw them (canvas tiles with the city on them, not a blank grey; a raster
MBTiles file as image tiles, its attribution shown as text); the bulletin's map.html opened from disk with all network blocked still shows the city's base
layers and its markers. The CSP is enforced (no bypass)."""

from __future__ import annotations

import io
import re
import time

import pytest
from PIL import Image

from geoapp.services.weekly import weekly_report, write_file
from geoapp.storage.tiles import tile_range, write_mbtiles
from geoapp.web import create_app

from browserutil import serve, settle, sign_in
from webutil import copy_database, password_for, share_engine

pytestmark = pytest.mark.browser

WEEK = "2026-W47"

#: Counts the coloured pixels of the local basemap: the vector tiles' canvases (or raster
#: tile images) in the map's tile pane, or the inline base's canvas in its own pane.
DRAWN = """(sel) => {
  const box = document.querySelector(sel);
  if (!box) { return {tiles: 0, painted: 0, colours: 0}; }
  const canvases = [...box.querySelectorAll(
      '.leaflet-tile-pane canvas.leaflet-tile, .leaflet-geoappBase-pane canvas')];
  let painted = 0; const colours = new Set();
  for (const c of canvases) {
    if (!c.width || !c.height) { continue; }
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4 * 7) {
      if (d[i + 3] > 0) { painted++; colours.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]); }
    }
  }
  return {tiles: canvases.length, painted: painted, colours: colours.size};
}"""


def _wait_drawn(pg, sel: str, timeout: float = 20.0) -> dict:
    """Poll (page.evaluate: the enforced CSP forbids wait_for_function's string eval) until
    the basemap has painted something in ``sel``."""
    end = time.monotonic() + timeout
    seen = {}
    while time.monotonic() < end:
        seen = pg.evaluate(DRAWN, sel)
        if seen["painted"] > 500 and seen["colours"] >= 3:
            return seen
        pg.wait_for_timeout(250)
    raise AssertionError(f"basemap not drawn in {sel}: {seen}")


@pytest.fixture(scope="module")
def local_server(tmp_path_factory, jiaozuo_users_db, jiaozuo_engine):
    inst = copy_database(jiaozuo_users_db, tmp_path_factory.mktemp("local-tiles")).parent
    app = create_app({"INSTANCE_PATH": str(inst), "INTRANET": True, "TILES": "local",
                      "TESTING": True})
    share_engine(app, jiaozuo_engine)
    for url in serve(app):
        yield app, url


@pytest.fixture
def offline_page(browser, local_server):
    """A logged-in page whose every request off the app's origin is aborted and recorded,
    with the app's tile answers recorded too; the CSP is enforced."""
    app, base = local_server
    ctx = browser.new_context(viewport={"width": 1200, "height": 800}, locale="zh-CN")
    pg = ctx.new_page()
    pg.blocked, pg.tiles, pg.errors = [], [], []
    pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("response", lambda r: "/tiles/" in r.url and pg.tiles.append((r.url, r.status)))

    def route(r):
        url = r.request.url
        if url.startswith((base + "/", "data:", "blob:")):
            r.continue_()
        else:
            pg.blocked.append(url)
            r.abort()

    pg.route("**/*", route)
    pg.goto(base + "/login")
    pg.fill("input[name=username]", "viewer")
    pg.fill("input[name=password]", password_for("viewer"))
    pg.click("button[type=submit]")
    pg.wait_for_url(lambda url: "/login" not in url)
    yield pg, base
    ctx.close()


@pytest.mark.parametrize("path, sel", [("/", ".folium-map"),
                                       (f"/weekly?week={WEEK}", "#wk-map .folium-map")])
def test_map_pages_draw_the_local_basemap_from_the_app_alone(offline_page, path, sel,
                                                             artifacts):
    pg, base = offline_page
    pg.tiles.clear()
    pg.goto(base + path, wait_until="load")
    drawn = _wait_drawn(pg, sel)
    assert drawn["tiles"] >= 1
    ok = [u for u, s in pg.tiles if s == 200]
    assert ok, pg.tiles
    assert all(u.startswith(base + "/tiles/") and u.endswith(".pbf") for u, _s in pg.tiles)
    assert {s for _u, s in pg.tiles} <= {200, 204, 304}
    assert pg.blocked == []
    assert pg.errors == []
    name = "offline-basemap-overview.png" if path == "/" else "offline-basemap-weekly.png"
    settle(pg)
    pg.screenshot(path=str(artifacts / name))


def _raster_file(path):
    """An MBTiles file of plain coloured PNG tiles over Jiaozuo at zooms 8-10 (a chequer, so
    a drawn tile is told from a blank one)."""
    tiles = []
    for z in (8, 9, 10):
        x0, y0, x1, y1 = tile_range((112.6, 34.8, 113.7, 35.5), z)
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                colour = (120, 170, 110) if (x + y) % 2 else (200, 190, 150)
                buf = io.BytesIO()
                Image.new("RGB", (256, 256), colour).save(buf, format="PNG")
                tiles.append((z, x, y, buf.getvalue()))
    return write_mbtiles(path, tiles, fmt="png", bounds=(112.6, 34.8, 113.7, 35.5),
                         metadata={"attribution": '测试栅格底图 <a href="https://evil.example/">'
                                   '请重新登录</a><img src=x onerror="window.__pwned=1">'})


@pytest.fixture(scope="module")
def raster_server(tmp_path_factory, jiaozuo_users_db, jiaozuo_engine):
    inst = copy_database(jiaozuo_users_db, tmp_path_factory.mktemp("raster-tiles")).parent
    _raster_file(inst / "raster.mbtiles")
    app = create_app({"INSTANCE_PATH": str(inst), "INTRANET": True, "TILES": "local",
                      "LOCAL_TILES": "raster.mbtiles", "TESTING": True})
    share_engine(app, jiaozuo_engine)
    yield from serve(app)


def test_a_raster_file_is_drawn_as_image_tiles(browser, raster_server):
    base = raster_server
    ctx = browser.new_context(viewport={"width": 1000, "height": 700}, locale="zh-CN")
    pg = ctx.new_page()
    tiles, blocked = [], []
    pg.on("response", lambda r: "/tiles/" in r.url and tiles.append((r.url, r.status)))

    def route(r):
        if r.request.url.startswith((base + "/", "data:", "blob:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    pg.route("**/*", route)
    try:
        sign_in(ctx, base, "viewer")
        pg.goto(base + "/", wait_until="load")
        end = time.monotonic() + 20
        loaded = 0
        while time.monotonic() < end and loaded < 1:
            loaded = pg.evaluate("""() => [...document.querySelectorAll(
                '.leaflet-tile-pane img.leaflet-tile-loaded')]
                .filter(i => i.naturalWidth === 256).length""")
            pg.wait_for_timeout(250)
        assert loaded >= 1
        assert all(u.endswith(".png") for u, _s in tiles)
        assert {s for _u, s in tiles} <= {200, 204, 304}
        assert any(s == 200 for _u, s in tiles)
        assert blocked == []
        # the file's attribution is text: its link and image show as written, never as HTML
        attribution = pg.inner_text(".leaflet-control-attribution")
        assert "测试栅格底图 <a href=" in attribution and "<img src=x" in attribution
        assert pg.locator(".leaflet-control-attribution a[href*='evil'], "
                          ".leaflet-control-attribution img").count() == 0
        assert pg.evaluate("() => window.__pwned === undefined")
    finally:
        ctx.close()


def test_weekly_map_file_shows_the_city_from_disk_with_no_network(browser, local_server,
                                                                  tmp_path, artifacts):
    app, _base = local_server
    core = app.extensions["geoapp"]
    report = weekly_report(core, WEEK)
    path = write_file(core, report, "map.html", tmp_path)
    html = path.read_text(encoding="utf-8")
    assert not re.search(r'<(script|link)\b[^>]*\b(src|href)=', html)
    assert "cdn.jsdelivr" not in html and "cdnjs.cloudflare" not in html
    assert path.stat().st_size < 3 * 1024 * 1024

    ctx = browser.new_context(viewport={"width": 1000, "height": 700}, locale="zh-CN")
    pg = ctx.new_page()
    fetched, errors = [], []
    pg.on("console", lambda m: m.type == "error" and errors.append(m.text))
    pg.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url == path.as_uri():
            r.continue_()
        else:
            fetched.append(r.request.url)
            r.abort()

    pg.route("**/*", route)
    try:
        pg.goto(path.as_uri(), wait_until="load")
        drawn = _wait_drawn(pg, ".folium-map")
        assert drawn["tiles"] >= 1
        # each county named once: by the bulletin's own labels, not again by the base
        assert pg.locator(".geoapp-base-label").count() == 0
        labels = pg.locator(".weekly-county-label").all_inner_texts()
        assert len(labels) >= 10 and len(labels) == len(set(labels))
        assert "解放区" in labels and "孟州市" in labels
        assert pg.locator(".leaflet-overlay-pane canvas").count() >= 1
        # nothing asked for but the file itself: no script, no stylesheet, no tile
        assert [u for u in fetched if not u.startswith("data:")] == []
        assert errors == []
        pg.screenshot(path=str(artifacts / "offline-basemap-map-html.png"))
    finally:
        ctx.close()

"""The check page in Chromium under its real CSP: a click on a farm's marker gives the same
answer under every basemap (GCJ-02 on Amap), "my location" is WGS84 and drawn shifted on Amap,
and each of the four verdicts shows its colour and sentence at the top of a 390 px phone.

Tiles cannot be fetched here: requests to the tile hosts get a blank tile, so the page runs
as it would with a basemap (no console error) while the overlays and clicks are tested.
"""

from __future__ import annotations

import base64
import re

import pytest
from playwright.sync_api import expect

from geoapp.domain.results import Verdict
from geoapp.spatial.crs import wgs84_to_gcj02
from geoapp.web import create_app

from browserutil import serve, sign_in
from webutil import copy_database, share_engine

pytestmark = pytest.mark.browser

FARM_ID = "F0002"
FARM = (113.19032, 35.299646)  # livestock farm F0002, 69.0 m from the 群英河
RIVER_RULE = "riverside_livestock"
TILES = ("osm", "tianditu", "amap", "none")
TILE_HOSTS = re.compile(r"^https://[^/]*(tile\.openstreetmap\.org|tianditu\.gov\.cn|"
                        r"is\.autonavi\.com)/")
BLANK_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
PHONE = {"width": 390, "height": 844}
CASES = {
    "fail": (f"lon={FARM[0]}&lat={FARM[1]}&site_type=livestock_farm", "rgb(179, 20, 27)"),
    "pass": ("lon=113.3&lat=35.1&site_type=enterprise&industry=服装", "rgb(30, 123, 52)"),
    "needs_info": (f"lon={FARM[0]}&lat={FARM[1]}", "rgb(154, 91, 0)"),
    "out_of_area": ("lon=113.65&lat=34.75", "rgb(95, 99, 104)"),
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory, jiaozuo_users_db, jiaozuo_engine, live_server):
    """Factory: the base URL of a live server with the given TILES setting (one per setting;
    "none" is the session's live server)."""
    running: dict[str, tuple] = {"none": (live_server, None)}

    def start(tiles: str) -> str:
        if tiles not in running:
            inst = copy_database(jiaozuo_users_db, tmp_path_factory.mktemp(f"instance-{tiles}"))
            app = create_app({"INSTANCE_PATH": str(inst.parent), "INTRANET": True,
                              "TILES": tiles, "TIANDITU_KEY": "test-key", "TESTING": True})
            share_engine(app, jiaozuo_engine)
            server = serve(app)
            running[tiles] = (next(server), server)
        return running[tiles][0]

    yield start
    for _, server in running.values():
        if server is not None:
            server.close()  # runs serve()'s clean-up: shut the server down, join its thread


@pytest.fixture
def open_page(browser):
    """Factory: a page logged in on ``base`` with the page's CSP enforced (no bypass),
    recording console errors and requests off loopback; tile hosts get a blank tile."""
    made = []

    def make(base: str, role: str = "inspector", **context_args):
        ctx = browser.new_context(**{"viewport": {"width": 1280, "height": 800},
                                     "locale": "zh-CN", "bypass_csp": False, **context_args})
        made.append(ctx)
        pg = ctx.new_page()
        pg.console_errors, pg.external_requests, pg.tile_requests = [], [], []
        pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
        pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))

        def _route(route):
            url = route.request.url
            if url.startswith(("http://127.0.0.1", "data:", "blob:")):
                route.continue_()
            elif TILE_HOSTS.match(url):
                pg.tile_requests.append(url)
                route.fulfill(status=200, content_type="image/png", body=BLANK_PNG)
            else:
                pg.external_requests.append(url)
                route.abort()

        pg.route("**/*", _route)
        sign_in(ctx, base, role)
        return pg

    yield make
    for ctx in made:
        ctx.close()


def _map_name(pg) -> str:
    return pg.get_attribute("#ga-map-container", "data-map-id")


def _shown(tiles: str, lon: float, lat: float) -> tuple[float, float]:
    """Where a WGS84 point is drawn on this basemap (GCJ-02 on Amap)."""
    return wgs84_to_gcj02(lon, lat) if tiles == "amap" else (lon, lat)


def _pixel_of(pg, lon: float, lat: float, zoom: int = 18) -> tuple[float, float]:
    """Once the map has finished its opening zoom, centre it on lon/lat at ``zoom`` (about
    0.5 m a pixel) and return that point's page pixel."""
    x, y = pg.evaluate(
        """async ([name, lat, lon, zoom]) => {
             const map = window[name];
             while (map._animatingZoom) {  // fitBounds' zoom animation still running
               await new Promise((done) => map.once("zoomend", done));
             }
             map.setView([lat, lon], zoom, {animate: false});
             const p = map.latLngToContainerPoint([lat, lon]);
             return [map.getZoom() === zoom ? p.x : NaN, p.y];
           }""", [_map_name(pg), lat, lon, zoom])
    assert x == x, "the map did not zoom in"
    box = pg.locator(".ck-map .leaflet-container").bounding_box()
    return box["x"] + x, box["y"] + y


def _hover_point_marker(pg, lon: float, lat: float) -> tuple[float, float]:
    """Hover the check point's marker where it should be drawn; its tooltip must open.

    Leaflet's canvas ignores a mouse move that comes within 32 ms of the previous one, so
    the move is repeated (a hair apart) until the tooltip shows, at most a few times.
    """
    px, py = _pixel_of(pg, lon, lat)
    tip = pg.locator(".leaflet-tooltip", has_text="核查点")
    for attempt in range(6):
        pg.mouse.move(px + (attempt % 2) * 0.5, py)
        try:
            expect(tip).to_be_visible(timeout=500)
            break
        except AssertionError:
            continue
    expect(tip).to_be_visible()
    return px, py


def _river_hit(pg) -> tuple[str, float]:
    verdict = pg.get_attribute(".ck-verdict", "data-verdict")
    dist = pg.locator(f'.ck-hit[data-rule="{RIVER_RULE}"] .ck-dist').inner_text()
    return verdict, float(dist.replace("m", "").strip())


def _no_errors(pg) -> None:
    assert [e for e in pg.console_errors if "Content Security Policy" in e] == []
    assert pg.console_errors == []
    assert pg.external_requests == []


@pytest.mark.slow  # one server per basemap, hover until the tooltip shows
@pytest.mark.parametrize("tiles", TILES)
def test_clicking_the_farms_marker_gives_the_same_answer_under_every_basemap(
        open_page, servers, artifacts, tiles):
    base = servers(tiles)
    pg = open_page(base)
    pg.goto(f"{base}/check?site={FARM_ID}", wait_until="load")
    assert _river_hit(pg) == ("fail", 69.0)  # the stored farm, checked by id
    map_crs = "gcj02" if tiles == "amap" else "wgs84"
    label = "GCJ-02" if tiles == "amap" else "WGS84"
    assert pg.get_attribute("#ga-map-container", "data-map-crs") == map_crs

    lon, lat = _shown(tiles, *FARM)
    px, py = _hover_point_marker(pg, lon, lat)
    readout = pg.locator(".leaflet-control-mouseposition").inner_text()
    assert f"({label})" in readout
    shown = sorted(float(v) for v in re.findall(r"\d+\.\d+", readout))
    assert shown == pytest.approx(sorted([lon, lat]), abs=2e-5)  # the map's own numbers

    pg.mouse.click(px, py)
    ok = pg.locator(".ck-pick-ok")
    expect(ok).to_be_visible()
    assert f"({label})" in pg.locator(".ck-pick-coords").inner_text()
    assert pg.input_value("#ck-crs") == map_crs
    assert float(pg.input_value("#ck-lon")) == pytest.approx(lon, abs=1e-5)
    assert float(pg.input_value("#ck-lat")) == pytest.approx(lat, abs=1e-5)
    assert pg.input_value("#ck-site-type") == "livestock_farm"  # carried over from the site
    with pg.expect_navigation():
        ok.click()
    assert f"crs={map_crs}" in pg.url
    verdict, dist = _river_hit(pg)
    assert verdict == "fail"
    assert dist == pytest.approx(69.0, abs=1.0)
    wgs = [float(v) for v in pg.locator(".ck-wgs84").inner_text().split(",")]
    assert wgs == pytest.approx(list(FARM), abs=1e-5)  # within about a metre of the farm
    _no_errors(pg)
    if tiles != "none":
        assert pg.tile_requests, "the basemap asked for no tile"
    pg.screenshot(path=str(artifacts / f"check-click-{tiles}.png"))


@pytest.mark.slow
@pytest.mark.parametrize("tiles", ["amap", "osm"])
def test_my_location_is_sent_as_wgs84_and_drawn_where_the_basemap_has_it(
        open_page, servers, artifacts, tiles):
    base = servers(tiles)
    pg = open_page(base, geolocation={"longitude": FARM[0], "latitude": FARM[1]},
               permissions=["geolocation"])
    pg.goto(f"{base}/check", wait_until="load")
    pg.select_option("#ck-site-type", "livestock_farm")
    with pg.expect_navigation():
        pg.click("#ck-locate")
    assert "crs=wgs84" in pg.url and f"lon={FARM[0]:.6f}" in pg.url
    assert _river_hit(pg) == ("fail", 69.0)
    _hover_point_marker(pg, *_shown(tiles, *FARM))  # on Amap: the GCJ-02 position
    _no_errors(pg)
    pg.screenshot(path=str(artifacts / f"check-my-location-{tiles}.png"))


@pytest.mark.parametrize("verdict", list(CASES))
def test_each_verdict_is_coloured_and_explained_at_the_top_of_a_phone(
        open_page, servers, artifacts, verdict):
    base = servers("none")
    query, colour = CASES[verdict]
    pg = open_page(base, viewport=PHONE, is_mobile=True, has_touch=True)
    pg.goto(f"{base}/check?{query}", wait_until="load")
    box = pg.locator(".ck-verdict")
    expect(box).to_have_attribute("data-verdict", verdict)
    expect(box).to_have_css("background-color", colour)
    v = Verdict(verdict)
    expect(box.locator(".ck-verdict-label")).to_have_text(v.zh)
    expect(box.locator(".ck-verdict-sentence")).to_have_text(v.sentence_zh)
    top = box.bounding_box()
    assert top["y"] >= 0 and top["y"] + top["height"] <= PHONE["height"]  # above the fold
    for later in ("#ck-point-form", ".ck-map"):
        assert pg.locator(later).bounding_box()["y"] > top["y"] + top["height"]
    assert pg.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    if verdict == "needs_info":
        item = pg.locator(f'.ck-chit[data-conditional-rule="{RIVER_RULE}"]')
        expect(item).to_contain_text("若为畜禽养殖场")
        expect(item).to_contain_text("/ 限 400 m，超入 331.0 m")
    if verdict == "fail":
        expect(pg.locator(f'.ck-hit[data-rule="{RIVER_RULE}"] .ck-measure')).to_have_text(
            "69.0 m / 限 400 m，超入 331.0 m")
    _no_errors(pg)
    pg.screenshot(path=str(artifacts / f"check-verdict-{verdict}-390.png"))


def test_needs_info_rechecks_with_the_site_type_filled_in(open_page, servers):
    base = servers("none")
    pg = open_page(base, viewport=PHONE, is_mobile=True, has_touch=True)
    pg.goto(f"{base}/check?{CASES['needs_info'][0]}", wait_until="load")
    form = pg.locator("#ck-recheck-form")
    form.locator("select[name=site_type]").select_option("livestock_farm")
    with pg.expect_navigation():
        form.locator("button[type=submit]").click()
    assert _river_hit(pg) == ("fail", 69.0)
    _no_errors(pg)

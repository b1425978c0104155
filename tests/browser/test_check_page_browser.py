"""The site check in a real browser: GCJ-02 input agrees with its WGS84 twin, the print view
is one A4 page, and the page works on a 375 px phone."""

from __future__ import annotations

import re

import pytest

from geoapp.spatial.crs import wgs84_to_gcj02

from browserutil import settle

pytestmark = pytest.mark.browser

FARM = (113.19032, 35.299646)  # livestock farm F0002, 69 m from the 群英河


def _answer(pg) -> tuple[str, list[str]]:
    verdict = pg.get_attribute(".ck-verdict", "data-verdict")
    hits = pg.eval_on_selector_all(
        ".ck-hit", "els => els.map(e => e.dataset.rule + ' ' + "
                   "e.querySelector('.ck-dist').textContent.trim())")
    return verdict, hits


def _check(pg, base, crs: str, lon: float, lat: float) -> tuple[str, list[str]]:
    pg.goto(base + "/check", wait_until="load")
    pg.select_option("#ck-crs", crs)
    pg.fill("#ck-lon", f"{lon:.7f}")
    pg.fill("#ck-lat", f"{lat:.7f}")
    pg.select_option("#ck-site-type", "livestock_farm")
    pg.click(".ck-submit")
    pg.wait_for_selector(".ck-verdict")
    return _answer(pg)


@pytest.mark.slow  # two checks typed in, then the map
def test_a_gcj02_point_typed_in_gives_the_same_answer_as_its_wgs84_twin(
        live_server, page_as, artifacts):
    pg = page_as("inspector")
    wgs = _check(pg, live_server, "wgs84", *FARM)
    glon, glat = wgs84_to_gcj02(*FARM)
    gcj = _check(pg, live_server, "gcj02", glon, glat)
    assert wgs[0] == gcj[0] == "fail"
    assert "riverside_livestock 69.0 m" in gcj[1]
    assert wgs[1] == gcj[1]
    assert "crs=gcj02" in pg.url
    pg.wait_for_selector(".leaflet-overlay-pane canvas, .leaflet-overlay-pane svg")
    assert pg.console_errors == []
    assert pg.external_requests == []
    settle(pg)
    pg.screenshot(path=str(artifacts / "check-gcj02.png"), full_page=True)


def test_clicking_the_map_fills_the_fields_in_wgs84(live_server, page_as):
    pg = page_as("viewer")
    pg.goto(live_server + "/check?lon=113.2&lat=35.25", wait_until="load")
    pg.select_option("#ck-crs", "bd09")
    box = pg.locator(".ck-map .leaflet-container").bounding_box()
    pg.mouse.click(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2 + 40)
    assert pg.input_value("#ck-crs") == "wgs84"
    assert re.fullmatch(r"113\.\d{6}", pg.input_value("#ck-lon"))
    assert re.fullmatch(r"35\.\d{6}", pg.input_value("#ck-lat"))


def test_the_print_view_fits_one_a4_page(live_server, page_as, artifacts):
    pg = page_as("inspector")
    pg.goto(live_server + f"/check/print?lon={FARM[0]}&lat={FARM[1]}&site_type=livestock_farm",
            wait_until="load")
    pg.wait_for_selector(".ck-sheet-map .leaflet-overlay-pane canvas, "
                         ".ck-sheet-map .leaflet-overlay-pane svg")
    settle(pg)
    assert pg.console_errors == []
    pdf = pg.pdf(format="A4", print_background=True)
    (artifacts / "check-print.pdf").write_bytes(pdf)
    pages = re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf)
    assert len(pages) == 1
    pg.screenshot(path=str(artifacts / "check-print.png"), full_page=True)


def test_the_check_page_works_on_a_375px_phone(live_server, page_as, artifacts):
    pg = page_as("inspector", viewport={"width": 375, "height": 740}, is_mobile=True)
    pg.goto(live_server + f"/check?lon={FARM[0]}&lat={FARM[1]}&site_type=livestock_farm",
            wait_until="load")
    pg.wait_for_selector(".ck-verdict")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 375
    assert pg.locator(".ck-verdict").is_visible()
    assert pg.locator(".ck-map .leaflet-container").bounding_box()["width"] <= 375
    assert pg.console_errors == []
    settle(pg)
    pg.screenshot(path=str(artifacts / "check-phone.png"), full_page=True)


def test_the_site_page_works_on_a_375px_phone(live_server, page_as, artifacts):
    pg = page_as("viewer", viewport={"width": 375, "height": 740}, is_mobile=True)
    pg.goto(live_server + "/sites/E0001", wait_until="load")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 375
    assert pg.console_errors == []
    pg.screenshot(path=str(artifacts / "site-phone.png"), full_page=True)

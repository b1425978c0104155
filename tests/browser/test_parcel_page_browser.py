"""The parcel page in a real browser: a survey file uploaded, a polygon drawn with the mouse
(leaflet-draw, under the enforced CSP), a coordinate list pasted; the answer's map, units and
verdict; the print page; a 390 px phone; nothing loaded from any host but the app."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from browserutil import settle

pytestmark = pytest.mark.browser

SURVEY = Path(__file__).resolve().parent.parent / "fixtures" / "survey"
VERDICT_WORDS = {"pass": "符合", "fail": "不符合", "needs_info": "待核实",
                 "out_of_area": "超出本市数据范围"}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
#: A 200 m square in Jiaozuo's urban area (WGS84), as pasted coordinates.
SQUARE = "\n".join(f"{x},{y}" for x, y in (
    (113.2044, 35.2020), (113.2066, 35.2020), (113.2066, 35.2038), (113.2044, 35.2038)))


def _answer(pg) -> list[tuple[str, str]]:
    """(verdict, badge text) of every parcel section of the answer."""
    return pg.eval_on_selector_all(
        "details.pc-parcel", "els => els.map(e => [e.dataset.verdict, "
        "e.querySelector('summary .pc-badge').textContent.trim()])")


def _assert_verdicts_worded(pg) -> list[str]:
    answer = _answer(pg)
    assert answer
    for verdict, word in answer:
        assert word == VERDICT_WORDS[verdict]
    return [v for v, _ in answer]


def _vertices(pg) -> int:
    """Points of the polygon being drawn (leaflet-draw's vertex markers)."""
    return pg.locator(".leaflet-marker-pane .leaflet-editing-icon").count()


def _click_until(pg, x: float, y: float, done, tries: int = 40) -> None:
    """Click the map at (x, y) until ``done()``: leaflet-draw ignores a click that comes
    within 50 ms of the one before (it re-enables new points on a timer), so a click is
    repeated rather than preceded by a fixed sleep; an ignored click changes nothing."""
    for _ in range(tries):
        pg.mouse.move(x, y, steps=2)
        pg.mouse.down()
        pg.mouse.up()
        if done():
            return
    raise AssertionError(f"clicking the map at {x:.0f},{y:.0f} did not take")


def _map_drawn(pg) -> None:
    pg.wait_for_selector(".pc-map .leaflet-overlay-pane svg path, "
                         ".pc-map .leaflet-overlay-pane canvas")


def test_uploading_a_survey_file_shows_the_map_units_and_verdicts(page_as, live_server,
                                                                   artifacts):
    pg = page_as("viewer")
    pg.goto(live_server + "/parcel", wait_until="load")
    assert pg.get_attribute("#pc-tab-file", "aria-selected") == "true"
    assert pg.locator("#pc-panel-draw").is_hidden()
    pg.set_input_files("#pc-file", str(SURVEY / "two_parcels_hole.txt"))
    pg.fill("#pc-industry", "化工")
    pg.click("#pc-submit")
    pg.wait_for_selector("details.pc-parcel")
    verdicts = _assert_verdicts_worded(pg)
    assert len(verdicts) == 2
    _map_drawn(pg)
    # overlaps labelled with their areas, shortest lines with their distances
    assert pg.locator(".leaflet-tooltip.pc-area-label").count() >= 2
    labels = pg.eval_on_selector_all(".leaflet-tooltip.pc-area-label",
                                     "els => els.map(e => e.textContent)")
    assert all(re.search(r"[\d,]+ m²", t) for t in labels), labels
    assert pg.locator(".leaflet-tooltip.pc-dist-label").count() >= 1
    # the units with their lists, the industry's lines marked
    unit = pg.locator("details.pc-parcel").first.locator(".pc-unit").first
    assert unit.is_visible()
    assert unit.locator(".pc-part").count() == 4
    assert pg.locator(".pc-flagged mark").first.is_visible()
    assert "two_parcels_hole.txt" in pg.text_content(".pc-source-name")
    # "show on map" frames the parcel
    pg.locator("details.pc-parcel").nth(1).locator(".pc-zoom").click()
    assert pg.console_errors == []
    assert pg.external_requests == []
    settle(pg)
    pg.screenshot(path=str(artifacts / "parcel-upload.png"), full_page=True)


def test_a_polygon_drawn_with_the_mouse_is_checked_under_the_csp(page_as, live_server,
                                                                 artifacts):
    pg = page_as("viewer", bypass_csp=False)
    violations = []
    pg.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
    pg.goto(live_server + "/parcel", wait_until="load")
    pg.click("#pc-tab-draw")
    assert pg.get_attribute("#pc-tab-draw", "aria-selected") == "true"
    assert pg.locator("#pc-crs-box").is_hidden()
    assert pg.text_content("#pc-drawn").strip() == "尚未画出地块"
    # the tool's words are Chinese
    assert pg.get_attribute(".leaflet-draw-draw-polygon", "title") == "画地块（多边形）"
    for _ in range(3):  # closer in: a parcel of some hectares, not a district
        pg.click(".leaflet-control-zoom-in")
        settle(pg)
    pg.click(".leaflet-draw-draw-polygon")
    box = pg.locator(".pc-map .leaflet-container").bounding_box()
    cx, cy = box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45
    corners = [(cx - 40, cy - 30), (cx + 40, cy - 30), (cx + 40, cy + 30), (cx - 40, cy + 30)]
    for n, (x, y) in enumerate(corners, start=1):
        _click_until(pg, x, y, lambda n=n: _vertices(pg) >= n)
    _click_until(pg, *corners[0], lambda: "pc-has-drawing" in (
        pg.get_attribute("#pc-drawn", "class") or ""))
    assert pg.text_content("#pc-drawn").strip() == "已画 1 个地块"
    drawn = json.loads(pg.input_value("#pc-geojson"))
    (feature,) = drawn["features"]
    assert feature["geometry"]["type"] == "Polygon"
    assert len(feature["geometry"]["coordinates"][0]) == 5  # four corners, closed
    pg.click("#pc-submit")
    pg.wait_for_selector("details.pc-parcel")
    (verdict,) = _assert_verdicts_worded(pg)
    big = pg.locator(".pc-answer .ck-verdict")
    assert big.get_attribute("data-verdict") == verdict
    assert VERDICT_WORDS[verdict] in big.text_content()
    assert "地图上绘制" in pg.text_content(".pc-source-name")
    _map_drawn(pg)
    assert violations == []
    assert pg.console_errors == []
    assert pg.external_requests == []
    settle(pg)
    pg.screenshot(path=str(artifacts / "parcel-drawn.png"), full_page=True)


def test_a_pasted_list_is_checked_and_prints_on_a4(page_as, live_server, artifacts):
    pg = page_as("viewer")
    pg.goto(live_server + "/parcel", wait_until="load")
    pg.click("#pc-tab-paste")
    pg.fill("#pc-text", SQUARE)
    pg.select_option("#pc-crs", "wgs84")
    assert pg.locator("#pc-epsg-label").is_hidden()
    pg.click("#pc-submit")
    pg.wait_for_selector("details.pc-parcel")
    (verdict,) = _assert_verdicts_worded(pg)
    area = pg.text_content(".pc-answer .pc-area-value")
    assert re.match(r"\s*[\d,]+\.\d m² · [\d,.]+ 亩 · [\d.]+ 公顷", area), area
    with pg.context.expect_page() as opened:
        pg.click("#pc-print")
    sheet = opened.value
    sheet.wait_for_load_state("load")
    sheet.wait_for_selector(".ck-sheet-map .leaflet-overlay-pane svg path, "
                            ".ck-sheet-map .leaflet-overlay-pane canvas")
    assert sheet.get_attribute(".ck-sheet-verdict", "data-verdict") == verdict
    assert "粘贴的坐标" in sheet.text_content(".pc-source-name")
    assert sheet.locator(".leaflet-draw").count() == 0
    settle(sheet)
    pdf = sheet.pdf(format="A4", print_background=True)
    (artifacts / "parcel-print.pdf").write_bytes(pdf)
    assert re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf)
    sheet.screenshot(path=str(artifacts / "parcel-print.png"), full_page=True)
    assert pg.console_errors == []
    assert pg.external_requests == []


def test_the_page_and_its_answer_fit_a_390px_phone(page_as, live_server, artifacts):
    pg = page_as("viewer", **PHONE)
    pg.goto(live_server + "/parcel", wait_until="load")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    for tab in ("#pc-tab-file", "#pc-tab-draw", "#pc-tab-paste"):
        assert pg.locator(tab).bounding_box()["height"] >= 40  # touch targets
    pg.set_input_files("#pc-file", str(SURVEY / "two_parcels_hole.txt"))
    pg.fill("#pc-industry", "化工")
    pg.click("#pc-submit")
    pg.wait_for_selector("details.pc-parcel")
    _assert_verdicts_worded(pg)
    _map_drawn(pg)
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    assert pg.locator(".pc-map .leaflet-container").bounding_box()["width"] <= 390
    assert pg.locator("#pc-dl-docx").is_visible()
    assert pg.console_errors == []
    assert pg.external_requests == []
    settle(pg)
    pg.screenshot(path=str(artifacts / "parcel-phone.png"), full_page=True)


def test_the_sealed_answer_downloads_as_shown_and_an_edited_one_is_refused(page_as,
                                                                           live_server):
    """The carried answer's seal survives the browser's form encoding (a Chinese file name,
    JSON in hidden fields): the Word report downloads; a file name edited in the page is
    refused, for the print page too."""
    pg = page_as("viewer")
    pg.goto(live_server + "/parcel", wait_until="load")
    pg.set_input_files("#pc-file", files=[{
        "name": "焦作 地块坐标.txt", "mimeType": "text/plain",
        "buffer": (SURVEY / "two_parcels_hole.txt").read_bytes()}])
    pg.fill("#pc-industry", "化工")
    pg.click("#pc-submit")
    pg.wait_for_selector("details.pc-parcel")
    assert "焦作 地块坐标.txt" in pg.text_content(".pc-source-name")
    with pg.expect_download() as got:
        pg.click("#pc-dl-docx")
    assert got.value.suggested_filename.endswith(".docx")
    assert got.value.failure() is None
    pg.eval_on_selector('#pc-carry input[name="source"]', """el => {
        const extra = JSON.parse(el.value);
        extra.source.filename = "焦作市自然资源局正式报盘.txt";
        el.value = JSON.stringify(extra);
    }""")
    with pg.context.expect_page() as opened:
        pg.click("#pc-print")
    sheet = opened.value
    sheet.wait_for_load_state("load")
    body = sheet.text_content("body")
    assert "签名不符" in body and "正式报盘" not in body
    assert pg.console_errors == []
    assert pg.external_requests == []

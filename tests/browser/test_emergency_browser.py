"""The emergency list page in a real browser: the map draws the enterprises as dots coloured
by their grade with a legend, choosing 红色 shows each county's red-warning measures, and the
page fits a 390 px phone without sideways scrolling."""

import pytest

from geoapp.domain.emergency import GRADE_COLOURS, Grade

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}

#: For each colour, how many pixels of the map's point canvases are close to it (the dots are
#: drawn at 90 % opacity, so a little of the background shows through).
COLOUR_PIXELS = """(colours) => {
  const want = colours.map(h => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16)));
  const found = colours.map(() => 0);
  for (const c of document.querySelectorAll('#em-map .leaflet-overlay-pane canvas')) {
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] < 200) continue;
      want.forEach((w, k) => {
        if (Math.abs(px[i] - w[0]) + Math.abs(px[i + 1] - w[1]) + Math.abs(px[i + 2] - w[2]) < 45)
          found[k] += 1;
      });
    }
  }
  return found;
}"""

POINTS = """() => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  let n = 0;
  map.eachLayer(l => { if (l instanceof window.GeoappPoints) n += l.pointCount(); });
  return n;
}"""


def test_the_map_colours_the_enterprises_by_grade_with_a_legend(live_server, page, artifacts):
    page.console_errors.clear()
    page.goto(live_server + "/emergency", wait_until="load")
    page.wait_for_selector("#em-map .leaflet-overlay-pane canvas", timeout=15000)
    page.wait_for_function("window.__geoappDrawn === true", timeout=15000)
    assert page.evaluate(POINTS) == 58  # the 60 on the list less the 2 not registered
    grades = list(Grade)
    found = page.evaluate(COLOUR_PIXELS, [GRADE_COLOURS[g] for g in grades])
    assert all(n > 0 for n in found), dict(zip([g.value for g in grades], found, strict=True))
    legend = page.locator("#em-map .geoapp-legend")
    assert legend.is_visible()
    text = legend.inner_text()
    for g in grades:
        assert g.zh in text
    assert page.locator("#em-map .geoapp-legend .lg-point").count() == len(grades)
    assert page.console_errors == [] and page.external_requests == []
    page.screenshot(path=str(artifacts / "emergency.png"), full_page=True)


def test_choosing_red_shows_each_county_s_measures(live_server, page, artifacts):
    page.goto(live_server + "/emergency", wait_until="load")
    assert page.locator("#em-level-result").count() == 0
    page.select_option("#em-level", "red")  # the page follows the choice by itself
    page.wait_for_selector('#em-level-result[data-level="red"]', timeout=15000)
    counties = page.eval_on_selector_all(".em-county", "els => els.map(e => e.dataset.county)")
    assert counties[:4] == ["解放区", "中站区", "马村区", "山阳区"] and len(counties) == 7
    first = page.locator('.em-county[data-county="山阳区"] tbody tr').first
    assert first.locator("td").count() == 5
    cuts = page.eval_on_selector_all(
        ".em-county tbody tr", "rows => rows.map(r => [r.dataset.grade, "
        "r.querySelector('.em-cut').textContent.trim()])")
    assert len(cuts) == 60
    assert all(c == "—" for g, c in cuts if g in ("A", "leading"))
    assert {c for g, c in cuts if g == "D"} <= {"100", "70"}
    assert page.locator("#em-level-docx").get_attribute("href").endswith("/levels/red.docx")
    assert page.console_errors == []
    page.screenshot(path=str(artifacts / "emergency-red.png"), full_page=True)


@pytest.mark.parametrize("path", ["/emergency", "/emergency?level=red", "/emergency?grade=C"])
def test_the_page_fits_a_phone(live_server, page_as, artifacts, path):
    pg = page_as("planner", **PHONE)
    pg.console_errors.clear()
    pg.goto(live_server + path, wait_until="load")
    pg.wait_for_function("window.__geoappDrawn === true", timeout=15000)
    assert pg.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert pg.console_errors == [] and pg.external_requests == []
    name = path.rsplit("=", 1)[-1] if "=" in path else "list"
    pg.screenshot(path=str(artifacts / f"emergency-390-{name}.png"), full_page=True)

"""The overview page in a real browser: it draws, offline, with every layer."""

import pytest

pytestmark = pytest.mark.browser

# Count drawn features on the folium map: polygons by their tooltip's first alias, and points.
COUNT_FEATURES = """() => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  const out = {points: 0};
  map.eachLayer(l => {
    if (!l.feature) return;
    if (l instanceof L.CircleMarker) { out.points += 1; return; }
    const f = l.feature.properties;
    const k = f.code ? "网格编号" : (f.adcode !== undefined ? "区县" : "other");
    out[k] = (out[k] || 0) + 1;
  });
  return out;
}"""


def test_overview_draws_offline_with_layers_and_no_console_error(live_server, page, artifacts):
    page.goto(live_server + "/", wait_until="load")
    page.wait_for_selector(".leaflet-overlay-pane canvas", timeout=15000)
    assert page.console_errors == []
    counts = page.evaluate(COUNT_FEATURES)
    assert counts["区县"] == 11
    assert counts["网格编号"] == 99
    assert counts["points"] == 300  # enterprises + farms; workshops start switched off
    assert page.external_requests == []
    # Layer control lists the county boundaries, rivers, canal, grids and sites.
    labels = page.eval_on_selector_all(".leaflet-control-layers-overlays label",
                                       "els => els.map(e => e.textContent.trim())")
    for expected in ("区县界", "河流", "南水北调", "热点网格", "工业企业"):
        assert any(expected in t for t in labels), (expected, labels)
    assert page.locator(".geoapp-legend").is_visible()
    assert page.locator(".leaflet-control-scale").is_visible()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artifacts / "overview.png"))


def test_overview_fits_a_phone_screen(live_server, page_as, artifacts):
    pg = page_as("viewer", viewport={"width": 375, "height": 740}, is_mobile=True)
    pg.goto(live_server + "/", wait_until="load")
    pg.wait_for_selector(".leaflet-overlay-pane canvas", timeout=15000)
    width = pg.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    pg.wait_for_timeout(1000)  # let the fit-to-city zoom animation finish
    pg.screenshot(path=str(artifacts / "overview-phone.png"))

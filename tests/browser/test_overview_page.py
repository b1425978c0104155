"""The overview page in a real browser: it draws, offline, with every layer."""

import pytest

pytestmark = pytest.mark.browser

# Count drawn features on the folium map: polygons by their properties, and site points (one
# canvas layer per site type, each knowing how many points it holds).
COUNT_FEATURES = """() => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  const out = {points: 0};
  map.eachLayer(l => {
    if (l instanceof window.GeoappPoints) { out.points += l.pointCount(); return; }
    if (!l.feature) return;
    const f = l.feature.properties;
    const k = f.code ? "网格编号" : (f.adcode !== undefined ? "区县" : "other");
    out[k] = (out[k] || 0) + 1;
  });
  return out;
}"""


def test_overview_draws_offline_with_layers_and_no_console_error(live_server, page, artifacts):
    page.goto(live_server + "/", wait_until="load")
    page.wait_for_selector(".leaflet-overlay-pane canvas", timeout=15000)
    page.wait_for_function("window.__geoappDrawn === true", timeout=15000)
    assert page.console_errors == []
    counts = page.evaluate(COUNT_FEATURES)
    assert counts["区县"] == 11
    assert counts["网格编号"] == 99
    assert counts["points"] == 300  # enterprises + farms; workshops start switched off
    assert page.external_requests == []
    # Layer control lists the county boundaries, rivers, canal, grids and sites.
    labels = page.eval_on_selector_all(".leaflet-control-layers-overlays label",
                                       "els => els.map(e => e.textContent.trim())")
    for expected in ("区县界", "河流", "南水北调", "热点网格", "工业企业", "畜禽养殖场", "散乱污",
                     "缓冲区", "化工园区", "产业集聚区", "主城区"):
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


def test_clicking_an_enterprise_opens_its_attributes_hits_and_link(live_server, page, artifacts):
    page.goto(live_server + "/", wait_until="load")
    page.wait_for_function("window.__geoappDrawn === true", timeout=15000)
    # Click the drawn marker of enterprise E0001 where it is on screen.
    xy = page.evaluate("""() => {
      const map = Object.values(window).find(v => v instanceof L.Map);
      let layer = null;
      map.eachLayer(l => {
        if (!layer && l instanceof window.GeoappPoints && l.indexOf("E0001") >= 0) layer = l;
      });
      const at = layer.latLngAt(layer.indexOf("E0001"));
      map.setView(at, 15, {animate: false});
      const p = map.latLngToContainerPoint(at);
      const r = map.getContainer().getBoundingClientRect();
      return [r.left + p.x, r.top + p.y];
    }""")
    page.wait_for_timeout(300)
    page.mouse.click(xy[0], xy[1])
    popup = page.locator(".leaflet-popup-content .ga-popup")
    popup.wait_for(timeout=5000)
    text = popup.inner_text()
    assert "E0001" in text
    assert "规则命中" in text and "南水北调总干渠二级保护区" in text
    assert popup.locator("a.ga-popup-link").get_attribute("href").endswith("/sites/E0001")
    assert page.console_errors == []
    page.screenshot(path=str(artifacts / "overview-site-popup.png"))

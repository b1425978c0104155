"""The overview page in a real browser: it draws, offline, with every layer."""

import pytest

pytestmark = pytest.mark.browser

# The map has stopped zooming (to the city's outline): Leaflet ignores setView until it has.
SETTLED = "!document.querySelector('.leaflet-zoom-anim')"

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
    page.wait_for_function(SETTLED, timeout=5000)
    page.screenshot(path=str(artifacts / "overview.png"))


def test_overview_fits_a_phone_screen(live_server, page_as, artifacts):
    pg = page_as("viewer", viewport={"width": 375, "height": 740}, is_mobile=True)
    pg.goto(live_server + "/", wait_until="load")
    pg.wait_for_function("window.__geoappDrawn === true", timeout=15000)
    width = pg.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    pg.wait_for_function(SETTLED, timeout=5000)
    pg.screenshot(path=str(artifacts / "overview-phone.png"))


def test_clicking_an_enterprise_opens_its_attributes_hits_and_link(live_server, page, artifacts):
    page.goto(live_server + "/", wait_until="load")
    page.wait_for_function("window.__geoappDrawn === true", timeout=15000)
    page.wait_for_function(SETTLED, timeout=5000)
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
    page.mouse.click(xy[0], xy[1])
    popup = page.locator(".leaflet-popup-content .ga-popup")
    popup.wait_for(timeout=5000)
    text = popup.inner_text()
    assert "E0001" in text
    assert "规则命中" in text and "南水北调总干渠二级保护区" in text
    assert popup.locator("a.ga-popup-link").get_attribute("href").endswith("/sites/E0001")
    assert page.console_errors == []
    page.screenshot(path=str(artifacts / "overview-site-popup.png"))


# The enterprise point layer, E0001's index in it and where E0001 is on the page.
ENTERPRISE_E0001 = """() => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  let layer = null;
  map.eachLayer(l => {
    if (!layer && l instanceof window.GeoappPoints && l.indexOf("E0001") >= 0) layer = l;
  });
  window.__testMap = map;
  window.__testLayer = layer;
  const p = map.latLngToContainerPoint(layer.latLngAt(layer.indexOf("E0001")));
  const r = map.getContainer().getBoundingClientRect();
  return [r.left + p.x, r.top + p.y];
}"""


def _open_overview(pg, live_server):
    pg.goto(live_server + "/", wait_until="load")
    pg.wait_for_function("window.__geoappDrawn === true", timeout=15000)
    pg.wait_for_function(SETTLED, timeout=5000)


def _zoom_to_e0001(pg) -> list[float]:
    pg.evaluate(ENTERPRISE_E0001)
    pg.evaluate("""() => { window.__testMap.setView(
        window.__testLayer.latLngAt(window.__testLayer.indexOf("E0001")), 15, {animate: false}); }""")
    return pg.evaluate(ENTERPRISE_E0001)


def test_site_points_are_canvas_layers_not_one_leaflet_layer_each(live_server, page):
    _open_overview(page, live_server)
    info = page.evaluate("""() => {
      const map = Object.values(window).find(v => v instanceof L.Map);
      let markers = 0, layers = 0;
      map.eachLayer(l => {
        if (l instanceof L.CircleMarker) markers += 1;
        if (l instanceof window.GeoappPoints) layers += 1;
      });
      return {markers, layers, canvases: document.querySelectorAll("canvas.ga-points").length};
    }""")
    assert info == {"markers": 0, "layers": 2, "canvases": 2}  # workshops start switched off


def test_zooming_in_draws_only_the_points_in_view(live_server, page):
    _open_overview(page, live_server)
    page.evaluate(ENTERPRISE_E0001)
    whole = page.evaluate("[window.__testLayer.visibleCount(), window.__testLayer.pointCount()]")
    assert whole == [100, 100]
    _zoom_to_e0001(page)
    close = page.evaluate("window.__testLayer.visibleCount()")
    assert 1 <= close < 20


def test_switching_a_site_layer_off_and_on_in_the_layer_control(live_server, page):
    _open_overview(page, live_server)
    toggle = """() => {
      const label = [...document.querySelectorAll('.leaflet-control-layers-overlays label')]
        .find(e => e.textContent.includes('工业企业'));
      label.querySelector('input').click();
      return document.querySelectorAll('canvas.ga-points').length;
    }"""
    page.evaluate(ENTERPRISE_E0001)
    assert page.evaluate(toggle) == 1
    assert page.evaluate("window.__testMap.hasLayer(window.__testLayer)") is False
    assert page.evaluate("window.__testLayer.visibleCount()") == 0
    assert page.evaluate(toggle) == 2
    assert page.evaluate("window.__testLayer.visibleCount()") == 100
    assert page.console_errors == []


def test_pointer_cursor_over_a_site_and_not_beside_it(live_server, page):
    _open_overview(page, live_server)
    x, y = _zoom_to_e0001(page)
    page.mouse.move(x, y)
    assert page.evaluate("window.__testMap.getContainer().style.cursor") == "pointer"
    page.mouse.move(x + 60, y + 60)
    assert page.evaluate("window.__testMap.getContainer().style.cursor") == ""


def test_click_beside_a_site_still_reaches_the_polygons_under_it(live_server, page):
    _open_overview(page, live_server)
    x, y = _zoom_to_e0001(page)
    page.mouse.click(x + 60, y + 60)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(timeout=5000)
    assert page.locator(".leaflet-popup-content .ga-popup").count() == 0
    assert popup.inner_text().strip() != ""


def test_points_are_sharp_on_a_retina_screen(live_server, page_as):
    pg = page_as("viewer", device_scale_factor=2)
    _open_overview(pg, live_server)
    sizes = pg.evaluate("""() => [...document.querySelectorAll('canvas.ga-points')].map(
        c => [c.width, c.height, c.getBoundingClientRect().width,
              c.getBoundingClientRect().height])""")
    assert sizes
    for w, h, css_w, css_h in sizes:
        assert w == round(2 * css_w) and h == round(2 * css_h)


def test_overview_points_draw_under_the_csp_with_their_script_from_the_app(page_as,
                                                                           live_server):
    pg = page_as("viewer", bypass_csp=False)
    pg.goto(live_server + "/", wait_until="load")
    drawn = False
    for _ in range(100):  # poll: wait_for_function evaluates strings, which the CSP forbids
        drawn = pg.evaluate("window.__geoappDrawn === true")
        if drawn:
            break
        pg.wait_for_timeout(100)
    assert drawn
    assert pg.evaluate("Object.values(window.__geoappPoints).reduce((a, b) => a + b, 0)") == 300
    assert pg.locator('script[src$="/static/js/geoapp-points.js"]').count() == 1
    assert pg.locator('link[href$="/static/css/geoapp-points.css"]').count() == 1
    assert "L.Layer.extend" not in pg.content()  # the layer's code is not in the page
    assert [e for e in pg.console_errors if "Content Security Policy" in e] == []
    assert pg.console_errors == []

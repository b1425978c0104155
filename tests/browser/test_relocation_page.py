"""The relocation page in a real browser: draws offline, filters change table and map."""

import pytest

pytestmark = pytest.mark.browser

# How many items each of the map's three canvas layers holds, by kind.
COUNT_DRAWN = """() => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  const by = {};
  map.eachLayer(l => {
    if (l instanceof window.GeoappPoints) by[l.layerTitle().split(" ")[0]] = l.pointCount();
  });
  return {site: by["企业现址"] || 0, new: by["搬迁新址"] || 0, line: by["搬迁路线"] || 0};
}"""

# Find one layer (by the first word of its name) and one of its points; centre the map on it
# at zoom 16 and say where the point is on the page. Leaves window.__testLayer/__testIndex.
POINT_ON_PAGE = """([title, id]) => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  let layer = null;
  map.eachLayer(l => {
    if (l instanceof window.GeoappPoints && l.layerTitle().startsWith(title)) layer = l;
  });
  let i = id === null ? -1 : layer.indexOf(id);
  if (i < 0) {
    for (let k = 0; k < layer.pointCount(); k++) {
      if (layer.ruleTitles(k).length) { i = k; break; }
    }
  }
  map.setView(layer.latLngAt(i), 16, {animate: false});
  window.__testLayer = layer;
  window.__testIndex = i;
  const p = map.latLngToContainerPoint(layer.latLngAt(i));
  const r = map.getContainer().getBoundingClientRect();
  return [r.left + p.x, r.top + p.y];
}"""


def _open(pg, url):
    pg.goto(url, wait_until="load")
    pg.wait_for_function("window.__geoappDrawn === true", timeout=15000)
    # the fit to the enterprises may still be zooming; Leaflet ignores setView until it ends
    pg.wait_for_function("!document.querySelector('.leaflet-zoom-anim')", timeout=5000)


def _rows(pg) -> int:
    return pg.locator("#rl-table tbody tr[data-id]").count()


def test_relocation_page_filters_table_and_map_without_console_error(live_server, page,
                                                                     artifacts):
    _open(page, live_server + "/relocation")
    assert page.console_errors == []
    assert page.external_requests == []
    all_rows = _rows(page)
    drawn = page.evaluate(COUNT_DRAWN)
    assert all_rows == 100 and drawn["site"] == 100
    assert drawn["new"] == drawn["line"] > 0
    # one canvas per layer, no Leaflet object per enterprise, the layer's code from the app
    assert page.locator("canvas.ga-points").count() == 4  # sites, new sites, lines, overdue rings
    assert page.evaluate("""() => {
      let n = 0;
      Object.values(window).find(v => v instanceof L.Map).eachLayer(l => {
        if (l instanceof L.CircleMarker || l instanceof L.GeoJSON) n += 1; });
      return n; }""") == 0
    assert page.locator('script[src$="/static/js/geoapp-points.js"]').count() == 1
    page.screenshot(path=str(artifacts / "relocation.png"), full_page=True)

    # Tick one classification in the filter form and apply it: a GET the URL keeps.
    page.click("details[data-filter=classification] summary")
    page.check("input[name=classification][value=relocate]")
    page.click("button.rl-apply")
    page.wait_for_url(lambda url: "classification=relocate" in url)
    page.wait_for_function("window.__geoappDrawn === true", timeout=15000)
    filtered = _rows(page)
    drawn = page.evaluate(COUNT_DRAWN)
    assert 0 < filtered < all_rows
    assert drawn["site"] == filtered
    assert page.locator("#rl-row-count").inner_text() == str(filtered)
    assert page.console_errors == []


def test_clicking_a_header_sorts_the_table(live_server, page):
    _open(page, live_server + "/relocation?district=解放区")
    header = page.locator("#rl-table th", has_text="腾退土地")
    header.locator("button").click()
    col = page.eval_on_selector_all(
        "#rl-table tbody tr", "rs => rs.map(r => parseFloat(r.cells[6].dataset.v || '-1e9'))")
    assert col == sorted(col)
    header.locator("button").click()
    col = page.eval_on_selector_all(
        "#rl-table tbody tr", "rs => rs.map(r => parseFloat(r.cells[6].dataset.v || '-1e9'))")
    assert col == sorted(col, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"


def test_clicking_an_enterprise_opens_its_popup_with_rule_hits_and_link(live_server, page,
                                                                        artifacts):
    _open(page, live_server + "/relocation?district=中站区&classification=relocate")
    x, y = page.evaluate(POINT_ON_PAGE, ["企业现址", None])
    page.wait_for_function("window.__testLayer.visibleCount() > 0", timeout=5000)
    page.mouse.move(x, y)
    assert page.evaluate("document.querySelector('.leaflet-container').style.cursor") == \
        "pointer"
    tip = page.locator(".leaflet-tooltip .ga-tip")
    tip.wait_for(timeout=5000)
    name = page.evaluate("window.__testLayer.nameAt(window.__testIndex)")
    assert tip.inner_text().strip() == name
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content .ga-popup.rl-site")
    popup.wait_for(timeout=5000)
    text = popup.inner_text()
    assert name in text and "中站区" in text and "搬迁升级" in text
    assert "规则命中" in text and "查看详情" in text
    site_id = page.evaluate("window.__testLayer.idAt(window.__testIndex)")
    assert popup.locator("a").get_attribute("href") == f"/sites/{site_id}"
    assert page.console_errors == []
    page.screenshot(path=str(artifacts / "relocation-popup.png"))


def test_relocation_page_fits_a_phone_screen(live_server, page_as, artifacts):
    pg = page_as("viewer", viewport={"width": 375, "height": 740}, is_mobile=True)
    _open(pg, live_server + "/relocation?classification=relocate")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 375
    assert pg.console_errors == []
    pg.screenshot(path=str(artifacts / "relocation-phone.png"), full_page=True)


def test_new_site_that_breaks_a_rule_is_marked_and_its_popup_names_the_rule(live_server, page):
    _open(page, live_server + "/relocation?classification=relocate")
    x, y = page.evaluate(POINT_ON_PAGE, ["搬迁新址", "E0013"])
    ring = page.evaluate("window.__testLayer.styleOf(window.__testIndex)")
    page.evaluate(POINT_ON_PAGE, ["搬迁路线", "E0013"])
    line = page.evaluate("window.__testLayer.styleOf(window.__testIndex)")
    assert ring["s"] == line["s"] == "#a50f15" and ring["w"] >= 4 and not line.get("dash")
    x, y = page.evaluate(POINT_ON_PAGE, ["搬迁新址", "E0013"])
    page.mouse.move(x, y)
    tip = page.locator(".leaflet-tooltip .ga-tip-hits")
    tip.wait_for(timeout=5000)
    assert "新址规则命中" in tip.inner_text() and "化工企业未入园" in tip.inner_text()
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content .ga-popup.rl-new")
    popup.wait_for(timeout=5000)
    assert "新址规则命中" in popup.inner_text() and "化工企业未入园" in popup.inner_text()
    assert popup.locator(".ga-has-hits > b").evaluate("e => getComputedStyle(e).color") == \
        "rgb(165, 15, 21)"  # #a50f15, the warning red
    assert page.console_errors == []


def test_relocation_map_draws_under_the_csp_with_its_script_from_the_app(page_as,
                                                                         live_server):
    pg = page_as("viewer", bypass_csp=False)
    pg.goto(live_server + "/relocation", wait_until="load")
    drawn = False
    for _ in range(100):  # poll: wait_for_function evaluates strings, which the CSP forbids
        drawn = pg.evaluate("window.__geoappDrawn === true")
        if drawn:
            break
        pg.wait_for_timeout(100)
    assert drawn
    assert pg.evaluate("Object.keys(window.__geoappPoints).length") == 4
    assert pg.locator("canvas.ga-points").count() == 4
    assert [e for e in pg.console_errors if "Content Security Policy" in e] == []
    assert pg.console_errors == []

"""The relocation page in a real browser: draws offline, filters change table and map."""

import pytest

pytestmark = pytest.mark.browser

# Count drawn features by kind: current sites, new sites (both circle markers) and lines.
COUNT_DRAWN = """() => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  const out = {site: 0, new: 0, line: 0};
  map.eachLayer(l => {
    if (l.feature && l.feature.properties && l.feature.properties.k in out) {
      out[l.feature.properties.k] += 1;
    }
  });
  return out;
}"""


def _open(pg, url):
    pg.goto(url, wait_until="load")
    pg.wait_for_selector(".leaflet-overlay-pane canvas", timeout=15000)


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
    page.wait_for_timeout(800)
    page.screenshot(path=str(artifacts / "relocation.png"), full_page=True)

    # Tick one classification in the filter form and apply it: a GET the URL keeps.
    page.click("details[data-filter=classification] summary")
    page.check("input[name=classification][value=relocate]")
    page.click("button.rl-apply")
    page.wait_for_url(lambda url: "classification=relocate" in url)
    page.wait_for_selector(".leaflet-overlay-pane canvas", timeout=15000)
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


def test_popup_shows_the_enterprise_and_its_rule_hits(live_server, page):
    _open(page, live_server + "/relocation?district=中站区&classification=relocate")
    text = page.evaluate("""() => {
      const map = Object.values(window).find(v => v instanceof L.Map);
      let target = null;
      map.eachLayer(l => { if (!target && l.feature && l.feature.properties.k === 'site'
                                  && l.feature.properties.h.length) target = l; });
      target.openPopup();
      return document.querySelector('.rl-popup').innerText;
    }""")
    assert "中站区" in text and "规则命中" in text and "查看详情" in text
    assert page.locator(".rl-popup a").get_attribute("href").startswith("/sites/")


def test_relocation_page_fits_a_phone_screen(live_server, page_as, artifacts):
    pg = page_as("viewer", viewport={"width": 375, "height": 740}, is_mobile=True)
    _open(pg, live_server + "/relocation?classification=relocate")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 375
    assert pg.console_errors == []
    pg.wait_for_timeout(800)
    pg.screenshot(path=str(artifacts / "relocation-phone.png"), full_page=True)


def test_new_site_that_breaks_a_rule_is_marked_and_its_popup_names_the_rule(live_server, page):
    _open(page, live_server + "/relocation?classification=relocate")
    out = page.evaluate("""() => {
      const map = Object.values(window).find(v => v instanceof L.Map);
      let target = null, line = null;
      map.eachLayer(l => {
        const p = l.feature && l.feature.properties;
        if (!p) return;
        if (p.k === 'new' && p.id === 'E0013') target = l;
        if (p.k === 'line' && p.w && !line) line = l;
      });
      target.openPopup();
      return {colour: target.options.color, weight: target.options.weight,
              line: line.options.color,
              text: document.querySelector('.rl-popup').innerText};
    }""")
    assert out["colour"] == out["line"] == "#a50f15" and out["weight"] >= 4
    assert "新址规则命中" in out["text"] and "化工企业未入园" in out["text"]
    assert page.console_errors == []

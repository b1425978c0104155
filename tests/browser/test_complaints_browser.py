"""12369 complaints on the weekly map in a real browser: one marker layer per category with
its legend entry, switchable, and a popup naming the complaint's suspected source."""

import pytest

from browserutil import settle

pytestmark = pytest.mark.browser

WEEK = "2026-W47"

# Every complaint marker's id and whether its popup lists a suspected source (the popup is
# built on demand; opening and closing it programmatically reads it without a click).
SOURCES = """() => {
  const map = Object.values(window).find(v => v instanceof L.Map);
  const out = [];
  map.eachLayer(l => {
    if (!(l instanceof L.Marker) || !l.getPopup()) return;
    const badge = l.getElement() && l.getElement().querySelector('.geoapp-complaint');
    if (!badge) return;
    l.openPopup();
    const links = l.getPopup().getElement().querySelectorAll('.cp-sources li a');
    out.push([badge.getAttribute('data-complaint'), Array.from(links).map(a => a.textContent)]);
    l.closePopup();
  });
  return out;
}"""


def test_weekly_map_shows_complaints_per_type_with_legend_and_sources(live_server, page,
                                                                      artifacts):
    page.goto(f"{live_server}/weekly?week={WEEK}", wait_until="load")
    page.wait_for_selector("#wk-map .geoapp-complaint", timeout=15000)
    settle(page)
    counts = {cat: page.locator(f"#wk-map .geoapp-complaint.cat-{cat}").count()
              for cat in ("air", "noise", "water", "solid_waste", "other")}
    assert sum(counts.values()) == 31 and counts["air"] > 0 and counts["noise"] > 0
    legend = page.inner_text(".geoapp-legend")
    for label in ("大气", "噪声", "水", "固废", "其他"):
        assert f"12369投诉·{label}" in legend
    assert "4 件无坐标，未上图" in page.inner_text("#wk-map")
    assert "4 件无坐标，未上图" in page.inner_text("#wk-unlocated")

    with_sources = [(cid, names) for cid, names in page.evaluate(SOURCES) if names]
    assert with_sources, "no complaint of the week has a suspected source"
    cid, names = with_sources[0]
    popup = page.locator(".leaflet-popup-content .geoapp-complaint-popup")
    for _ in range(50):  # closed popups fade out for 200 ms before they leave the page
        if popup.count() == 0:
            break
        page.wait_for_timeout(50)
    page.click(f'#wk-map .geoapp-complaint[data-complaint="{cid}"]', force=True)
    popup.wait_for(timeout=5000)
    text = popup.inner_text()
    assert names[0] in text and "疑似污染源（500米内）" in text and " 米" in text
    href = popup.locator(".cp-sources a").first.get_attribute("href")
    assert href.startswith("/sites/")
    page.screenshot(path=str(artifacts / "weekly-complaints.png"))

    # each category is its own switchable layer
    page.hover(".leaflet-control-layers")
    page.locator(".leaflet-control-layers-overlays label",
                 has_text="12369投诉·噪声").locator("input").uncheck()
    assert page.locator("#wk-map .geoapp-complaint.cat-noise").count() == 0
    assert page.locator("#wk-map .geoapp-complaint.cat-air").count() == counts["air"]
    assert page.console_errors == [] and page.external_requests == []


def test_overview_map_shows_recent_complaints(live_server, page):
    page.goto(live_server + "/", wait_until="load")
    page.wait_for_selector(".geoapp-complaint", timeout=20000)
    assert page.locator(".geoapp-complaint").count() > 0
    assert "12369投诉·大气" in page.inner_text(".geoapp-legend")
    assert "件无坐标，未上图" in page.inner_text(".geoapp-complaint-note")
    assert page.console_errors == []

"""A map written as one standalone HTML file (as ``geoapp report weekly`` writes map.html)
opens from disk in Chromium with its canvas points drawn and clickable: the point layer's
script and styles are inlined, nothing is fetched."""

from __future__ import annotations

import folium
import geopandas as gpd
import pytest

from geoapp.maps.base import base_map
from geoapp.maps.points import add_fast_points
from geoapp.maps.weekly import standalone_html

pytestmark = pytest.mark.browser


def _map() -> folium.Map:
    sites = gpd.GeoDataFrame(
        {"id": ["S1", "S2"], "name": ["焦作某铸造厂", "温县某化工厂"],
         "kind": ["relocate", "upgrade"], "district": ["解放区", "温县"]},
        geometry=gpd.points_from_xy([113.24, 113.08], [35.21, 34.94]), crs="EPSG:4326")
    m = base_map((35.1, 113.2), 10, "none")
    add_fast_points(m, sites, "企业", colour_by="kind",
                    categories={"relocate": ("搬迁升级", "#d62728")},
                    fields=[("district", "辖区")], hits={"S1": [("r1", 120.0, "大沙河")]},
                    rules={"r1": ("河道管理范围", "high")}, link="sites/{id}.html")
    folium.LayerControl().add_to(m)
    return m


def test_standalone_file_carries_the_point_layer_in_either_mode():
    for intranet in (False, True):
        html = standalone_html(_map(), intranet=intranet)
        assert "geoapp-static:" not in html
        assert "window.GeoappPoints = L.Layer.extend(" in html
        assert ".ga-popup-hits" in html
        assert ("cdn.jsdelivr.net/npm/leaflet@" in html) is not intranet


def test_standalone_map_opens_from_disk_with_points_drawn_and_clickable(browser, tmp_path,
                                                                         artifacts):
    path = tmp_path / "map.html"
    path.write_text(standalone_html(_map(), intranet=True), encoding="utf-8")
    ctx = browser.new_context(viewport={"width": 1000, "height": 700}, locale="zh-CN")
    pg = ctx.new_page()
    errors, fetched, missing = [], [], []
    pg.on("console", lambda m: m.type == "error" and errors.append(m.text))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("requestfailed", lambda r: missing.append(r.url))

    def route(r):
        if r.request.url.startswith(("file://", "data:", "blob:")):
            r.continue_()
        else:
            fetched.append(r.request.url)
            r.abort()

    pg.route("**/*", route)
    try:
        pg.goto(path.as_uri(), wait_until="load")
        pg.wait_for_function("window.__geoappDrawn === true", timeout=15000)
        xy = pg.evaluate("""() => {
          const map = Object.values(window).find(v => v instanceof L.Map);
          let layer = null;
          map.eachLayer(l => { if (l instanceof window.GeoappPoints) layer = l; });
          const at = layer.latLngAt(layer.indexOf("S1"));
          map.setView(at, 14, {animate: false});
          const p = map.latLngToContainerPoint(at);
          const r = map.getContainer().getBoundingClientRect();
          return [r.left + p.x, r.top + p.y, layer.pointCount()];
        }""")
        assert xy[2] == 2
        pg.mouse.click(xy[0], xy[1])
        popup = pg.locator(".leaflet-popup-content .ga-popup")
        popup.wait_for(timeout=5000)
        text = popup.inner_text()
        assert "焦作某铸造厂" in text and "河道管理范围" in text and "120 m" in text
        assert fetched == []
        # The vendored stylesheets' own images and icon fonts (relative URLs) are the only
        # things a file opened from disk lacks; every script ran.
        assert all(u.endswith((".png", ".svg", ".woff2", ".ttf")) for u in missing), missing
        assert [e for e in errors if "ERR_FILE_NOT_FOUND" not in e] == []
        pg.screenshot(path=str(artifacts / "standalone-map.png"))
    finally:
        ctx.close()

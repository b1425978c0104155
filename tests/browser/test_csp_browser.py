"""The Content-Security-Policy keeps the maps drawing: a CSP violation is a console error."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from browserutil import settle

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("path", ["/", "/check?lon=113.24&lat=35.21", "/relocation"])
def test_map_pages_draw_under_the_csp_without_violations(page_as, live_server, artifacts,
                                                          path):
    page = page_as("viewer", bypass_csp=False)
    r = page.goto(live_server + path)
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    page.wait_for_load_state("load")
    # Locator assertions and page.evaluate run outside the page's CSP (no eval in the page).
    expect(page.locator(".leaflet-container canvas, .leaflet-container svg").first) \
        .to_be_attached()
    settle(page)
    name = path.strip("/").split("?")[0] or "overview"
    page.screenshot(path=str(artifacts / f"csp-{name}.png"))
    violations = [e for e in page.console_errors if "Content Security Policy" in e]
    assert violations == []
    assert page.console_errors == []

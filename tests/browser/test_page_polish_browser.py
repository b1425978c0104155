"""Pages in a real browser: /workshops readable on a 390 px phone (styled tables, cards, no
sideways page scroll), and a refused form answered where the user is looking — beside the
form that sent it, scrolled to and focused — on the check page, the site page's progress
form, the layer upload, the password change and the user administration."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}

#: How many lines the text of an element takes (distinct line boxes of its text).
LINES = """el => {
  const range = document.createRange();
  range.selectNodeContents(el);
  return new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top))).size;
}"""


def _in_view(pg, selector: str) -> bool:
    """Wholly in the viewport (waits while the page settles: focusing scrolls)."""
    expect(pg.locator(selector)).to_be_in_viewport(ratio=1)
    box = pg.locator(selector).bounding_box()
    return box["x"] >= 0 and box["x"] + box["width"] <= pg.viewport_size["width"] + 0.5


def _focused(pg) -> str:
    return pg.evaluate("document.activeElement && document.activeElement.id")


def _styled(pg, table: str) -> None:
    th = pg.locator(f"{table} th").first
    assert th.evaluate("e => getComputedStyle(e).backgroundColor") not in ("rgba(0, 0, 0, 0)",
                                                                           "transparent")
    td = pg.locator(f"{table} tbody td").first
    assert td.evaluate("e => getComputedStyle(e).borderBottomWidth") == "1px"
    assert float(td.evaluate("e => parseFloat(getComputedStyle(e).paddingLeft)")) >= 4


def test_workshops_tables_are_styled_and_readable_at_390px(page_as, live_server, artifacts):
    pg = page_as("planner", **PHONE)
    pg.console_errors.clear()
    pg.goto(live_server + "/workshops", wait_until="load")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    _styled(pg, "#ws-by-district")
    box = pg.locator("#ws-by-district").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390  # five columns fit as they are
    for row in ("#ws-relapses tbody tr", "#ws-checklist tbody tr"):
        first = pg.locator(row).first
        assert first.evaluate("e => getComputedStyle(e).display") in ("grid", "block"), row
        b = first.bounding_box()
        assert b["x"] >= 0 and b["x"] + b["width"] <= 390, row
    # Numbers, dates and names stay whole (no column squeezed to a character's width).
    relapse = pg.locator("#ws-relapses tbody tr").first
    assert relapse.locator("td.num").evaluate(LINES) <= 2  # its label line and the value
    assert relapse.locator("td.pl-date").first.evaluate(LINES) <= 2
    name = relapse.locator("td.pl-card-title a")
    assert name.bounding_box()["width"] > 150
    card = pg.locator("#ws-checklist tbody tr").first
    for date in card.locator("input[type=date]").all():
        b = date.bounding_box()
        assert b["x"] >= 0 and b["x"] + b["width"] <= 390 and b["width"] >= 120
    assert pg.console_errors == []
    pg.locator("#ws-checklist").scroll_into_view_if_needed()
    pg.screenshot(path=str(artifacts / "workshops-390-checklist.png"))


def test_workshops_tables_on_a_desktop_stay_tables(page_as, live_server):
    pg = page_as("planner", **DESKTOP)
    pg.goto(live_server + "/workshops", wait_until="load")
    _styled(pg, "#ws-by-district")
    _styled(pg, "#ws-relapses table")
    row = pg.locator("#ws-checklist tbody tr").first
    assert row.evaluate("e => getComputedStyle(e).display") == "table-row"
    assert row.locator("button").evaluate(LINES) == 1
    assert pg.evaluate("document.documentElement.scrollWidth") <= 1280


def test_a_refused_point_check_is_said_in_the_point_form(page_as, live_server):
    pg = page_as("inspector", **PHONE)
    pg.goto(live_server + "/check", wait_until="load")
    pg.fill("#ck-lon", "abc")
    pg.fill("#ck-lat", "35.2")
    pg.click("#ck-point-form .ck-submit")
    pg.wait_for_selector("#ck-error")
    assert pg.locator("#ck-point-form #ck-error").count() == 1
    assert _focused(pg) == "ck-error" and _in_view(pg, "#ck-error")


def test_a_refused_site_check_is_said_in_the_site_form(page_as, live_server, artifacts):
    pg = page_as("inspector", **PHONE)
    pg.goto(live_server + "/check", wait_until="load")
    pg.fill("#ck-site", "NO-SUCH-SITE")
    pg.click("#ck-site-form button[type=submit]")
    pg.wait_for_selector("#ck-error")
    assert pg.locator("#ck-site-form #ck-error").count() == 1
    assert "NO-SUCH-SITE" in pg.inner_text("#ck-error")
    assert _focused(pg) == "ck-error" and _in_view(pg, "#ck-error")
    pg.screenshot(path=str(artifacts / "check-site-error-390.png"))


def test_a_refused_progress_save_opens_at_the_form(page_as, live_server, artifacts):
    pg = page_as("planner", **PHONE)
    pg.goto(live_server + "/sites/E0005", wait_until="load")
    pg.fill("#pl-planned_start", "2026-05-01")
    pg.fill("#pl-planned_completion", "2026-01-01")  # before the start: refused, nothing saved
    with pg.expect_response(lambda r: r.url.split("#")[0].endswith("/sites/E0005/progress")) \
            as answer:
        pg.click("#pl-save")
    assert answer.value.status == 400
    pg.wait_for_selector("#pl-errors")
    assert _focused(pg) == "pl-errors" and _in_view(pg, "#pl-errors")
    assert pg.get_attribute("#pl-planned_completion", "aria-invalid") == "true"
    assert pg.input_value("#pl-planned_start") == "2026-05-01"  # the input is kept
    pg.screenshot(path=str(artifacts / "site-progress-error-390.png"))


def test_a_refused_layer_upload_is_said_under_that_layer(page_as, live_server, artifacts):
    pg = page_as("planner", **DESKTOP)
    pg.goto(live_server + "/layers", wait_until="load")
    form = pg.locator("#layer-rivers form")
    form.locator("input[type=file]").set_input_files(
        {"name": "rivers.geojson", "mimeType": "application/geo+json", "buffer": b"not json"})
    form.locator("button[type=submit]").click()
    pg.wait_for_selector("#ly-error")
    assert pg.locator("#layer-rivers + tr.ly-outcome #ly-error").count() == 1
    assert _focused(pg) == "ly-error" and _in_view(pg, "#ly-error")
    assert _in_view(pg, "#layer-rivers form button[type=submit]")
    pg.screenshot(path=str(artifacts / "layers-upload-error.png"))


def test_a_refused_password_change_is_focused_in_its_form(page_as, live_server):
    pg = page_as("viewer", **PHONE)
    pg.goto(live_server + "/account/password", wait_until="load")
    pg.fill("input[name=current]", "not-the-password-at-all")
    pg.fill("input[name=password]", "a-new-password-0123")
    pg.fill("input[name=password2]", "a-new-password-0123")
    pg.click("form.ga-form button[type=submit]")
    pg.wait_for_selector("#form-error")
    assert pg.locator("form.ga-form #form-error").count() == 1
    assert _focused(pg) == "form-error" and _in_view(pg, "#form-error")


def test_a_refused_account_change_is_said_beside_its_form(page_as, live_server, artifacts):
    pg = page_as("admin", **PHONE)
    pg.goto(live_server + "/admin/users", wait_until="load")
    pg.fill("#create-user input[name=username]", "new-clerk")
    pg.fill("#create-user input[name=password]", "first-password-0123")
    pg.fill("#create-user input[name=password2]", "other-password-0123")
    pg.click("#create-user button[type=submit]")
    pg.wait_for_selector("#form-error")
    assert pg.locator("#create-user #form-error").count() == 1
    assert _focused(pg) == "form-error" and _in_view(pg, "#form-error")
    assert pg.input_value("#create-user input[name=username]") == "new-clerk"
    assert pg.input_value("#create-user input[name=password]") == ""  # never sent back
    pg.screenshot(path=str(artifacts / "admin-users-error-390.png"))

    pg.locator("#user-viewer details summary").click()
    pg.fill("#password-viewer input[name=password]", "first-password-0123")
    pg.fill("#password-viewer input[name=password2]", "other-password-0123")
    with pg.expect_navigation():
        pg.click("#password-viewer button[type=submit]")
    assert pg.get_attribute("#form-error", "data-form") == "password-viewer"
    assert pg.locator("#user-viewer #form-error").count() == 1
    assert _focused(pg) == "form-error" and _in_view(pg, "#form-error")

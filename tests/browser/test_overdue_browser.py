"""/overdue and the site page's 时限督办 section in a real browser, at desktop and phone
width: counts, every county, links to the site pages, the workbook, no sideways scroll."""

import pytest
from openpyxl import load_workbook

from browserutil import settle

pytestmark = pytest.mark.browser

AS_OF = "2026-12-03"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def _no_sideways_scroll(pg) -> None:
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    assert pg.evaluate("document.body.scrollWidth") <= 390


def test_overdue_page_on_the_desktop(live_server, page, artifacts, tmp_path):
    page.goto(f"{live_server}/overdue?as_of={AS_OF}", wait_until="load")
    assert page.inner_text("#dl-as-of").startswith("截至2026年12月3日")
    overdue = int(page.inner_text('[data-count="overdue"] b'))
    assert overdue > 0
    counties = page.locator("section.dl-county")
    assert counties.count() == page.locator("#dl-by-county tbody tr").count() == 11
    firms = page.locator('tr[data-kind="deadline"][data-status="overdue"]')
    assert firms.count() == 37
    assert page.locator("tr.dl-row-overdue").count() == overdue
    assert page.console_errors == [] and page.external_requests == []
    settle(page)
    page.screenshot(path=str(artifacts / "overdue.png"), full_page=True)
    # the workbook holds the page's rows
    with page.expect_download(timeout=60000) as info:
        page.click("#dl-download")
    path = tmp_path / "overdue.xlsx"
    info.value.save_as(path)
    rows = list(load_workbook(path)["逾期及即将到期"].iter_rows(values_only=True))
    assert sum(1 for r in rows[1:] if r[1] == "逾期") == overdue
    # a row's link opens the site page at its deadline section
    link = firms.first.locator("a").first
    site_id = firms.first.get_attribute("data-site")
    link.click()
    page.wait_for_url(f"**/sites/{site_id}")
    section = page.locator("#deadlines")
    assert section.is_visible()
    assert section.get_attribute("data-status") == "overdue"
    row = section.locator('tr[data-kind="deadline"]')
    assert row.get_attribute("data-status") == "overdue"
    assert "逾期" in row.inner_text()
    assert page.console_errors == []


def test_overdue_page_and_site_section_on_a_phone(live_server, page_as, artifacts):
    pg = page_as("viewer", **PHONE)
    pg.goto(f"{live_server}/overdue?as_of={AS_OF}", wait_until="load")
    _no_sideways_scroll(pg)
    first = pg.locator('tr[data-kind="deadline"][data-status="overdue"]').first
    first.scroll_into_view_if_needed()
    box = first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert pg.locator("#dl-download").is_visible()
    pg.screenshot(path=str(artifacts / "overdue-phone.png"))
    pg.goto(f"{live_server}/sites/E0008", wait_until="load")
    pg.locator("#deadlines").scroll_into_view_if_needed()
    assert pg.locator("#deadlines").is_visible()
    _no_sideways_scroll(pg)
    badge = pg.locator('#deadlines tr[data-kind="deadline"] .dl-badge')
    assert badge.is_visible() and badge.inner_text() == "逾期"
    b = badge.bounding_box()
    assert b is not None and b["x"] + b["width"] <= 390
    assert pg.console_errors == []
    pg.locator("#deadlines").screenshot(path=str(artifacts / "site-deadlines-phone.png"))


def test_overdue_page_in_english(live_server, page_as):
    pg = page_as("viewer")
    pg.goto(f"{live_server}/overdue?as_of={AS_OF}&lang=en", wait_until="load")
    assert pg.inner_text("h1").startswith("Overdue")
    assert pg.inner_text("#dl-as-of").startswith("as of 2026-12-03")
    assert pg.locator('tr[data-status="overdue"] .dl-badge').first.inner_text() == "Overdue"
    pg.goto(f"{live_server}/overdue?lang=zh", wait_until="load")

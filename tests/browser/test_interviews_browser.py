"""The 约谈 list page in a real browser: grids and the enterprises inside them, by county;
fits a phone."""

import pytest

from browserutil import settle

pytestmark = pytest.mark.browser


def test_interviews_page_lists_grids_and_enterprises_by_county(live_server, page, artifacts):
    page.goto(f"{live_server}/interviews?week=2026-W40", wait_until="load")
    counties = page.eval_on_selector_all(".iv-county", "els => els.map(e => e.dataset.county)")
    assert counties[:3] == ["解放区", "中站区", "马村区"] and len(counties) == 11
    zhongzhan = page.locator('.iv-county[data-county="中站区"]')
    assert zhongzhan.locator(".iv-grid").count() == 2
    grid = zhongzhan.locator('.iv-grid[data-grid="JZ3K-0023"]')
    assert "连续预警 3 周" in grid.inner_text()
    assert grid.locator(".iv-firms tbody tr").count() == 2
    assert "焦作市龙翔砂石有限公司" in grid.inner_text()
    assert page.locator('.iv-county[data-county="解放区"] .iv-none').inner_text() == "无"
    # the enterprise links to its site page
    grid.locator(".iv-firms a").first.click()
    page.wait_for_url("**/sites/*")
    assert "疑似关联投诉" in page.inner_text("#complaints")
    assert page.console_errors == []
    page.goto(f"{live_server}/interviews?week=2026-W40", wait_until="load")
    settle(page)
    page.screenshot(path=str(artifacts / "interviews.png"), full_page=True)


def test_interviews_xlsx_downloads(live_server, page, tmp_path):
    page.goto(f"{live_server}/interviews?week=2026-W40", wait_until="load")
    with page.expect_download(timeout=30000) as info:
        page.click('a[data-file="interviews.xlsx"]')
    path = tmp_path / "iv.xlsx"
    info.value.save_as(path)
    assert path.read_bytes()[:2] == b"PK"


@pytest.mark.parametrize("url", ["/interviews?week=2026-W40", "/weekly?week=2026-W47"])
def test_phone_width_has_no_sideways_scroll(live_server, page_as, artifacts, url):
    pg = page_as("viewer", viewport={"width": 390, "height": 844}, is_mobile=True)
    pg.goto(live_server + url, wait_until="load")
    settle(pg)
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    assert pg.console_errors == []
    name = "interviews" if "interviews" in url else "weekly-complaints"
    pg.screenshot(path=str(artifacts / f"{name}-phone.png"), full_page=True)

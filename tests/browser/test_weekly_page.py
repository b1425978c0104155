"""The weekly bulletin page in a real browser: draws offline, downloads work, fits a phone."""

import zipfile

import pytest

from browserutil import settle

pytestmark = pytest.mark.browser

WEEK = "2026-W47"


def test_weekly_page_draws_offline_with_no_console_error(live_server, page, artifacts):
    page.goto(f"{live_server}/weekly?week={WEEK}", wait_until="load")
    page.wait_for_selector("#wk-map .leaflet-overlay-pane canvas", timeout=15000)
    assert page.console_errors == []
    assert page.external_requests == []
    assert "全市共有4个（次）热点网格产生预警信息" in page.inner_text("#wk-bulletin")
    assert page.locator("#wk-enterprises tbody tr").count() == 1
    assert page.locator("#wk-history tbody tr").count() == 4
    assert page.locator(".geoapp-legend").is_visible()
    settle(page)
    page.screenshot(path=str(artifacts / "weekly.png"), full_page=True)


@pytest.mark.parametrize("selector, magic", [('a[data-file="bulletin.docx"]', b"PK"),
                                             ('a[data-file="bulletin.xlsx"]', b"PK"),
                                             ('a[data-file="map.png"]', b"\x89PNG"),
                                             ('a[data-file="map.html"]', b"<!DOCTYPE")])
def test_each_download_link_gives_its_file(live_server, page, tmp_path, selector, magic):
    page.goto(f"{live_server}/weekly?week={WEEK}", wait_until="load")
    with page.expect_download(timeout=60000) as info:
        page.click(selector)
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.read_bytes()[:len(magic)].upper() == magic.upper()


def test_zip_download_holds_every_file(live_server, page, tmp_path):
    page.goto(f"{live_server}/weekly?week={WEEK}", wait_until="load")
    with page.expect_download(timeout=60000) as info:
        page.click('a[data-file="zip"]')
    path = tmp_path / "b.zip"
    info.value.save_as(path)
    assert len(zipfile.ZipFile(path).namelist()) == 5


def test_weekly_page_fits_a_phone(live_server, page_as, artifacts):
    pg = page_as("planner", viewport={"width": 375, "height": 740}, is_mobile=True)
    pg.goto(f"{live_server}/weekly?week={WEEK}", wait_until="load")
    pg.wait_for_selector("#wk-map .leaflet-overlay-pane canvas", timeout=15000)
    assert pg.evaluate("document.documentElement.scrollWidth") <= 375
    assert pg.locator(".wk-upload form").is_visible()
    assert pg.console_errors == []
    pg.screenshot(path=str(artifacts / "weekly-phone.png"))

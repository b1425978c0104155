"""The programme dashboard in a real browser: desktop and phone, chart, report downloads."""

import pytest

pytestmark = pytest.mark.browser


def test_programme_page_loads_with_chart_and_no_console_error(live_server, page, artifacts):
    page.console_errors.clear()  # only this page's errors (login lands on another page)
    page.goto(f"{live_server}/programme?year=2019", wait_until="load")
    assert page.console_errors == []
    assert page.external_requests == []
    assert "完成年度目标的" in page.inner_text("#pg-headline")
    assert page.locator("#pg-chart svg .pg-col-started").count() >= 4
    assert page.locator("#pg-by-district tbody tr").count() >= 5
    box = page.locator("#pg-chart svg").bounding_box()
    assert box["width"] > 500 and box["height"] > 150
    page.screenshot(path=str(artifacts / "programme.png"), full_page=True)


def test_programme_page_fits_a_phone(live_server, page_as, artifacts):
    pg = page_as("viewer", viewport={"width": 375, "height": 740}, is_mobile=True)
    pg.console_errors.clear()
    pg.goto(f"{live_server}/programme", wait_until="load")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 375
    assert pg.locator("#pg-chart svg").is_visible()
    # The chart keeps a readable size: its axis text is at least 9 px tall on screen.
    height = pg.evaluate("""() => Math.min(...[...document.querySelectorAll('#pg-chart svg text')]
        .map(t => t.getBoundingClientRect().height).filter(h => h > 0))""")
    assert height >= 9
    assert pg.console_errors == []
    pg.screenshot(path=str(artifacts / "programme-phone.png"), full_page=True)


@pytest.mark.parametrize("selector", ['button[data-file="xlsx"]', 'button[data-file="docx"]'])
def test_report_buttons_download_the_quarterly_files(live_server, page, tmp_path, selector):
    page.goto(f"{live_server}/programme?year=2019", wait_until="load")
    page.select_option('#pg-report select[name="year"]', "2019")
    page.select_option('#pg-report select[name="quarter"]', "3")
    with page.expect_download(timeout=60000) as info:
        page.click(selector)
    assert info.value.suggested_filename.startswith("programme-2019Q3.")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.read_bytes()[:2] == b"PK"

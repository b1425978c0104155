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
    # The chart keeps a readable size: its axis labels (glyph outlines, so this is the ink of
    # the digits, not a line box) are at least 9 px tall on screen.
    heights = pg.evaluate("""() => [...document.querySelectorAll('#pg-chart svg .pg-tick')]
        .map(t => t.getBoundingClientRect().height).filter(h => h > 0)""")
    assert len(heights) >= 8 and min(heights) >= 9
    assert pg.console_errors == []
    pg.screenshot(path=str(artifacts / "programme-phone.png"), full_page=True)


def test_trend_chart_draws_under_the_csp_with_its_numbers_beside_it(page_as, live_server,
                                                                    artifacts):
    """The real CSP (no bypass): the inline SVG chart draws, nothing is refused."""
    pg = page_as("viewer", bypass_csp=False)
    pg.add_init_script("""window.cspViolations = [];
        document.addEventListener('securitypolicyviolation',
            e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));""")
    pg.console_errors.clear()
    resp = pg.goto(f"{live_server}/programme?year=2019", wait_until="load")
    assert "style-src" in resp.headers["content-security-policy"]
    chart = pg.get_by_role("img", name="各季度启动、完成企业数")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box["width"] >= 600 and box["height"] > 250
    bars = pg.evaluate("""() => [...document.querySelectorAll('#pg-chart .pg-col-started')]
        .map(g => [g.dataset.quarter, +g.dataset.value, g.getBoundingClientRect().height])""")
    assert [q for q, _, _ in bars][:2] == ["2018Q1", "2018Q2"] and bars[-1][0] == "2019Q4"
    assert all((h > 2) == (v > 0) for _, v, h in bars)  # a bar is drawn where there is a value
    rows = pg.locator("#pg-trend-table tbody tr")
    assert rows.count() == len(bars)
    assert [int(v) for v in pg.locator('#pg-trend-table td[data-key="started"]')
            .all_inner_texts()] == [v for _, v, _ in bars]
    assert pg.evaluate("window.cspViolations") == []
    assert pg.console_errors == []
    pg.locator("#pg-chart").screenshot(path=str(artifacts / "programme-chart.png"))


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

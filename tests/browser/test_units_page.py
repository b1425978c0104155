"""三线一单 pages in a real browser: a planner edits a part of a unit's 准入清单 and sees it;
the list and the unit page fit a 390 px phone."""

import pytest

pytestmark = pytest.mark.browser

CODE = "ZH41082530001"  # 温县一般管控单元
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}


def _save(pg, text: str) -> None:
    pg.fill("#un-risk_prevention", text)
    pg.click("#un-save")
    pg.wait_for_load_state("load")


def test_planner_edits_a_part_and_sees_it(live_server, page_as, artifacts):
    pg = page_as("planner")
    pg.console_errors.clear()
    pg.goto(f"{live_server}/units/{CODE}", wait_until="load")
    original = pg.input_value("#un-risk_prevention")
    version = pg.inner_text("#un-version")
    _save(pg, "1.每月开展一次农村环境风险隐患排查。\n2.建立畜禽养殖场粪污台账。")
    items = pg.locator("#part-risk_prevention li").all_inner_texts()
    assert items == ["1.每月开展一次农村环境风险隐患排查。", "2.建立畜禽养殖场粪污台账。"]
    assert pg.inner_text("#un-version") != version and "planner" in pg.inner_text("#un-version")
    assert "planner" in pg.inner_text("#history")
    pg.screenshot(path=str(artifacts / "unit-edit.png"), full_page=True)
    assert pg.console_errors == [] and pg.external_requests == []
    _save(pg, original)  # leave the shared server as it was
    assert pg.input_value("#un-risk_prevention") == original


@pytest.mark.parametrize("path", ["/units", f"/units/{CODE}", "/units?county=温县&q=一般"])
def test_units_pages_fit_a_phone(live_server, page_as, artifacts, path):
    pg = page_as("planner", **PHONE)
    pg.console_errors.clear()
    pg.goto(live_server + path, wait_until="load")
    assert pg.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert pg.console_errors == [] and pg.external_requests == []
    name = "units-list" if path.startswith("/units?") or path == "/units" else "unit"
    pg.screenshot(path=str(artifacts / f"{name}-390.png"), full_page=True)

"""Login page and the language switch in a real browser: Chinese first, English by the
header switch, the choice kept across pages, usable on a 375 px phone."""

from __future__ import annotations

import pytest

from geoapp.web import NAV_ITEMS

from browserutil import log_in

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 375, "height": 740}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}


def _expected_nav(role: str, column: int) -> list[str]:
    """Header labels a role should see, from NAV_ITEMS (1: Chinese, 2: English)."""
    return [item[column] for item in NAV_ITEMS
            if role == "admin" or item[3] in ("viewer", role)]


def _nav(pg) -> list[str]:
    return pg.eval_on_selector_all(".ga-nav a", "els => els.map(e => e.textContent.trim())")


def _no_horizontal_scroll(pg) -> bool:
    return pg.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_login_page_chinese_then_english_screenshots(page_as, live_server, artifacts):
    pg = page_as(None)
    pg.goto(live_server + "/login")
    assert pg.locator("html").get_attribute("lang") == "zh-CN"
    assert "用户名" in pg.inner_text("form.ga-form")
    pg.screenshot(path=str(artifacts / "login_zh.png"), full_page=True)
    pg.click(".ga-lang a[data-lang=en]")
    pg.wait_for_url("**lang=en")
    assert pg.locator("html").get_attribute("lang") == "en"
    text = pg.inner_text("form.ga-form")
    assert "Username" in text and "Password" in text and "用户名" not in text
    pg.screenshot(path=str(artifacts / "login_en.png"), full_page=True)
    assert pg.console_errors == [] and pg.external_requests == []


def test_login_page_fits_a_phone(page_as, live_server, artifacts):
    pg = page_as(None, **PHONE)
    pg.goto(live_server + "/login")
    assert _no_horizontal_scroll(pg)
    box = pg.locator("form.ga-form button[type=submit]").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert pg.locator(".ga-lang a[data-lang=en]").is_visible()
    pg.screenshot(path=str(artifacts / "login_phone_zh.png"), full_page=True)


@pytest.mark.parametrize("role", ["viewer", "inspector", "planner", "admin"])
def test_each_role_logs_in_and_the_switch_changes_the_header(page_as, live_server, role):
    pg = page_as(None)
    log_in(pg, live_server, role)  # typed into the form
    pg.goto(live_server + "/login", wait_until="domcontentloaded")
    zh = _nav(pg)
    assert zh == _expected_nav(role, 1)
    assert zh[0] == "一张图" and ("用户管理" in zh) == (role == "admin")
    assert pg.inner_text(".ga-logout button") == "退出"
    pg.click(".ga-lang a[data-lang=en]")
    pg.wait_for_url("**lang=en")
    en = _nav(pg)
    assert en == _expected_nav(role, 2)
    assert en[0] == "Overview" and ("Users" in en) == (role == "admin")
    assert pg.inner_text(".ga-logout button") == "Log out"
    # The choice sticks for the next page, without ?lang in its URL.
    pg.goto(live_server + "/login", wait_until="domcontentloaded")
    assert _nav(pg) == en
    pg.click(".ga-lang a[data-lang=zh]")
    pg.wait_for_url("**lang=zh")
    assert _nav(pg) == zh
    assert pg.console_errors == []


def test_admin_pages_in_english_on_a_phone(page_as, live_server, artifacts):
    pg = page_as("admin", **PHONE)
    pg.goto(live_server + "/admin/users?lang=en", wait_until="domcontentloaded")
    assert pg.locator("h1").inner_text() == "Users"
    assert pg.locator("#users tr[data-username=admin]").is_visible()
    assert _no_horizontal_scroll(pg)
    pg.screenshot(path=str(artifacts / "admin_users_phone_en.png"), full_page=True)
    pg.goto(live_server + "/admin/audit?entity=session", wait_until="domcontentloaded")
    assert pg.locator("h1").inner_text() == "Audit log"
    assert pg.locator("#audit tbody tr").count() >= 1
    assert _no_horizontal_scroll(pg)
    pg.screenshot(path=str(artifacts / "admin_audit_phone_en.png"), full_page=True)
    assert pg.console_errors == []

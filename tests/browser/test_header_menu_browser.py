"""The header on a phone and wherever its links do not fit: a menu button opens every section
the user's role may see, by touch and by keyboard, with no clipped row of links."""

from __future__ import annotations

import pytest

from geoapp.web import NAV_ITEMS

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}


def _expected(role: str, column: int = 1) -> list[str]:
    """The labels ``role`` may see, from NAV_ITEMS (1: Chinese, 2: English)."""
    return [item[column] for item in NAV_ITEMS if role == "admin" or item[3] in ("viewer", role)]


def _in_view(pg, selector: str) -> bool:
    """Visible and wholly inside the viewport (not clipped sideways or below)."""
    loc = pg.locator(selector)
    if not loc.is_visible():
        return False
    box = loc.bounding_box()
    vw, vh = pg.viewport_size["width"], pg.viewport_size["height"]
    return box is not None and box["x"] >= 0 and box["y"] >= 0 \
        and box["x"] + box["width"] <= vw + 0.5 and box["y"] + box["height"] <= vh + 0.5


def _link(label: str) -> str:
    return f'.ga-nav a:text-is("{label}")'


@pytest.mark.parametrize("role", ["planner", "admin"])
def test_phone_menu_opens_every_section_of_the_role(page_as, live_server, artifacts, role):
    pg = page_as(role, **PHONE)
    pg.console_errors.clear()
    pg.goto(live_server + "/workshops", wait_until="load")
    button = pg.locator(".ga-menu-button")
    labels = _expected(role)
    assert len(labels) == len([i for i in NAV_ITEMS if role == "admin" or i[3] != "admin"])
    assert button.is_visible() and button.get_attribute("aria-expanded") == "false"
    # Closed: no link squeezed into a sideways-scrolling row, no page overflow.
    assert not any(pg.locator(_link(label)).is_visible() for label in labels)
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    header = pg.locator(".ga-header").bounding_box()
    assert header["height"] <= 60

    button.click()
    assert button.get_attribute("aria-expanded") == "true"
    shown = pg.eval_on_selector_all(".ga-nav a", "els => els.map(e => e.textContent.trim())")
    assert shown == labels
    for label in labels:
        assert _in_view(pg, _link(label)), label
    assert _in_view(pg, ".ga-logout button")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    pg.screenshot(path=str(artifacts / f"header-menu-390-{role}.png"))

    # A tap outside closes it; a link in it goes to its page.
    pg.mouse.click(10, 800)  # left of the panel, which runs down the right-hand side
    assert button.get_attribute("aria-expanded") == "false"
    assert not pg.locator(_link(labels[-1])).is_visible()
    button.click()
    pg.locator(_link(labels[-1])).click()
    pg.wait_for_load_state("load")
    assert pg.locator('.ga-nav a[aria-current="page"]').text_content().strip() == labels[-1]
    assert pg.console_errors == []


def test_phone_menu_works_from_the_keyboard(page_as, live_server):
    pg = page_as("admin", **PHONE)
    pg.goto(live_server + "/workshops", wait_until="load")
    button = pg.locator(".ga-menu-button")
    pg.locator(".ga-brand").focus()
    pg.keyboard.press("Tab")
    assert pg.evaluate("document.activeElement.classList.contains('ga-menu-button')")
    pg.keyboard.press("Enter")
    assert button.get_attribute("aria-expanded") == "true"
    labels = _expected("admin")
    for label in labels:  # every link is the next tab stop, in order
        pg.keyboard.press("Tab")
        assert pg.evaluate("document.activeElement.textContent.trim()") == label
    pg.keyboard.press("Escape")
    assert button.get_attribute("aria-expanded") == "false"
    assert pg.evaluate("document.activeElement.classList.contains('ga-menu-button')")
    pg.keyboard.press("Space")
    assert button.get_attribute("aria-expanded") == "true"
    assert _in_view(pg, _link(labels[0]))
    # Tabbing past the panel (to the language switch and beyond) closes it.
    for _ in range(len(labels) + 6):
        pg.keyboard.press("Tab")
    assert button.get_attribute("aria-expanded") == "false"


def test_desktop_header_shows_the_links_inline(page_as, live_server):
    pg = page_as("planner", viewport={"width": 1280, "height": 800})
    pg.goto(live_server + "/workshops", wait_until="load")
    assert not pg.locator(".ga-menu-button").is_visible()
    for label in _expected("planner"):
        assert _in_view(pg, _link(label)), label


@pytest.mark.parametrize("width", [800, 1024, 1280, 1600])
def test_no_width_clips_a_link_out_of_reach(page_as, live_server, width):
    """English labels and an admin's ten links: inline only when every one fits, else the
    menu button; never a link hidden in a clipped row."""
    pg = page_as("admin", viewport={"width": width, "height": 800})
    pg.goto(live_server + "/admin/users?lang=en", wait_until="load")
    labels = _expected("admin", 2)
    button = pg.locator(".ga-menu-button")
    if button.is_visible():
        assert not pg.locator(_link(labels[0])).is_visible()
        button.click()
    nav = pg.locator(".ga-nav").bounding_box()
    for label in labels:
        assert _in_view(pg, _link(label)), (width, label)
        box = pg.locator(_link(label)).bounding_box()
        assert nav["x"] - 0.5 <= box["x"] and box["x"] + box["width"] <= nav["x"] + nav["width"] + 0.5
    brand = pg.locator(".ga-brand")
    assert brand.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), "brand cut off"

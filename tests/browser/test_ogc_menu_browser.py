"""The OGC service's link in the header: on a 390 px phone it is one more row of the menu
panel, the whole panel still on screen; on a desktop it sits inline beside the account."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
LINK = '.ga-menu a[data-endpoint="ogc.landing"]'


def _box(pg, selector: str) -> dict:
    box = pg.locator(selector).bounding_box()
    assert box is not None, selector
    return box


def _inside(box: dict, width: int, height: int) -> bool:
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= width + 0.5 \
        and box["y"] + box["height"] <= height + 0.5


@pytest.mark.parametrize(("role", "lang", "label"), [("admin", "zh", "OGC 服务"),
                                                     ("admin", "en", "OGC API"),
                                                     ("viewer", "zh", "OGC 服务")])
def test_phone_menu_has_room_for_the_ogc_link(page_as, live_server, artifacts, role, lang,
                                              label):
    pg = page_as(role, **PHONE)
    pg.goto(f"{live_server}/workshops?lang={lang}", wait_until="load")
    assert not pg.locator(LINK).is_visible()  # closed: only the menu button
    pg.locator(".ga-menu-button").click()
    link = pg.locator(LINK)
    assert link.is_visible() and link.text_content().strip() == label
    nav, ogc, account = _box(pg, ".ga-nav"), _box(pg, LINK), _box(pg, ".ga-logout button")
    # after the sections, before the account row, every part of the panel on screen
    assert nav["y"] + nav["height"] <= ogc["y"] < account["y"]
    assert _inside(_box(pg, ".ga-menu"), 390, 844)
    assert _inside(ogc, 390, 844) and ogc["height"] >= 20
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    pg.screenshot(path=str(artifacts / f"header-menu-390-ogc-{role}-{lang}.png"))
    link.click()
    pg.wait_for_load_state("load")
    assert pg.url.split("?")[0].rstrip("/").endswith("/ogc")
    assert pg.locator("html").get_attribute("lang") in ("zh-CN", "en")
    pg.locator(".ga-menu-button").click()
    assert pg.locator(LINK).get_attribute("aria-current") == "page"
    assert pg.console_errors == []


def test_desktop_shows_the_ogc_link_inline_beside_the_account(page_as, live_server):
    pg = page_as("planner", viewport={"width": 1280, "height": 800})
    pg.goto(live_server + "/workshops", wait_until="load")
    assert not pg.locator(".ga-menu-button").is_visible()
    ogc, account = _box(pg, LINK), _box(pg, ".ga-user:not([data-endpoint])")
    assert _inside(ogc, 1280, _box(pg, ".ga-header")["height"])
    assert ogc["x"] + ogc["width"] <= account["x"]

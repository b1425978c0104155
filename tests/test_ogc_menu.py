"""The header links the OGC API - Features service for every account: beside the sections
(which stay NAV_ITEMS), in both languages, marked as the current page on the service's own
pages, and not for anonymous visitors."""

from __future__ import annotations

import re

import pytest

from geoapp.web import NAV_ITEMS

from webutil import login

OGC_LINK = re.compile(r'<a class="ga-user" href="(?P<href>[^"]+)" data-endpoint="ogc.landing"'
                      r' title="(?P<title>[^"]*)"(?P<current> aria-current="page")?>'
                      r"(?P<label>[^<]*)</a>")


@pytest.fixture(scope="module")
def app(offline_app):
    return offline_app


def _ogc_link(html: str) -> re.Match | None:
    return OGC_LINK.search(html)


def _nav_labels(html: str) -> list[str]:
    nav = re.search(r'<nav class="ga-nav".*?</nav>', html, re.S)
    assert nav, "no navigation in the page"
    return [t.strip() for t in re.findall(r"<a [^>]*>([^<]*)</a>", nav.group(0))]


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_every_account_has_the_ogc_link_after_the_sections(app, role):
    c = app.test_client()
    login(c, role)
    html = c.get("/").get_data(as_text=True)
    link = _ogc_link(html)
    assert link and link["label"] == "OGC 服务" and link["title"] == "OGC API 要素服务"
    assert link["href"] == "/ogc" and not link["current"]
    # one link, in the menu panel between the sections and the account, not a section
    assert len(OGC_LINK.findall(html)) == 1
    menu = html[html.index('<div class="ga-menu"'):html.index('class="ga-logout">')]
    assert menu.index("</nav>") < menu.index('data-endpoint="ogc.landing"')
    assert _nav_labels(html) == [zh for _e, zh, _en, least in NAV_ITEMS
                                 if role == "admin" or least == "viewer"]
    # the link opens the landing page as a browser asks for it
    page = c.get(link["href"], headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert _ogc_link(page.get_data(as_text=True))["current"]


def test_the_link_in_english(app):
    c = app.test_client()
    login(c, "viewer")
    link = _ogc_link(c.get("/?lang=en").get_data(as_text=True))
    assert link["label"] == "OGC API" and link["title"] == "OGC API - Features"


def test_no_link_for_anonymous_visitors(app):
    assert 'data-endpoint="ogc.landing"' not in app.test_client().get("/login").get_data(
        as_text=True)

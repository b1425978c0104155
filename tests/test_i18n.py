"""UI language: Chinese by default, English by ?lang=en (sticky), and a complete, compiled
English catalog."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from geoapp.web import NAV_ITEMS

from webutil import login

CATALOG = Path(__file__).resolve().parent.parent / "geoapp" / "translations" / "en" / \
    "LC_MESSAGES"


@pytest.fixture(scope="module")
def app(offline_app):
    return offline_app


def _po():
    with open(CATALOG / "messages.po", "rb") as f:
        return read_po(f, locale="en")


def _nav_labels(html: str) -> list[str]:
    nav = re.search(r'<nav class="ga-nav".*?</nav>', html, re.S)
    assert nav, "no navigation in the page"
    return [t.strip() for t in re.findall(r"<a [^>]*>([^<]*)</a>", nav.group(0))]


def test_every_msgid_has_an_english_translation():
    untranslated = [m.id for m in _po() if m.id and (not m.string or "fuzzy" in m.flags)]
    assert untranslated == [], "run scripts/i18n.sh and translate these"


def test_translations_keep_their_placeholders():
    for m in _po():
        if m.id:
            assert sorted(re.findall(r"%\(\w+\)s", m.id)) == \
                sorted(re.findall(r"%\(\w+\)s", m.string)), m.id


def test_compiled_catalog_matches_the_po(tmp_path):
    fresh = tmp_path / "messages.mo"
    with open(fresh, "wb") as f:
        write_mo(f, _po())
    with open(fresh, "rb") as f:
        want = {m.id: m.string for m in read_mo(f) if m.id}
    with open(CATALOG / "messages.mo", "rb") as f:
        have = {m.id: m.string for m in read_mo(f) if m.id}
    assert have == want, "the committed .mo is stale: run scripts/i18n.sh compile"


def test_default_language_is_chinese(app):
    c = app.test_client()
    login(c, "viewer")
    html = c.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert _nav_labels(html)[:3] == ["一张图", "搬迁地图", "现场核查"]
    assert "退出" in html and "Log out" not in html


def test_lang_en_switches_navigation_and_the_choice_sticks(app):
    c = app.test_client()
    login(c, "viewer")
    html = c.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert _nav_labels(html)[:3] == ["Overview", "Relocation", "Site check"]
    assert "Log out" in html
    later = c.get("/").get_data(as_text=True)
    assert _nav_labels(later)[:3] == ["Overview", "Relocation", "Site check"]
    back = c.get("/?lang=zh").get_data(as_text=True)
    assert _nav_labels(back)[0] == "一张图"


def test_unknown_language_falls_back_to_chinese(app):
    c = app.test_client()
    html = c.get("/login?lang=fr").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html


def test_switch_links_keep_the_page_and_its_query(app):
    c = app.test_client()
    login(c, "viewer")
    html = c.get("/relocation?district=%E8%A7%A3%E6%94%BE%E5%8C%BA&stage=started").get_data(
        as_text=True)
    link = re.search(r'<a href="([^"]+)"[^>]*data-lang="en"', html)
    assert link, "no English switch in the header"
    href = link.group(1).replace("&amp;", "&")
    assert href.startswith("/relocation?")
    assert "district=%E8%A7%A3%E6%94%BE%E5%8C%BA" in href and "stage=started" in href
    assert href.endswith("lang=en") and href.count("lang=") == 1


def test_login_page_is_translated(app):
    c = app.test_client()
    zh = c.get("/login").get_data(as_text=True)
    assert "用户名" in zh and "焦作市生态环境一张图" in zh
    en = c.get("/login?lang=en").get_data(as_text=True)
    assert "Username" in en and "Password" in en and "用户名" not in en
    assert "Jiaozuo Environmental One-Map" in en


def test_error_page_is_translated(app):
    c = app.test_client()
    login(c, "viewer")
    assert "未找到" in c.get("/no-such-page").get_data(as_text=True)
    r = c.get("/no-such-page?lang=en")
    assert r.status_code == 404
    assert "Not found" in r.get_data(as_text=True)


def test_every_navigation_item_has_both_labels():
    for endpoint, zh, en, role in NAV_ITEMS:
        assert zh and en and role, endpoint
        assert re.search(r"[\u4e00-\u9fff]", zh) and en.isascii(), endpoint


def test_every_msgid_in_the_code_is_in_the_catalog():
    """A string marked for translation in a template or module but missing from the .po shows
    up in Chinese on the English page: extract as scripts/i18n.sh does and compare."""
    root = CATALOG.parents[3]
    with open(root / "babel.cfg", encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None,
                "_l": None}
    known = {m.id if isinstance(m.id, str) else m.id[0] for m in _po() if m.id}
    missing = set()
    for folder in ("templates", "geoapp"):
        for _file, _line, msg, _comments, _ctx in extract_from_dir(
                root / folder, method_map, options_map, keywords=keywords):
            msgid = msg if isinstance(msg, str) else msg[0]
            if msgid and msgid not in known:
                missing.add(msgid)
    assert sorted(missing) == [], "run scripts/i18n.sh and translate these"

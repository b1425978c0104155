"""The check page, its print sheet and the site page show the four verdicts, how close each
hit is (distance beside the limit), the basis note, conditional hits with a re-check, the
new site of a relocation apart, and a map of what the verdict rests on (test client)."""

from __future__ import annotations

import json
import re

import pytest

from geoapp.domain.results import Verdict

from webutil import login

FARM = (113.19032, 35.299646)  # livestock farm F0002, 69 m from the 群英河
CASES = {
    "fail": f"lon={FARM[0]}&lat={FARM[1]}&site_type=livestock_farm",
    "pass": "lon=113.3&lat=35.1&site_type=enterprise&industry=服装",
    "needs_info": f"lon={FARM[0]}&lat={FARM[1]}",
    "out_of_area": "lon=113.65&lat=34.75",  # Zhengzhou, outside Jiaozuo's data
}


@pytest.fixture(scope="module")
def app(offline_app):
    return offline_app


@pytest.fixture(scope="module")
def client(app):
    c = app.test_client()
    login(c, "viewer")
    return c


def _html(client, url: str) -> str:
    r = client.get(url)
    assert r.status_code == 200, url
    return r.get_data(as_text=True)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _js(text: str) -> str:
    """``text`` as folium writes it into the map script (a JSON string, ASCII-escaped)."""
    return json.dumps(text)[1:-1]


def _item(html: str, rule: str) -> str:
    """The text of the hit list item of ``rule`` on the check page."""
    m = re.search(rf'<li class="ck-hit[^"]*"[^>]*data-rule="{rule}">(.*?)</li>', html, re.S)
    assert m, f"no hit {rule}"
    return _text(m.group(1))


@pytest.mark.parametrize("verdict", list(CASES))
def test_each_verdict_has_its_class_label_and_sentence(client, verdict):
    html = _html(client, f"/check?{CASES[verdict]}")
    v = Verdict(verdict)
    assert f'class="ck-verdict ck-verdict-{verdict}" data-verdict="{verdict}"' in html
    block = _text(html[html.index('class="ck-verdict '):html.index("</div>",
                                                                  html.index("ck-verdict "))])
    assert v.zh in block and v.sentence_zh in block
    if verdict != "pass":
        assert "ck-verdict-pass" not in html  # never green when not compliant


def test_the_verdict_comes_before_the_form_and_the_map(client):
    html = _html(client, f"/check?{CASES['fail']}")
    assert html.index('class="ck-verdict ') < html.index('id="ck-point-form"') \
        < html.index('id="ga-map-container"')


def test_a_distance_hit_shows_its_limit_and_how_far_inside(client):
    html = _html(client, f"/check?{CASES['fail']}")
    assert "69.0 m / 限 400 m，超入 331.0 m" in _item(html, "riverside_livestock")
    en = _html(client, f"/check?{CASES['fail']}&lang=en")
    assert "69.0 m / limit 400 m, 331.0 m inside" in _item(en, "riverside_livestock")
    en_sentence = Verdict.FAIL.sentence_en
    assert en_sentence in en
    _html(client, "/check?lang=zh")  # back to Chinese for the other tests


def test_an_inside_hit_says_inside_and_the_basis_note_is_shown(client):
    html = _html(client, f"/check?{CASES['fail']}")
    assert "位于区内" in _item(html, "water_source_protection_2")
    item = re.search(r'data-rule="riverside_livestock">(.*?)</li>', html, re.S).group(1)
    note = re.search(r'class="ck-basis-note">([^<]*)<', item)
    assert note and "待核实" in note.group(1)
    assert item.index("ck-basis") < item.index("ck-basis-note")


def test_needs_info_lists_the_conditional_hits_and_offers_a_recheck(client):
    html = _html(client, f"/check?{CASES['needs_info']}")
    cond = re.search(r'data-conditional-rule="riverside_livestock">(.*?)</li>', html, re.S)
    assert cond, "the riverside rule is not listed as conditional"
    text = _text(cond.group(1))
    assert "若为畜禽养殖场" in text and "群英河" in text and "69.0 m" in text
    assert "/ 限 400 m，超入 331.0 m" in text
    link = re.search(r'class="ck-recheck-link" href="([^"]+)"', cond.group(0))
    assert link and "site_type=livestock_farm" in link.group(1)
    form = html[html.index('id="ck-recheck-form"'):]
    form = form[:form.index("</form>")]
    assert 'name="site_type"' in form and 'name="industry"' in form
    assert f'name="lon" value="{FARM[0]}"' in form
    again = _html(client, link.group(1).replace("&amp;", "&"))
    assert 'data-verdict="fail"' in again


def test_out_of_area_is_grey_and_lists_no_rule(client):
    html = _html(client, f"/check?{CASES['out_of_area']}")
    assert 'data-verdict="out_of_area"' in html
    assert "data-conditional-rule" not in html and 'class="ck-hit ' not in html


@pytest.mark.parametrize("verdict", list(CASES))
def test_the_print_sheet_shows_the_verdict_and_the_limits(client, verdict):
    html = _html(client, f"/check/print?{CASES[verdict]}")
    v = Verdict(verdict)
    assert f'ck-sheet-verdict ck-verdict-{verdict}" data-verdict="{verdict}"' in html
    assert v.zh in html and v.sentence_zh in html
    if verdict == "fail":
        row = re.search(r'data-rule="riverside_livestock">(.*?)</tr>', html, re.S).group(1)
        assert "69.0 m / 限 400 m，超入 331.0 m" in _text(row)
        assert "ck-basis-note" in row
    if verdict == "needs_info":
        assert 'data-conditional-rule="riverside_livestock"' in html
        assert "若为畜禽养殖场" in html


def test_the_map_shows_only_the_hit_rules_buffers_and_labelled_lines(client):
    html = _html(client, f"/check?{CASES['fail']}")
    drawn = set(re.findall(r'"rule_id": "([a-z_0-9]+)"', html))
    assert drawn == {"riverside_livestock", "water_source_protection_2"}
    assert '"className": "ck-dist-label"' in html and '"permanent": true' in html
    assert 'div.textContent = "69.0 m"' in html  # the line's label
    # the nearest features of the other layers start switched off
    assert _js("其他图层最近要素") in html


def test_the_map_shows_conditional_rules_muted(client):
    html = _html(client, f"/check?{CASES['needs_info']}")
    assert '"conditional": true' in html
    assert "ck-dist-muted" in html
    assert '"hit": true' not in html


@pytest.mark.parametrize("tiles, crs", [("amap", "GCJ-02"), ("osm", "WGS84"),
                                        ("tianditu", "WGS84"), ("none", "WGS84")])
def test_the_map_names_the_system_its_clicks_and_readout_are_in(app, tiles, crs):
    core = app.extensions["geoapp"]
    before = core.settings["TILES"]
    core.settings["TILES"] = tiles
    try:
        c = app.test_client()
        login(c, "viewer")
        html = _html(c, f"/check?{CASES['fail']}")
    finally:
        core.settings["TILES"] = before
    assert f'data-map-crs="{crs.replace("-", "").lower()}"' in html
    assert _js(f"经纬度 ({crs}):") in html
    hint = re.search(r'id="ck-click-hint">([^<]*)<', html).group(1)
    assert crs in hint


def test_the_site_page_shows_a_relocations_new_site_hits_apart(client):
    html = _html(client, "/sites/E0022")
    hits = html[html.index('id="hits"'):html.index('id="new-site-hits"')]
    new = html[html.index('id="new-site-hits"'):html.index('id="history"')]
    assert 'data-rule="relocation_destination"' in new
    assert 'data-point="new_site"' in new and 'data-point="site"' not in new
    assert "relocation_destination" not in hits
    assert 'data-point="site"' in hits
    assert "不在允许区域内" in _text(new)


def test_the_site_page_shows_distance_beside_limit(client):
    html = _html(client, "/sites/F0002")
    row = re.search(r'data-rule="riverside_livestock">(.*?)</tr>', html, re.S).group(1)
    assert "69.0 m / 限 400 m，超入 331.0 m" in _text(row)
    assert 'data-verdict="fail"' in html

"""The relocation map marks a relocating enterprise whose new site breaks a rule: the stored
hits with point "new_site" go to the new-site marker, the old->new line, the popup data and the
table row, and never count as the current site's hits."""

from __future__ import annotations

import json
import re

import pytest

CHEMICAL = "chemical_outside_park"


@pytest.fixture(scope="module")
def app(offline_app):
    return offline_app


@pytest.fixture(scope="module")
def client(viewer_client):
    return viewer_client


@pytest.fixture(scope="module")
def stored(app):
    return app.extensions["geoapp"].repo.site_hits()


@pytest.fixture(scope="module")
def clean_new_site(app, stored) -> str:
    """A relocating enterprise with a new site where no rule is broken (E0004 in the data)."""
    ent = app.extensions["geoapp"].repo.sites("enterprise", classification="relocate")
    moved = set(ent.loc[ent["new_lon"].notna() & ent["new_lat"].notna(), "id"])
    clean = sorted(moved - set(stored.loc[stored["point"] == "new_site", "site_id"]))
    assert clean, "the data should hold a relocation whose new site is clean"
    return clean[0]


def _layers(html: str) -> dict[str, dict]:
    """The map's point layers' data by the first word of their names."""
    payloads = [json.loads(m) for m in
                re.findall(r"new window\.GeoappPoints\((\{.*?\})\);\n", html)]
    return {p["title"].split(" ")[0]: p for p in payloads}


def _point(html: str, site_id: str, layer: str) -> dict:
    """What the map holds for ``site_id`` in one layer: its category label and style, its
    hits' rule titles and the layer's words."""
    d = _layers(html)[layer]
    assert d["id"].count(site_id) == 1, (site_id, layer)
    i = d["id"].index(site_id)
    code = d["c"][i] if d["c"] else 0
    style = {"f": d["cats"][code][1], **((d.get("st") or [None] * len(d["cats"]))[code] or {})}
    hits = (d.get("hits") or {}).get(site_id, [])
    return {"style": style, "rules": [d["rules"][h[0]][0] for h in hits], "labels": d["labels"],
            "tip": d.get("tip", 0)}


def _row(html: str, site_id: str) -> str:
    body = html.split('id="rl-table"', 1)[1]
    m = re.search(rf'<tr data-id="{site_id}"[^>]*>.*?</tr>', body, re.S)
    assert m, site_id
    return m.group(0)


def test_stored_hits_put_the_chemical_rule_at_e0013s_new_site(stored):
    at_new = stored[(stored["site_id"] == "E0013") & (stored["point"] == "new_site")]
    assert CHEMICAL in set(at_new["rule_id"])


def test_json_lists_the_new_sites_hits_apart_from_the_current_sites(client, stored,
                                                                   clean_new_site):
    sites = {s["id"]: s for s in client.get("/api/relocation").get_json()["sites"]}
    e13 = sites["E0013"]
    new_rules = {h["rule_id"] for h in e13["new_site_hits"]}
    assert CHEMICAL in new_rules
    assert {h["point"] for h in e13["new_site_hits"]} == {"new_site"}
    chem = next(h for h in e13["new_site_hits"] if h["rule_id"] == CHEMICAL)
    assert chem["title_zh"] == "化工企业未入园" and chem["title_en"]
    assert chem["feature"] == "修武县化工产业园" and chem["distance_m"] > 0
    # the current site's hits are exactly the stored hits at the site
    at_site = stored[(stored["site_id"] == "E0013") & (stored["point"] == "site")]
    assert sorted(h["rule_id"] for h in e13["hits"]) == sorted(at_site["rule_id"])
    assert {h["point"] for h in e13["hits"]} == {"site"}
    assert sites[clean_new_site]["new_site_hits"] == []
    assert sites[clean_new_site]["new_lon"] is not None


def test_map_marks_the_new_site_and_its_line_and_the_popup_data_names_the_rule(client, stored,
                                                                              clean_new_site):
    html = client.get("/relocation?classification=relocate").get_data(as_text=True)
    new = _point(html, "E0013", "搬迁新址")
    assert new["style"]["s"] == "#a50f15" and new["style"]["w"] >= 4 and new["style"]["r"] >= 8
    assert "化工企业未入园" in new["rules"]
    line = _point(html, "E0013", "搬迁路线")
    assert line["style"]["s"] == "#a50f15" and "dash" not in line["style"]
    # the current-site marker keeps only the current site's hits
    site = _point(html, "E0013", "企业现址")
    at_site = stored[(stored["site_id"] == "E0013") & (stored["point"] == "site")]
    assert site["style"]["s"] != "#a50f15" and len(site["rules"]) == len(at_site)
    clean = _point(html, clean_new_site, "搬迁新址")
    assert clean["style"]["s"] != "#a50f15" and clean["rules"] == []
    clean_line = _point(html, clean_new_site, "搬迁路线")
    assert clean_line["style"]["s"] != "#a50f15" and clean_line["style"]["dash"] == [6, 4]
    # the new site's popup and tooltip say whose hits these are, the site's say theirs
    assert new["labels"]["hits"] == "新址规则命中" and new["tip"] == 2
    assert site["labels"]["hits"] == "规则命中"


def test_table_row_lists_the_rules_broken_at_the_new_site(client, clean_new_site):
    html = client.get("/relocation?classification=relocate").get_data(as_text=True)
    assert "新址规则命中" in html
    row = _row(html, "E0013")
    assert 'class="rl-new-site-warn"' in row
    cell = re.search(r'<td class="rl-new-hits rl-warn" data-v="(\d+)">([^<]*)</td>', row)
    assert cell and int(cell.group(1)) >= 1
    assert "化工企业未入园" in cell.group(2).split("、")
    clean = _row(html, clean_new_site)
    assert "rl-new-site-warn" not in clean
    assert '<td class="rl-new-hits" data-v="0"></td>' in clean


def test_english_page_names_the_new_sites_rules_in_english(client):
    sites = client.get("/api/relocation").get_json()["sites"]
    e13 = next(s for s in sites if s["id"] == "E0013")
    title_en = next(h["title_en"] for h in e13["new_site_hits"] if h["rule_id"] == CHEMICAL)
    assert title_en != "化工企业未入园"
    try:
        html = client.get("/relocation?classification=relocate&lang=en").get_data(
            as_text=True)
    finally:
        client.get("/relocation?lang=zh")
    assert "Rule hits at the new site" in html
    assert title_en in _row(html, "E0013")
    new = _point(html, "E0013", "New")
    assert title_en in new["rules"]
    assert new["labels"]["hits"] == "Rule hits at the new site" and new["labels"]["sep"] == "; "

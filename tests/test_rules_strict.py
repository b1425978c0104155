"""The shipped Jiaozuo rules are as strict as the law and the city's own documents.

Checked on the embedded data: key industries the city names (rubber and tyres, refractories,
non-ferrous smelting) are flagged in the urban core, 一级 and 二级 water-source zones are
separate rules with their own legal basis and action, livestock farms are kept out of
population-dense and built-up areas, and every legal basis names a document.
Assertions read ``result.hits`` (rule ids, actions, bases), not the overall verdict.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import shapely
from shapely.geometry import Point

from geoapp.config import load_settings
from geoapp.services import open_geoapp
from geoapp.services.checks import check_point, check_site, flag_all, read_rules
from geoapp.spatial.engine import RuleEngine

DATA = Path(__file__).resolve().parent.parent / "data"
CITY_CENTRE = (113.2418, 35.2155)  # inside 焦作市主城区 (UC01) and its dense area (DA01)
URBAN_CORE_RULE = "urban_core_heavy_industry"
GRADE_1, GRADE_2 = "water_source_protection_1", "water_source_protection_2"
LIVESTOCK_RULES = {"dense_area_livestock", "urban_core_livestock"}

#: Ledger enterprises inside the urban core that the old industry list left out: rubber
#: (E0003, E0008), refractories (E0031, E0035), non-ferrous smelting (E0034, E0039) in the
#: central core, hazardous-chemical plants in the 修武 and 温县 built-up areas (E0084, E0085).
MISSED_BEFORE = {"E0003", "E0008", "E0031", "E0034", "E0035", "E0039", "E0084", "E0085"}
OLD_URBAN_CORE_INDUSTRIES = {"钢铁", "铸造", "焦化", "火电", "化工", "煤化工", "水泥", "家具",
                             "建材", "砖瓦", "陶瓷", "木材加工", "石材加工", "砂石料场",
                             "水泥预制", "商混站"}


@pytest.fixture(scope="module")
def core(offline_app):
    return offline_app.extensions["geoapp"]


@pytest.fixture(scope="module")
def rules(core):
    return read_rules(core.settings["RULES_FILE"], core.repo.layer_names())


def _hits(result) -> dict:
    return {h.rule_id: h for h in result.hits}


def _layer(core, name: str):
    return core.repo.layer(name).set_index("id")


def _inside(core, name: str, feature_id: str) -> tuple[float, float]:
    """A point well inside one feature of a layer."""
    geom = _layer(core, name).geometry[feature_id]
    p = shapely.maximum_inscribed_circle(geom, 1e-6).coords[0]
    return float(p[0]), float(p[1])


@pytest.mark.parametrize("industry", ["橡胶制品", "轮胎制造", "耐火材料", "有色金属冶炼",
                                      "铝冶炼"])
def test_rubber_refractory_and_non_ferrous_plants_in_the_urban_core_are_flagged(core, industry):
    result = check_point(core, *CITY_CENTRE, "wgs84", site_type="enterprise", industry=industry)
    hit = _hits(result).get(URBAN_CORE_RULE)
    assert hit is not None, f"{industry} inside the urban core is not flagged"
    assert hit.feature_id == "UC01" and hit.distance_m == 0.0


def test_every_ledger_firm_inside_the_urban_core_is_flagged(core):
    sites = core.repo.sites("enterprise")
    zones = _layer(core, "urban_core").geometry.union_all()
    inside = {r.id for r in sites.itertuples()
              if zones.covers(Point(float(r.lon), float(r.lat)))}
    flagged = {sid for sid in sites["id"]
               if URBAN_CORE_RULE in _hits(check_site(core, sid))}
    assert flagged == inside
    industry = dict(zip(sites["id"], sites["industry"], strict=True))
    newly = {sid for sid in flagged if industry[sid] not in OLD_URBAN_CORE_INDUSTRIES}
    assert newly == MISSED_BEFORE


def test_grade_1_zone_gets_the_grade_1_rule_and_its_action(core):
    lon, lat = _inside(core, "water_source_zones", "WS01-1")
    hits = _hits(check_point(core, lon, lat, "wgs84", site_type="enterprise", industry="化工"))
    assert GRADE_1 in hits and GRADE_2 not in hits
    one = hits[GRADE_1]
    assert one.feature_id == "WS01-1" and one.severity == "high"
    assert "第六十五条" in one.basis and "第六十六条" not in one.basis
    assert "与供水设施和保护水源无关" in one.action and "拆除或者关闭" in one.action
    # 一级: any project unrelated to water supply, not only polluting industries
    food = _hits(check_point(core, lon, lat, "wgs84", site_type="enterprise", industry="食品"))
    assert GRADE_1 in food
    # the ledger farm inside the 一级 zone of the northern well field
    assert {GRADE_1} == {r for r in _hits(check_site(core, "F0154")) if r.startswith("water")}


def test_grade_2_ring_gets_only_the_grade_2_rule(core):
    lon, lat = _inside(core, "water_source_zones", "WS01-2")
    hits = _hits(check_point(core, lon, lat, "wgs84", site_type="enterprise", industry="化工"))
    assert GRADE_2 in hits and GRADE_1 not in hits
    two = hits[GRADE_2]
    assert two.feature_id == "WS01-2"
    assert "第六十六条" in two.basis and "第六十五条" not in two.basis
    assert "排放污染物" in two.action and "拆除或者关闭" in two.action
    # 二级 forbids polluting projects only
    food = _hits(check_point(core, lon, lat, "wgs84", site_type="enterprise", industry="食品"))
    assert GRADE_2 not in food and GRADE_1 not in food
    # ledger sites in 二级 rings only
    for sid in ("E0062", "F0002", "W0016"):
        water = {r for r in _hits(check_site(core, sid)) if r.startswith("water")}
        assert water == {GRADE_2}, sid


def test_water_source_rules_have_their_own_bases_and_actions(rules):
    one, two = rules[GRADE_1], rules[GRADE_2]
    assert one.stored_layer == two.stored_layer == "water_source_zones"
    assert one.action != two.action and one.basis != two.basis
    assert "water_source_protection" not in rules


def test_livestock_farm_in_the_city_centre_fails_with_the_no_farming_rules(core):
    for given in ({"site_type": "livestock_farm"}, {"industry": "畜禽养殖"}):
        hits = _hits(check_point(core, *CITY_CENTRE, "wgs84", **given))
        assert set(hits) >= LIVESTOCK_RULES, given
        for rid in LIVESTOCK_RULES:
            assert hits[rid].severity == "high"
            assert "第十一条" in hits[rid].basis and "人口集中区域" in hits[rid].basis
            assert "搬迁或关闭" in hits[rid].action
    assert {h.feature_id for h in check_point(core, *CITY_CENTRE, "wgs84",
                                               site_type="livestock_farm").hits
            if h.rule_id in LIVESTOCK_RULES} == {"UC01", "DA01"}
    other = _hits(check_point(core, *CITY_CENTRE, "wgs84", site_type="enterprise",
                              industry="食品"))
    assert not LIVESTOCK_RULES & set(other)


def test_a_farm_in_a_county_built_up_area_outside_its_dense_area_is_still_flagged(core):
    rest = _layer(core, "urban_core").geometry["UC02"].difference(
        _layer(core, "dense_area").geometry.union_all())
    lon, lat = shapely.maximum_inscribed_circle(rest, 1e-6).coords[0]
    hits = _hits(check_point(core, lon, lat, "wgs84", site_type="livestock_farm"))
    assert "urban_core_livestock" in hits and "dense_area_livestock" not in hits


def test_no_basis_leans_on_unnamed_provincial_rules(rules):
    for rule in rules:
        if "有关规定" in rule.basis:
            assert rule.basis_note, f"{rule.id}: 有关规定 without a basis_note"
        if rule.basis_note:
            assert "待核实" in rule.basis_note, rule.id


def test_every_basis_names_a_document(rules):
    named = re.compile(r"《[^》]+》|〔\d{4}〕")
    for rule in rules:
        assert named.search(rule.basis), f"{rule.id}: basis names no document: {rule.basis}"


def test_the_engine_builds_the_shipped_rules_without_warnings(core, rules, caplog):
    names = core.repo.layer_names()
    layers = {n: core.repo.layer(n) for n in {r.stored_layer for r in rules} if n in names}
    with caplog.at_level(logging.WARNING, logger="geoapp"):
        engine = RuleEngine.build(layers, rules, core.metric_crs, sites=core.repo.sites())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    zones = engine.exclusion_zones().set_index("rule_id")
    assert {GRADE_1, GRADE_2, "dense_area_livestock", "urban_core_livestock"} <= set(zones.index)
    inner = Point(_inside(core, "water_source_zones", "WS01-1"))
    assert zones.geometry[GRADE_1].contains(inner)
    assert not zones.geometry[GRADE_2].contains(inner)


def test_flagging_the_registers_agrees_with_the_single_checks(instance):
    app = open_geoapp(load_settings(instance, environ={}))
    try:
        flag_all(app)
        by_rule = app.repo.site_hits().groupby("rule_id")["site_id"].apply(set)
    finally:
        app.repo.close()
    assert by_rule[URBAN_CORE_RULE] >= MISSED_BEFORE
    assert by_rule[GRADE_1] == {"F0094", "F0154"}
    assert by_rule[GRADE_2] == {"E0062", "E0086", "E0087", "E0089", "F0002", "F0042", "F0151",
                                "F0182", "F0195", "W0016", "W0095"}

"""Four verdicts: fail, pass, needs_info (待核实) and out_of_area (超出本市数据范围).

A false green 符合 lets an illegal site stay. These tests pin the four ways a check used to
answer ``pass`` without having decided every rule that could apply, on the embedded Jiaozuo
data (single check, /api/check, stored sites) and on tiny layers (engine, batch), and check
with hypothesis that the single check and the batch agree and that nothing outside the
covered area ever passes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import box
from test_engine import METRIC, RIVER, RULES, tiny_layers, tiny_sites

from geoapp.cli import main
from geoapp.config import load_settings
from geoapp.domain.results import (
    CheckResult,
    ConditionalHit,
    Hit,
    Verdict,
    row_verdicts,
    verdict_of,
)
from geoapp.domain.rules import (
    APPLIES,
    CANNOT,
    CONDITIONAL,
    applicability,
    applicability_masks,
    condition_text,
    load_rules,
)
from geoapp.services import checks, open_geoapp
from geoapp.spatial.batch import SiteColumns
from geoapp.spatial.engine import RuleEngine

from webutil import login

GEOD = Geod(ellps="GRS80")
CORE_POINT = ("113.2418", "35.2155")  # Jiaozuo: urban core, coal-ban zone, dense, hotspot
BEIJING = ("116.40", "39.90")
CHEMICAL_RELOCATIONS = ("E0013", "E0014", "E0017", "E0081")

#: The tiny engine's rules plus one reading a free attribute, as coal_ban_zone does.
TINY_RULES = RULES + """
  - id: coal_ban_zone
    title: {zh: 禁煤区, en: Coal ban}
    applies_to: {any_of: [{industries: [燃煤锅炉]}, {attrs: {fuel: [coal, 燃煤, 煤]}}]}
    layer: urban_core
    test: inside
    severity: medium
    basis: 大气污染防治法第三十八条
    action: 停止燃煤
"""
#: The tiny city: a box around the test layers (rivers at 112.62, the core at 113.2-113.3).
OUTLINE = box(112.55, 34.95, 113.60, 35.40)


@pytest.fixture(scope="module")
def tiny() -> RuleEngine:
    return RuleEngine.build(tiny_layers(), load_rules(TINY_RULES), METRIC, sites=tiny_sites(),
                            outline=OUTLINE)


@pytest.fixture(scope="module")
def core(offline_app):
    return offline_app.extensions["geoapp"]


@pytest.fixture(scope="module")
def client(offline_app):
    c = offline_app.test_client()
    login(c, "inspector")
    return c


def _batch_verdicts(engine: RuleEngine, lon, lat, site_type, industry, **cols) -> np.ndarray:
    hits = engine.flag(lon, lat, site_type, industry, **cols)
    cond = hits["conditional"].to_numpy(dtype=bool)
    rows = hits["row"].to_numpy()
    covered = engine.covered(lon, lat)
    if cols.get("new_lon") is not None:
        nlon, nlat = np.asarray(cols["new_lon"], float), np.asarray(cols["new_lat"], float)
        has = np.isfinite(nlon) & np.isfinite(nlat)
        covered[has] &= engine.covered(nlon[has], nlat[has])
    return row_verdicts(len(lon), rows[~cond], rows[cond], covered)


# -- the domain ---------------------------------------------------------------------------
def test_verdict_members_carry_labels_and_sentences():
    assert [v.value for v in Verdict] == ["fail", "pass", "needs_info", "out_of_area"]
    assert [v.zh for v in Verdict] == ["不符合", "符合", "待核实", "超出本市数据范围"]
    assert Verdict.NEEDS_INFO.en == "Needs information"
    assert all(v.sentence_zh.endswith("。") and v.sentence_en.endswith(".") for v in Verdict)
    assert json.dumps({"v": Verdict.OUT_OF_AREA}) == '{"v": "out_of_area"}'


def test_precedence_out_of_area_then_fail_then_needs_info_then_pass():
    assert verdict_of(True, True, covered=False) == Verdict.OUT_OF_AREA
    assert verdict_of(True, True) == Verdict.FAIL
    assert verdict_of(False, True) == Verdict.NEEDS_INFO
    assert verdict_of(False, False) == Verdict.PASS
    got = row_verdicts(5, np.array([1, 1, 3]), np.array([0, 1, 2]),
                       np.array([True, True, True, False, True]))
    assert got.tolist() == ["needs_info", "fail", "needs_info", "out_of_area", "pass"]
    mask = np.array([False, True, False, False, False])
    assert row_verdicts(5, mask, mask, None).tolist()[:2] == ["pass", "fail"]


def test_conditional_hit_has_every_hit_key_plus_missing_and_condition():
    hit = ConditionalHit("r", {"zh": "河道禁养", "en": "x"}, "r1", "大沙河", 145.5, "high", "b",
                         "a", limit_m=400.0, test="within_distance", missing=("site_type",),
                         condition={"zh": "若为畜禽养殖场", "en": "If it is a livestock farm"})
    plain = Hit("r", {"zh": "河道禁养", "en": "x"}, "r1", "大沙河", 145.5, "high", "b", "a")
    d = hit.to_dict()
    assert set(plain.to_dict()) | {"missing", "condition"} <= set(d)
    assert d["missing"] == ["site_type"] and d["condition"]["zh"] == "若为畜禽养殖场"
    result = CheckResult({}, 113.0, 35.0, conditional_hits=(hit,))
    assert result.verdict == "needs_info"
    assert result.to_dict()["verdict_text"] == {"zh": "待核实", "en": "Needs information"}


def test_applicability_decisions_and_site_kinds():
    rules = load_rules(TINY_RULES)
    river, chem, hotspot, coal = (rules[i].applies_to for i in (
        "riverside_livestock", "chemical_outside_park", "hotspot_grid", "coal_ban_zone"))
    assert applicability(river, {}) == (CONDITIONAL, ("site_type",))
    assert applicability(river, {"site_type": "livestock_farm"}) == (APPLIES, ())
    # a livestock farm's industry is 畜禽养殖: no industry-only rule makes it needs_info
    assert applicability(chem, {"site_type": "livestock_farm"}) == (CANNOT, ())
    assert applicability(chem, {"site_type": "livestock_farm", "industry": ""}) == (CANNOT, ())
    # a workshop's or an enterprise's industry is not implied: it must be given
    assert applicability(chem, {"site_type": "scattered_workshop"}) == (CONDITIONAL,
                                                                         ("industry",))
    assert applicability(chem, {"site_type": "enterprise", "industry": "食品"}) == (CANNOT, ())
    assert applicability(hotspot, {"industry": "化工"}) == (CONDITIONAL, ("site_type",))
    assert applicability(coal, {"industry": "化工"}) == (CONDITIONAL, ("fuel",))
    assert applicability(coal, {"industry": "化工", "fuel": "燃煤"}) == (APPLIES, ())
    assert applicability(coal, {"industry": "化工", "fuel": "gas"}) == (CANNOT, ())
    assert condition_text(river, {}) == {"zh": "若为畜禽养殖场", "en": "If it is a livestock farm"}
    assert condition_text(coal, {"industry": "化工"})["zh"] == "若 fuel 为 coal/燃煤/煤"


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(st.sampled_from([None, "", "enterprise", "livestock_farm",
                                           "scattered_workshop"]),
                          st.sampled_from([None, "", "化工", "畜禽养殖", "燃煤锅炉", "食品"]),
                          st.sampled_from([None, "coal", "gas", float("nan")]),
                          st.sampled_from([None, "found", "banned"])),
                min_size=1, max_size=30))
def test_vectorised_applicability_is_the_scalar_one(rows):
    names = ("site_type", "industry", "fuel", "status")
    cols = SiteColumns({k: np.array([r[i] for r in rows], dtype=object)
                        for i, k in enumerate(names)}, len(rows))
    for rule in load_rules(TINY_RULES):
        sure, maybe = applicability_masks(rule.applies_to, len(rows), cols.condition,
                                          cols.missing)
        for i, r in enumerate(rows):
            state, _ = applicability(rule.applies_to, dict(zip(names, r, strict=True)))
            assert (sure[i], maybe[i]) == (state == APPLIES, state == CONDITIONAL), (rule.id, r)


# -- the engine on tiny layers ---------------------------------------------------------------
def _river_offset(metres: float) -> tuple[float, float]:
    (a_lon, a_lat), (b_lon, b_lat) = RIVER[0], RIVER[1]
    az, _, length = GEOD.inv(a_lon, a_lat, b_lon, b_lat)
    on_lon, on_lat, _ = GEOD.fwd(a_lon, a_lat, az, length / 2)
    lon, lat, _ = GEOD.fwd(on_lon, on_lat, az + 90, metres)
    return lon, lat


def test_unknown_site_near_a_river_needs_information_with_the_condition(tiny):
    lon, lat = _river_offset(145.5)
    result = tiny.check_point(lon, lat)
    assert result.verdict == "needs_info" and not result.hits
    (hit,) = [h for h in result.conditional_hits if h.rule_id == "riverside_livestock"]
    assert hit.missing == ("site_type",) and hit.condition["zh"] == "若为畜禽养殖场"
    assert hit.distance_m == pytest.approx(145.5, abs=0.1) and hit.limit_m == 400
    assert hit.sentence["zh"].startswith("若为畜禽养殖场：距大沙河 145.5 m")
    assert "400 m" in hit.sentence["zh"]
    farm = tiny.check_point(lon, lat, site_type="livestock_farm")  # industry implied
    assert farm.verdict == "fail" and not farm.conditional_hits
    assert farm.hits[0].point == "site" and farm.hits[0].test == "within_distance"
    far = tiny.check_point(*_river_offset(3000.0), site_type="livestock_farm")
    assert far.verdict == "pass" and far.covered
    # an unknown site is outside every chemical park: if it were a chemical plant, it fails
    unknown = tiny.check_point(*_river_offset(3000.0))
    assert unknown.verdict == "needs_info"
    assert {h.rule_id for h in unknown.conditional_hits} == {"chemical_outside_park"}


def test_no_outline_means_everything_is_covered():
    engine = RuleEngine.build(tiny_layers(), load_rules(RULES), METRIC, sites=tiny_sites())
    assert engine.covered(np.array([116.4, np.nan]), np.array([39.9, 35.0])).tolist() == \
        [True, False]
    assert engine.check_point(116.4, 39.9).covered


def test_coverage_is_the_outline_buffered_by_the_largest_rule_distance(tiny):
    # the largest finite limit of TINY_RULES is 1000 m (canal_protection_2)
    lon0, lat0 = 113.60, 35.20  # on the outline's east edge
    inside = GEOD.fwd(lon0, lat0, 90, 990)[:2]
    outside = GEOD.fwd(lon0, lat0, 90, 1010)[:2]
    got = tiny.covered(np.array([inside[0], outside[0], 113.0]),
                       np.array([inside[1], outside[1], 35.2]))
    assert got.tolist() == [True, False, True]
    assert tiny.check_point(*outside).verdict == "out_of_area"


def test_a_batch_row_outside_the_city_is_out_of_area_and_attributes_reach_the_rules(tiny):
    lon = np.array([116.40, 113.25, 113.25, 113.25])
    lat = np.array([39.90, 35.23, 35.23, 35.23])
    st_ = np.array(["enterprise"] * 4, dtype=object)
    ind = np.array(["化工", "食品", "食品", "食品"], dtype=object)
    fuel = np.array([None, None, "coal", "gas"], dtype=object)
    verdicts = _batch_verdicts(tiny, lon, lat, st_, ind, fuel=fuel)
    assert verdicts.tolist() == ["out_of_area", "needs_info", "fail", "pass"]
    hits = tiny.flag(lon, lat, st_, ind, fuel=fuel)
    coal = hits[hits.rule_id == "coal_ban_zone"]
    assert coal[["row", "conditional"]].values.tolist() == [[1, True], [2, False]]


def test_new_site_is_checked_by_every_rule_in_single_and_batch(tiny):
    # a chemical plant in a park moves out of every park (and out of the cluster)
    args = dict(new_lon=np.array([113.30]), new_lat=np.array([35.02]))
    hits = tiny.flag(np.array([112.92]), np.array([35.22]), np.array(["enterprise"]),
                     np.array(["化工"]), classification=np.array(["relocate"]), **args)
    got = set(zip(hits.rule_id, hits.point, strict=True))
    assert {("chemical_outside_park", "new_site"),
            ("relocation_destination", "new_site")} <= got
    assert ("chemical_outside_park", "site") not in got
    single = tiny.check_point(113.30, 35.02, "enterprise", "化工",
                              attrs={"classification": "relocate"}, point="new_site")
    assert {(h.rule_id, h.point) for h in single.hits} == {
        (r, p) for r, p in got if p == "new_site"}


# -- property tests ---------------------------------------------------------------------------
SITE_TYPES = st.sampled_from([None, "enterprise", "livestock_farm", "scattered_workshop"])
INDUSTRIES = st.sampled_from([None, "化工", "家具", "畜禽养殖", "燃煤锅炉", "食品"])
FUELS = st.sampled_from([None, "coal", "gas"])
STATUSES = st.sampled_from([None, "found", "banned"])
WIDE = st.tuples(st.floats(112.3, 113.9), st.floats(34.8, 35.6))
PROPS = settings(max_examples=60, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPS
@given(st.lists(st.tuples(WIDE, SITE_TYPES, INDUSTRIES, FUELS, STATUSES, WIDE,
                          st.booleans()), min_size=1, max_size=25))
def test_single_check_and_batch_agree_and_nothing_uncovered_passes(tiny, sites):
    lon = np.array([s[0][0] for s in sites])
    lat = np.array([s[0][1] for s in sites])
    cols = {"site_type": np.array([s[1] for s in sites], dtype=object),
            "industry": np.array([s[2] for s in sites], dtype=object),
            "fuel": np.array([s[3] for s in sites], dtype=object),
            "status": np.array([s[4] for s in sites], dtype=object),
            "classification": np.array(["relocate"] * len(sites), dtype=object),
            "new_lon": np.array([s[5][0] if s[6] else np.nan for s in sites]),
            "new_lat": np.array([s[5][1] if s[6] else np.nan for s in sites])}
    batch = _batch_verdicts(tiny, lon, lat, cols.pop("site_type"), cols.pop("industry"),
                            **cols)
    exact = shapely.contains_xy(tiny.coverage, lon, lat)
    assert np.array_equal(tiny.covered(lon, lat), exact)
    for i, (_, kind, industry, fuel, status, new, moves) in enumerate(sites):
        attrs = {"fuel": fuel, "status": status, "classification": "relocate"}
        one = tiny.check_point(lon[i], lat[i], kind, industry, attrs=attrs)
        hits, cond, covered = bool(one.hits), bool(one.conditional_hits), one.covered
        if moves:
            two = tiny.check_point(*new, kind, industry, attrs=attrs, point="new_site")
            hits, cond = hits or bool(two.hits), cond or bool(two.conditional_hits)
            covered = covered and two.covered
        assert verdict_of(hits, cond, covered) == batch[i], (i, sites[i])
        if not exact[i]:
            assert batch[i] == one.verdict == "out_of_area"


# -- the Jiaozuo data: single check, API, stored sites -------------------------------------
def test_found_1_unknown_site_in_the_urban_core_is_not_a_pass(core, client):
    result = checks.check_point(core, *CORE_POINT)
    assert result.verdict == "needs_info" and result.covered
    cond = {h.rule_id: h for h in result.conditional_hits}
    assert cond["hotspot_grid"].missing == ("site_type",)
    assert cond["hotspot_grid"].condition["zh"] == "若为工业企业"
    assert cond["urban_core_heavy_industry"].missing == ("industry",)
    assert "coal_ban_zone" in cond
    body = client.get(f"/api/check?lon={CORE_POINT[0]}&lat={CORE_POINT[1]}").get_json()
    assert body["verdict"] == "needs_info"
    assert body["verdict_text"] == {"zh": "待核实", "en": "Needs information"}
    assert {h["rule_id"] for h in body["conditional_hits"]} == set(cond)
    known = checks.check_point(core, *CORE_POINT, site_type="enterprise", industry="化工")
    assert known.verdict == "fail"
    assert {"urban_core_heavy_industry", "hotspot_grid"} <= {h.rule_id for h in known.hits}


def test_found_2_a_point_in_beijing_is_out_of_area(core, client):
    result = checks.check_point(core, *BEIJING, site_type="enterprise", industry="食品")
    assert result.verdict == "out_of_area" and not result.covered
    body = client.get(f"/api/check?lon={BEIJING[0]}&lat={BEIJING[1]}").get_json()
    assert body["verdict"] == "out_of_area" and body["covered"] is False
    eng = checks.engine(core)
    lon, lat = np.array([116.40, 113.2418]), np.array([39.90, 35.2155])
    verdicts = _batch_verdicts(eng, lon, lat, np.array(["enterprise"] * 2, dtype=object),
                               np.array(["食品"] * 2, dtype=object))
    assert verdicts[0] == "out_of_area" and verdicts[1] != "out_of_area"


def test_found_3_every_attribute_a_rule_reads_reaches_it(core, client):
    assert "fuel" in checks.rule_attributes(core)
    result = checks.check_point(core, *CORE_POINT, site_type="enterprise", industry="食品",
                                attrs={"fuel": "coal", "colour": "red"})
    assert "coal_ban_zone" in {h.rule_id for h in result.hits}
    assert result.input["fuel"] == "coal" and "colour" not in result.input
    q = f"/api/check?lon={CORE_POINT[0]}&lat={CORE_POINT[1]}&site_type=enterprise&industry=食品"
    with_coal = client.get(q + "&fuel=燃煤&colour=red").get_json()
    assert "coal_ban_zone" in {h["rule_id"] for h in with_coal["hits"]}
    assert with_coal["verdict"] == "fail" and "colour" not in with_coal["input"]
    gas = client.get(q + "&fuel=gas").get_json()
    assert "coal_ban_zone" not in {h["rule_id"] for h in gas["hits"] + gas["conditional_hits"]}
    unsaid = client.get(q).get_json()
    assert "coal_ban_zone" in {h["rule_id"] for h in unsaid["conditional_hits"]}


def test_found_4_chemical_plants_moving_out_of_every_park_are_flagged_at_the_new_site(
        instance):
    core = open_geoapp(load_settings(instance, environ={}))
    try:
        for sid in CHEMICAL_RELOCATIONS:
            result = checks.check_site(core, sid)
            assert ("chemical_outside_park", "new_site") in {(h.rule_id, h.point)
                                                             for h in result.hits}, sid
            assert result.verdict == "fail"
        checks.flag_all(core, user="test")
        stored = core.repo.site_hits()
        new = stored[(stored.rule_id == "chemical_outside_park") & (stored.point == "new_site")]
        assert set(CHEMICAL_RELOCATIONS) <= set(new.site_id)
        site = checks.check_site(core, CHEMICAL_RELOCATIONS[0])
        mine = stored[stored.site_id == CHEMICAL_RELOCATIONS[0]]
        assert sorted(zip(mine.rule_id, mine.point, strict=True)) == sorted(
            (h.rule_id, h.point) for h in site.hits)
    finally:
        core.repo.close()


@pytest.mark.slow
def test_cli_check_prints_the_verdict_sentence_and_conditional_hits(instance, monkeypatch):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("GEOAPP_DATABASE", str(instance / "geoapp.gpkg"))
    runner = CliRunner()
    r = runner.invoke(main, ["check", "--lon", CORE_POINT[0], "--lat", CORE_POINT[1]])
    assert r.exit_code == 0, r.output
    assert "待核实 Needs information" in r.stdout and Verdict.NEEDS_INFO.sentence_zh in r.stdout
    assert "若为工业企业" in r.stdout
    r = runner.invoke(main, ["check", "--lon", BEIJING[0], "--lat", BEIJING[1], "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["verdict"] == "out_of_area"
    args = ["check", "--lon", CORE_POINT[0], "--lat", CORE_POINT[1], "--site-type",
            "enterprise", "--industry", "食品", "--json"]
    said = json.loads(runner.invoke(main, [*args, "--attr", "fuel=燃煤"]).stdout)
    assert "coal_ban_zone" in {h["rule_id"] for h in said["hits"]}
    unsaid = json.loads(runner.invoke(main, args).stdout)
    assert "coal_ban_zone" in {h["rule_id"] for h in unsaid["conditional_hits"]}
    bad = runner.invoke(main, [*args, "--attr", "fuel"])
    assert bad.exit_code == 2 and "NAME=VALUE" in bad.output


def test_inspections_keep_the_new_verdicts_and_conditional_hits(repo):
    hit = {"rule_id": "hotspot_grid", "missing": ["site_type"],
           "condition": {"zh": "若为工业企业", "en": "If it is an industrial enterprise"}}
    saved = repo.add_inspection({"lon": 113.2, "lat": 35.2, "input": {}, "verdict": "needs_info",
                                 "hits": [], "conditional_hits": [hit]}, user="t")
    assert saved["verdict"] == "needs_info" and saved["conditional_hits"] == [hit]
    old = repo.add_inspection({"lon": 113.2, "lat": 35.2, "input": {}, "verdict": "pass",
                               "hits": []}, user="t")
    assert old["conditional_hits"] == []

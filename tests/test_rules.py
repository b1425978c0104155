"""Rules as data: the shipped file loads, bad files are rejected with every problem named,
and the decisions follow the rule table without any geometry."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from geoapp.domain.errors import ConfigError
from geoapp.domain.results import CheckResult, Hit, Nearest
from geoapp.domain.rules import applies, evaluate, load_rules

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "rules.yaml"

MINI = """
version: 1
rules:
  - id: riverside_livestock
    title: {zh: 河道禁养, en: No farms near rivers}
    applies_to:
      any_of:
        - site_types: [livestock_farm]
        - industries: [畜禽养殖]
    layer: rivers
    test: within_distance
    distance_m: 400
    severity: high
    basis: 《畜禽规模养殖污染防治条例》
    action: 责令搬迁
  - id: chemical_outside_park
    title: {zh: 化工未入园, en: Chemical plant outside a park}
    applies_to: {industries: [化工]}
    layer: chemical_parks
    test: not_inside
    severity: medium
    basis: 河南省有关规定
    action: 搬迁入园
  - id: hotspot_grid
    title: {zh: 热点网格, en: Hotspot grid}
    applies_to: {site_types: [enterprise]}
    layer: hotspot_grids
    test: inside
    severity: low
    severity_by: {attr: key, map: {"true": high, "false": low}}
    basis: 生态环境部
    action: 巡查
  - id: relocation_destination
    title: {zh: 新址不在集聚区, en: New site outside a cluster}
    applies_to: {classifications: [relocate], point: new_site}
    layer: industrial_clusters
    test: not_inside
    severity: medium
    basis: 百企退城实施方案
    action: 退回选址
"""


def _mini():
    return load_rules(MINI)


def _documented_rules() -> dict[str, tuple[str, float | None]]:
    """The Jiaozuo rule table of docs/rules.md: id -> (test, distance in metres or None), in
    the table's order."""
    doc = (RULES_FILE.parent.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    table = doc.split("## The Jiaozuo rules")[1].split("\n## ")[0]
    out = {}
    for line in table.splitlines():
        if re.match(r"^\| `[a-z][a-z0-9_]*` \|", line):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            metres = re.match(r"^([\d,]+) m$", cells[4])
            out[cells[0].strip("`")] = (cells[3], float(metres.group(1).replace(",", ""))
                                        if metres else None)
    return out


def test_shipped_rules_file_defines_every_rule_of_the_table():
    """The shipped file and the rule table of docs/rules.md name the same rules, in the same
    order, with the tests and distances the table gives."""
    rules = load_rules(RULES_FILE.read_text(encoding="utf-8"))
    table = _documented_rules()
    assert list(rules.ids) == list(table) and len(table) >= 17
    assert {r.id: (r.test, r.distance_m) for r in rules} == table
    for rule in rules:
        assert rule.basis and rule.action and rule.title_zh and rule.title_en
    assert rules["riverside_livestock"].distance_m == 400
    assert rules["canal_protection_1"].distance_m == 50
    assert rules["canal_protection_2"].distance_m == 1000
    assert rules["relocation_destination"].applies_to.point == "new_site"
    assert rules["scattered_relapse"].layer == "banned_workshops"


def test_the_shipped_file_marks_the_relapse_rule_and_the_zone_shown_on_the_map():
    rules = load_rules(RULES_FILE.read_text(encoding="utf-8"))
    relapse = rules.for_purpose("relapse")
    assert relapse is not None and relapse.id == "scattered_relapse"
    assert relapse.test == "within_distance" and relapse.source is not None
    assert [r.id for r in rules if r.show_on_map] == ["riverside_livestock"]
    assert _mini().for_purpose("relapse") is None
    assert not any(r.show_on_map for r in _mini())


def test_no_rule_id_of_the_rules_file_is_written_in_code():
    """Rules are data: code reads ids, purposes and flags from the file, never names a rule
    (ids that are also layer names, such as eco_redline, name the layer there)."""
    rules = load_rules(RULES_FILE.read_text(encoding="utf-8"))
    layers = set(tomllib.loads((RULES_FILE.parent / "city.toml").read_text(encoding="utf-8"))
                 ["layers"])
    ids = set(rules.ids) - layers
    root = RULES_FILE.parent.parent
    code = [path for folder in ("geoapp", "templates", "static") for path in
            sorted((root / folder).rglob("*"))
            if path.suffix in (".py", ".html", ".js") and "vendor" not in path.parts]
    assert len(code) > 50
    found = [f"{path.relative_to(root)}: {rid}" for path in code for rid in ids
             if re.search(rf"\b{rid}\b", path.read_text(encoding="utf-8"))]
    assert not found, found


def test_shipped_rules_name_only_layers_of_the_city_file():
    city = (RULES_FILE.parent / "city.toml").read_text(encoding="utf-8")
    layers = set(tomllib.loads(city)["layers"])
    rules = load_rules(RULES_FILE.read_text(encoding="utf-8"), layers=layers | {
        "sites:scattered_workshop?status=banned,已取缔"})
    assert "rivers" in rules.layers()


def test_bad_rules_file_lists_every_problem_with_rule_field_and_reason():
    data = yaml.safe_load(MINI)
    del data["rules"][0]["distance_m"]                 # within_distance without a distance
    data["rules"][1]["test"] = "near"                  # unknown test
    data["rules"][2]["id"] = "riverside_livestock"     # duplicate id (semantic, reported later)
    data["rules"][3]["colour"] = "red"                 # unknown field
    with pytest.raises(ConfigError) as err:
        load_rules(data)
    details = err.value.details
    assert {"rule": "chemical_outside_park", "field": "test"} in [
        {k: d[k] for k in ("rule", "field")} for d in details]
    assert any(d["rule"] == "relocation_destination" and d["field"] == "colour"
               and "not a known field" in d["reason"] for d in details)
    assert "chemical_outside_park" in err.value.message and "colour" in err.value.message


def test_semantic_problems_are_all_reported_together():
    data = yaml.safe_load(MINI)
    del data["rules"][0]["distance_m"]
    data["rules"][2]["id"] = "riverside_livestock"
    data["rules"][1]["distance_m"] = 10
    with pytest.raises(ConfigError) as err:
        load_rules(data)
    got = {(d["rule"], d["field"]) for d in err.value.details}
    assert got == {("riverside_livestock", "distance_m"), ("riverside_livestock", "id"),
                   ("chemical_outside_park", "distance_m")}


def test_zero_distance_is_rejected():
    data = yaml.safe_load(MINI)
    data["rules"][0]["distance_m"] = 0
    with pytest.raises(ConfigError, match="riverside_livestock.*distance_m"):
        load_rules(data)


def test_rule_naming_an_unknown_layer_fails_when_layers_are_given():
    with pytest.raises(ConfigError, match="rule riverside_livestock, field layer: unknown layer"):
        load_rules(MINI, layers={"chemical_parks", "hotspot_grids", "industrial_clusters"})


def test_invalid_yaml_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_rules("rules: [unclosed")


def test_furniture_enterprise_is_not_checked_by_the_livestock_rule():
    rule = _mini()["riverside_livestock"]
    assert not applies(rule, {"site_type": "enterprise", "industry": "家具"})
    assert applies(rule, {"site_type": "livestock_farm"})
    assert applies(rule, {"site_type": "enterprise", "industry": "畜禽养殖"})


def test_unknown_site_attributes_do_not_make_a_rule_apply():
    assert not applies(_mini()["chemical_outside_park"], {})


def test_relocation_rule_applies_only_at_the_new_site():
    rule = _mini()["relocation_destination"]
    site = {"site_type": "enterprise", "classification": "relocate"}
    assert applies(rule, site, point="new_site")
    assert not applies(rule, site, point="site")


def test_within_distance_hits_at_the_limit_and_not_beyond():
    rule = _mini()["riverside_livestock"]
    river = {"id": "r1", "name": "大沙河"}
    hit = evaluate(rule, 400.0, False, river)
    assert hit is not None and hit.distance_m == 400.0 and hit.feature_name == "大沙河"
    assert evaluate(rule, 400.04, False, river) is None


def test_distance_is_reported_to_a_tenth_of_a_metre():
    hit = evaluate(_mini()["riverside_livestock"], 123.456, False, {"id": "r", "name": "n"})
    assert hit is not None and hit.distance_m == 123.5


def test_not_inside_reports_distance_to_the_nearest_allowed_area():
    rule = _mini()["chemical_outside_park"]
    park = {"id": "p1", "name": "焦作化工园区"}
    hit = evaluate(rule, 2350.0, False, park)
    assert hit is not None and hit.distance_m == 2350.0 and hit.feature_id == "p1"
    assert evaluate(rule, 0.0, True, park) is None


def test_empty_layer_never_decides_a_hit():
    assert evaluate(_mini()["chemical_outside_park"], None, False, None) is None


def test_key_hotspot_cell_ranks_higher_than_an_ordinary_one():
    rule = _mini()["hotspot_grid"]
    key = evaluate(rule, 0.0, True, {"id": "g1", "name": "g1", "key": True})
    plain = evaluate(rule, 0.0, True, {"id": "g2", "name": "g2", "key": False})
    assert key is not None and plain is not None
    assert (key.severity, plain.severity) == ("high", "low")
    assert evaluate(rule, 120.0, False, {"id": "g1", "name": "g1", "key": True}) is None


def test_check_result_sorts_by_severity_then_distance_and_has_the_documented_shape():
    def hit(rule_id, sev, d):
        return Hit(rule_id, {"zh": "中", "en": "en"}, "f", "n", d, sev, "b", "a")

    result = CheckResult(input={"lon": 113.2, "lat": 35.2}, lon=113.2, lat=35.2,
                         hits=(hit("a", "low", 1.0), hit("b", "high", 300.0),
                               hit("c", "high", 20.0)),
                         nearest=(Nearest("rivers", "r1", "沁河", 20.0),))
    out = result.to_dict()
    assert list(out) == ["input", "point", "verdict", "verdict_text", "hits",
                         "conditional_hits", "nearest", "covered"]
    assert out["verdict"] == "fail" and out["verdict_text"] == {"zh": "不符合",
                                                                "en": "Non-compliant"}
    assert out["covered"] is True and out["conditional_hits"] == []
    assert [h["rule_id"] for h in out["hits"]] == ["c", "b", "a"]
    assert list(out["hits"][0]) == ["rule_id", "title", "feature_id", "feature_name",
                                    "distance_m", "severity", "basis", "action", "limit_m",
                                    "test", "basis_note", "point"]
    assert list(out["nearest"][0]) == ["layer", "feature_id", "feature_name", "distance_m"]
    assert out["point"] == {"lon": 113.2, "lat": 35.2}
    assert CheckResult(input={}, lon=0, lat=0).to_dict()["verdict"] == "pass"


def test_domain_rules_import_no_geometry_or_web_library():
    code = ("import sys, geoapp.domain.rules, geoapp.domain.results\n"
            "bad = [m for m in ('geopandas', 'shapely', 'flask', 'folium', 'pyproj') "
            "if m in sys.modules]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)

"""One rule decision: ``domain.rules.decide``, vectorised, used by the single check and by
batch flagging; the spatial layer only measures, and batch reads the engine's prepared data
through a public interface, never the engine's internals."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_engine import CANAL, METRIC, RULES, tiny_layers, tiny_sites
from test_rules import MINI

from geoapp.domain.errors import ConfigError
from geoapp.domain.rules import (
    CONDITIONAL_HIT,
    HIT,
    INSIDE,
    INSIDE_TOLERANCE_M,
    NO_HIT,
    NOT_INSIDE,
    WITHIN,
    RuleRows,
    decide,
    evaluate,
    load_rules,
    make_hit,
)
from geoapp.spatial import batch as batch_module
from geoapp.spatial.engine import RuleEngine
from geoapp.spatial.index import SEARCH_SLACK, projected_reach
from geoapp.spatial.prepared import PreparedRules

SPATIAL = Path(__file__).resolve().parent.parent / "geoapp" / "spatial"

# (test, limit, distance, inside, found, applies, conditional) -> decision
CASES = [
    (WITHIN, 400.0, 400.0, False, True, True, False, HIT),          # at the limit
    (WITHIN, 400.0, 400.04, False, True, True, False, NO_HIT),      # just beyond
    (WITHIN, 400.0, 0.0, True, True, True, False, HIT),             # inside is distance 0
    (WITHIN, 400.0, 12.0, False, True, False, True, CONDITIONAL_HIT),
    (WITHIN, 400.0, 12.0, False, True, False, False, NO_HIT),       # cannot apply
    (WITHIN, 400.0, math.inf, False, False, True, False, NO_HIT),   # empty layer
    (INSIDE, 0.0, 0.0, True, True, True, False, HIT),
    (INSIDE, 0.0, 3.0, False, True, True, False, NO_HIT),
    (INSIDE, 0.0, 0.0, True, True, False, True, CONDITIONAL_HIT),
    (NOT_INSIDE, 0.0, 2350.0, False, True, True, False, HIT),       # outside every park
    (NOT_INSIDE, 0.0, 0.0, True, True, True, False, NO_HIT),
    (NOT_INSIDE, 0.0, math.inf, False, False, True, False, NO_HIT),  # no park at all
    (NOT_INSIDE, 0.0, 900.0, False, True, False, True, CONDITIONAL_HIT),
]


def test_decide_row_by_row_and_all_rows_at_once():
    for *args, want in CASES:
        assert int(decide(*args)) == want, args
    cols = [np.array(c) for c in zip(*CASES, strict=True)]
    assert decide(*cols[:7]).tolist() == cols[7].tolist()


@pytest.mark.parametrize("test", [WITHIN, INSIDE, NOT_INSIDE])
def test_one_rule_over_many_sites_decides_as_one_row_per_rule(test):
    """Batch flagging passes one test for every row; the single check one test per row."""
    rng = np.random.default_rng(5)
    n = 500
    distance = rng.choice([0.0, 50.0, 399.9, 400.0, 400.1, 2000.0, math.inf], n)
    inside = distance == 0.0
    found = np.isfinite(distance)
    applies = rng.random(n) < 0.5
    conditional = ~applies & (rng.random(n) < 0.5)
    one = decide(test, 400.0, distance, inside, found, applies, conditional)
    per_row = decide(np.full(n, test), np.full(n, 400.0), distance, inside, found, applies,
                     conditional)
    assert one.tolist() == per_row.tolist()
    assert set(one.tolist()) == {NO_HIT, HIT, CONDITIONAL_HIT}


def test_evaluate_and_make_hit_report_what_decide_decided():
    rules = load_rules(MINI)
    river = {"id": "r1", "name": "大沙河"}
    hit = make_hit(rules["riverside_livestock"], 123.456, False, river, "new_site")
    assert (hit.distance_m, hit.limit_m, hit.point, hit.test) == (
        123.5, 400.0, "new_site", "within_distance")
    assert make_hit(rules["riverside_livestock"], 0.03, True, river).distance_m == 0.0
    assert evaluate(rules["riverside_livestock"], 400.0, False, river) == make_hit(
        rules["riverside_livestock"], 400.0, False, river)
    assert evaluate(rules["riverside_livestock"], 400.04, False, river) is None


def test_search_distance_lives_on_the_rule_and_the_engine_searches_that_far():
    rules = load_rules(MINI)
    assert rules["riverside_livestock"].search_distance_m == 400.0
    assert rules["hotspot_grid"].search_distance_m == INSIDE_TOLERANCE_M
    assert rules["chemical_outside_park"].search_distance_m == math.inf
    assert rules.reach_m() == 400.0
    assert projected_reach(400.0) == 400.0 * SEARCH_SLACK + 1.0
    assert projected_reach(math.inf) == math.inf
    engine = RuleEngine.build(tiny_layers(), load_rules(RULES), METRIC, sites=tiny_sites())
    reach = engine.prepared.reach
    assert reach["canal"] == projected_reach(1000.0)  # the larger of the canal's two rules
    assert reach["chemical_parks"] == math.inf
    assert reach["hotspot_grids"] == projected_reach(INSIDE_TOLERANCE_M)


def test_both_paths_ask_the_domain_for_every_decision(monkeypatch):
    """Swap the domain's decision for one that never decides a hit: neither the single check
    nor batch flagging finds anything, so neither decides on its own."""
    engine = RuleEngine.build(tiny_layers(), load_rules(RULES), METRIC, sites=tiny_sites())
    lon, lat = CANAL[0][0] + 0.0001, CANAL[0][1]  # on the canal: canal rules hold
    site = ("enterprise", "化工")
    assert {"canal_protection_1", "canal_protection_2"} <= {
        h.rule_id for h in engine.check_point(lon, lat, *site).hits}
    kind, industry = np.array(["enterprise"], dtype=object), np.array(["化工"], dtype=object)
    assert len(engine.flag(np.array([lon]), np.array([lat]), kind, industry)) >= 2
    calls = []
    real = RuleRows.decide

    def never(rows, *args):
        calls.append(rows)
        return NO_HIT * real(rows, *args)

    monkeypatch.setattr(RuleRows, "decide", never)
    assert not engine.check_point(lon, lat, *site).hits
    assert len(calls) == 1 and np.ndim(calls[0].within) == 1  # one call, one row per rule
    assert not len(engine.flag(np.array([lon]), np.array([lat]), kind, industry))
    assert len(calls) > 1 and all(isinstance(c.within, bool) for c in calls[1:])  # a rule
    assert int(decide(WITHIN, 400.0, 10.0, False, True)) == NO_HIT


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_engine_and_batch_do_not_import_each_other_and_batch_reads_no_private_attribute():
    assert "geoapp.spatial.engine" not in _imports(SPATIAL / "batch.py")
    assert "geoapp.spatial.engine" not in _imports(SPATIAL / "prepared.py")
    assert "geoapp.spatial.batch" in _imports(SPATIAL / "engine.py")
    tree = ast.parse((SPATIAL / "batch.py").read_text(encoding="utf-8"))
    foreign = [f"{ast.unparse(n.value)}.{n.attr}" for n in ast.walk(tree)
               if isinstance(n, ast.Attribute) and n.attr.startswith("_")
               and not (isinstance(n.value, ast.Name) and n.value.id == "self")]
    assert not foreign, foreign
    assert "prepared" in batch_module.flag_sites.__code__.co_varnames
    assert PreparedRules.__dataclass_params__.frozen


def test_purpose_and_show_on_map_are_validated():
    data = yaml.safe_load(MINI)
    data["rules"][0]["purpose"] = "relapse"              # not within a site register
    data["rules"][1]["show_on_map"] = "yes"               # not a boolean
    with pytest.raises(ConfigError) as err:
        load_rules(data)
    assert {(d["rule"], d["field"]) for d in err.value.details} == {
        ("chemical_outside_park", "show_on_map")}
    data["rules"][1]["show_on_map"] = True
    with pytest.raises(ConfigError) as err:
        load_rules(data)
    assert [(d["rule"], d["field"]) for d in err.value.details] == [
        ("riverside_livestock", "purpose")]
    assert "relapse needs test within_distance and a source" in err.value.message
    data["rules"][0]["purpose"] = "other"
    with pytest.raises(ConfigError, match="rule riverside_livestock, field purpose"):
        load_rules(data)


def test_only_one_rule_may_have_a_purpose():
    relapse = yaml.safe_load(RULES)["rules"][-1]
    assert relapse["id"] == "scattered_relapse"
    twice = {"version": 1, "rules": [
        {**relapse, "purpose": "relapse"},
        {**relapse, "id": "scattered_relapse_2", "purpose": "relapse"}]}
    with pytest.raises(ConfigError) as err:
        load_rules(twice)
    assert [(d["rule"], d["field"]) for d in err.value.details] == [
        ("scattered_relapse_2", "purpose")]
    assert "already the purpose of rule scattered_relapse" in err.value.message
    one = load_rules({"version": 1, "rules": [{**relapse, "purpose": "relapse",
                                                "show_on_map": True}]})
    assert one.for_purpose("relapse").id == "scattered_relapse"
    assert one["scattered_relapse"].show_on_map


def test_exclusion_zones_carry_the_rules_show_on_map_flag():
    rules = yaml.safe_load(RULES)
    for rule in rules["rules"]:
        if rule["id"] == "canal_protection_2":
            rule["show_on_map"] = True
    engine = RuleEngine.build(tiny_layers(), load_rules(rules), METRIC, sites=tiny_sites())
    zones = engine.exclusion_zones().set_index("rule_id")
    assert zones["show_on_map"].tolist().count(True) == 1
    assert bool(zones.loc["canal_protection_2", "show_on_map"])

"""Rules over a subset of a layer's features (``layer_where``): e.g. the 一级 and 二级
water-source zones, one layer with a ``level`` column, each level its own rule and action."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from geoapp.domain.errors import ConfigError
from geoapp.domain.rules import load_rules, split_layer_key
from geoapp.spatial.engine import RuleEngine

RULES = """
version: 1
rules:
  - id: water_source_1
    title: {zh: 一级保护区, en: Grade-1 zone}
    applies_to: {industries: [化工]}
    layer: water_source_zones
    layer_where: {level: [一级]}
    test: inside
    severity: high
    basis: 《中华人民共和国水污染防治法》第六十五条
    action: 责令拆除或者关闭
  - id: water_source_2
    title: {zh: 二级保护区, en: Grade-2 zone}
    applies_to: {industries: [化工]}
    layer: water_source_zones
    layer_where: {level: [二级]}
    test: inside
    severity: high
    basis: 《中华人民共和国水污染防治法》第六十六条
    basis_note: 条款待核实
    action: 责令拆除或者关闭排放污染物的建设项目
"""

ZONES = gpd.GeoDataFrame(
    {"id": ["WS1-1", "WS1-2"], "name": ["水源地一级", "水源地二级"], "level": ["一级", "二级"]},
    geometry=[box(113.20, 35.20, 113.21, 35.21), box(113.19, 35.19, 113.22, 35.22)],
    crs="EPSG:4326")


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return RuleEngine.build({"water_source_zones": ZONES},
                            load_rules(RULES, ["water_source_zones"]), "EPSG:4547")


def test_each_level_is_its_own_rule_with_its_own_action(engine):
    inner = engine.check_point(113.205, 35.205, industry="化工")
    assert {h.rule_id: h.feature_id for h in inner.hits} == {"water_source_1": "WS1-1",
                                                              "water_source_2": "WS1-2"}
    outer = engine.check_point(113.215, 35.215, industry="化工")
    assert [(h.rule_id, h.feature_id) for h in outer.hits] == [("water_source_2", "WS1-2")]
    assert outer.hits[0].action.startswith("责令拆除或者关闭排放")


def test_batch_flagging_agrees_with_the_single_check(engine):
    lon, lat = np.array([113.205, 113.215, 113.30]), np.array([35.205, 35.215, 35.30])
    hits = engine.flag(lon, lat, np.array(["enterprise"] * 3, dtype=object),
                       np.array(["化工"] * 3, dtype=object))
    assert sorted(zip(hits["row"], hits["rule_id"], strict=True)) == [
        (0, "water_source_1"), (0, "water_source_2"), (1, "water_source_2")]


def test_subset_keys_and_notes():
    rules = load_rules(RULES, ["water_source_zones"])
    assert rules["water_source_1"].layer == "water_source_zones?level=一级"
    assert rules["water_source_1"].stored_layer == "water_source_zones"
    assert split_layer_key(rules["water_source_2"].layer) == ("water_source_zones",
                                                              {"level": ["二级"]})
    assert rules["water_source_2"].basis_note == "条款待核实"
    assert rules["water_source_1"].basis_note is None


def test_layer_where_without_a_layer_is_refused():
    bad = RULES.replace("    layer: water_source_zones\n    layer_where: {level: [一级]}",
                        "    source: {sites: enterprise}\n    layer_where: {level: [一级]}")
    with pytest.raises(ConfigError, match="layer_where"):
        load_rules(bad, ["water_source_zones"])

"""What the app does with particular rules comes from the rules file, not from rule ids in
code: the relapse rule of the 散乱污 register (``purpose: relapse``) and the zone the overview
opens with (``show_on_map: true``)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import yaml
from shapely.geometry import box

from geoapp.config import load_settings
from geoapp.domain.errors import NotFound
from geoapp.maps.overview import buffer_title, overview_map
from geoapp.services import open_geoapp
from geoapp.services import workshops as svc
from geoapp.services.checks import ZONES_LAYER


def test_stored_zones_say_which_one_the_overview_opens_with(offline_app):
    zones = offline_app.extensions["geoapp"].repo.derived_layer(ZONES_LAYER)
    shown = zones.loc[zones["show_on_map"].astype(bool), "rule_id"].tolist()
    assert shown == ["riverside_livestock"]


def _zones(shown: set[str]) -> gpd.GeoDataFrame:
    rows = [("river_rule", "rivers", 400.0), ("canal_rule", "canal", 1000.0),
            ("other_rule", "yellow_river", 1000.0)]
    return gpd.GeoDataFrame(
        {"rule_id": [r for r, _, _ in rows], "title_zh": [f"{r}标题" for r, _, _ in rows],
         "title_en": [r for r, _, _ in rows], "test": ["within_distance"] * 3,
         "layer": [layer for _, layer, _ in rows], "distance_m": [d for _, _, d in rows],
         "show_on_map": [r in shown for r, _, _ in rows]},
        geometry=[box(113.0 + i / 10, 35.0, 113.05 + i / 10, 35.05) for i in range(3)],
        crs="EPSG:4326")


@pytest.mark.parametrize("shown", [{"canal_rule"}, {"river_rule", "other_rule"}, set()])
def test_the_overview_opens_with_the_zones_the_rules_file_shows(shown):
    zones = _zones(shown)
    m = overview_map((35.2, 113.2), 10, {}, {}, None, tiles="none", zones=zones)
    groups = {child.layer_name: child.show for child in m._children.values()
              if type(child).__name__ == "FeatureGroup"}
    for row in zones.to_dict("records"):
        assert groups[buffer_title(row)] == (row["rule_id"] in shown), row["rule_id"]


@pytest.mark.slow
def test_relapses_follow_the_rule_the_file_marks_whatever_its_id(tmp_path, instance):
    """Rename the relapse rule and change its distance: the register follows the file; take
    its purpose away: the register lists no relapses and says there is no relapse rule."""
    shipped_file = Path(__file__).resolve().parent.parent / "data" / "rules.yaml"
    rules = yaml.safe_load(shipped_file.read_text(encoding="utf-8"))
    relapse = next(r for r in rules["rules"] if r.get("purpose") == "relapse")
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    core = open_geoapp(load_settings(instance, overrides={"RULES_FILE": str(rules_file)},
                                     environ={}))
    try:
        shipped = svc.relapses(core)
        assert len(shipped) > 0 and svc.relapse_distance_m(core) == relapse["distance_m"]

        relapse["id"], relapse["distance_m"] = "workshop_comeback", 800
        rules_file.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
        assert svc.relapse_rule(core).id == "workshop_comeback"
        assert svc.relapse_distance_m(core) == 800.0
        wider = svc.relapses(core)
        assert set(zip(shipped.site_id, shipped.banned_id, strict=True)) <= set(
            zip(wider.site_id, wider.banned_id, strict=True))
        assert wider["distance_m"].max() <= 800.0
        stored = core.repo.site_hits()
        assert (stored["rule_id"] == "workshop_comeback").sum() == len(wider)
        assert "scattered_relapse" not in set(stored["rule_id"])

        del relapse["purpose"]
        rules_file.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
        assert svc.relapse_rule(core) is None
        with pytest.raises(NotFound, match="purpose: relapse"):
            svc.relapse_distance_m(core)
        assert svc.relapses(core).empty
    finally:
        core.repo.close()

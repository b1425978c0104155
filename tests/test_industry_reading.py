"""A typed industry is read as the rules name it, for the point check as for the parcel
check: a variant of a rule industry is that industry, a text naming several or none that
the city knows is checked as not given (needs_info, never pass), and an industry the city
lists as unrestricted is taken as given."""

from __future__ import annotations

import pytest

from geoapp.services import checks


@pytest.fixture(scope="module")
def core(offline_app):
    return offline_app.extensions["geoapp"]


@pytest.fixture(scope="module")
def fail_point(core):
    """A point in open country where a 化工 enterprise breaks a rule (outside every park)."""
    for lon, lat in ((113.05, 35.05), (113.40, 35.05), (112.95, 35.10), (113.30, 35.00)):
        r = checks.check_point(core, lon, lat, site_type="enterprise", industry="化工")
        if r.verdict.value == "fail":
            return lon, lat, sorted(h.rule_id for h in r.hits)
    pytest.fail("no open-country point where 化工 fails")


@pytest.mark.parametrize("text, used, how", [
    ("化工", "化工", "exact"),
    ("化工厂", "化工", "matched"),
    ("化学原料和化学制品制造业", "化工", "matched"),
    ("化工及畜禽养殖", None, "several:化工、畜禽养殖"),
    ("食品", "食品", "other"),
    ("火星采矿业", None, "unknown"),
    ("", None, None),
])
def test_read_industry(core, text, used, how):
    r = checks.read_industry(core, text)
    assert (r.used, r.how) == (used, how)


def test_the_point_check_sees_a_variant_as_the_rules_industry(core, fail_point):
    lon, lat, hits = fail_point
    for text in ("化工厂", "化学原料和化学制品制造业"):
        r = checks.check_point(core, lon, lat, site_type="enterprise", industry=text)
        assert r.verdict.value == "fail" and sorted(h.rule_id for h in r.hits) == hits
        assert r.input["industry"] == "化工" and r.input["industry_given"] == text


def test_the_point_check_never_passes_an_industry_it_cannot_read(core, fail_point):
    lon, lat, _ = fail_point
    for text in ("火星采矿业", "化工及畜禽养殖"):
        r = checks.check_point(core, lon, lat, site_type="enterprise", industry=text)
        assert r.verdict.value != "pass", text
        assert r.conditional_hits, text
    food = checks.check_point(core, lon, lat, site_type="enterprise", industry="食品")
    assert food.input["industry"] == "食品" and "industry_given" not in food.input

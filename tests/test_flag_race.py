"""Stored hits never lag behind a committed change: a site moved by another server while
``flag_all`` reads and flags (outside the write lock) makes it flag again, so the stored hits
are those of the moved site, on both backends."""

from __future__ import annotations

import pytest

from geoapp.services import checks

from webutil import river_point


@pytest.fixture
def core(make_app):
    return make_app().extensions["geoapp"]


def _farm_without_hits(core) -> dict:
    farms = core.repo.sites("livestock_farm")
    hit = set(core.repo.site_hits()["site_id"])
    farm_id = next(i for i in farms["id"] if i not in hit)
    return core.repo.site(farm_id)


def test_a_site_moved_while_flagging_is_flagged_at_its_new_place(core, monkeypatch) -> None:
    farm = _farm_without_hits(core)
    lon, lat = river_point(core, 100)  # inside the 400 m riverside exclusion zone
    flagged = checks._flag_stored_sites
    calls = []

    def moved_meanwhile(app):
        out = flagged(app)  # the sites as read before the move
        if not calls:  # another server commits a move now, before these hits are written
            core.repo.update_site(farm["id"], {"lon": lon, "lat": lat}, user="planner2",
                                  expected_version=farm["version"])
        calls.append(1)
        return out

    monkeypatch.setattr(checks, "_flag_stored_sites", moved_meanwhile)
    summary = checks.flag_all(core)
    assert len(calls) == 2  # the first result was thrown away
    hits = core.repo.site_hits(farm["id"])
    assert "riverside_livestock" in set(hits["rule_id"]), hits
    assert summary["flagged_sites"] == core.repo.site_hits()["site_id"].nunique()
    assert not checks.hits_are_stale(core)


def test_flagging_twice_with_no_change_between_writes_once(core, monkeypatch) -> None:
    flagged = checks._flag_stored_sites
    calls = []
    monkeypatch.setattr(checks, "_flag_stored_sites",
                        lambda app: calls.append(1) or flagged(app))
    checks.flag_all(core)
    assert len(calls) == 1

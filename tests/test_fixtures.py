"""The shared fixtures save time without hiding anything: an app made by ``make_app`` answers
its first check with the session's rule engine, yet rebuilds it after its own data change;
the guard of the shared read-only app sees every write and every failed login."""

from __future__ import annotations

import pytest

from geoapp.services import checks
from geoapp.spatial.engine import RuleEngine

from webutil import ROLES, csrf_token, login, writes_seen

CHECK = "/api/check?lon=113.24&lat=35.22&site_type=livestock_farm"


@pytest.fixture
def no_build(monkeypatch):
    """Fail any rule engine build."""
    def refuse(*args, **kwargs):
        raise AssertionError("the rule engine was built again")

    monkeypatch.setattr(RuleEngine, "build", refuse)


def test_a_made_app_has_the_accounts_and_checks_without_building_an_engine(make_app,
                                                                          no_build):
    app = make_app(INTRANET=True, TILES="none")
    core = app.extensions["geoapp"]
    assert [core.repo.get_user(role)["role"] for role in ROLES] == list(ROLES)
    client = app.test_client()
    login(client, "inspector")
    r = client.get(CHECK)
    assert r.status_code == 200 and r.get_json()["verdict"]


def test_a_made_app_rebuilds_its_engine_after_its_own_data_change(make_app, jiaozuo_engine,
                                                                  monkeypatch):
    app = make_app()
    core = app.extensions["geoapp"]
    assert checks.engine(core) is jiaozuo_engine.engine
    site = core.repo.site("F0002")
    core.repo.update_site("F0002", {"lon": 113.30, "lat": 35.10}, user="test",
                          expected_version=int(site["version"]))
    rebuilt = object()
    monkeypatch.setattr(RuleEngine, "build", lambda *args, **kwargs: rebuilt)
    assert checks.engine(core) is rebuilt
    other = make_app()  # the next copy is untouched by that change
    assert checks.engine(other.extensions["geoapp"]) is jiaozuo_engine.engine


def test_the_read_only_guard_sees_writes_and_failed_logins_but_not_reads(make_app):
    app = make_app()
    client = app.test_client()
    token = login(client, "planner")
    before = writes_seen(app)
    assert client.get("/relocation.csv").status_code == 200  # an export is audited, not a write
    client.post("/logout", data={"csrf_token": token})
    login(client, "viewer")
    assert writes_seen(app) == before
    stranger = app.test_client()
    page = stranger.get("/login").get_data(as_text=True)
    r = stranger.post("/login", data={"username": "viewer", "password": "wrong-password-1",
                                      "csrf_token": csrf_token(page)})
    assert r.status_code == 401
    failed = writes_seen(app)
    assert failed != before
    core = app.extensions["geoapp"]
    site = core.repo.site("E0001")
    core.repo.update_site("E0001", {"remarks": "改"}, user="test",
                          expected_version=int(site["version"]))
    assert writes_seen(app) != failed

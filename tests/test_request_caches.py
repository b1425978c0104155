"""What each request reuses (verified session cookies, the logged-in account, the engine's
freshness probe) is never stale: a change made through another connection, like another
worker process, is seen on the very next request."""

from __future__ import annotations

from datetime import timedelta

import pytest

from geoapp.storage import open_repository
from geoapp.storage.base import Repository

from webutil import login

CHECK = "/api/check?lon=113.24&lat=35.22&site_type=livestock_farm"


@pytest.fixture
def app(make_app):
    return make_app()


def _other_connection(app) -> Repository:
    """The same store through a second repository: what another worker sees."""
    return open_repository(app.config)


def test_account_disabled_by_another_worker_is_refused_on_the_next_request(app):
    c = app.test_client()
    login(c, "inspector")
    assert c.get(CHECK).status_code == 200
    assert c.get(CHECK).status_code == 200  # the account is now cached in this thread
    other = _other_connection(app)
    try:
        other.update_user("inspector", {"active": 0}, user="admin")
    finally:
        other.close()
    assert c.get(CHECK).status_code == 401


def test_role_changed_by_another_worker_applies_on_the_next_request(app):
    c = app.test_client()
    login(c, "planner")
    assert c.get("/layers").status_code == 200
    other = _other_connection(app)
    try:
        other.update_user("planner", {"role": "viewer"}, user="admin")
    finally:
        other.close()
    r = c.get("/layers")  # the role change ended the session
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    login(c, "planner")
    assert c.get("/layers").status_code == 403


def test_tampered_session_cookie_is_refused_even_after_the_real_one_was_verified(app):
    c = app.test_client()
    login(c, "inspector")
    assert c.get(CHECK).status_code == 200
    real = c.get_cookie("session").value
    payload, stamp, signature = real.rsplit(".", 2)
    forged = f"{payload}.{stamp}.{'A' * len(signature)}"
    c.set_cookie("session", forged)
    assert c.get(CHECK).status_code == 401
    c.set_cookie("session", real)
    assert c.get(CHECK).status_code == 200


def test_a_remembered_cookie_still_expires(app):
    c = app.test_client()
    login(c, "inspector")
    assert c.get(CHECK).status_code == 200  # verified and remembered
    app.permanent_session_lifetime = timedelta(seconds=-1)
    assert c.get(CHECK).status_code == 401
    app.permanent_session_lifetime = timedelta(days=1)
    assert c.get(CHECK).status_code == 200  # the same rule as a first verification


def test_new_secret_key_invalidates_remembered_cookies(app):
    c = app.test_client()
    login(c, "inspector")
    assert c.get(CHECK).status_code == 200
    app.secret_key = "another-secret-key-" + "x" * 40
    assert c.get(CHECK).status_code == 401


def test_layer_replaced_by_another_worker_rebuilds_the_engine_on_the_next_check(app):
    import geopandas as gpd
    from shapely.geometry import LineString

    c = app.test_client()
    login(c, "inspector")
    far = "/api/check?lon=113.60&lat=34.95&site_type=livestock_farm"
    before = c.get(far).get_json()
    assert not any(h["rule_id"] == "riverside_livestock" and h["feature_id"] == "test-river" for h in before["hits"])
    other = _other_connection(app)
    try:
        rivers = other.layer("rivers")
        extra = gpd.GeoDataFrame(
            {"id": ["test-river"], "name": ["测试河 Test river"]},
            geometry=[LineString([(113.60, 34.90), (113.60, 35.00)])], crs=rivers.crs)
        other.replace_layer("rivers", gpd.pd.concat([rivers, extra], ignore_index=True),
                            user="admin")
    finally:
        other.close()
    after = c.get(far).get_json()
    hit = [h for h in after["hits"] if h["feature_id"] == "test-river"]
    assert hit and hit[0]["distance_m"] == 0.0

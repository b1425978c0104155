"""Sessions end when they should: a session cookie saved before a logout, an own password
change, an admin's password reset, a role change or disabling is refused afterwards, by this
app and by a second app on the same database (what another worker process sees), at its very
next request."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from geoapp.storage.gpkg import GpkgRepository

from webutil import csrf_token, login, password_for

CHECK = "/api/check?lon=113.24&lat=35.22&site_type=livestock_farm"
NEW_PASSWORD = "river-basin-survey-77"


def _instance(app) -> Path:
    return Path(app.config["DATABASE"]).parent


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def other_app(app, make_app):
    """A second app on the same database file: its own connections and caches, like another
    worker process."""
    return make_app(instance=_instance(app))


def _replay(app, cookie: str):
    """A fresh client presenting a saved session cookie, as a stolen or forgotten browser
    would."""
    c = app.test_client()
    c.set_cookie("session", cookie)
    return c


def _admin(app):
    c = app.test_client()
    c.csrf = login(c, "admin")
    return c


def _logout(app, c, token):
    assert c.post("/logout", data={"csrf_token": token}).status_code == 302


def _own_password(app, c, token):
    r = c.post("/account/password", data={"csrf_token": token, "current": password_for("inspector"),
                                          "password": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)[:400]


def _admin_reset(app, c, token):
    admin = _admin(app)
    r = admin.post("/admin/users/inspector/password",
                   data={"csrf_token": admin.csrf, "password": NEW_PASSWORD,
                         "password2": NEW_PASSWORD})
    assert r.status_code == 302


def _role_change(app, c, token):
    admin = _admin(app)
    r = admin.post("/admin/users/inspector/role", data={"csrf_token": admin.csrf,
                                                         "role": "planner"})
    assert r.status_code == 302


def _disable(app, c, token):
    admin = _admin(app)
    r = admin.post("/admin/users/inspector/active", data={"csrf_token": admin.csrf,
                                                           "active": "0"})
    assert r.status_code == 302


EVENTS = {"logout": _logout, "own password change": _own_password,
          "admin reset": _admin_reset, "role change": _role_change, "disable": _disable}


@pytest.mark.parametrize("event", EVENTS)
def test_cookie_saved_before_the_event_is_refused_here_and_by_another_worker(
        app, other_app, event):
    c = app.test_client()
    token = login(c, "inspector")
    saved = c.get_cookie("session").value
    # Both apps have verified the cookie and cached the account before the event.
    assert _replay(app, saved).get(CHECK).status_code == 200
    assert _replay(other_app, saved).get(CHECK).status_code == 200
    EVENTS[event](app, c, token)
    assert _replay(app, saved).get(CHECK).status_code == 401
    assert _replay(other_app, saved).get(CHECK).status_code == 401
    r = _replay(other_app, saved).get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


@pytest.mark.parametrize("event", ["logout", "admin reset", "disable"])
def test_event_in_another_worker_ends_the_session_here(app, other_app, event):
    c = app.test_client()
    login(c, "inspector")
    saved = c.get_cookie("session").value
    assert c.get(CHECK).status_code == 200
    assert c.get(CHECK).status_code == 200  # account now cached in this app's thread
    if event == "logout":  # the same account logs out in a browser served by the other worker
        other = other_app.test_client()
        _logout(other_app, other, login(other, "inspector"))
    else:
        EVENTS[event](other_app, None, None)
    assert c.get(CHECK).status_code == 401
    assert _replay(app, saved).get(CHECK).status_code == 401


def test_logout_ends_every_session_of_the_account_and_no_other_account(app):
    phone, desk, planner = app.test_client(), app.test_client(), app.test_client()
    token = login(phone, "inspector")
    login(desk, "inspector")
    login(planner, "planner")
    _logout(app, phone, token)
    assert desk.get(CHECK).status_code == 401
    assert planner.get(CHECK).status_code == 200
    login(desk, "inspector")  # logging in again works
    assert desk.get(CHECK).status_code == 200


def test_own_password_change_keeps_this_browser_and_needs_the_current_password(app):
    c, other = app.test_client(), app.test_client()
    token = login(c, "inspector")
    login(other, "inspector")
    assert c.get("/account/password").status_code == 200
    r = c.post("/account/password", data={"csrf_token": token, "current": "wrong-password-x",
                                          "password": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert r.status_code == 400 and "当前密码错误" in r.get_data(as_text=True)
    assert other.get(CHECK).status_code == 200  # nothing changed yet
    r = c.post("/account/password", data={"csrf_token": token, "current": password_for("inspector"),
                                          "password": "password1234", "password2": "password1234"})
    assert r.status_code == 400 and "密码太常见" in r.get_data(as_text=True)
    _own_password(app, c, token)
    assert c.get(CHECK).status_code == 200  # this browser was logged in again
    assert other.get(CHECK).status_code == 401
    fresh = app.test_client()
    page = fresh.get("/login").get_data(as_text=True)
    r = fresh.post("/login", data={"username": "inspector", "password": NEW_PASSWORD,
                                   "csrf_token": csrf_token(page)})
    assert r.status_code == 302


def test_change_of_display_name_does_not_end_sessions(app):
    c = app.test_client()
    login(c, "inspector")
    app.extensions["geoapp"].repo.update_user("inspector", {"display_name": "王五"}, user="admin")
    assert c.get(CHECK).status_code == 200


def test_cookie_from_before_session_versions_is_refused(app):
    c = app.test_client()
    with c.session_transaction() as sess:  # what a login before this change stored
        sess["_user_id"] = "inspector"
        sess["_fresh"] = True
    assert c.get(CHECK).status_code == 401


@pytest.mark.backends("gpkg")  # a GeoPackage file of an older schema, migrated
def test_an_older_database_gets_the_new_columns_and_its_accounts_keep_working(app, make_app):
    path = app.config["DATABASE"]
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX users_username_key")
    conn.execute("ALTER TABLE users DROP COLUMN username_key")
    conn.execute("ALTER TABLE users DROP COLUMN session_version")
    conn.execute("UPDATE geoapp_meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    repo = GpkgRepository(path)
    try:
        cols = {r[1] for r in repo._conn().execute("PRAGMA table_info(users)")}
        assert {"session_version", "username_key"} <= cols
        assert repo.get_user("inspector")["session_version"] == 0
        assert repo.get_user("INSPECTOR")["username"] == "inspector"
    finally:
        repo.close()
    fresh = make_app(instance=_instance(app))
    c = fresh.test_client()
    login(c, "inspector")
    assert c.get(CHECK).status_code == 200

"""Accounts: every page needs a login, passwords are checked, attempts are rate-limited,
forms carry CSRF tokens and cookies are HttpOnly and SameSite."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from geoapp.cli import main

from webutil import csrf_token, login, password_for


@pytest.fixture
def app(make_app):
    """An app of its own, for tests that lock accounts or end sessions."""
    return make_app()


def test_anonymous_pages_redirect_to_login_and_api_answers_401(offline_app):
    c = offline_app.test_client()
    r = c.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    r = c.get("/api/check?lon=113.2&lat=35.2")
    assert r.status_code == 401 and r.get_json()["error"] == "unauthorized"
    assert c.get("/healthz").status_code == 200
    assert c.get("/login").status_code == 200


def test_login_sets_an_httponly_samesite_cookie_and_returns_to_the_page(offline_app):
    c = offline_app.test_client()
    token = csrf_token(c.get("/login").get_data(as_text=True))
    r = c.post("/login?next=/api/check%3Flon%3D1", data={
        "username": "viewer", "password": password_for("viewer"), "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].startswith("/api/check")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_refuses_an_offsite_next_url(offline_app):
    c = offline_app.test_client()
    token = csrf_token(c.get("/login").get_data(as_text=True))
    r = c.post("/login?next=//evil.example/x", data={
        "username": "viewer", "password": password_for("viewer"), "csrf_token": token})
    assert r.headers["Location"] == "/"


def test_login_without_csrf_token_is_refused(offline_app):
    r = offline_app.test_client().post("/login", data={"username": "viewer",
                                                "password": password_for("viewer")})
    assert r.status_code == 400
    assert "CSRF" in r.get_data(as_text=True)


def test_wrong_password_then_too_many_attempts_locks_the_account_for_a_while(app):
    c = app.test_client()
    token = csrf_token(c.get("/login").get_data(as_text=True))
    for _ in range(5):
        r = c.post("/login", data={"username": "planner", "password": "wrong-password",
                                   "csrf_token": token})
        assert r.status_code == 401
        assert "用户名或密码错误" in r.get_data(as_text=True)
    r = c.post("/login", data={"username": "planner", "password": password_for("planner"),
                               "csrf_token": token})
    assert r.status_code == 429
    core = app.extensions["geoapp"]
    actions = core.repo.table("changes")["action"].tolist()
    assert actions.count("login_failed") == 5


def test_logout_ends_the_session(app):
    c = app.test_client()
    token = login(c, "viewer")
    assert c.get("/").status_code == 200
    c.post("/logout", data={"csrf_token": token})
    assert c.get("/").status_code == 302


def test_cli_creates_the_first_admin_and_prompts_for_the_password(instance, monkeypatch):
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(instance))
    runner = CliRunner()
    r = runner.invoke(main, ["users", "create", "--username", "chief", "--role", "admin"],
                      input="long-enough-pw\nlong-enough-pw\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["users", "create", "--username", "x", "--role", "boss",
                             "--password", "long-enough-pw"])
    assert r.exit_code == 2 and "role" in r.stderr
    r = runner.invoke(main, ["users", "create", "--username", "y", "--role", "viewer",
                             "--password", "short"])
    assert r.exit_code == 2 and "密码太短：至少 12 个字符" in r.stderr
    r = runner.invoke(main, ["users", "list"])
    assert "chief" in r.stdout and "admin" in r.stdout and "pbkdf2" not in r.stdout
    chief = next(line for line in r.stdout.splitlines() if line.startswith("chief"))
    assert chief.endswith("last login never") and "None" not in r.stdout

"""Login can be neither bypassed nor used to find accounts, and the gates are not weak:
normalised usernames, equal cost for unknown users, lockout per (account, address) and per
address with X-Forwarded-For believed only from trusted proxies, the password rules, the
production SECRET_KEY check, production cookie flags and an anonymous /healthz that says
nothing but "ok"."""

from __future__ import annotations

import secrets
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from catalogue import raises_english
from click.testing import CliRunner

from geoapp.cli import main
from geoapp.config import check_production, load_settings
from geoapp.domain.errors import ConfigError, Conflict, InvalidInput, StorageUnavailable
from geoapp.services import accounts, checks
from geoapp.web.prod import create_production_app

from webutil import csrf_token, login, make_users, password_for, sql

PROD_KEY = "Zq3v-Lm8xT2pW9rY_kB4nH7cJ1dF6gS0aE5u"


@pytest.fixture
def app(make_app):
    """An app of its own: these tests log in, fail logins and add accounts."""
    return make_app()


def _core(app):
    return app.extensions["geoapp"]


def _post_login(app, username, password, addr="192.0.2.10", xff=None):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = addr
    token = csrf_token(c.get("/login").get_data(as_text=True))
    headers = {"X-Forwarded-For": xff} if xff else {}
    return c.post("/login", data={"username": username, "password": password,
                                  "csrf_token": token}, headers=headers)


# -- usernames -----------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["inspector", "Inspector", "INSPECTOR", "ｉｎｓｐｅｃｔｏｒ",
                                   " Ｉnspector "])
def test_every_spelling_of_a_username_is_the_same_account(app, typed):
    r = _post_login(app, typed, password_for("inspector"))
    assert r.status_code == 302
    assert _core(app).repo.get_user("inspector")["last_login_at"]
    audit = _core(app).repo.table("changes")
    assert audit[audit["action"] == "login"]["entity_id"].tolist() == ["inspector"]


def test_lockout_cannot_be_bypassed_by_changing_case_or_width(app):
    for typed in ("inspector", "Inspector", "INSPECTOR", "ｉｎｓｐｅｃｔｏｒ", "inSpector"):
        assert _post_login(app, typed, "wrong-password-1").status_code == 401
    for typed in ("inspector", "Inspector", "ｉｎｓｐｅｃｔｏｒ"):
        assert _post_login(app, typed, password_for("inspector")).status_code == 429


@pytest.mark.parametrize("name", ["Inspector", "ＩＮＳＰＥＣＴＯＲ", "inspector "])
def test_creating_a_user_equal_after_normalisation_is_refused(offline_app, name):
    with pytest.raises(Conflict, match="inspector"):
        accounts.create_user(_core(offline_app), name, "tidal-gauge-reading-9", "viewer", by="test")


def test_fullwidth_username_is_stored_in_plain_letters(app):
    row = accounts.create_user(_core(app), "ｗａｎｇ．ｌｉ", "tidal-gauge-reading-9", "viewer",
                               by="test")
    assert row["username"] == "wang.li"
    assert _post_login(app, "Wang.Li", "tidal-gauge-reading-9").status_code == 302


# Only a GeoPackage file made before usernames were normalised (its migration 4) can hold an
# account without a username_key, and SQLite matches its name without regard to case; a
# PostGIS database has had the key, filled by every account made, from its first schema.
@pytest.mark.backends("gpkg")
def test_existing_mixed_case_rows_keep_working(app):
    repo = _core(app).repo
    with repo.transaction() as conn:  # a row made before normalisation, key not yet filled
        conn.execute("INSERT INTO users (username, password_hash, role, display_name, active, "
                     "created_at, updated_at) SELECT 'OldHand', password_hash, 'viewer', '', 1, "
                     "created_at, updated_at FROM users WHERE username = 'viewer'")
    assert repo.get_user("OldHand")["username"] == "OldHand"
    assert _post_login(app, "OldHand", password_for("viewer")).status_code == 302
    assert _post_login(app, "oldhand", password_for("viewer")).status_code == 302


# -- timing --------------------------------------------------------------------------------

def _median_ms(fn, rounds):
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


@pytest.mark.slow  # 45 password hashes, timed
def test_unknown_and_real_users_cost_the_same_time(app):
    core = _core(app)
    accounts.set_active(core, "viewer", False, by="test")
    counter = iter(range(10_000))

    def attempt(name):
        def go():
            with pytest.raises(accounts.LoginFailed):
                accounts.authenticate(core, name, "wrong-password-1",
                                      f"198.51.100.{next(counter) % 250}")
        return go

    attempt("nobody-at-all")()  # the dummy hash is made once, on first use
    unknown, disabled = [], []
    for _ in range(5):  # interleaved, each round's ratio, so machine load hits all alike
        real_ms = _median_ms(attempt("inspector"), 5)
        unknown.append(_median_ms(attempt("nobody-at-all"), 5) / real_ms)
        disabled.append(_median_ms(attempt("viewer"), 5) / real_ms)
    assert 1 / 1.5 < statistics.median(unknown) < 1.5, unknown
    assert 1 / 1.5 < statistics.median(disabled) < 1.5, disabled


# -- lockout -------------------------------------------------------------------------------

def test_five_failures_lock_the_pair_not_the_account(app):
    for _ in range(5):
        assert _post_login(app, "planner", "wrong-password-1", addr="203.0.113.7") \
            .status_code == 401
    r = _post_login(app, "planner", password_for("planner"), addr="203.0.113.7")
    assert r.status_code == 429 and "登录失败次数过多" in r.get_data(as_text=True)
    # The stranger cannot lock the real user out: another address still logs in.
    assert _post_login(app, "planner", password_for("planner"), addr="203.0.113.8") \
        .status_code == 302
    # And the hammering address may still log in to other accounts.
    assert _post_login(app, "viewer", password_for("viewer"), addr="203.0.113.7") \
        .status_code == 302


def test_a_success_resets_the_pair_count(app):
    for _ in range(4):
        _post_login(app, "planner", "wrong-password-1")
    assert _post_login(app, "planner", password_for("planner")).status_code == 302
    for _ in range(4):
        assert _post_login(app, "planner", "wrong-password-1").status_code == 401
    assert _post_login(app, "planner", password_for("planner")).status_code == 302


def test_twenty_failures_from_one_address_lock_that_address(app):
    for i in range(20):
        assert _post_login(app, f"guess{i}", "wrong-password-1", addr="203.0.113.9") \
            .status_code == 401
    assert _post_login(app, "viewer", password_for("viewer"), addr="203.0.113.9") \
        .status_code == 429
    assert _post_login(app, "viewer", password_for("viewer"), addr="203.0.113.10") \
        .status_code == 302


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(app):
    for i in range(5):
        _post_login(app, "planner", "wrong-password-1", addr="10.0.0.5", xff=f"1.2.3.{i}")
    r = _post_login(app, "planner", password_for("planner"), addr="10.0.0.5", xff="9.9.9.9")
    assert r.status_code == 429
    rows = sql(app, "SELECT DISTINCT remote_addr FROM login_attempts")
    assert [tuple(r) for r in rows] == [("10.0.0.5",)]


def test_x_forwarded_for_is_used_behind_a_trusted_proxy(make_app):
    app = make_app(TRUSTED_PROXIES="10.0.0.5, 172.16.0.0/12")
    for _ in range(5):  # a client prepending made-up entries is still known by its address
        _post_login(app, "planner", "wrong-password-1", addr="10.0.0.5",
                    xff="6.6.6.6, 1.2.3.4")
    assert _post_login(app, "planner", password_for("planner"), addr="10.0.0.5",
                       xff="1.2.3.4").status_code == 429
    # through two trusted proxies: the right-most untrusted entry is the client
    assert _post_login(app, "planner", password_for("planner"), addr="10.0.0.5",
                       xff="1.2.3.4, 172.16.3.3").status_code == 429
    assert _post_login(app, "planner", password_for("planner"), addr="10.0.0.5",
                       xff="5.6.7.8").status_code == 302
    # an untrusted peer's header is not believed
    assert _post_login(app, "planner", password_for("planner"), addr="192.0.2.99",
                       xff="1.2.3.4").status_code == 302
    addrs = {r[0] for r in sql(app, "SELECT remote_addr FROM login_attempts")}
    assert addrs == {"1.2.3.4", "5.6.7.8", "192.0.2.99"}


def test_bad_trusted_proxy_entry_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_settings(tmp_path, environ={"GEOAPP_TRUSTED_PROXIES": "10.0.0.1, proxy.local"})


# -- passwords -----------------------------------------------------------------------------

WEAK = ["12345678", "password", " " * 8, " " * 14, "inspector", "123456789012",
        "qwertyuiop", "admin123456", "woaini1314", "aaaaaaaaaaaaaa", "abcabcabcabc",
        "Password2024!", "qwertyuiop123", "1qaz2wsx3edc", "Inspector2024", "rotcepsni-12",
        "ｉｎｓｐｅｃｔｏｒ1234", "passwordpassword", "qwertyqwerty", "password\u200b1234",
        "1234567890ab", "Jiaozuo12369", "焦作市12369焦作市"]


@pytest.mark.parametrize("password", WEAK)
def test_weak_passwords_are_refused_by_every_path(offline_app, password):
    core = _core(offline_app)
    with pytest.raises(InvalidInput):
        accounts.create_user(core, "inspector", password, "viewer", by="test")
    with pytest.raises(InvalidInput):
        accounts.set_password(core, "inspector", password, by="test")
    with pytest.raises(InvalidInput):
        accounts.reset_password(core, "inspector", password, password, by="test")


@pytest.mark.parametrize("word", ["password", "12345678", "123456789012", "qwertyuiop",
                                  "admin123456", "woaini1314"])
def test_bundled_list_holds_the_usual_suspects(word):
    assert word in accounts.common_passwords()
    assert len(accounts.common_passwords()) > 3000


@pytest.mark.parametrize("password", ["river-basin-survey-77", "Tr0ub4dor&3xyz",
                                      "correct horse battery staple", "焦作市生态环境局巡查2024"])
def test_reasonable_passwords_pass(password):
    accounts.check_password_strength(password, "inspector")


def test_username_as_password_is_refused_case_insensitively():
    for pw in ("Inspector.Zhang", "INSPECTOR.ZHANG", "inspector.zhang!!"):
        with raises_english(InvalidInput, "must not be the username"):
            accounts.check_password_strength(pw, "inspector.zhang")


def test_admin_page_and_cli_refuse_weak_passwords(app, monkeypatch):
    admin = app.test_client()
    token = login(admin, "admin")
    r = admin.post("/admin/users", data={"username": "li.si", "role": "viewer",
                                         "password": "12345678", "password2": "12345678",
                                         "csrf_token": token})
    assert r.status_code == 400 and "至少 12 个字符" in r.get_data(as_text=True)
    r = admin.post("/admin/users/viewer/password", data={
        "password": "123456789012", "password2": "123456789012", "csrf_token": token})
    assert r.status_code == 400 and "密码太常见" in r.get_data(as_text=True)
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(Path(app.config["DATABASE"]).parent))
    r = CliRunner().invoke(main, ["users", "set-password", "--username", "viewer",
                                  "--password", "qwertyuiop123"])
    assert r.exit_code == 2 and "密码太常见" in r.stderr
    r = CliRunner().invoke(main, ["users", "create", "--username", "ＶＩＥＷＥＲ", "--role",
                                  "viewer", "--password", "river-basin-survey-77"])
    assert r.exit_code == 2 and "用户名已被占用" in r.stderr


# -- SECRET_KEY and production -------------------------------------------------------------

@pytest.mark.parametrize("key", ["a" * 32, " " * 40, "abcd" * 8, "0123456789" * 4,
                                 "abcdefghijklmnopqrstuvwxyz012345", "password" * 4,
                                 "Zq3v-Lm8xT2pW9rY kB4nH7cJ1dF6gS0aE5u", "dev-insecure-change-me",
                                 "short-but-random-9x",
                                 "dev-insecure-change-me-dev-insecure-change-me!",
                                 "qwertyuiopasdfghjklzxcvbnm1234567890",
                                 "geoapp-production-secret-key-2026!",
                                 "Jiaozuo-Ecology-Bureau-OneMap-2026-Secret"])
def test_weak_secret_keys_are_refused(tmp_path, key):
    values = load_settings(tmp_path, environ={"GEOAPP_SECRET_KEY": key})
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        check_production(values)


@pytest.mark.parametrize("make", [lambda: secrets.token_urlsafe(48), lambda: secrets.token_hex(),
                                  lambda: PROD_KEY])
def test_random_secret_keys_pass(tmp_path, make):
    check_production(load_settings(tmp_path, environ={"GEOAPP_SECRET_KEY": make()}))


def _production_app(instance, monkeypatch, **env):
    monkeypatch.setattr(checks, "warm_engine", lambda core: None)
    monkeypatch.setenv("GEOAPP_SECRET_KEY", PROD_KEY)
    for k, v in env.items():
        monkeypatch.setenv(f"GEOAPP_{k}", v)
    app = create_production_app(instance)
    app.config["TESTING"] = True
    make_users(app)
    return app


def _session_cookie_after_login(app) -> str:
    r = _post_login(app, "viewer", password_for("viewer"))
    assert r.status_code == 302
    return next(v for v in r.headers.getlist("Set-Cookie") if v.startswith("session="))


def test_production_cookies_are_secure_httponly_and_lax(instance_with_users, monkeypatch):
    app = _production_app(instance_with_users, monkeypatch)
    cookie = _session_cookie_after_login(app)
    assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert app.config["HSTS_MAX_AGE"] == 0 and app.config["TRUSTED_PROXIES"] == ""


def test_plain_http_intranet_can_turn_secure_off(instance_with_users, monkeypatch):
    app = _production_app(instance_with_users, monkeypatch, COOKIE_SECURE="false",
                          HSTS_MAX_AGE="600")
    cookie = _session_cookie_after_login(app)
    assert "Secure" not in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert app.config["HSTS_MAX_AGE"] == 600


def test_development_app_never_marks_cookies_secure(app):
    assert "Secure" not in _session_cookie_after_login(app)


# -- /healthz ------------------------------------------------------------------------------

def test_healthz_tells_anonymous_callers_only_ok(app):
    r = app.test_client().get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}
    viewer = app.test_client()
    login(viewer, "viewer")
    assert viewer.get("/healthz").get_json() == {"status": "ok"}
    admin = app.test_client()
    login(admin, "admin")
    body = admin.get("/healthz").get_json()
    assert body["status"] == "ok" and "version" in body and "database" in body


def test_healthz_is_503_when_the_database_is_unavailable(app, monkeypatch):
    def broken():
        raise StorageUnavailable("数据库读写失败 disk I/O error")

    monkeypatch.setattr(_core(app).repo, "meta", broken)
    r = app.test_client().get("/healthz")
    assert r.status_code == 503 and r.get_json() == {"status": "unavailable"}


def test_parallel_guesses_cannot_pass_the_per_account_limit(app):
    """The lock check and the recorded failure are one transaction: 40 guesses sent at once
    from one address get at most MAX_FAILS_PER_USER password verifications."""
    core = _core(app)
    verified = []
    real = accounts.check_password_hash

    def counting(stored, password):
        verified.append(1)
        return real(stored, password)

    accounts.check_password_hash = counting
    try:
        def guess(i):
            try:
                accounts.authenticate(core, "inspector", f"wrong-guess-{i}", "198.51.100.7")
            except accounts.TooManyAttempts:
                return "locked"
            except accounts.LoginFailed:
                return "failed"
            return "ok"

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(guess, range(40)))
    finally:
        accounts.check_password_hash = real
    assert answers.count("failed") == accounts.MAX_FAILS_PER_USER == len(verified)
    assert answers.count("locked") == 40 - accounts.MAX_FAILS_PER_USER
    # another address still gets in with the right password
    assert accounts.authenticate(core, "inspector", password_for("inspector"), "203.0.113.9")

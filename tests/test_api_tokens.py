"""API tokens for GIS clients: made on the command line, shown once, stored as a SHA-256 only,
accepted as ``Authorization: Bearer`` on the machine interfaces (/api/…, /ogc…) wherever the
owner's role may go there (without CSRF, since no cookie is involved), ignored on the pages,
/admin/…, /account/… and form posts (so a token saved in a GIS project cannot make an account),
refused (401) when wrong, revoked, or when the owner is disabled, gone or given another role,
listed and revoked on /admin/users and audited."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from geoapp.cli import main
from geoapp.domain.errors import InvalidInput, NotFound
from geoapp.services import accounts
from geoapp.services.maintenance import backup_database, inspect_database

from pg import pg_bin
from webutil import csrf_token, login, on_postgis, password_for, sql

POINT = {"lon": "113.24", "lat": "35.22"}
#: A planner's (and admin's) OGC resource: every ledger field of the enterprises.
SITES = "/ogc/collections/enterprises/items?f=json"
#: A small parcel near POINT, for the API's one POST that answers without writing.
PARCEL = {"type": "Polygon", "coordinates": [[[113.24, 35.22], [113.241, 35.22],
                                              [113.241, 35.221], [113.24, 35.22]]]}


@pytest.fixture(scope="module")
def app(make_module_app):
    """One app for the module: tests make their own tokens and accounts."""
    return make_module_app(INTRANET=True, TILES="none")


def core(app):
    return app.extensions["geoapp"]


def issue(app, username: str, name: str = "") -> str:
    token, _row = accounts.issue_token(core(app), username, name, by="test")
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_account(app, name: str, role: str) -> str:
    accounts.create_user(core(app), name, password_for(name), role, by="test")
    return name


def store_dump(app) -> str:
    """Every row of the app's store as text (SQLite's dump, or pg_dump's plain SQL)."""
    if on_postgis(app):
        return subprocess.run([str(pg_bin() / "pg_dump"), "--data-only",
                               app.config["DATABASE_URL"]], check=True, capture_output=True,
                              text=True).stdout
    with closing(sqlite3.connect(f"file:{app.config['DATABASE']}?mode=ro", uri=True)) as conn:
        return "\n".join(conn.iterdump())


def token_id(app, token: str) -> int:
    return core(app).repo.token_by_hash(accounts.token_hash(token))["id"]


def refused(r) -> bool:
    return (r.status_code == 401 and r.get_json()["error"] == "invalid_token"
            and r.headers["WWW-Authenticate"].startswith("Bearer"))


def to_login(r) -> bool:
    """The answer to an anonymous page request: a redirect to the login page."""
    return r.status_code == 302 and "/login" in r.headers["Location"] \
        and "WWW-Authenticate" not in r.headers


# --------------------------------------------------------------------------- the token
def test_a_token_is_random_prefixed_and_stored_as_its_hash_only(app):
    token, row = accounts.issue_token(core(app), "viewer", "QGIS 桌面", by="test")
    other = issue(app, "viewer")
    assert token.startswith("geoapp_") and len(token) == len("geoapp_") + 43
    assert token != other
    assert row["name"] == "QGIS 桌面" and row["role"] == "viewer" and row["state"] == "active"
    assert "token_hash" not in row and token not in str(row)
    stored = sql(app, "SELECT token_hash, role, created_by FROM api_tokens WHERE id = ?",
                 (row["id"],))
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(), "viewer", "test")]
    dump = store_dump(app)
    assert stored[0][0] in dump  # the dump holds the tokens table
    assert token not in dump and token[len("geoapp_"):] not in dump


def test_tokens_are_only_for_known_active_accounts_with_a_short_name(app):
    with pytest.raises(NotFound):
        accounts.issue_token(core(app), "nobody", by="test")
    with pytest.raises(InvalidInput, match="最多 100"):
        accounts.issue_token(core(app), "viewer", "x" * 101, by="test")
    name = new_account(app, "resting", "viewer")
    accounts.set_active(core(app), name, False, by="test")
    with pytest.raises(InvalidInput, match="已停用"):
        accounts.issue_token(core(app), name, by="test")


# --------------------------------------------------------------------------- using it
def test_a_token_works_on_the_api_and_the_ogc_service_and_nowhere_else(app):
    client = app.test_client()
    token = issue(app, "viewer", "api")
    r = client.get("/api/check", query_string=POINT, headers=bearer(token))
    assert r.status_code == 200 and "verdict" in r.get_json()
    # no cookie is handed out for a login that came with the header
    assert "session=" not in r.headers.get("Set-Cookie", "")
    for url in ("/api/openapi.json", "/api/relocation", "/ogc", "/ogc/api",
                "/ogc/collections?f=html", "/ogc/collections/rivers/items?f=json"):
        assert client.get(url, headers=bearer(token)).status_code == 200, url
    # the pages ignore the header: the request is anonymous, sent to the login page
    for url in ("/", "/check?lon=113.24&lat=35.22", "/relocation", "/relocation.csv",
                "/account/password", "/sites/E0001"):
        assert to_login(client.get(url, headers=bearer(token))), url


def test_wrong_or_malformed_tokens_get_401_everywhere_never_the_login_page(app):
    client = app.test_client()
    good = issue(app, "viewer")
    for value in ("Bearer geoapp_" + "A" * 43, "Bearer " + good[:-1] + "x", "Bearer",
                  "bearer   ", "Bearer " + good[len("geoapp_"):], "Bearer " + good + "x" * 500,
                  "BEARER geoapp_\u00e9"):
        for url in ("/api/check?lon=113.24&lat=35.22", "/ogc/collections", "/ogc"):
            r = client.get(url, headers={"Authorization": value})
            assert refused(r), (value[:30], url, r.status_code)
        for url in ("/check", "/admin/users"):  # a page: the header is not looked at
            assert to_login(client.get(url, headers={"Authorization": value})), url
    assert client.get("/api/check", query_string=POINT,
                      headers={"Authorization": "bearer " + good}).status_code == 200


def test_anonymous_api_calls_get_the_bearer_challenge_and_pages_the_login(app):
    client = app.test_client()
    for url in ("/api/check?lon=113.24&lat=35.22", "/api/openapi.json", "/ogc",
                "/ogc/collections?f=json", "/ogc/collections/rivers/items?f=json"):
        r = client.get(url)
        assert r.status_code == 401 and r.get_json()["error"] == "unauthorized", url
        # no error code without credentials (RFC 6750 section 3), unlike a bad token
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="geoapp"', url
    token = csrf_token(client.get("/login").get_data(as_text=True))
    r = client.post("/api/parcels/check", json={"type": "Point", "coordinates": [113.24, 35.22]},
                    headers={"X-CSRFToken": token})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="geoapp"'
    for url in ("/", "/check", "/admin/users"):
        r = client.get(url)
        assert r.status_code == 302 and "/login" in r.headers["Location"], url
        assert "WWW-Authenticate" not in r.headers, url


def test_a_token_acts_with_its_owners_role(app):
    client = app.test_client()
    viewer, planner = issue(app, "viewer"), issue(app, "planner")
    assert client.get(SITES, headers=bearer(viewer)).status_code == 403
    assert client.get(SITES, headers=bearer(planner)).status_code == 200
    listed = client.get("/ogc/collections?f=json", headers=bearer(viewer)).get_json()
    assert "enterprises" not in {c["id"] for c in listed["collections"]}


@pytest.mark.parametrize("role", ["viewer", "planner", "admin"])
def test_no_token_reaches_a_page_admin_included(app, role):
    """The pages a role may open are closed to its token: a GIS project file holding an
    admin's token must not open /admin/users."""
    client = app.test_client()
    token = issue(app, role)
    for url in ("/ledger", "/admin/users", "/admin/audit", "/ledger/layers/enterprises.geojson",
                "/ledger/export", "/account/password"):
        assert to_login(client.get(url, headers=bearer(token))), (role, url)


def test_an_admin_token_cannot_create_an_account_or_change_one(app):
    """The attack a leaked token allowed: POST /admin/users with the header and no cookie.
    It creates nothing, changes no role and no password, whatever the CSRF check says."""
    token = issue(app, "admin")
    client = app.test_client()
    users_before = {u["username"]: u["role"] for u in accounts.list_users(core(app))}
    form = {"username": "intruder", "password": "a-long-pass-9471",
            "password2": "a-long-pass-9471", "role": "admin", "display_name": "x"}
    for url, data in (("/admin/users", form),
                      ("/admin/users/viewer/role", {"role": "admin"}),
                      ("/admin/users/viewer/password", {"password": "a-long-pass-9471",
                                                        "password2": "a-long-pass-9471"}),
                      ("/admin/users/viewer/active", {"active": "0"}),
                      ("/account/password", {"current": "x", "password": "a-long-pass-9471",
                                             "password2": "a-long-pass-9471"})):
        r = client.post(url, data=data, headers=bearer(token))
        assert r.status_code == 400 and b"CSRF" in r.data, (url, r.status_code)
    assert core(app).repo.get_user("intruder") is None
    assert {u["username"]: u["role"] for u in accounts.list_users(core(app))} == users_before


def test_an_admin_token_is_anonymous_on_admin_routes_even_without_the_csrf_check(make_app):
    """The token itself is not a credential there (not merely stopped by the CSRF check)."""
    app = make_app(WTF_CSRF_ENABLED=False)
    token = issue(app, "admin")
    client = app.test_client()
    r = client.post("/admin/users", headers=bearer(token),
                    data={"username": "intruder", "password": "a-long-pass-9471",
                          "password2": "a-long-pass-9471", "role": "admin"})
    assert to_login(r)
    assert core(app).repo.get_user("intruder") is None
    r = client.post("/admin/users/viewer/role", data={"role": "admin"}, headers=bearer(token))
    assert to_login(r) and core(app).repo.get_user("viewer")["role"] == "viewer"


def test_a_bearer_post_to_the_api_needs_no_csrf_token_and_a_form_post_stays_closed(app):
    client = app.test_client()
    token = issue(app, "inspector")
    r = client.post("/api/parcels/check", json=PARCEL, headers=bearer(token))
    assert r.status_code == 200 and r.get_json()["parcels"], r.get_data(as_text=True)[:300]
    before = len(core(app).repo.inspections(limit=1000))
    # the inspection form is a page's: the token does not log in there, CSRF is asked for
    r = client.post("/check/inspections", data={**POINT, "notes": "by token"},
                    headers=bearer(token))
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    assert len(core(app).repo.inspections(limit=1000)) == before


def test_a_session_still_needs_csrf_and_a_cookie_never_rescues_a_bad_token(app):
    client = app.test_client()
    csrf = login(client, "inspector")
    count = len(core(app).repo.inspections(limit=1000))
    # the session alone, no CSRF token: refused as before
    assert client.post("/check/inspections", data=POINT).status_code == 400
    # on the API, the session and a wrong token: the token decides, the cookie does not
    # log in
    wrong = bearer("geoapp_" + "B" * 43)
    assert refused(client.get("/api/check", query_string=POINT, headers=wrong))
    assert refused(client.post("/api/parcels/check", headers={**wrong, "X-CSRFToken": csrf},
                               json=PARCEL))
    # on a page the header is not looked at: the session and its CSRF rule decide
    assert client.post("/check/inspections", data=POINT, headers=wrong).status_code == 400
    assert client.get("/check", headers=wrong).status_code == 200
    # another Authorization scheme is no bearer request: session and CSRF rules apply
    assert client.post("/check/inspections", data=POINT,
                       headers={"Authorization": "Basic dXNlcjpwdw=="}).status_code == 400
    assert len(core(app).repo.inspections(limit=1000)) == count
    # the session with a viewer's token: on the API the request is the viewer's ...
    viewer = issue(app, "viewer")
    assert client.get(SITES, headers=bearer(viewer)).status_code == 403
    # ... on a page, the session's (an inspector's) with its CSRF token
    assert client.post("/check/inspections", data={**POINT, "csrf_token": csrf},
                       headers=bearer(viewer)).status_code == 302
    assert core(app).repo.inspections(limit=1)[0]["inspector"] == "inspector"
    assert client.post("/check/inspections", data={**POINT, "csrf_token": csrf}
                       ).status_code == 302  # and the session still works on its own


def test_last_use_is_recorded_at_most_once_a_minute(app, monkeypatch):
    client = app.test_client()
    token = issue(app, "viewer")
    tid = token_id(app, token)

    def last_used() -> str | None:
        return core(app).repo.token_by_hash(accounts.token_hash(token))["last_used_at"]

    assert last_used() is None
    client.get("/api/check", query_string=POINT, headers=bearer(token))
    assert last_used() is not None
    repo = core(app).repo
    writes = []
    monkeypatch.setattr(repo, "token_used", lambda i, real=repo.token_used: (writes.append(i),
                                                                              real(i)))
    for _ in range(3):
        client.get("/api/check", query_string=POINT, headers=bearer(token))
    assert writes == []  # used within the minute: nothing written
    sql(app, "UPDATE api_tokens SET last_used_at = '2020-01-01T00:00:00Z' WHERE id = ?",
        (tid,), write=True)
    client.get("/api/check", query_string=POINT, headers=bearer(token))
    assert writes == [tid] and last_used() > "2021"
    assert [t["last_used_at"] for t in accounts.list_tokens(core(app)) if t["id"] == tid] \
        == [last_used()]


# --------------------------------------------------------------------------- stopping it
def test_a_revoked_token_is_refused_at_once_and_the_revocation_audited(app):
    client = app.test_client()
    token = issue(app, "viewer", "to revoke")
    tid = token_id(app, token)
    assert client.get("/api/check", query_string=POINT, headers=bearer(token)).status_code == 200
    row = accounts.revoke_token(core(app), tid, by="admin")
    assert row["state"] == "revoked" and row["revoked_by"] == "admin"
    assert refused(client.get("/api/check", query_string=POINT, headers=bearer(token)))
    again = accounts.revoke_token(core(app), tid, by="someone")  # no change, no new row
    assert again["revoked_by"] == "admin"
    rows = sql(app, """SELECT "user", action, after FROM changes WHERE entity = 'api_token'"""
                    " AND entity_id = ? ORDER BY id", (str(tid),))
    assert [(u, a) for u, a, _ in rows] == [("test", "create"), ("admin", "revoke")]
    assert '"to revoke"' in rows[0][2] and token not in "".join(r[2] for r in rows)
    with pytest.raises(NotFound):
        accounts.revoke_token(core(app), 999_999, by="admin")


def test_disabling_the_owner_revokes_its_tokens_for_good(app):
    client = app.test_client()
    name = new_account(app, "gis-desk", "viewer")
    token = issue(app, name)
    assert client.get("/api/check", query_string=POINT, headers=bearer(token)).status_code == 200
    accounts.set_active(core(app), name, False, by="admin")
    assert refused(client.get("/api/check", query_string=POINT, headers=bearer(token)))
    accounts.set_active(core(app), name, True, by="admin")
    assert refused(client.get("/api/check", query_string=POINT, headers=bearer(token)))
    [row] = accounts.list_tokens(core(app), name)
    assert row["state"] == "revoked" and row["revoked_by"] == "admin"
    after = sql(app, "SELECT after FROM changes WHERE entity = 'api_token' AND "
                     "action = 'revoke' AND entity_id = ?", (str(row["id"]),))[0]
    assert '"reason": "active changed"' in after[0]


def test_a_role_change_revokes_the_owners_tokens(app):
    client = app.test_client()
    name = new_account(app, "gis-planner", "planner")
    token = issue(app, name)
    assert client.get(SITES, headers=bearer(token)).status_code == 200
    accounts.change_role(core(app), name, "viewer", by="admin")
    assert refused(client.get("/api/check", query_string=POINT, headers=bearer(token)))
    accounts.change_role(core(app), name, "planner", by="admin")  # back: still revoked
    assert refused(client.get(SITES, headers=bearer(token)))
    assert [t["state"] for t in accounts.list_tokens(core(app), name)] == ["revoked"]


def test_a_password_change_or_logout_leaves_tokens_working(app):
    client = app.test_client()
    name = new_account(app, "gis-field", "inspector")
    token = issue(app, name)
    accounts.set_password(core(app), name, "another-long-pass-4821", by="admin")
    accounts.end_sessions(core(app), name, by=name)
    assert client.get("/api/check", query_string=POINT, headers=bearer(token)).status_code == 200


def test_a_token_whose_owner_row_is_gone_or_changed_behind_the_app_is_refused(app):
    """Rows changed outside the app (an operator's SQL) cannot revive a token."""
    client = app.test_client()
    name = new_account(app, "gis-gone", "planner")
    token = issue(app, name)
    sql(app, "UPDATE users SET role = 'admin' WHERE username = ?", (name,), write=True)
    assert refused(client.get(SITES, headers=bearer(token)))
    assert accounts.list_tokens(core(app), name)[0]["state"] == "role_changed"
    sql(app, "DELETE FROM users WHERE username = ?", (name,), write=True)
    assert refused(client.get("/api/check", query_string=POINT, headers=bearer(token)))
    gone = [t for t in accounts.list_tokens(core(app)) if t["id"] == token_id(app, token)]
    assert gone[0]["state"] == "owner_deleted" and gone[0]["username"] is None


# --------------------------------------------------------------------------- /admin/users
def test_the_users_page_lists_tokens_and_revokes_one_with_csrf(app):
    token = issue(app, "planner", "ArcGIS Pro 工作站")
    tid = token_id(app, token)
    app.test_client().get(SITES, headers=bearer(token))
    client = app.test_client()
    csrf = login(client, "admin")
    page = client.get("/admin/users").get_data(as_text=True)
    row = page[page.index(f'id="token-{tid}"'):]
    row = row[:row.index("</tr>")]
    assert "ArcGIS Pro 工作站" in row and "planner" in row and 'data-state="active"' in row
    assert "从未使用" not in row  # it was used: a time is shown
    assert f'action="/admin/tokens/{tid}/revoke"' in row and 'name="csrf_token"' in row
    assert token not in page and accounts.token_hash(token) not in page
    # without the form's CSRF token nothing happens
    assert client.post(f"/admin/tokens/{tid}/revoke").status_code == 400
    assert app.test_client().get(SITES, headers=bearer(token)).status_code == 200
    r = client.post(f"/admin/tokens/{tid}/revoke", data={"csrf_token": csrf})
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/users#tokens")
    assert refused(app.test_client().get(SITES, headers=bearer(token)))
    page = client.get("/admin/users").get_data(as_text=True)
    row = page[page.index(f'id="token-{tid}"'):]
    row = row[:row.index("</tr>")]
    assert 'data-state="revoked"' in row and "已撤销" in row and "admin" in row
    assert f"revoke-token-{tid}" not in row
    missing = client.post("/admin/tokens/999999/revoke", data={"csrf_token": csrf})
    assert missing.status_code == 404 and "999999" in missing.get_data(as_text=True)


def test_only_admins_revoke_tokens_and_a_token_cannot_revoke_for_a_viewer(app):
    token = issue(app, "viewer")
    tid = token_id(app, token)
    client = app.test_client()
    csrf = login(client, "planner")
    assert client.post(f"/admin/tokens/{tid}/revoke", data={"csrf_token": csrf}).status_code \
        == 403
    # a token is no credential there: refused before any role check (no CSRF token)
    assert app.test_client().post(f"/admin/tokens/{tid}/revoke",
                                  headers=bearer(token)).status_code == 400
    assert accounts.list_tokens(core(app), "viewer")[-1]["state"] == "active"


def test_the_users_page_in_english(app):
    client = app.test_client()
    login(client, "admin")
    page = client.get("/admin/users?lang=en").get_data(as_text=True)
    assert "API tokens" in page and "Revoke" in page and "令牌" not in page


# --------------------------------------------------------------------------- CLI
def test_the_cli_makes_lists_and_revokes_tokens(make_app, monkeypatch):
    app = make_app()
    monkeypatch.setenv("GEOAPP_INSTANCE_PATH", str(Path(app.config["DATABASE"]).parent))
    core(app).repo.close()
    runner = CliRunner()
    made = runner.invoke(main, ["users", "token", "--username", "PLANNER", "--name", "QGIS"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("geoapp_") and "\n" not in token
    assert "shown only now" in made.stderr and token not in made.stderr
    client = app.test_client()
    assert client.get(SITES, headers=bearer(token)).status_code == 200

    listed = runner.invoke(main, ["users", "tokens"])
    assert listed.exit_code == 0 and "planner" in listed.stdout and "QGIS" in listed.stdout
    assert token not in listed.stdout and "active" in listed.stdout
    tid = token_id(app, token)
    assert runner.invoke(main, ["users", "tokens", "--username", "viewer"]).stdout == ""

    revoked = runner.invoke(main, ["users", "revoke-token", "--id", str(tid)])
    assert revoked.exit_code == 0 and f"token {tid} of planner revoked" in revoked.stdout
    assert refused(client.get(SITES, headers=bearer(token)))
    assert "revoked" in runner.invoke(main, ["users", "tokens"]).stdout

    for args in (["users", "token", "--username", "nobody"],
                 ["users", "revoke-token", "--id", "12345"],
                 ["users", "tokens", "--username", "nobody"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and "Traceback" not in result.output, args
    audit = sql(app, """SELECT "user", action FROM changes WHERE entity = 'api_token' """
                     "ORDER BY id")
    assert audit == [("cli", "create"), ("cli", "revoke")]


# --------------------------------------------------------------------------- storage
def test_a_forced_rebuild_keeps_tokens_and_they_keep_working(repo, tiny_data_dir):
    repo.create_user("alice", "pbkdf2:sha256$x", "planner", user="test")
    made = repo.create_token("alice", "ab" * 32, name="qgis", user="test")
    report = repo.initialize(tiny_data_dir, force=True)
    assert report["kept"]["api_tokens"] == 1
    row = repo.token_by_hash("ab" * 32)
    assert row["id"] == made["id"] and row["username"] == "alice"
    assert row["role"] == row["owner_role"] == "planner" and row["owner_active"] is True
    assert repo.tokens("ALICE")[0]["name"] == "qgis"


@pytest.mark.backends("gpkg")  # a PostGIS backup's report reads the dump's site count only
def test_a_backup_counts_the_tokens_with_the_other_tables_the_app_writes(app, tmp_path):
    issue(app, "viewer", "backup")
    stored = {t: sql(app, f'SELECT count(*) FROM "{t}"')[0][0]
              for t in ("api_tokens", "users", "unit_requirements")}
    report = backup_database(core(app).settings, tmp_path / "nightly.gpkg")
    assert report["integrity"] == "ok" and stored["api_tokens"] >= 1
    assert {t: report["counts"].get(t) for t in stored} == stored
    assert inspect_database(tmp_path / "nightly.gpkg")["counts"] == report["counts"]


def test_the_ogc_service_takes_tokens(app):
    client = app.test_client()
    token = issue(app, "viewer", "QGIS")
    r = client.get("/ogc/collections?f=json", headers=bearer(token))
    assert r.status_code == 200 and r.get_json()["collections"]
    assert refused(client.get("/ogc/collections?f=json", headers=bearer("geoapp_" + "C" * 43)))
    assert client.get("/ogc/collections?f=json").status_code == 401  # anonymous, as before

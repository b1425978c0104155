"""User administration and the audit log: admin only, CSRF forms, every change audited
without a password hash, and never locking the bureau out of its last administrator."""

from __future__ import annotations

import json
from html import unescape

import pytest

from webutil import csrf_token, login, password_for


@pytest.fixture
def app(make_app):
    return make_app(INTRANET=True, TILES="none")


@pytest.fixture
def admin(app):
    c = app.test_client()
    c.csrf = login(c, "admin")
    return c


def _core(app):
    return app.extensions["geoapp"]


def _changes(app, entity_id: str) -> list[dict]:
    df = _core(app).repo.table("changes")
    return df[(df["entity"] == "user") & (df["entity_id"] == entity_id)].to_dict("records")


def _log_in_as(app, username: str, password: str):
    c = app.test_client()
    page = c.get("/login").get_data(as_text=True)
    return c.post("/login", data={"username": username, "password": password,
                                  "csrf_token": csrf_token(page)})


def test_user_list_shows_every_account_with_role_words_and_last_login(admin):
    html = admin.get("/admin/users").get_data(as_text=True)
    for name in ("viewer", "inspector", "planner", "admin"):
        assert f'data-username="{name}"' in html
    assert "管理员" in html and "Administrator" in html and "执法检查" in html
    assert "password_hash" not in html and "pbkdf2" not in html and "scrypt" not in html


@pytest.mark.parametrize("role", ["viewer", "inspector", "planner"])
def test_only_admins_reach_the_admin_pages(app, role):
    c = app.test_client()
    token = login(c, role)
    assert c.get("/admin/users").status_code == 403
    assert c.get("/admin/audit").status_code == 403
    r = c.post("/admin/users", data={"username": "x1", "password": "long-enough-pw-1",
                                     "password2": "long-enough-pw-1", "role": "admin",
                                     "csrf_token": token})
    assert r.status_code == 403
    assert _core(app).repo.get_user("x1") is None


def test_admin_creates_an_account_that_can_log_in_and_is_audited(app, admin):
    r = admin.post("/admin/users", data={"username": "zhang.wei", "display_name": "张伟",
                                         "role": "inspector", "password": "s3cret-pass-river",
                                         "password2": "s3cret-pass-river", "csrf_token": admin.csrf})
    assert r.status_code == 302
    row = _core(app).repo.get_user("zhang.wei")
    assert row["role"] == "inspector" and row["display_name"] == "张伟" and row["active"]
    assert _log_in_as(app, "zhang.wei", "s3cret-pass-river").status_code == 302
    created = [c for c in _changes(app, "zhang.wei") if c["action"] == "create"]
    assert len(created) == 1 and created[0]["user"] == "admin"
    assert "hash" not in created[0]["after"] and "s3cret" not in created[0]["after"]


def test_create_refuses_mismatched_passwords_with_a_400(app, admin):
    r = admin.post("/admin/users", data={"username": "li", "role": "viewer",
                                         "password": "abcdefgh1-long", "password2": "abcdefgh2-long",
                                         "csrf_token": admin.csrf})
    assert r.status_code == 400
    assert "两次输入的密码不一致" in r.get_data(as_text=True)
    assert "The two passwords differ" not in r.get_data(as_text=True)  # one language a page
    r = admin.post("/admin/users?lang=en", data={
        "username": "li", "role": "viewer", "password": "abcdefgh1-long",
        "password2": "abcdefgh2-long", "csrf_token": admin.csrf})
    assert r.status_code == 400
    assert "The two passwords differ" in r.get_data(as_text=True)
    assert "两次输入的密码不一致" not in r.get_data(as_text=True)
    assert _core(app).repo.get_user("li") is None


@pytest.mark.parametrize("form, problem, english", [
    ({"username": "a b", "role": "viewer"}, "用户名只能包含字母、数字和 _ . @ -",
     "Username may hold letters, digits and _ . @ - only"),
    ({"username": "ok", "role": "superuser"}, "role", "role"),
    ({"username": "ok", "role": "viewer", "password": "short", "password2": "short"},
     "密码太短：至少 12 个字符", "Password too short: at least 12 characters"),
])
def test_create_names_the_bad_field(admin, form, problem, english):
    data = {"password": "long-enough-pw-1", "password2": "long-enough-pw-1", **form,
            "csrf_token": admin.csrf}
    r = admin.post("/admin/users", data=data)
    assert r.status_code == 400
    assert problem in r.get_data(as_text=True)
    r = admin.post("/admin/users?lang=en", data=data)
    assert r.status_code == 400
    assert english in r.get_data(as_text=True)


def test_creating_an_existing_username_is_a_conflict(admin):
    r = admin.post("/admin/users", data={"username": "viewer", "role": "viewer",
                                         "password": "long-enough-pw-1", "password2": "long-enough-pw-1",
                                         "csrf_token": admin.csrf})
    assert r.status_code == 409


def test_form_without_csrf_token_is_refused(app, admin):
    r = admin.post("/admin/users/viewer/active", data={"active": "0"})
    assert r.status_code == 400
    assert _core(app).repo.get_user("viewer")["active"] is True


def test_role_change_is_audited_with_before_and_after(app, admin):
    r = admin.post("/admin/users/viewer/role", data={"role": "planner", "csrf_token": admin.csrf})
    assert r.status_code == 302
    assert _core(app).repo.get_user("viewer")["role"] == "planner"
    update = [c for c in _changes(app, "viewer") if c["action"] == "update"][-1]
    assert update["user"] == "admin"
    assert json.loads(update["before"])["role"] == "viewer"
    assert json.loads(update["after"])["role"] == "planner"


def test_disabled_account_cannot_log_in_and_enabling_restores_it(app, admin):
    admin.post("/admin/users/inspector/active", data={"active": "0", "csrf_token": admin.csrf})
    assert _core(app).repo.get_user("inspector")["active"] is False
    assert _log_in_as(app, "inspector", password_for("inspector")).status_code == 401
    admin.post("/admin/users/inspector/active", data={"active": "1", "csrf_token": admin.csrf})
    assert _log_in_as(app, "inspector", password_for("inspector")).status_code == 302


def test_disabling_a_logged_in_user_ends_their_session(app, admin):
    c = app.test_client()
    login(c, "planner")
    assert c.get("/admin/users").status_code == 403
    admin.post("/admin/users/planner/active", data={"active": "0", "csrf_token": admin.csrf})
    r = c.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_password_reset_works_and_the_audit_never_holds_the_hash(app, admin):
    r = admin.post("/admin/users/viewer/password",
                   data={"password": "new-pass-99-river", "password2": "new-pass-99-river",
                         "csrf_token": admin.csrf})
    assert r.status_code == 302
    assert _log_in_as(app, "viewer", "new-pass-99-river").status_code == 302
    assert _log_in_as(app, "viewer", password_for("viewer")).status_code == 401
    df = _core(app).repo.table("changes")
    text = " ".join(str(v) for v in df[["before", "after"]].to_numpy().ravel())
    assert "new-pass-99-river" not in text
    assert "pbkdf2:" not in text and "scrypt:" not in text


def test_password_reset_refuses_mismatch(app, admin):
    r = admin.post("/admin/users/viewer/password",
                   data={"password": "new-pass-99-river", "password2": "new-pass-98-river",
                         "csrf_token": admin.csrf})
    assert r.status_code == 400
    assert _log_in_as(app, "viewer", password_for("viewer")).status_code == 302


def test_last_active_admin_cannot_demote_or_disable_themself(app, admin):
    r = admin.post("/admin/users/admin/role", data={"role": "viewer", "csrf_token": admin.csrf})
    assert r.status_code == 409
    r = admin.post("/admin/users/admin/active", data={"active": "0", "csrf_token": admin.csrf})
    assert r.status_code == 409
    row = _core(app).repo.get_user("admin")
    assert row["role"] == "admin" and row["active"] is True


def test_an_admin_may_step_down_when_another_admin_remains(app, admin):
    admin.post("/admin/users/planner/role", data={"role": "admin", "csrf_token": admin.csrf})
    r = admin.post("/admin/users/admin/role", data={"role": "viewer", "csrf_token": admin.csrf})
    assert r.status_code == 302
    assert _core(app).repo.get_user("admin")["role"] == "viewer"
    r = admin.get("/admin/users")  # a role change ends the account's sessions, this one too
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert _log_in_as(app, "admin", password_for("admin")).status_code == 302


def test_unknown_user_is_404_and_bad_active_value_is_400(admin):
    assert admin.post("/admin/users/nobody/role",
                      data={"role": "viewer", "csrf_token": admin.csrf}).status_code == 404
    r = admin.post("/admin/users/viewer/active", data={"active": "maybe",
                                                       "csrf_token": admin.csrf})
    assert r.status_code == 400 and "active" in r.get_data(as_text=True)


def test_audit_log_is_newest_first_and_filters_by_user_action_entity(app, admin):
    admin.post("/admin/users/viewer/role", data={"role": "inspector", "csrf_token": admin.csrf})
    admin.post("/admin/users/viewer/role", data={"role": "planner", "csrf_token": admin.csrf})
    html = admin.get("/admin/audit?user=admin&action=update&entity=user").get_data(as_text=True)
    body = unescape(html.split('<tbody>')[1].split('</tbody>')[0])
    rows = body.count("<tr>")
    assert rows == 2
    afters = [row.rsplit('<td class="ga-json">', 1)[1] for row in body.split("<tr>")[1:]]
    assert '"role": "planner"' in afters[0] and '"role": "inspector"' in afters[1]
    assert "共 2 条" in html


def test_audit_log_pages_and_rejects_bad_page_numbers(app, admin):
    core = _core(app)
    for i in range(60):
        core.repo.update_user("viewer", {"display_name": f"v{i}"}, user="admin")
    first = admin.get("/admin/audit?entity=user&user=admin").get_data(as_text=True)
    assert first.split("<tbody>")[1].count("<tr>") == 50
    assert 'rel="next"' in first and "v59" in first
    second = admin.get("/admin/audit?entity=user&user=admin&page=2").get_data(as_text=True)
    assert 'rel="prev"' in second and "v0" in second and "v59" not in second
    assert admin.get("/admin/audit?page=zero").status_code == 400
    assert admin.get("/admin/audit?page=0").status_code == 400
    assert admin.get("/admin/audit?page=999").status_code == 400
    huge = admin.get("/admin/audit?page=" + "9" * 24)  # past SQLite's 64-bit integers
    assert huge.status_code == 400 and "页码须在 1 到" in huge.get_data(as_text=True)
    english = admin.get("/admin/audit?page=abc&lang=en").get_data(as_text=True)
    assert "The page must be a whole number" in english


def test_admin_sees_admin_links_in_the_header_and_others_do_not(app, admin):
    html = admin.get("/admin/users").get_data(as_text=True)
    assert 'data-endpoint="admin.users"' in html and 'data-endpoint="admin.audit"' in html
    c = app.test_client()
    login(c, "viewer")
    assert 'data-endpoint="admin.users"' not in c.get("/login").get_data(as_text=True)

"""A refused form is answered beside the form that sent it, focused (one autofocus on the
page, and no URL fragment in the form's action: a fragment would cancel autofocus): the
check page, the site's progress form, the layer upload, the ledger import, the password
change, the login and the user administration. Nothing here is saved, so the shared read-only app serves (but
for the failed login, which is counted)."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook

from geoapp.web import create_app

from webutil import csrf_token, login, make_users, password_for


@pytest.fixture(scope="module")
def planner(offline_app):
    c = offline_app.test_client()
    c.csrf = login(c, "planner")
    return c


@pytest.fixture(scope="module")
def admin(offline_app):
    c = offline_app.test_client()
    c.csrf = login(c, "admin")
    return c


def _form(html: str, form_id: str) -> str:
    """The markup of the form with id ``form_id``."""
    start = html.index(f'id="{form_id}"')
    return html[html.rindex("<form", 0, start):html.index("</form>", start)]


def _focused_once(html: str, element_id: str) -> None:
    """``element_id`` carries the page's only autofocus, and can take the focus."""
    assert len(re.findall(r"\sautofocus[\s>=]", html)) == 1
    tag = re.search(rf'<[^>]*\sid="{element_id}"[^>]*>', html).group(0)
    assert " autofocus" in tag and 'tabindex="-1"' in tag and 'role="alert"' in tag


def _no_fragment_actions(html: str) -> None:
    assert not [a for a in re.findall(r'<form[^>]*action="([^"]*)"', html) if "#" in a]


def test_a_refused_point_check_is_in_the_point_form(viewer_client):
    r = viewer_client.get("/check?lon=abc&lat=35.2")
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert 'id="ck-error"' in _form(html, "ck-point-form")
    assert 'id="ck-error"' not in _form(html, "ck-site-form")
    _focused_once(html, "ck-error")


def test_a_refused_site_check_is_in_the_site_form(viewer_client):
    r = viewer_client.get("/check?site=NO-SUCH-SITE")
    assert r.status_code == 404
    html = r.get_data(as_text=True)
    assert 'id="ck-error"' in _form(html, "ck-site-form") and "NO-SUCH-SITE" in html
    assert 'id="ck-error"' not in _form(html, "ck-point-form")
    _focused_once(html, "ck-error")


def test_a_refused_progress_save_is_above_its_form_and_marks_the_field(offline_app, planner):
    site = offline_app.extensions["geoapp"].repo.site("E0005")
    r = planner.post("/sites/E0005/progress", data={
        "csrf_token": planner.csrf, "version": str(site["version"]),
        "classification": site["classification"], "stage": "not_started",
        "planned_start": "2026-05-01", "planned_completion": "2026-01-01"})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    section = html[html.index('id="progress"'):html.index('id="pl-progress-form"')]
    assert 'id="pl-errors"' in section and 'data-field="planned_completion"' in section
    _focused_once(html, "pl-errors")
    _no_fragment_actions(html)
    field = re.search(r'<input[^>]*name="planned_completion"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in field and 'value="2026-01-01"' in field


def test_a_refused_layer_upload_is_under_that_layer(planner):
    r = planner.post("/layers/rivers", content_type="multipart/form-data", data={
        "csrf_token": planner.csrf, "file": (io.BytesIO(b"not json"), "rivers.geojson")})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    after_row = html[html.index("</tr>", html.index('id="layer-rivers"')) + 5:].lstrip()
    assert after_row.startswith('<tr class="ly-outcome">')
    assert 'id="ly-error"' in after_row[:after_row.index("</tr>")]
    assert html.count('id="ly-error"') == 1
    _focused_once(html, "ly-error")
    _no_fragment_actions(html)


def test_a_refused_password_change_is_in_its_form(offline_app):
    c = offline_app.test_client()
    login(c, "viewer")
    page = c.get("/account/password").get_data(as_text=True)
    r = c.post("/account/password", data={
        "csrf_token": csrf_token(page), "current": "not-the-password",
        "password": "a-new-password-0123", "password2": "a-new-password-0123"})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    form = html[html.index('<form method="post" class="ga-form"'):]
    assert 'id="form-error"' in form[:form.index("</form>")]
    _focused_once(html, "form-error")


def test_a_refused_login_is_focused_in_the_form(instance):
    app = create_app({"INSTANCE_PATH": str(instance), "TESTING": True, "TILES": "none"})
    make_users(app)  # a failed login is a write: not on the shared app
    c = app.test_client()
    page = c.get("/login").get_data(as_text=True)
    assert len(re.findall(r"\sautofocus[\s>=]", page)) == 1  # the user name, before any error
    r = c.post("/login", data={"csrf_token": csrf_token(page), "username": "viewer",
                               "password": "wrong-" + password_for("viewer")})
    html = r.get_data(as_text=True)
    assert 'id="form-error"' in html[html.index("<form"):html.index("</form>")]
    _focused_once(html, "form-error")


def test_a_refused_new_account_is_in_the_create_form_and_keeps_the_input(admin):
    r = admin.post("/admin/users", data={
        "csrf_token": admin.csrf, "username": "new-clerk", "display_name": "王 <b>",
        "role": "planner", "password": "first-password-0123",
        "password2": "other-password-0123"})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    form = _form(html, "create-user")
    assert 'id="form-error"' in form and "两次输入的密码不一致" in form
    assert 'value="new-clerk"' in form and 'value="王 &lt;b&gt;"' in form
    assert '<option value="planner" selected>' in form
    assert "first-password-0123" not in html and "other-password-0123" not in html
    _focused_once(html, "form-error")
    _no_fragment_actions(html)


def test_a_refused_password_reset_is_in_that_accounts_row(admin):
    r = admin.post("/admin/users/viewer/password", data={
        "csrf_token": admin.csrf, "password": "first-password-0123",
        "password2": "other-password-0123"})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    row = html[html.index('id="user-viewer"'):]
    row = row[:row.index("</tr>")]
    assert 'data-form="password-viewer"' in row and "<details open>" in row
    _focused_once(html, "form-error")


def test_a_refusal_for_an_unknown_account_is_shown_on_top(admin):
    r = admin.post("/admin/users/nobody-here/role", data={"csrf_token": admin.csrf,
                                                           "role": "viewer"})
    assert r.status_code == 404
    html = r.get_data(as_text=True)
    assert html.index('id="form-error"') < html.index('id="users"')
    _focused_once(html, "form-error")



def test_a_refused_ledger_import_is_focused_above_its_form(planner):
    exported = planner.get("/ledger/export")
    assert exported.status_code == 200
    wb = load_workbook(io.BytesIO(exported.data))
    wb.active.cell(row=7, column=9).value = "也许"  # not a yes/no: the file is refused whole
    body = io.BytesIO()
    wb.save(body)
    body.seek(0)
    r = planner.post("/ledger/import", content_type="multipart/form-data",
                     data={"csrf_token": planner.csrf, "file": (body, "bad.xlsx")})
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    section = html[html.index('id="ledger-import"'):html.index('id="ledger-export"')]
    assert section.index('id="ledger-problems"') < section.index("<form")
    _focused_once(html, "ledger-problems")

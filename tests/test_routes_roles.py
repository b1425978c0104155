"""Walk every registered route as anonymous and as each role.

Data-driven from ``app.url_map``, so a route added later is covered without editing this
file: anonymous users are sent to the login page (pages) or get 401 (/api, /ogc); a role a route
does not allow (its ``role_required`` wrapper carries ``.required_roles``) gets 403; nothing
answers 500. Path parameters are filled with real ids from the database.
"""

from __future__ import annotations

import pytest

from geoapp.web.auth import PUBLIC_ENDPOINTS

from webutil import ROLES, csrf_token, login

SKIP_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def app(make_module_app):
    """An app of the module's own: the walk posts to every route and fails logins."""
    return make_module_app(INTRANET=True, TILES="none")


def _param_values(app) -> dict[str, object]:
    """A real value for each path parameter name routes use; unknown names get a site id."""
    repo = app.extensions["geoapp"].repo
    site_id = str(repo.sites("enterprise", columns=["id"])["id"].iloc[0])
    return {"site_id": site_id, "id": site_id, "username": "viewer", "user": "viewer",
            "site_type": "enterprise", "layer": "counties", "name": "counties"}


def _routes(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every rule but static files; logout last (it ends the
    session the walk is using)."""
    values = _param_values(app)
    out = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            args = {}
            for arg in rule.arguments:
                conv = type(rule._converters[arg]).__name__
                args[arg] = 1 if conv in ("IntegerConverter", "FloatConverter") else \
                    values.get(arg, values["site_id"])
            url = rule.build(args, append_unknown=False)[1]
            for method in sorted(rule.methods - SKIP_METHODS):
                out.append((rule.endpoint, method, url))
    return sorted(out, key=lambda r: (r[0] == "auth.logout", r[0], r[1]))


def _send(client, method: str, url: str, token: str):
    if method == "GET":
        return client.get(url)
    return client.open(url, method=method, data={"csrf_token": token},
                       headers={"X-CSRFToken": token})


def _allowed(view, role: str) -> bool:
    required = getattr(view, "required_roles", None)
    return not required or role == "admin" or "viewer" in required or role in required


def test_the_walk_finds_the_known_pages(app):
    endpoints = {r[0] for r in _routes(app)}
    for known in ("main.overview", "main.healthz", "auth.login", "admin.users", "admin.audit"):
        assert known in endpoints


def test_anonymous_is_sent_to_login_everywhere_but_public_routes(app):
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    problems = []
    for endpoint, method, url in _routes(app):
        r = _send(client, method, url, token)
        r.close()
        if endpoint in PUBLIC_ENDPOINTS:
            ok = r.status_code < 500
        elif url.startswith(("/api/", "/ogc/")) or url == "/ogc":
            ok = r.status_code == 401
        else:
            ok = r.status_code == 302 and "/login" in r.headers.get("Location", "")
        if not ok:
            problems.append((method, url, r.status_code))
    assert problems == []


def test_static_files_need_no_login(app):
    r = app.test_client().get("/static/css/geoapp.css")
    assert r.status_code == 200
    r.close()


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_403_where_not_allowed_and_never_a_500(app, role):
    client = app.test_client()
    token = login(client, role)
    problems = []
    for endpoint, method, url in _routes(app):
        view = app.view_functions[endpoint]
        r = _send(client, method, url, token)
        r.close()
        status = r.status_code
        if status >= 500:
            problems.append((method, url, status, "server error"))
        elif endpoint in PUBLIC_ENDPOINTS or endpoint == "auth.logout":
            pass
        elif not _allowed(view, role):
            if status != 403:
                problems.append((method, url, status, "expected 403"))
        elif status in (401, 403) or (status == 302 and "/login" in r.headers.get("Location",
                                                                                  "")):
            problems.append((method, url, status, "refused an allowed role"))
        if endpoint == "auth.logout":
            token = login(client, role)
    assert problems == []


def test_admin_only_routes_declare_their_role(app):
    for endpoint in ("admin.users", "admin.audit", "admin.create_user", "admin.change_role",
                     "admin.set_active", "admin.reset_password"):
        assert app.view_functions[endpoint].required_roles == ("admin",)

"""Two ``geoapp serve`` processes on one PostGIS database, as behind a load balancer: each
with its own instance folder, both with the same ``GEOAPP_STORAGE_BACKEND=postgis``,
``GEOAPP_DATABASE_URL`` and ``SECRET_KEY`` (sessions and CSRF tokens are signed cookies).

Over real HTTP, through the login form with its CSRF token, a change made through server A
is seen by server B at its next request: a login holds on both; an account made on A logs in
on B at once, and A's role change or disabling ends its session on B; a logout on A ends that
cookie on B; an API token made by the command line works on both until A revokes it; a
progress edit and a layer upload made on A are read on B (its rule engine and OGC frames
follow the change counter in the database); two planners saving one site with the same
version at the same moment, one on each server, get one save and one 409, nothing lost.
Before each change B has already answered the same reads on several request threads, so
anything it kept in its process would show.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator

import geopandas as gpd
import pandas as pd
import pytest
from serveutil import Browser, Server, form_fields, run_geoapp
from shapely.geometry import LineString

from geoapp.config import load_settings
from geoapp.services import accounts, open_geoapp
from geoapp.storage.postgis import PostgisRepository

from pg import TEMPLATE_DB, PgServer
from webutil import make_users, password_for

pytestmark = pytest.mark.slow

#: A livestock farm here passes every rule of the Jiaozuo data; the nearest river (沁河) is
#: about 2 km away, beyond the 400 m of ``riverside_livestock``.
FARM = (113.30, 35.10)
CHECK = f"/api/check?lon={FARM[0]}&lat={FARM[1]}&site_type=livestock_farm"
#: The second planner, made with the accounts of each role.
PLANNER_TWO = "planner-two"
#: How often a server is asked before a change, so that several of its request threads read.
WARM = 4


@pytest.fixture(scope="module")
def database(pg_server: PgServer, tmp_path_factory) -> Iterator[str]:
    """A database of this module holding the embedded Jiaozuo data (built and flagged as
    ``geoapp serve`` builds it on first start) and one account per role."""
    name = f"two_servers_{uuid.uuid4().hex[:10]}"
    pg_server.psql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    url = pg_server.url(name)
    settings = load_settings(tmp_path_factory.mktemp("two-servers-build"),
                             overrides={"STORAGE_BACKEND": "postgis", "DATABASE_URL": url},
                             environ={})
    core = open_geoapp(settings)
    try:
        make_users(core)
        accounts.create_user(core, PLANNER_TWO, password_for(PLANNER_TWO), "planner",
                             by="test")
    finally:
        core.repo.close()
    yield url
    pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def settings(database: str) -> dict[str, str]:
    """What every server of the deployment is given: one database and one secret."""
    return {"GEOAPP_STORAGE_BACKEND": "postgis", "GEOAPP_DATABASE_URL": database,
            "GEOAPP_SECRET_KEY": secrets.token_urlsafe(48), "GEOAPP_TILES": "none",
            "GEOAPP_INTRANET": "true"}


@pytest.fixture(scope="module")
def servers(settings: dict[str, str], tmp_path_factory) -> Iterator[tuple[Server, Server]]:
    """Servers A and B: two processes, two instance folders, the same settings."""
    started: list[Server] = []
    try:
        for name in ("a", "b"):
            started.append(Server.start(tmp_path_factory.mktemp(f"server-{name}"), settings))
        deadline = time.time() + 180
        for server in started:
            server.wait(deadline)
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="module")
def store(database: str) -> Iterator[PostgisRepository]:
    """The shared database read directly, to see what was stored."""
    repo = PostgisRepository(database)
    yield repo
    repo.close()


def _browser(server: Server, username: str) -> Browser:
    b = Browser()
    r = b.login(server.base, username, password_for(username))
    assert r.status_code == 302, r.text[:500]
    return b


@pytest.fixture(scope="module")
def admin(servers) -> Iterator[Browser]:
    """The administrator, logged in on server A."""
    b = _browser(servers[0], "admin")
    yield b
    b.close()


def _warm(browser: Browser, server: Server, path: str, status: int = 200) -> None:
    for _ in range(WARM):
        r = browser.get(server.base, path)
        assert r.status_code == status, (server.base, path, r.status_code)


# --------------------------------------------------------------------------- one store
def test_both_servers_use_the_shared_database_and_a_login_on_one_holds_on_the_other(
        servers, admin, store):
    a, b = servers
    built = store.meta()["built_at"]
    for server in servers:
        assert not (server.instance / "geoapp.gpkg").exists()  # nothing of its own
        r = admin.get(server.base, "/healthz")  # the admin's cookie, from A's login form
        assert r.status_code == 200
        assert r.json().get("database", {}).get("built_at") == built, r.json()  # as admin
    assert a.base != b.base
    anonymous = Browser()
    assert anonymous.get(b.base, "/healthz").json() == {"status": "ok"}
    assert anonymous.get(b.base, CHECK).status_code == 401


# --------------------------------------------------------------------------- 1. accounts
def test_an_account_made_on_a_logs_in_on_b_and_a_role_change_or_disabling_ends_it_there(
        servers, admin):
    a, b = servers
    name, password = "clerk-two", "river-basin-clerk-2026"
    _warm(admin, b, "/admin/users")
    assert f">{name}<" not in admin.get(b.base, "/admin/users").text
    # The form's CSRF token comes from B and is posted to A: both sign with one secret.
    r = admin.post(a.base, "/admin/users", {
        "csrf_token": admin.csrf(b.base), "username": name, "display_name": "王五",
        "role": "viewer", "password": password, "password2": password})
    assert r.status_code == 302, r.text[:500]
    assert f">{name}<" in admin.get(b.base, "/admin/users").text

    clerk = Browser()
    assert clerk.login(b.base, name, password).status_code == 302
    _warm(clerk, b, CHECK)
    _warm(clerk, b, "/layers", 403)  # a viewer does not replace layers

    r = admin.post(a.base, f"/admin/users/{name}/role",
                   {"csrf_token": admin.csrf(a.base), "role": "planner"})
    assert r.status_code == 302
    assert clerk.get(b.base, CHECK).status_code == 401  # the viewer's session ended
    assert clerk.login(b.base, name, password).status_code == 302
    assert clerk.get(b.base, "/layers").status_code == 200  # now a planner
    _warm(clerk, b, CHECK)

    r = admin.post(a.base, f"/admin/users/{name}/active",
                   {"csrf_token": admin.csrf(a.base), "active": "0"})
    assert r.status_code == 302
    assert clerk.get(b.base, CHECK).status_code == 401
    assert clerk.get(b.base, "/layers").status_code == 302  # to the login page
    refused = clerk.login(b.base, name, password)
    assert refused.status_code != 302 and clerk.get(b.base, CHECK).status_code == 401


# --------------------------------------------------------------------------- 2. logout
def test_a_logout_on_a_ends_that_cookie_on_b(servers):
    a, b = servers
    inspector = _browser(a, "inspector")
    saved = inspector.cookie()
    elsewhere = Browser.with_cookie(saved)  # the same cookie, sent to B
    try:
        _warm(elsewhere, b, CHECK)
        _warm(inspector, a, CHECK)
        r = inspector.post(a.base, "/logout", {"csrf_token": inspector.csrf(a.base)})
        assert r.status_code == 302
        assert elsewhere.get(b.base, CHECK).status_code == 401
        r = elsewhere.get(b.base, "/")
        assert r.status_code == 302 and "/login" in r.headers["Location"]
        assert Browser.with_cookie(saved).get(a.base, CHECK).status_code == 401
    finally:
        inspector.close()
        elsewhere.close()


def test_a_token_made_by_the_command_line_works_on_both_and_a_revocation_on_a_holds_on_b(
        servers, settings, admin, tmp_path):
    a, b = servers
    made = run_geoapp(tmp_path / "operator", settings, "users", "token", "--username",
                      "viewer", "--name", "QGIS 二号")
    token = made.stdout.strip().splitlines()[-1]
    token_id = re.search(r"token (\d+) for viewer", made.stderr).group(1)
    gis = Browser()
    gis.http.headers["Authorization"] = f"Bearer {token}"
    try:
        for server in servers:
            _warm(gis, server, CHECK)
        row = admin.get(b.base, "/admin/users").text.split(f'id="token-{token_id}"')[1]
        assert 'data-state="active"' in row.split(">")[0] and "QGIS 二号" in row
        r = admin.post(a.base, f"/admin/tokens/{token_id}/revoke",
                       {"csrf_token": admin.csrf(a.base)})
        assert r.status_code == 302
        r = gis.get(b.base, CHECK)
        assert r.status_code == 401 and "invalid_token" in r.headers["WWW-Authenticate"]
    finally:
        gis.close()


# --------------------------------------------------------------------------- 3. an edit
def _relocation_row(browser: Browser, server: Server, site_id: str) -> dict:
    r = browser.get(server.base, "/api/relocation")
    assert r.status_code == 200
    return next(row for row in r.json()["sites"] if row["id"] == site_id)


def _ogc_item(browser: Browser, server: Server, collection: str, fid: str) -> dict:
    r = browser.get(server.base, f"/ogc/collections/{collection}/items/{fid}?f=json")
    assert r.status_code == 200, r.text[:300]
    return r.json()["properties"]


def test_a_progress_edit_on_a_is_read_on_b_at_once(servers):
    a, b = servers
    site = "E0002"
    planner, reader = _browser(a, "planner"), _browser(b, "admin")
    try:
        before = _relocation_row(reader, b, site)
        for _ in range(WARM):  # B reads the site every way it is read
            assert _relocation_row(reader, b, site)["progress"] == before["progress"]
            assert _ogc_item(reader, b, "enterprises", site)["progress"] == before["progress"]
        assert reader.get(b.base, f"/sites/{site}").status_code == 200

        form = form_fields(planner.get(a.base, f"/sites/{site}").text, "pl-progress-form")
        assert form["progress"] == before["progress"]
        text = "二号服务器应即见：拆除设备已完成"
        form.update(progress=text, remarks="备注：设备清单已归档")
        r = planner.post(a.base, f"/sites/{site}/progress", form)
        assert r.status_code == 302, r.text[:500]

        row = _relocation_row(reader, b, site)
        assert (row["progress"], row["remarks"]) == (text, "备注：设备清单已归档")
        assert _ogc_item(reader, b, "enterprises", site)["progress"] == text
        seen = form_fields(reader.get(b.base, f"/sites/{site}").text, "pl-progress-form")
        assert seen["progress"] == text and seen["version"] == str(int(form["version"]) + 1)
    finally:
        planner.close()
        reader.close()


# --------------------------------------------------------------------------- 4. a layer
def _geojson(frame: gpd.GeoDataFrame) -> bytes:
    return frame.to_json(ensure_ascii=False).encode()


def _upload(browser: Browser, server: Server, layer: str, body: bytes) -> None:
    r = browser.post(server.base, f"/layers/{layer}", {"csrf_token": browser.csrf(server.base)},
                     files={"file": (f"{layer}.geojson", body, "application/geo+json")})
    assert r.status_code == 200 and 'id="ly-error"' not in r.text, r.text[-1500:]


def _matched(browser: Browser, server: Server, collection: str) -> int:
    r = browser.get(server.base, f"/ogc/collections/{collection}/items?limit=1&f=json")
    assert r.status_code == 200
    return r.json()["numberMatched"]


def test_a_layer_upload_on_a_changes_bs_verdict_at_its_next_check(servers, store):
    a, b = servers
    rivers = store.layer("rivers")
    # A new river 100 m east of the farm, north to south (0.0011° of longitude at 35.1°N).
    x = FARM[0] + 0.0011
    new = gpd.GeoDataFrame({"id": ["R90"], "name": ["试验新河"], "name_en": ["Test river"],
                            "level": [rivers["level"].iloc[0]], "source": ["survey"]},
                           geometry=[LineString([(x, FARM[1] - 0.01), (x, FARM[1] + 0.01)])],
                           crs=4326)
    more = gpd.GeoDataFrame(pd.concat([rivers, new], ignore_index=True), crs=4326)
    planner, inspector = _browser(a, "planner"), _browser(b, "inspector")
    try:
        for _ in range(WARM):  # B's engine and OGC frames built on the old rivers
            assert inspector.get(b.base, CHECK).json()["verdict"] == "pass"
            assert _matched(inspector, b, "rivers") == len(rivers)

        _upload(planner, a, "rivers", _geojson(more))
        got = inspector.get(b.base, CHECK).json()
        assert got["verdict"] == "fail"
        [hit] = got["hits"]
        assert (hit["rule_id"], hit["feature_id"]) == ("riverside_livestock", "R90")
        assert 90 < hit["distance_m"] < 110
        assert _matched(inspector, b, "rivers") == len(rivers) + 1
    finally:
        planner.close()
        inspector.close()


# --------------------------------------------------------------------------- 5. two saves
def test_two_saves_of_one_site_at_once_on_two_servers_one_succeeds_one_gets_409(servers,
                                                                                store):
    a, b = servers
    site = "E0003"
    first, second = _browser(a, "planner"), _browser(b, PLANNER_TWO)
    try:
        version = int(store.site(site)["version"])
        seen = len(store.history(site, entity="site"))
        forms = []
        for browser, server, words in ((first, a, "甲"), (second, b, "乙")):
            form = form_fields(browser.get(server.base, f"/sites/{site}").text,
                               "pl-progress-form")
            assert form["version"] == str(version)
            forms.append({**form, "progress": f"{words}：设备拆除进度"})
        barrier = threading.Barrier(2)
        answers: list = [None, None]
        spans: list = [None, None]

        def save(i: int, browser: Browser, server: Server) -> None:
            barrier.wait()
            start = time.monotonic()
            answers[i] = browser.post(server.base, f"/sites/{site}/progress", forms[i])
            spans[i] = (start, time.monotonic())

        threads = [threading.Thread(target=save, args=(0, first, a)),
                   threading.Thread(target=save, args=(1, second, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
        assert max(s[0] for s in spans) < min(s[1] for s in spans)  # the two overlapped
        codes = [r.status_code for r in answers]
        assert sorted(codes) == [302, 409], codes
        won = codes.index(302)
        lost = 1 - won
        stored = store.site(site)
        assert stored["progress"] == forms[won]["progress"]
        assert int(stored["version"]) == version + 1
        history = store.history(site, entity="site")
        assert len(history) == seen + 1  # one save, no lost or doubled write
        assert history[-1]["user"] == ("planner", PLANNER_TWO)[won]

        # The refused planner sees the other change beside their own input, kept.
        page = answers[lost].text
        kept = form_fields(page, "pl-progress-form")
        assert kept["progress"] == forms[lost]["progress"]
        assert kept["version"] == str(version + 1)
        assert forms[won]["progress"] in page
        # Saving it again is a decision taken after seeing the other change: it holds.
        browser, server = ((first, a), (second, b))[lost]
        r = browser.post(server.base, f"/sites/{site}/progress", kept)
        assert r.status_code == 302, r.text[:500]
        stored = store.site(site)
        assert stored["progress"] == forms[lost]["progress"]
        assert int(stored["version"]) == version + 2
        last = store.history(site, entity="site")[-1]
        assert last["before"]["progress"] == forms[won]["progress"]
        assert last["after"]["progress"] == forms[lost]["progress"]
    finally:
        first.close()
        second.close()

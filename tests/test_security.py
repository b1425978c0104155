"""Security: headers on every response, the 413 message, the audit trail of logins, failed
logins, edits, imports and exports, and no secret or password hash in logs or exports."""

from __future__ import annotations

import io
import logging
import re
import zipfile

import geopandas as gpd
import pytest
from flask import Flask
from shapely.geometry import box

from geoapp.services.layer_import import import_layer
from geoapp.services.ledger import export_ledger
from geoapp.web import security
from geoapp.web.security import SecurityHeaders, content_security_policy

from webutil import csrf_token, login, password_for

SECRET = "s3cret-" + "k" * 40


@pytest.fixture
def app(make_app):
    """An app of its own (a known secret key, 1 MB uploads), for tests that write."""
    return make_app(INTRANET=True, TILES="none", SECRET_KEY=SECRET, MAX_UPLOAD_MB=1)


@pytest.fixture(scope="module")
def planner(offline_app):
    """A planner's client of the shared read-only app."""
    client = offline_app.test_client()
    login(client, "planner")
    return client


@pytest.fixture(scope="module")
def admin(offline_app):
    """An admin's client of the shared read-only app."""
    client = offline_app.test_client()
    login(client, "admin")
    return client


def core(app):
    return app.extensions["geoapp"]


def _changes(app):
    return core(app).repo.table("changes")


@pytest.mark.parametrize("url", ["/login", "/", "/check", "/api/check?lon=113.2&lat=35.2",
                                 "/api/check?lon=x", "/no-such-page", "/static/css/geoapp.css",
                                 "/relocation.csv", "/healthz"])
def test_every_response_carries_the_security_headers(planner, url):
    r = planner.get(url)
    csp = r.headers["Content-Security-Policy"]
    for directive in ("frame-ancestors 'none'", "base-uri 'self'", "form-action 'self'",
                      "connect-src 'self'", "object-src 'none'"):
        assert directive in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "same-origin"
    r.close()


def test_csp_allows_the_configured_tile_host_and_no_cdn_in_intranet_mode():
    osm = content_security_policy("osm", intranet=True)
    assert "img-src 'self' data: blob: https://tile.openstreetmap.org" in osm
    assert "jsdelivr" not in osm
    script_src = osm.split("script-src")[1].split(";")[0]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "'nonce-abc'" in content_security_policy("osm", intranet=True, nonce="abc")
    assert "autonavi" in content_security_policy("amap", intranet=True)
    assert "tianditu.gov.cn" in content_security_policy("tianditu", intranet=True)
    assert "https" not in content_security_policy("none", intranet=True)
    assert "cdn.jsdelivr.net" in content_security_policy("osm", intranet=False)
    assert "https" not in content_security_policy("local", intranet=False)  # assets are ours


def test_each_page_gets_its_own_nonce_on_every_inline_script_and_in_the_header(planner):
    nonces = []
    for _ in range(2):
        r = planner.get("/")
        csp = r.headers["Content-Security-Policy"]
        script_src = csp.split("script-src")[1].split(";")[0]
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        nonce = re.search(r"'nonce-([A-Za-z0-9_-]{16,})'", script_src).group(1)
        html = r.get_data(as_text=True)
        inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
        assert inline and all(f'nonce="{nonce}"' in attrs for attrs in inline), inline
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


@pytest.mark.parametrize("url", ["/", "/login", "/admin/audit", "/api/check?lon=113.2&lat=35.2",
                                 "/healthz", "/no-such-page"])
def test_pages_and_json_are_never_stored_by_a_cache(admin, url):
    r = admin.get(url)
    assert r.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in r.headers
    static = admin.get("/static/css/geoapp.css")
    assert static.headers.get("Cache-Control") != "no-store"
    static.close()


def test_hsts_is_sent_when_hsts_max_age_is_set():
    wrapped = SecurityHeaders(lambda env, start: start("200 OK", []) or [b""], "none", True,
                              hsts_max_age=31536000)
    seen = {}
    wrapped({"PATH_INFO": "/"}, lambda status, headers, exc=None: seen.update(headers))
    assert seen["Strict-Transport-Security"] == "max-age=31536000"
    off = SecurityHeaders(lambda env, start: start("200 OK", []) or [b""], "none", True)
    seen.clear()
    off({"PATH_INFO": "/"}, lambda status, headers, exc=None: seen.update(headers))
    assert "Strict-Transport-Security" not in seen


def test_upload_over_the_limit_names_the_limit_on_the_page(app):
    client = app.test_client()
    token = login(client, "planner")
    body = (b"--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
            + token.encode() + b"\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; "
            b"filename=\"x.zip\"\r\n\r\n" + b"x" * (1024 * 1024 + 10) + b"\r\n--b--\r\n")
    r = client.post("/layers/urban_core", data=body,
                    headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413
    assert "1 MB" in r.get_data(as_text=True)


def test_logins_and_failed_logins_are_audited(app):
    client = app.test_client()
    before = int(_changes(app)["id"].max())
    page = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"username": "planner", "password": "wrong-password",
                                "csrf_token": csrf_token(page)})
    login(client, "planner")
    new = _changes(app)
    new = new[new["id"] > before]
    actions = list(new["action"])
    assert any("fail" in a for a in actions), actions
    assert any(a == "login" for a in actions), actions
    assert set(new["user"]) == {"planner"}


def test_edits_are_audited_with_user_and_before_after(app):
    repo = core(app).repo
    site = repo.site(str(repo.sites("enterprise", columns=["id"])["id"].iloc[0]))
    repo.update_site(site["id"], {"name": "新名称"}, user="planner",
                     expected_version=int(site["version"]))
    last = repo.history(site["id"], "site")[-1]
    assert last["user"] == "planner" and last["action"] == "update"
    assert "新名称" in str(last["after"])


@pytest.mark.parametrize("url", ["/relocation.csv", "/relocation.xlsx"])
def test_every_download_is_audited_as_an_export(app, url):
    client = app.test_client()
    login(client, "planner")
    before = int(_changes(app)["id"].max())
    r = client.get(url)
    assert r.status_code == 200
    new = _changes(app)
    new = new[new["id"] > before]
    assert list(new["action"]) == ["export"]
    assert new["user"].iat[0] == "planner" and url in new["after"].iat[0]
    admin = app.test_client()
    login(admin, "admin")
    assert url in admin.get("/admin/audit?action=export").get_data(as_text=True)


def test_a_refused_download_leaves_no_export_row(app):
    client = app.test_client()
    login(client, "viewer")
    before = int(_changes(app)["id"].max())
    r = client.get("/relocation.csv?year=abc")
    assert r.status_code == 400
    assert int(_changes(app)["id"].max()) == before


@pytest.mark.slow  # the new layer re-flags every site (a rule engine build)
def test_layer_import_is_audited(app, tmp_path):
    path = tmp_path / "zone.geojson"
    gpd.GeoDataFrame({"id": ["Z1"], "name": ["测试"], "source": ["t"]},
                     geometry=[box(113.2, 35.2, 113.22, 35.22)], crs=4326).to_file(path)
    import_layer(core(app), "urban_core", path, user="planner")
    rows = core(app).repo.history("urban_core", "layer")
    assert [(r["action"], r["user"]) for r in rows[-2:]] == [("replace", "planner"),
                                                            ("import", "planner")]


def test_no_secret_or_password_hash_in_logs_or_exports(app, tmp_path):
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep(level=logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        client = app.test_client()
        client.post("/login", data={"username": "admin", "password": "bad"})
        token = login(client, "admin")
        client.post("/admin/users/planner/password",
                    data={"csrf_token": token, "password": "new-pass-12345",
                          "confirm": "new-pass-12345"})
        outputs = [client.get(u).data for u in ("/relocation.csv", "/relocation.xlsx",
                                                "/admin/audit", "/admin/users",
                                                "/api/relocation")]
        export_ledger(core(app), tmp_path / "ledger.xlsx")
        outputs.append((tmp_path / "ledger.xlsx").read_bytes())
        core(app).repo.backup(tmp_path / "copy.gpkg")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    hashes = [core(app).repo.user_with_hash(u)["password_hash"]
              for u in ("viewer", "inspector", "planner", "admin")]
    secrets = [SECRET, *hashes, password_for("admin"), "new-pass-12345"]
    texts = [*records, *(_unzipped(o) for o in outputs)]
    for secret in secrets:
        for text in texts:
            assert secret not in text
    audit = _changes(app).astype(str).to_csv()
    for secret in secrets:
        assert secret not in audit


def _unzipped(data: bytes) -> str:
    """Text of a response, or of every member of an XLSX (a zip of XML)."""
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return "".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())
    return data.decode("utf-8", "replace")


def test_security_init_registers_the_openapi_route():
    app = Flask("t")
    security.init_app(app)
    assert "openapi.document" in app.view_functions

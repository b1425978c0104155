"""The web app on the embedded data, through Flask's test client."""

from __future__ import annotations

import json
import re

import pytest

from webutil import login


@pytest.fixture(scope="module")
def app(make_module_app):
    return make_module_app(INTRANET=True)


@pytest.fixture(scope="module")
def client(app):
    c = app.test_client()
    c.csrf = login(c, "viewer")
    return c


def test_healthz_tells_only_admins_more_than_ok(app, client):
    r = client.get("/healthz")  # a viewer: no version, city or build time
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}
    admin = app.test_client()
    login(admin, "admin")
    body = admin.get("/healthz").get_json()
    assert body["status"] == "ok"
    assert body["city"] == "焦作市"


def test_overview_embeds_the_map_in_the_page_not_an_iframe(client):
    r = client.get("/")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "<iframe" not in html
    assert re.search(r'class="folium-map" id="map_[0-9a-f]+"', html)
    assert "生态环境一张图" in html
    # every county by name, and the canal
    for name in ("解放区", "山阳区", "孟州市", "示范区", "南水北调中线总干渠"):
        # folium writes GeoJSON with ASCII escapes
        assert name in html or json.dumps(name)[1:-1] in html, name


def test_intranet_mode_serves_every_script_and_stylesheet_locally(client):
    html = client.get("/").get_data(as_text=True)
    refs = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert refs
    assert [u for u in refs if u.startswith(("http:", "https:", "//"))] == []
    for u in refs:
        r = client.get(u)
        r.close()
        assert r.status_code == 200, u


def test_unknown_page_is_a_404_page_and_json_under_api(client):
    r = client.get("/no-such-page")
    assert r.status_code == 404
    assert "未找到" in r.get_data(as_text=True)
    r = client.get("/api/no-such-thing")
    assert r.status_code == 404
    assert r.get_json()["error"] == "not_found"

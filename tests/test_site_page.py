"""/sites/<id>: ledger attributes with Chinese labels, live hits, change history, 404."""

from __future__ import annotations

import pytest

from geoapp.web import create_app

from webutil import login, make_users


@pytest.fixture
def app(instance):
    app = create_app({"INSTANCE_PATH": str(instance), "INTRANET": True, "TESTING": True,
                      "TILES": "none"})
    make_users(app)
    return app


@pytest.fixture
def client(app):
    c = app.test_client()
    login(c, "viewer")
    return c


def test_enterprise_page_shows_ledger_fields_with_chinese_labels(client):
    r = client.get("/sites/E0001")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for label, value in (("统一社会信用代码", "91410803MAYY9GXF5E"), ("整治分类", "搬迁升级"),
                         ("进度阶段", "已验收销号"), ("有无安全评价", "有"),
                         ("有无节能审查", "无"), ("辖区", "中站区")):
        block = html[html.index(f"<dt>{label}</dt>"):]
        assert block[:200].split("<dd>")[1].startswith(value), label
    assert "classification" not in html.split('class="st-attrs"')[1].split("</dl>")[0] \
        .replace('data-field="classification"', "")


def test_site_page_lists_current_hits_from_a_live_check(client):
    html = client.get("/sites/F0002").get_data(as_text=True)
    assert 'data-rule="riverside_livestock"' in html
    assert "群英河" in html and "69.0" in html
    assert 'data-verdict="fail"' in html


def test_history_shows_who_and_before_and_after_per_field(app, client):
    repo = app.extensions["geoapp"].repo
    site = repo.site("E0002")
    repo.update_site("E0002", {"stage": "accepted", "progress": "已验收"}, user="planner",
                     expected_version=site["version"])
    html = client.get("/sites/E0002").get_data(as_text=True)
    history = html[html.index('id="history"'):html.index('id="inspections"')]
    assert "planner" in history
    assert "<td>进度阶段</td><td>已完成</td><td>已验收销号</td>" in history
    assert "<td>进展情况</td>" in history and "已验收" in history


def test_unknown_site_is_a_404_page(client):
    r = client.get("/sites/NOPE")
    assert r.status_code == 404
    html = r.get_data(as_text=True)
    assert "NOPE" in html and "Traceback" not in html


def test_site_page_needs_a_login(app):
    r = app.test_client().get("/sites/E0001")
    assert r.status_code == 302 and "/login" in r.headers["Location"]

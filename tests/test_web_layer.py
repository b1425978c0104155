"""The thin web layer: downloads through one helper, pages that read counts and the audit log
from the store, maps built by the services in the page's language, /weekly's default week."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest

from geoapp.domain.bulletin import IsoWeek
from geoapp.services import weekly
from geoapp.storage.base import Repository
from geoapp.web.common import content_disposition

from webutil import login

FARM = (113.19032, 35.299646)  # livestock farm F0002, 69 m from the 群英河


@pytest.fixture
def app(make_app):
    return make_app(INTRANET=True, TILES="none")


def _core(app):
    return app.extensions["geoapp"]


# -- downloads -------------------------------------------------------------------------------
def test_a_chinese_file_name_gets_filename_star_beside_an_ascii_fallback():
    value = content_disposition("焦作市散乱污台账.csv", ascii_name="workshops.csv")
    assert value.startswith('attachment; filename="workshops.csv"; ')
    assert unquote(value.split("filename*=UTF-8''")[1]) == "焦作市散乱污台账.csv"
    fallback = content_disposition("焦作市企业整治工作台账.xlsx")
    assert 'filename="download.xlsx"' in fallback and "filename*=UTF-8''" in fallback


def test_an_ascii_file_name_is_quoted_and_nothing_in_a_name_can_break_the_header():
    assert content_disposition("programme-2019Q3.xlsx") == \
        'attachment; filename="programme-2019Q3.xlsx"'
    assert content_disposition("map.png", inline=True) == 'inline; filename="map.png"'
    bad = content_disposition('a"b\\c/d\r\ne.txt')
    assert bad == 'attachment; filename="abcde.txt"'


def test_downloads_are_never_cached_and_audited_under_the_name_the_user_saves(app):
    c = app.test_client()
    login(c, "viewer")
    r = c.get("/workshops/register.csv")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"  # one charset, not two
    cd = r.headers["Content-Disposition"]
    assert cd.startswith('attachment; filename="workshops.csv"; filename*=UTF-8\'\'')
    rows, _ = _core(app).repo.audit_page({"action": "export", "user": "viewer"}, offset=0,
                                         limit=1)
    assert json.loads(rows[0]["after"])["file"] == "焦作市散乱污台账.csv"


def test_an_inline_bulletin_file_is_shown_and_not_audited_as_a_download(app):
    c = app.test_client()
    login(c, "viewer")
    r = c.get("/weekly/2026-W47/bulletin.txt")
    assert r.status_code == 200 and r.headers["Content-Disposition"].startswith("inline;")
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert _core(app).repo.audit_page({"action": "export"}, offset=0, limit=1)[1] == 0
    r = c.get("/weekly/2026-W47/bulletin.txt?download=1")
    assert r.headers["Content-Disposition"] == 'attachment; filename="2026-W47-bulletin.txt"'
    assert _core(app).repo.audit_page({"action": "export"}, offset=0, limit=1)[1] == 1


# -- pages read summaries from the store -----------------------------------------------------
def test_the_layer_page_counts_features_without_reading_any_layer(app, monkeypatch):
    core = _core(app)
    counts = {n: len(core.repo.layer(n)) for n in core.repo.layer_names()}
    assert core.repo.feature_counts() == counts

    def no_reads(name):
        raise AssertionError(f"the layer page read layer {name}")

    monkeypatch.setattr(core.repo, "layer", no_reads)
    c = app.test_client()
    login(c, "planner")
    html = c.get("/layers").get_data(as_text=True)
    row = html.split('id="layer-hotspot_grids"')[1].split("</tr>")[0]
    assert f"<td>{counts['hotspot_grids']}</td>" in row


def test_the_store_answers_the_audit_page_as_the_plain_default_does(app):
    repo = _core(app).repo
    for i in range(7):
        repo.update_user("viewer", {"display_name": f"v{i}"}, user="admin")
    repo.log_event(user="planner", action="export", entity="download", entity_id="x")
    for filters in ({}, {"user": "admin"}, {"entity": "user", "entity_id": "viewer"},
                    {"action": "export", "user": "planner"}, {"user": "nobody"}):
        for offset, limit in ((0, 3), (3, 3), (0, 50)):
            fast = repo.audit_page(filters, offset=offset, limit=limit)
            plain = Repository.audit_page(repo, filters, offset=offset, limit=limit)
            assert fast == plain, (filters, offset)
    for column in ("action", "entity", "user"):
        assert repo.audit_values(column) == Repository.audit_values(repo, column)
    assert repo.latest_changes("user") == Repository.latest_changes(repo, "user")
    with pytest.raises(ValueError):
        repo.audit_page({"before": "x"}, offset=0, limit=1)


def test_the_layer_page_names_who_replaced_a_layer_last(app):
    core = _core(app)
    gdf = core.repo.layer("urban_core")
    core.repo.replace_layer("urban_core", gdf, user="planner")
    core.repo.replace_layer("urban_core", gdf, user="admin")
    last = core.repo.latest_changes("layer")
    assert set(last) == {"urban_core"} and last["urban_core"]["user"] == "admin"
    c = app.test_client()
    login(c, "planner")
    row = c.get("/layers").get_data(as_text=True).split('id="layer-urban_core"')[1]
    assert " admin</td>" in row.split("</tr>")[0]


# -- maps from services, in the page's language ----------------------------------------------
def _legend(html: str) -> str:
    return json.loads(re.search(r"div\.innerHTML = (\".*?\");", html).group(1))


def test_the_check_map_speaks_the_page_language(offline_app):
    c = offline_app.test_client()
    login(c, "viewer")
    url = f"/check?lon={FARM[0]}&lat={FARM[1]}&site_type=livestock_farm"
    zh = c.get(url).get_data(as_text=True)
    assert "<span>核查点</span>" in _legend(zh) and "触发规则的要素" in zh
    en = c.get(url + "&lang=en").get_data(as_text=True)
    legend = _legend(en)
    assert "<span>Checked point</span>" in legend and "核查点" not in legend
    assert "<summary>Legend</summary>" in legend
    assert '"title": "Full screen"' in en and "全屏" not in en
    c.get("/?lang=zh")


def test_the_workshops_and_weekly_maps_speak_the_page_language(offline_app):
    c = offline_app.test_client()
    login(c, "viewer")
    en = c.get("/workshops?lang=en").get_data(as_text=True)
    assert "<span>Likely relapse</span>" in _legend(en)
    en = c.get("/weekly?week=2026-W47&lang=en").get_data(as_text=True)
    assert "Key monitored grid" in _legend(en) and "重点监控网格" not in _legend(en)
    c.get("/?lang=zh")


# -- /weekly opens on the latest week with data ----------------------------------------------
def test_default_week_is_the_last_full_week_or_the_latest_earlier_one_with_warnings(app):
    from datetime import datetime

    core = _core(app)
    # the embedded warnings end in 2026-W47 (Sunday 22 November)
    assert weekly.default_week(core, datetime(2026, 11, 25, 9)) == IsoWeek(2026, 47)
    assert weekly.default_week(core, datetime(2026, 12, 2, 9)) == IsoWeek(2026, 47)
    assert weekly.default_week(core, datetime(2027, 3, 1, 9)) == IsoWeek(2026, 47)
    assert weekly.default_week(core, datetime(2026, 11, 18, 9)) == IsoWeek(2026, 46)
    before_any = datetime(2026, 8, 5, 9)  # no warning is that old: the last full week
    assert weekly.default_week(core, before_any) == IsoWeek(2026, 31)


def test_weekly_without_a_week_opens_on_the_latest_week_with_warnings(app, monkeypatch):
    monkeypatch.setattr("geoapp.domain.bulletin.last_full_week",
                        lambda now=None: IsoWeek(2026, 49))  # two quiet weeks after the data
    c = app.test_client()
    login(c, "viewer")
    html = c.get("/weekly").get_data(as_text=True)
    assert "/weekly/2026-W47/map.html" in html and "2026-W49" not in html
    assert "全市共有4个（次）热点网格产生预警信息" in html
    explicit = c.get("/weekly?week=2026-W49").get_data(as_text=True)
    assert "/weekly/2026-W49/map.html" in explicit


# -- the web layer's own messages come from the catalogue ------------------------------------
def test_a_refused_role_is_named_in_the_page_language_only(offline_app):
    c = offline_app.test_client()
    login(c, "viewer")
    zh = c.get("/admin/users")
    assert zh.status_code == 403 and "需要角色：管理员" in zh.get_data(as_text=True)
    en = c.get("/admin/users?lang=en").get_data(as_text=True)
    assert "Requires the role: Administrator" in en and "需要角色" not in en
    c.get("/?lang=zh")

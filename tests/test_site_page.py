"""/sites/<id>: the verdict and a small map at the top, ledger attributes with Chinese
labels, live hits, change history in local time and words, 404."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import pytest
import shapely

from geoapp.maps.site import VERDICTS, site_map
from geoapp.services import site_page

from webutil import login

CHECK_CSS = Path(__file__).resolve().parent.parent / "static" / "css" / "check.css"
LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$")


@pytest.fixture
def app(make_app):
    return make_app(INTRANET=True, TILES="none")


@pytest.fixture
def client(app):
    c = app.test_client()
    login(c, "viewer")
    return c


def test_enterprise_page_shows_ledger_fields_with_chinese_labels(viewer_client):
    r = viewer_client.get("/sites/E0001")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for label, value in (("统一社会信用代码", "91410803MAYY9GXF5E"), ("整治分类", "搬迁升级"),
                         ("进度阶段", "已验收销号"), ("有无安全评价", "有"),
                         ("有无节能审查", "无"), ("辖区", "中站区")):
        block = html[html.index(f"<dt>{label}</dt>"):]
        assert block[:200].split("<dd>")[1].startswith(value), label
    assert "classification" not in html.split('class="st-attrs"')[1].split("</dl>")[0] \
        .replace('data-field="classification"', "")


def test_site_page_lists_current_hits_from_a_live_check(viewer_client):
    html = viewer_client.get("/sites/F0002").get_data(as_text=True)
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


def test_unknown_site_is_a_404_page(viewer_client):
    r = viewer_client.get("/sites/NOPE")
    assert r.status_code == 404
    html = r.get_data(as_text=True)
    assert "NOPE" in html and "Traceback" not in html


def test_site_page_needs_a_login(offline_app):
    r = offline_app.test_client().get("/sites/E0001")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def _attr(html: str, field: str) -> str:
    m = re.search(rf'data-field="{field}"><dt>[^<]*</dt><dd>([^<]*)</dd>', html)
    assert m, field
    return m.group(1)


def _expected_local(iso: str) -> str:
    stamp = datetime.fromisoformat(iso)
    stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return stamp.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(("site_id", "verdict"), [("E0001", "fail"), ("E0088", "pass"),
                                                  ("E0095", "needs_info")])
def test_verdict_and_map_open_the_page(viewer_client, site_id, verdict):
    html = viewer_client.get(f"/sites/{site_id}").get_data(as_text=True)
    top = html.index('class="st-top"')
    banner = html.index(f'class="ck-verdict ck-verdict-{verdict} st-verdict" '
                        f'data-verdict="{verdict}"')
    the_map = html.index('id="ga-map-container"')
    assert top < banner < the_map < html.index('id="hits"') < html.index('id="attributes"')
    assert 'class="folium-map"' in html[the_map:html.index('id="hits"')]
    # The site's pin carries the check page's verdict class, so its colour is that verdict's.
    assert f"st-pin ck-verdict-{verdict}" in html


def test_out_of_area_site_shows_that_verdict_at_the_top(app):
    repo = app.extensions["geoapp"].repo
    site = repo.site("F0002")
    repo.update_site("F0002", {"lon": 110.0, "lat": 30.0}, user="test",
                     expected_version=site["version"])
    c = app.test_client()
    login(c, "viewer")
    html = c.get("/sites/F0002").get_data(as_text=True)
    banner = html.index('data-verdict="out_of_area"')
    assert banner < html.index('id="ga-map-container"') < html.index('id="hits"')
    assert "st-pin ck-verdict-out_of_area" in html


def test_the_four_verdict_colours_have_one_home():
    css = CHECK_CSS.read_text(encoding="utf-8")
    for verdict in VERDICTS:
        assert re.search(rf"\.ck-verdict-{verdict} \{{ background: #[0-9a-f]{{6}}", css), verdict
        m = site_map(113.24, 35.21, verdict=verdict, name="x", metric_crs="EPSG:4547",
                     tiles="none")
        assert f"st-pin ck-verdict-{verdict}" in m.get_root().render()
    with pytest.raises(ValueError):
        site_map(113.24, 35.21, verdict="maybe", name="x", metric_crs="EPSG:4547")


def test_the_map_draws_hit_features_cut_around_the_site_and_a_new_site():
    river = gpd.GeoDataFrame({"title": ["河流"], "name": ["<b>群英河</b>"], "distance_m": [69.0]},
                             geometry=[shapely.LineString([(113.0, 35.2), (113.5, 35.2)])],
                             crs="EPSG:4326")
    m = site_map(113.24, 35.2006, verdict="fail", name="<script>x</script>",
                 metric_crs="EPSG:4547", hits=river, new_site=(113.30, 35.10, "新厂"),
                 tiles="none", gettext=lambda t: {"新址": "New site"}.get(t, t))
    out = m.get_root().render()
    lons = [float(x) for x in re.findall(r"\[(113\.\d+), 35\.2\d*\]", out)]
    assert lons and min(lons) > 113.2 and max(lons) < 113.28  # cut around the site, not 113-113.5
    assert "st-pin-new" in out and "New site" in out and "6 6" in out
    assert "<script>x</script>" not in out  # the name is text in the tooltip, not markup


def test_raw_values_are_words_and_local_time(viewer_client, offline_app):
    stored = offline_app.extensions["geoapp"].repo.site("E0001")
    assert stored["source"] == "synthetic" and stored["updated_by"] == "system"
    html = viewer_client.get("/sites/E0001").get_data(as_text=True)
    assert _attr(html, "source") == "合成示例数据"
    assert _attr(html, "updated_by") == "系统（自动）"
    shown = _attr(html, "updated_at")
    assert LOCAL.match(shown) and shown == _expected_local(stored["updated_at"])
    attrs = html[html.index('class="st-attrs"'):html.index("</dl>")]
    assert "synthetic" not in attrs and ">system<" not in attrs
    english = offline_app.test_client()
    login(english, "viewer")
    en = english.get("/sites/E0001?lang=en").get_data(as_text=True)
    assert _attr(en, "source") == "Synthetic demonstration data"
    assert _attr(en, "updated_by") == "System (automatic)"
    assert "<small>Industrial enterprise · E0001</small>" in en
    assert "<small>工业企业 · E0001</small>" in html


@pytest.mark.parametrize(("stamp", "shown"), [
    ("2026-11-30T06:05:00Z", "2026-11-30 14:05"),
    ("2026-11-30T06:05:00", "2026-11-30 14:05"),  # the store writes UTC
    ("2026-11-30T22:30:59+00:00", "2026-12-01 06:30"),
    ("2026-11-30T14:05:00+08:00", "2026-11-30 14:05"),
    ("not a time", "not a time"),
    (None, ""),
])
def test_local_time(stamp, shown):
    assert site_page.local_time(stamp) == shown


def test_history_times_and_users_are_local_and_in_words(app):
    repo = app.extensions["geoapp"].repo
    site = repo.site("E0002")
    repo.update_site("E0002", {"progress": "已验收"}, user="system",
                     expected_version=site["version"])
    stamp = repo.history("E0002", "site")[0]["at"]
    c = app.test_client()
    login(c, "viewer")
    html = c.get("/sites/E0002").get_data(as_text=True)
    history = html[html.index('id="history"'):html.index('id="inspections"')]
    assert f"<td>{_expected_local(stamp)}</td><td>系统（自动）</td><td>修改</td>" in history
    assert stamp not in history

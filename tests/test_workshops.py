"""/workshops: counts, relapse list from site_hits, 两断三清 checklist edits, downloads."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from geoapp.services import workshops as svc
from geoapp.web import create_app

from webutil import login, make_users


@pytest.fixture
def app(instance):
    app = create_app({"INSTANCE_PATH": str(instance), "INTRANET": True, "TESTING": True,
                      "TILES": "none"})
    make_users(app)
    return app


def _core(app):
    return app.extensions["geoapp"]


def test_counts_and_relapses_match_the_data_and_site_hits(app):
    c = app.test_client()
    login(c, "viewer")
    r = c.get("/workshops")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    sites = _core(app).repo.sites("scattered_workshop")
    for status in ("found", "banned", "rectifying"):
        n = int((sites["status"] == status).sum())
        assert f'data-status="{status}"><b>{n}</b>' in html
    hits = _core(app).repo.site_hits()
    hits = hits[hits["rule_id"] == "scattered_relapse"]
    rel = html.split('id="ws-relapses"')[1].split("</section>")[0]
    shown = set(zip(*[[p.split('"')[0] for p in rel.split(f'data-{k}="')[1:]]
                      for k in ("site", "banned")], strict=True))
    assert shown == set(zip(hits["site_id"], hits["feature_id"], strict=True))
    assert len(shown) > 0
    assert "500 米" in rel  # the distance read from the rules file
    assert "<fieldset" not in html and 'id="ws-form-' not in html  # viewer: read-only


def test_relapse_distance_comes_from_the_rule(app):
    assert svc.relapse_distance_m(_core(app)) == 500.0
    rel = svc.relapses(_core(app))
    assert (rel["distance_m"] <= 500.0).all()


def test_planner_saves_checklist_dates_and_stale_form_gets_409(app):
    core = _core(app)
    c = app.test_client()
    token = login(c, "planner")
    open_one = next(w for w in svc.checklist(svc.workshops(core)) if not w["complete"])
    sid = open_one["id"]
    form = {"csrf_token": token, "version": str(open_one["version"])}
    form.update({i["field"]: i["date"] or open_one["banned_date"] for i in open_one["items"]})
    r = c.post(f"/workshops/{sid}/checklist", data=form)
    assert r.status_code == 302
    site = core.repo.site(sid)
    assert all(site[f] for f, _ in svc.CHECKLIST)
    html = c.get("/workshops").get_data(as_text=True)
    assert f'id="ws-{sid}" data-id="{sid}" data-complete="yes"' in html
    r2 = c.post(f"/workshops/{sid}/checklist", data={**form, "water_cut_date": ""})
    assert r2.status_code == 409
    assert core.repo.site(sid)["water_cut_date"]  # not overwritten


def test_checklist_date_before_the_ban_is_a_400_naming_the_item(app):
    core = _core(app)
    c = app.test_client()
    token = login(c, "planner")
    w = svc.checklist(svc.workshops(core))[0]
    r = c.post(f"/workshops/{w['id']}/checklist",
               data={"csrf_token": token, "version": str(w["version"]),
                     "power_cut_date": "1999-01-01"})
    assert r.status_code == 400
    assert '<li data-field="power_cut_date">断电' in r.get_data(as_text=True)


def test_viewer_cannot_post_checklist(app):
    c = app.test_client()
    token = login(c, "viewer")
    w = svc.checklist(svc.workshops(_core(app)))[0]
    r = c.post(f"/workshops/{w['id']}/checklist",
               data={"csrf_token": token, "version": str(w["version"])})
    assert r.status_code == 403


def test_register_downloads_as_csv_and_xlsx(app):
    c = app.test_client()
    login(c, "viewer")
    r = c.get("/workshops/register.csv")
    assert r.status_code == 200 and "filename*=UTF-8''" in r.headers["Content-Disposition"]
    df = pd.read_csv(io.BytesIO(r.data), encoding="utf-8-sig")
    assert len(df) == 120 and "两断三清" in df.columns
    assert df["疑似死灰复燃（取缔点位）"].notna().sum() == len(svc.relapses(_core(app))
                                                          .drop_duplicates("site_id"))
    x = c.get("/workshops/register.xlsx")
    assert x.status_code == 200
    assert len(pd.read_excel(io.BytesIO(x.data))) == 120
    assert c.get("/workshops/register.pdf").status_code == 404


def test_map_legend_names_each_status_and_the_relapse_line_in_words(app):
    """Legend entries are (kind, colour, label): the map once passed (label, colour, kind) and
    its legend read "point" / "line" instead of the statuses' names."""
    import json
    import re

    from geoapp.domain.vocab import WorkshopStatus

    client = app.test_client()
    login(client, "viewer")
    page = client.get("/workshops").get_data(as_text=True)
    legend = json.loads(re.search(r"div\.innerHTML = (\".*?\");", page).group(1))
    for status in WorkshopStatus:
        assert f"<span>{status.zh}</span>" in legend
    assert "<span>疑似死灰复燃</span>" in legend
    assert "<span>point</span>" not in legend and "<span>line</span>" not in legend
    assert 'class="lg-line"' in legend and 'class="lg-point"' in legend

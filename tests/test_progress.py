"""Progress workflow on /sites/<id>: edit round trip with history, version conflicts, field
validation, roles, and rule hits refreshed after a new site is saved."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from geoapp.services import progress
from geoapp.services.checks import hits_are_stale
from geoapp.services.deadlines import local_today

from webutil import login


@pytest.fixture
def app(make_app):
    return make_app(INTRANET=True, TILES="none")


def _core(app):
    return app.extensions["geoapp"]


def _form(app, site_id: str, token: str, **changes) -> dict:
    data = progress.form_values(_core(app).repo.site(site_id))
    data.update(csrf_token=token, **changes)
    return data


def _started_site(app) -> str:
    sites = _core(app).repo.sites("enterprise", stage="started")
    return str(sites["id"].iloc[0])


def test_planner_edit_round_trip_is_saved_and_shown_in_history(app):
    c = app.test_client()
    token = login(c, "planner")
    sid = _started_site(app)
    before = _core(app).repo.site(sid)
    r = c.post(f"/sites/{sid}/progress",
               data=_form(app, sid, token, stage="completed", actual_completion="2026-05-20",
                          vacated_mu="42.5", progress="主体设备已拆除"))
    assert r.status_code == 302, r.get_data(as_text=True)[:800]
    after = _core(app).repo.site(sid)
    assert after["stage"] == "completed"
    assert after["actual_completion"] == "2026-05-20"
    assert after["vacated_mu"] == pytest.approx(42.5)
    assert after["version"] == before["version"] + 1
    assert after["updated_by"] == "planner"
    html = c.get(f"/sites/{sid}").get_data(as_text=True)
    hist = html.split('id="history"')[1].split("</section>")[0]
    assert "planner" in hist and "已启动" in hist and "已完成" in hist and "2026-05-20" in hist


def test_stale_version_gets_409_with_the_other_change_and_nothing_overwritten(app):
    first, second = app.test_client(), app.test_client()
    t1 = login(first, "planner")
    t2 = login(second, "admin")
    sid = _started_site(app)
    stale = _form(app, sid, t2, progress="第二人的进展说明", listed_mu="7")
    r1 = first.post(f"/sites/{sid}/progress", data=_form(app, sid, t1, listed_mu="30"))
    assert r1.status_code == 302
    r2 = second.post(f"/sites/{sid}/progress", data=stale)
    assert r2.status_code == 409
    html = r2.get_data(as_text=True)
    theirs = html.split('class="ck-table pl-theirs"')[1].split("</table>")[0]
    assert 'data-field="listed_mu"' in theirs and "30" in theirs and "planner" in theirs
    assert "第二人的进展说明" in html  # the second planner's input is kept in the form
    site = _core(app).repo.site(sid)
    assert site["listed_mu"] == pytest.approx(30.0)
    assert site["progress"] != "第二人的进展说明"
    # The form now carries the current version: saving again is a deliberate overwrite.
    version = re.search(r'name="version" value="(\d+)"', html).group(1)
    assert int(version) == site["version"]


@pytest.mark.parametrize(("field", "value", "label"), [
    ("actual_start", "2026/13/01", "实际启动"),
    ("vacated_mu", "-3", "腾退土地（亩）"),
    ("sale_revenue_wan", "很多", "出让收入（万元）"),
    ("stage", "done", "进度阶段"),
])
def test_invalid_value_is_a_400_naming_the_field(app, field, value, label):
    c = app.test_client()
    token = login(c, "planner")
    sid = _started_site(app)
    before = _core(app).repo.site(sid)
    r = c.post(f"/sites/{sid}/progress", data=_form(app, sid, token, **{field: value}))
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert f'<li data-field="{field}">{label}' in html
    if field != "stage":  # a select cannot show a value it does not offer
        assert value in html  # input kept
    assert _core(app).repo.site(sid)["version"] == before["version"]


def test_completed_stage_without_actual_completion_is_refused(app):
    c = app.test_client()
    token = login(c, "planner")
    sid = _started_site(app)
    r = c.post(f"/sites/{sid}/progress",
               data=_form(app, sid, token, stage="completed", actual_completion=""))
    assert r.status_code == 400
    assert '<li data-field="actual_completion">' in r.get_data(as_text=True)


def test_actual_completion_needs_an_actual_start(app):
    core = _core(app)
    sid = _started_site(app)
    form = progress.form_values(core.repo.site(sid))
    form.update(stage="not_started", actual_start="", actual_completion="2026-01-01")
    with pytest.raises(progress.ValidationFailed) as err:
        progress.validate(core, form)
    assert {p["field"] for p in err.value.details} >= {"actual_start"}


def test_an_actual_date_after_today_is_refused(app):
    core = _core(app)
    sid = _started_site(app)
    form = progress.form_values(core.repo.site(sid))
    later = (local_today() + dt.timedelta(days=1)).isoformat()
    form.update(stage="completed", actual_completion=later)
    with pytest.raises(progress.ValidationFailed) as err:
        progress.validate(core, form)
    assert [p["field"] for p in err.value.details] == ["actual_completion"]
    form.update(actual_completion=local_today().isoformat())
    assert progress.validate(core, form)["actual_completion"] == local_today().isoformat()


def test_new_site_in_gcj02_is_stored_in_wgs84_and_hits_refresh(app):
    core = _core(app)
    sid = _started_site(app)
    site = core.repo.site(sid)
    form = progress.form_values(site)
    # A GCJ-02 point: stored converted, a few hundred metres from the numbers typed.
    form.update(classification="relocate", new_lon="113.30", new_lat="35.20", new_crs="gcj02",
                new_site_area_mu="120")
    after = progress.save_progress(core, sid, form, user="planner")
    assert after["new_lon"] != pytest.approx(113.30, abs=1e-4)
    assert abs(after["new_lon"] - 113.30) < 0.01 and abs(after["new_lat"] - 35.20) < 0.01
    assert not hits_are_stale(core)


def test_viewer_sees_read_only_form_and_cannot_post(app):
    c = app.test_client()
    token = login(c, "viewer")
    sid = _started_site(app)
    html = c.get(f"/sites/{sid}").get_data(as_text=True)
    assert 'id="pl-progress-form"' in html and "<fieldset disabled>" in html
    assert 'id="pl-save"' not in html
    r = c.post(f"/sites/{sid}/progress", data=_form(app, sid, token, listed_mu="1"))
    assert r.status_code == 403


def test_farm_page_has_no_progress_form(app):
    c = app.test_client()
    login(c, "planner")
    html = c.get("/sites/F0002").get_data(as_text=True)
    assert 'id="pl-progress-form"' not in html


def test_unknown_site_post_is_404(app):
    c = app.test_client()
    token = login(c, "planner")
    r = c.post("/sites/E9999/progress", data={"csrf_token": token, "version": "1"})
    assert r.status_code == 404

"""Inspection photos through the web app (both backends): recorded with the inspection
from /check, shown on the site page and the inspection's print view, downloaded in full,
and seen only by the roles that may see their record."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image
from test_photos import exif_jpeg, offset_point, png_bytes

from webutil import login, sql

SITE, OTHER_SITE = "E0001", "E0002"


@pytest.fixture(scope="module")
def app(make_module_app):
    return make_module_app()


def _site_point(app, site_id):
    s = app.extensions["geoapp"].repo.site(site_id)
    return float(s["lon"]), float(s["lat"])


def _files(app, site_id=SITE):
    lon, lat = _site_point(app, site_id)
    near, far = offset_point(lon, lat, 50), offset_point(lon, lat, 500, azimuth=200)
    return [(io.BytesIO(exif_jpeg(*near)), "现场-近.jpg"),
            (io.BytesIO(exif_jpeg(*far)), "far.jpg"),
            (io.BytesIO(exif_jpeg(taken=None)), "nogps.jpg")]


def _record(client, token, form, files):
    return client.post("/check/inspections", data={**form, "csrf_token": token,
                                                   "photos": files},
                       content_type="multipart/form-data")


def _photo_rows(app, inspection_id):
    return sql(app, "SELECT id, filename, sha256, position_mismatch, site_id FROM "
                    "inspection_photos WHERE inspection_id = ? ORDER BY id", (inspection_id,))


def _last_inspection(app):
    return sql(app, "SELECT id, site_id, gps_accuracy_m FROM inspections ORDER BY id DESC "
                    "LIMIT 1")[0]


@pytest.fixture(scope="module")
def recorded(app):
    """An inspection of SITE with three photos and a point inspection with one photo."""
    c = app.test_client()
    token = login(c, "inspector")
    r = _record(c, token, {"site": SITE, "notes": "现场检查", "gps_accuracy_m": "8.4"},
                _files(app))
    assert r.status_code == 302, r.get_data(as_text=True)[:800]
    site_rec = _last_inspection(app)
    lon, lat = _site_point(app, OTHER_SITE)
    r = _record(c, token, {"lon": f"{lon:.6f}", "lat": f"{lat:.6f}", "crs": "wgs84",
                           "gps_accuracy_m": "8.4"},
                [(io.BytesIO(png_bytes()), "point.jpg")])
    assert r.status_code == 302, r.get_data(as_text=True)[:800]
    point_rec = _last_inspection(app)
    return {"site": site_rec, "site_photos": _photo_rows(app, site_rec[0]),
            "point": point_rec, "point_photos": _photo_rows(app, point_rec[0])}


def test_a_recorded_inspection_keeps_its_photos_and_accuracy(app, recorded):
    sid, site_id, accuracy = recorded["site"]
    # A site check is the site's stored point: the phone's accuracy says nothing about it.
    assert site_id == SITE and accuracy is None
    rows = recorded["site_photos"]
    assert [r[1] for r in rows] == ["现场-近.jpg", "far.jpg", "nogps.jpg"]
    assert [r[3] for r in rows] == [0, 1, 0]
    assert recorded["point"][1] is None and recorded["point"][2] == pytest.approx(8.4)
    assert recorded["point_photos"][0][4] is None


def test_the_site_page_shows_thumbnails_with_their_marks(app, recorded):
    c = app.test_client()
    login(c, "viewer")
    html = c.get(f"/sites/{SITE}").get_data(as_text=True)
    assert "定位精度" not in html  # a site check records no device accuracy
    assert "位置不符 · 距核查点 500 米" in html
    assert "位置相符 · 距核查点 50 米" in html
    assert "无GPS位置" in html
    for pid, *_ in recorded["site_photos"]:
        assert f"/sites/{SITE}/photos/{pid}/thumb" in html
    assert 'name="photos"' not in html  # a viewer cannot add photos
    thumb = c.get(f"/sites/{SITE}/photos/{recorded['site_photos'][0][0]}/thumb")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.data)).size) == 320


def test_the_inspection_print_view_shows_the_record_and_its_photos(app, recorded):
    c = app.test_client()
    login(c, "planner")
    r = c.get(f"/inspections/{recorded['site'][0]}/print")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "位置不符 · 距核查点 500 米" in html and "现场检查" in html
    assert '<td class="ip-accuracy">—</td>' in html
    assert html.count('class="ip-thumb"') == 3
    serial = f"焦环核〔{html.split('记录时间')[1][1:5]}〕{recorded['site'][0]:04d}号"
    assert f'<div class="ck-sheet-serial" data-serial>{serial}</div>' in html


def test_a_photo_downloads_as_uploaded(app, recorded):
    c = app.test_client()
    login(c, "viewer")
    pid, name, sha, *_ = recorded["site_photos"][0]
    r = c.get(f"/sites/{SITE}/photos/{pid}")
    assert r.status_code == 200
    assert hashlib.sha256(r.data).hexdigest() == sha
    assert r.mimetype == "image/jpeg"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    disp = r.headers["Content-Disposition"]
    assert disp.startswith("attachment") and "filename*=UTF-8''" in disp and "/" not in disp
    # A PNG uploaded as point.jpg comes back as what it is.
    c2 = app.test_client()
    login(c2, "inspector")
    ppid = recorded["point_photos"][0][0]
    r = c2.get(f"/inspections/{recorded['point'][0]}/photos/{ppid}")
    assert r.status_code == 200 and r.mimetype == "image/png"
    assert "point.png" in r.headers["Content-Disposition"]


@pytest.mark.parametrize("role, site_ok, point_ok", [
    ("viewer", True, False), ("inspector", True, True), ("planner", True, False),
    ("admin", True, True)])
def test_who_sees_which_photo(app, recorded, role, site_ok, point_ok):
    c = app.test_client()
    login(c, role)
    sid, pid = recorded["site"][0], recorded["site_photos"][0][0]
    iid, ppid = recorded["point"][0], recorded["point_photos"][0][0]
    expect = {True: 200, False: 404}
    assert c.get(f"/sites/{SITE}/photos/{pid}").status_code == expect[site_ok]
    assert c.get(f"/inspections/{sid}/photos/{pid}/thumb").status_code == expect[site_ok]
    assert c.get(f"/inspections/{iid}/photos/{ppid}").status_code == expect[point_ok]
    assert c.get(f"/inspections/{iid}/print").status_code == expect[point_ok]
    # Another site's, another inspection's or an unknown id: the same 404.
    assert c.get(f"/sites/{OTHER_SITE}/photos/{pid}").status_code == 404
    assert c.get(f"/sites/{SITE}/photos/{ppid}").status_code == 404
    assert c.get(f"/inspections/{iid}/photos/{pid}").status_code == 404
    assert c.get(f"/sites/{SITE}/photos/99999999").status_code == 404
    assert c.get("/inspections/99999999/print").status_code == 404
    if not point_ok:
        missing = c.get(f"/inspections/{iid}/photos/99999999").get_data(as_text=True)
        refused = c.get(f"/inspections/{iid}/photos/{ppid}").get_data(as_text=True)
        missing = missing.replace("/photos/99999999", "/photos/N")
        refused = refused.replace(f"/photos/{ppid}", "/photos/N")
        assert missing == refused  # nothing tells a hidden photo from a missing one


def test_anonymous_is_sent_to_the_login(app, recorded):
    c = app.test_client()
    pid = recorded["site_photos"][0][0]
    for url in (f"/sites/{SITE}/photos/{pid}", f"/sites/{SITE}/photos/{pid}/thumb",
                f"/inspections/{recorded['site'][0]}/print"):
        r = c.get(url)
        assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_one_bad_photo_refuses_the_record_and_keeps_nothing(app, recorded):
    c = app.test_client()
    token = login(c, "inspector")
    before = sql(app, "SELECT count(*) FROM inspections")[0][0]
    photos_before = sql(app, "SELECT count(*) FROM inspection_photos")[0][0]
    files = [*_files(app), (io.BytesIO(b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
                            "evil.jpg")]
    r = _record(c, token, {"site": SITE, "notes": "保留的备注"}, files)
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "evil.jpg" in html and "SVG" in html and "JPEG、PNG、WebP" in html
    assert "保留的备注" in html  # the notes come back in the form
    assert sql(app, "SELECT count(*) FROM inspections")[0][0] == before
    assert sql(app, "SELECT count(*) FROM inspection_photos")[0][0] == photos_before


def test_photos_added_to_a_kept_inspection_are_all_or_nothing(app, recorded):
    c = app.test_client()
    token = login(c, "inspector")
    iid = recorded["point"][0]
    bad = [(io.BytesIO(png_bytes((40, 30))), "ok.png"),
           (io.BytesIO(b"\xff\xd8\xff\xe0trunc"), "cut.jpg")]
    r = c.post(f"/inspections/{iid}/photos", data={"csrf_token": token, "photos": bad},
               content_type="multipart/form-data")
    assert r.status_code == 400 and "cut.jpg" in r.get_data(as_text=True)
    assert len(_photo_rows(app, iid)) == 1
    def good():
        return [(io.BytesIO(png_bytes((30, 20))), "more.png")]

    r = c.post(f"/inspections/{iid}/photos", data={"csrf_token": token, "photos": good()},
               content_type="multipart/form-data")
    assert r.status_code == 302
    assert len(_photo_rows(app, iid)) == 2
    viewer = app.test_client()
    vtoken = login(viewer, "viewer")
    r = viewer.post(f"/inspections/{iid}/photos", data={"csrf_token": vtoken, "photos": good()},
                    content_type="multipart/form-data")
    assert r.status_code == 403
    assert len(_photo_rows(app, iid)) == 2


def test_the_check_page_offers_a_camera_field_to_inspectors_only(app):
    c = app.test_client()
    login(c, "inspector")
    html = c.get(f"/check?site={SITE}").get_data(as_text=True)
    assert 'type="file" name="photos" id="ck-photos" accept="image/*" capture="environment" multiple' in html
    assert 'enctype="multipart/form-data"' in html and "js/photos.js" in html
    v = app.test_client()
    login(v, "viewer")
    assert 'name="photos"' not in v.get(f"/check?site={SITE}").get_data(as_text=True)

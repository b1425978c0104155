"""Inspection photos as evidence: the device accuracy only where it means something, notes
never lost on a refusal, photos added later marked with who added them, the print view's
full evidence, impossible EXIF positions and times, duplicate files, and the inspectors'
own upload slots (both backends)."""

from __future__ import annotations

import io
import re
import time

import pytest
from PIL import ExifTags, Image
from test_photos import LIMITS, POINT, exif_jpeg, offset_point, png_bomb, png_bytes
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from geoapp.domain.errors import InvalidInput
from geoapp.services import photos
from geoapp.services.inspection import clean_notes

from webutil import login, sql

SITE = "E0004"


def gps_jpeg(lat, lat_ref, lon, lon_ref) -> bytes:
    """A JPEG whose GPS IFD holds exactly these values (``None`` leaves a tag out)."""
    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    for tag, value in ((ExifTags.GPS.GPSLatitudeRef, lat_ref), (ExifTags.GPS.GPSLatitude, lat),
                       (ExifTags.GPS.GPSLongitudeRef, lon_ref),
                       (ExifTags.GPS.GPSLongitude, lon)):
        if value is not None:
            gps[tag] = value
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 90, 90)).save(out, "JPEG", exif=exif)
    return out.getvalue()


GOOD_LAT, GOOD_LON = (35.0, 12.0, 57.24), (113.0, 14.0, 30.48)


@pytest.mark.parametrize("lat, lat_ref, lon, lon_ref, reason", [
    ((35.0, 75.0, 0.0), "N", GOOD_LON, "E", "度分秒"),       # minutes >= 60: 190 km off
    ((35.0, 12.0, 60.0), "N", GOOD_LON, "E", "度分秒"),      # seconds = 60
    (GOOD_LAT, "X", GOOD_LON, "E", "N/S"),
    (GOOD_LAT, "N", GOOD_LON, "N", "E/W"),
    (GOOD_LAT, None, GOOD_LON, "E", "N/S"),
    (GOOD_LAT, "N", GOOD_LON, None, "E/W"),
])
def test_impossible_exif_gps_is_no_position_with_its_reason(lat, lat_ref, lon, lon_ref, reason):
    data = gps_jpeg(lat, lat_ref, lon, lon_ref)
    p = photos.read_photo(photos.Upload("x.jpg", data), LIMITS)
    assert p["exif_lon"] is None and p["exif_lat"] is None
    assert reason in str(photos.no_position_reason(data))
    assert photos._degrees((35, -5, 0)) is None and photos._degrees((-35, 5, 0)) is None
    good = photos.read_photo(photos.Upload("g.jpg", gps_jpeg(GOOD_LAT, "N", GOOD_LON, "E")),
                             LIMITS)
    assert good["exif_lat"] == pytest.approx(35 + 12 / 60 + 57.24 / 3600, abs=1e-6)


@pytest.mark.parametrize("text, kept", [
    ("3", 3.0), ("10000", 10000.0), ("8.44", 8.4), ("999999", None), ("0", None),
    ("-5", None), ("nan", None), ("inf", None), ("abc", None), ("", None), (None, None)])
def test_a_device_accuracy_outside_a_sane_range_is_ignored(text, kept):
    assert photos.gps_accuracy(text) == kept


def test_distances_from_one_kilometre_are_in_kilometres():
    assert str(photos.distance_text(7801.2)) == "7.8 公里"
    assert str(photos.distance_text(999.4)) == "999 米"


def test_a_photo_far_from_the_inspection_time_or_in_the_future_is_marked():
    at = "2026-12-05T06:05:09Z"  # 14:05 in Jiaozuo
    mark = photos.time_marks({"taken_at": "2026-11-30T14:05:09+08:00",
                              "uploaded_at": at}, at, 24)
    assert str(mark["time_gap"]) == "5 天" and not mark["time_future"]
    mark = photos.time_marks({"taken_at": "2026-12-04T08:05:09", "uploaded_at": at}, at, 24)
    assert str(mark["time_gap"]) == "30 小时"  # no offset: the camera's local time
    assert photos.time_marks({"taken_at": "2026-12-05T10:00:00+08:00", "uploaded_at": at},
                             at, 24) == {"time_future": False, "time_gap": None}
    mark = photos.time_marks({"taken_at": "2026-12-05T15:05:09+08:00", "uploaded_at": at},
                             at, 24)
    assert mark["time_future"] and mark["time_gap"] is None


def test_the_same_file_twice_in_one_record_is_refused_naming_it():
    data = exif_jpeg(*POINT)
    with pytest.raises(InvalidInput) as err:
        photos.read_photos([photos.Upload("a.jpg", data), photos.Upload("b.jpg", data)],
                           LIMITS, lon=POINT[0], lat=POINT[1])
    assert "b.jpg" in str(err.value.message) and "a.jpg" in str(err.value.message)
    first = photos.read_photo(photos.Upload("a.jpg", data), LIMITS)
    with pytest.raises(InvalidInput, match="同一个文件"):
        photos.read_photos([photos.Upload("c.jpg", data)], LIMITS, lon=POINT[0], lat=POINT[1],
                           kept_hashes=[first["sha256"]])


def test_control_characters_leave_the_notes_but_lines_and_tabs_stay():
    assert clean_notes("a\x00b\x1b[31m\tc\r\nd\re\x7f ") == "ab[31m\tc\nd\ne"


def test_the_pixel_limit_is_fifty_megapixels():
    assert photos.MAX_PIXELS == 50_000_000
    with pytest.raises(InvalidInput, match="像素过多"):
        photos.read_photo(photos.Upload("60mp.png", png_bomb(10_000, 6_000)), LIMITS)


# -- both storage backends ---------------------------------------------------------------

def test_photos_added_later_keep_who_and_when(repo):
    rec = repo.add_inspection({"site_id": "S1", "lon": POINT[0], "lat": POINT[1],
                               "verdict": "pass", "hits": [], "notes": ""}, user="insp",
                              photos=photos.read_photos([photos.Upload("a.png", png_bytes())],
                                                        LIMITS, lon=POINT[0], lat=POINT[1]))
    time.sleep(1.1)
    later = photos.read_photos([photos.Upload("b.png", png_bytes((30, 20)))], LIMITS,
                               lon=POINT[0], lat=POINT[1])
    repo.add_inspection_photos(rec["id"], later, user="boss")
    first, second = repo.inspection_photos(inspection_id=rec["id"])
    assert (first["uploaded_by"], first["uploaded_at"]) == ("insp", rec["at"])
    assert second["uploaded_by"] == "boss" and second["uploaded_at"] > rec["at"]


# -- the web app ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app(make_module_app):
    return make_module_app(MAX_UPLOAD_MB=1, PHOTO_MAX_MB=1)


def _post(client, url, token, form, files=()):
    """A multipart POST encoded in memory (the test client spools a large body to a
    temporary file it never closes)."""
    values = MultiDict([*form.items(), ("csrf_token", token)])
    for stream, name in files:
        values.add("photos", FileStorage(stream, filename=name,
                                         content_type="application/octet-stream"))
    boundary, body = encode_multipart(values)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def _last(app):
    return sql(app, "SELECT id, site_id, gps_accuracy_m, notes, inspector FROM inspections "
                    "ORDER BY id DESC LIMIT 1")[0]


def _site_point(app, site_id=SITE):
    s = app.extensions["geoapp"].repo.site(site_id)
    return float(s["lon"]), float(s["lat"])


def test_the_accuracy_is_kept_only_for_a_wgs84_point_check(app):
    c = app.test_client()
    token = login(c, "inspector")
    lon, lat = _site_point(app)
    r = _post(c, "/check/inspections", token, {"site": SITE, "gps_accuracy_m": "3"})
    assert r.status_code == 302
    iid, site_id, accuracy, *_ = _last(app)
    assert site_id == SITE and accuracy is None
    assert "±3" not in c.get(f"/inspections/{iid}/print").get_data(as_text=True)
    point = {"lon": f"{lon:.6f}", "lat": f"{lat:.6f}"}
    for form, want in (({**point, "crs": "wgs84", "gps_accuracy_m": "999999"}, None),
                       ({**point, "crs": "gcj02", "gps_accuracy_m": "8"}, None),
                       ({**point, "crs": "wgs84", "gps_accuracy_m": "12"}, 12.0)):
        assert _post(c, "/check/inspections", token, form).status_code == 302
        assert _last(app)[2] == want
    html = c.get(f"/inspections/{_last(app)[0]}/print").get_data(as_text=True)
    assert '<td class="ip-accuracy">±12 米</td>' in html


def _padded_jpeg(lon, lat, extra: int, colour=(40, 120, 200)) -> bytes:
    """A real JPEG with EXIF, made ``extra`` bytes larger (data after its end is ignored)."""
    return exif_jpeg(lon, lat, colour=colour) + b"\x00" * extra


def test_a_record_over_max_upload_mb_reaches_the_route_and_a_refusal_keeps_the_notes(app):
    c = app.test_client()
    token = login(c, "inspector")
    lon, lat = _site_point(app)
    files = [(io.BytesIO(_padded_jpeg(lon, lat, 700_000)), "a.jpg"),
             (io.BytesIO(_padded_jpeg(lon, lat, 700_000, colour=(9, 9, 9))), "b.jpg")]
    r = _post(c, "/check/inspections", token, {"site": SITE, "notes": "两张大照片"}, files)
    assert r.status_code == 302, r.get_data(as_text=True)[:500]  # 1.4 MB > MAX_UPLOAD_MB 1
    assert _last(app)[3] == "两张大照片"
    big = [(io.BytesIO(_padded_jpeg(lon, lat, 1_200_000, colour=(1, 2, 3))), "big.jpg")]
    r = _post(c, "/check/inspections", token, {"site": SITE, "notes": "过大照片的备注"}, big)
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "过大照片的备注" in html and "big.jpg" in html
    assert "请重新选择合格的照片" in html


@pytest.mark.parametrize("form, status", [({"site": "NOPE"}, 404),
                                          ({"lon": "500", "lat": "35", "crs": "wgs84"}, 400)])
def test_a_record_whose_check_fails_keeps_the_notes(app, form, status):
    c = app.test_client()
    token = login(c, "inspector")
    before = sql(app, "SELECT count(*) FROM inspections")[0][0]
    r = _post(c, "/check/inspections", token, {**form, "notes": "现场\n记录<b>"})
    html = r.get_data(as_text=True)
    assert r.status_code == status
    assert 'id="ck-kept-notes"' in html and "现场\n记录&lt;b&gt;" in html
    assert 'id="ck-error"' in html
    assert sql(app, "SELECT count(*) FROM inspections")[0][0] == before


def test_control_characters_are_stripped_from_recorded_notes(app):
    c = app.test_client()
    token = login(c, "inspector")
    assert _post(c, "/check/inspections", token,
                 {"site": SITE, "notes": "a\x00b\x1bc\r\n\td"}).status_code == 302
    assert _last(app)[3] == "abc\n\td"


def test_photos_added_later_are_marked_and_only_by_the_inspector_or_an_admin(app):
    insp, admin = app.test_client(), app.test_client()
    itoken, atoken = login(insp, "inspector"), login(admin, "admin")
    lon, lat = _site_point(app)
    assert _post(insp, "/check/inspections", itoken, {"site": SITE},
                 [(io.BytesIO(exif_jpeg(lon, lat, colour=(5, 50, 5))), "orig.jpg")]
                 ).status_code == 302
    iid = _last(app)[0]
    time.sleep(1.1)
    assert _post(admin, f"/inspections/{iid}/photos", atoken, {},
                 [(io.BytesIO(png_bytes((33, 22))), "later.png")]).status_code == 302
    # An inspection recorded by the admin: the inspector may not add to it.
    assert _post(admin, "/check/inspections", atoken, {"site": SITE}).status_code == 302
    other = _last(app)[0]
    r = _post(insp, f"/inspections/{other}/photos", itoken, {},
              [(io.BytesIO(png_bytes((34, 22))), "x.png")])
    assert r.status_code == 403
    page = insp.get(f"/sites/{SITE}").get_data(as_text=True)
    block = page.split(f'id="inspection-{iid}"')[1].split('class="ip-record"')[0]
    assert block.count("补充</span>") == 1 and "admin 于" in block and "inspector 于" in block
    assert f'action="/inspections/{other}/photos"' not in page
    assert f'action="/inspections/{iid}/photos"' in page
    printed = insp.get(f"/inspections/{iid}/print").get_data(as_text=True)
    assert printed.count("补充</span>") == 1 and "admin 于" in printed


def test_a_refused_added_photo_answers_with_the_record_page(app):
    c = app.test_client()
    token = login(c, "inspector")
    lon, lat = _site_point(app)
    assert _post(c, "/check/inspections", token, {"site": SITE}).status_code == 302
    iid = _last(app)[0]
    svg = (io.BytesIO(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), "drawing.svg")
    r = _post(c, f"/inspections/{iid}/photos", token, {}, [svg])
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and 'id="ip-add-error"' in html and "drawing.svg" in html
    assert f'href="/sites/{SITE}#inspection-{iid}"' in html
    twelve = [(io.BytesIO(png_bytes((20 + i, 20))), f"p{i}.png") for i in range(12)]
    assert _post(c, f"/inspections/{iid}/photos", token, {}, twelve).status_code == 302
    r = _post(c, f"/inspections/{iid}/photos", token, {},
              [(io.BytesIO(png_bytes((99, 20))), "p13.png")])
    assert r.status_code == 400 and "照片过多" in r.get_data(as_text=True)


def test_the_print_view_carries_the_evidence_in_full(app):
    c = app.test_client()
    token = login(c, "inspector")
    lon, lat = _site_point(app)
    far = offset_point(lon, lat, 7_800)
    files = [(io.BytesIO(exif_jpeg(*far, taken="2020:01:01 09:00:00", colour=(7, 7, 70))),
              "远处.jpg"),
             (io.BytesIO(exif_jpeg(lon, lat, taken="2099:01:01 09:00:00", colour=(70, 7, 7))),
              "future.jpg"),
             (io.BytesIO(gps_jpeg((35.0, 75.0, 0.0), "N", GOOD_LON, "E")), "bad-gps.jpg")]
    form = {"lon": f"{lon + 0.005:.6f}", "lat": f"{lat + 0.001:.6f}", "crs": "gcj02"}
    assert _post(c, "/check/inspections", token, form, files).status_code == 302
    iid = _last(app)[0]
    rows = sql(app, "SELECT sha256, size, width, height FROM inspection_photos WHERE "
                    "inspection_id = ? ORDER BY id", (iid,))
    html = c.get(f"/inspections/{iid}/print").get_data(as_text=True)
    for sha, size, width, height in rows:
        assert f'<dd class="ip-sha256">{sha}</dd>' in html and len(sha) == 64
        assert f"{size:,}" in html and f"{width}×{height}" in html
    assert "远处.jpg" in html and "2020-01-01 09:00:00" in html
    assert "距核查点 7.8 公里" in html
    assert f"{far[0]:.6f}, {far[1]:.6f}" in html
    assert re.search(r"拍摄时间与检查相差 \d+ 天", html)
    assert "拍摄时间在上传之后" in html
    assert "无GPS位置" in html and "度分秒无效" in html
    assert f'{form["lon"]}, {form["lat"]} <small>' in html and "GCJ-02" in html
    assert "inspector 于" in html
    assert " m<" not in html and " m " not in html.split("<article")[1]


def test_a_photo_record_has_its_own_slot_while_an_office_upload_holds_the_heavy_one(app):
    c = app.test_client()
    token = login(c, "inspector")
    lon, lat = _site_point(app)
    files = [(io.BytesIO(_padded_jpeg(lon, lat, 40_000, colour=(3, 30, 90))), "slot.jpg")]
    slots = app.extensions["geoapp.upload_slots"]
    assert slots.acquire(blocking=False)  # a planner's flag upload
    try:
        r = _post(c, "/check/inspections", token, {"site": SITE, "notes": "占用时"}, files)
        assert r.status_code == 302, r.get_data(as_text=True)[:300]
        planner = app.test_client()
        ptoken = login(planner, "planner")
        csv = b"lon,lat\n" + b"113.2,35.2\n" * 2_000
        r = planner.post("/api/flag", data={"file": (io.BytesIO(csv), "a.csv")},
                         content_type="multipart/form-data", headers={"X-CSRFToken": ptoken})
        assert r.status_code == 503  # office uploads still wait their turn
    finally:
        slots.release()
    photo_slots = app.extensions["geoapp.photo_slots"]
    assert photo_slots.acquire(blocking=False)  # the record gave its slot back
    photo_slots.release()

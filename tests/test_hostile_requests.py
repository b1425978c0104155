"""Hostile request parameters and server faults: a clear 4xx/503 with nothing stored, and no
internals (exception text, temporary paths, library messages) on any page or JSON answer."""

from __future__ import annotations

import gc
import io
import json
import logging
import re

import psycopg
import pytest
from test_hostile_input import SQUARE, shapefile_zip, upload, zone

from geoapp.web.limits import HEAVY_BODY_BYTES

from webutil import csrf_token, login, sql


@pytest.fixture(scope="module")
def signed_in(offline_app):
    """Factory: ``signed_in(role)`` is a (client, CSRF token) of the shared read-only app,
    logged in once per module and role."""
    clients = {}

    def get(role: str):
        if role not in clients:
            client = offline_app.test_client()
            clients[role] = (client, login(client, role))
        return clients[role]

    return get


def _count(app, table: str) -> int:
    return sql(app, f"SELECT count(*) FROM {table}")[0][0]


@pytest.mark.parametrize("crs", ["EPSG:4978", "EPSG:5773", "EPSG:4979", "EPSG:9518",
                                 "EPSG:4479"])
def test_geocentric_vertical_3d_and_compound_systems_are_refused(offline_app, crs, signed_in):
    """A geocentric or vertical 'point' once came out as a pass at lat 90 and was stored."""
    client, token = signed_in("inspector")
    before = _count(offline_app, "inspections")
    r = client.get(f"/api/check?lon=113.2&lat=35.2&crs={crs}")
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    assert "二维" in r.json["message"] and "verdict" not in r.json
    page = client.get(f"/check?lon=113.2&lat=35.2&crs={crs}")
    assert page.status_code == 400
    saved = client.post("/check/inspections", data={"lon": "113.2", "lat": "35.2", "crs": crs,
                                                    "csrf_token": token})
    assert saved.status_code == 400
    assert _count(offline_app, "inspections") == before


def test_projected_and_geographic_2d_systems_still_work(signed_in):
    client, _ = signed_in("inspector")
    assert client.get("/api/check?lon=113.2418&lat=35.2155&crs=EPSG:4490").status_code == 200
    r = client.get("/api/check?lon=38521985&lat=3896660&crs=EPSG:4526")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]


def test_huge_crs_value_is_refused_without_echo(signed_in):
    client, _ = signed_in("inspector")
    marker = "Q" * 100_000
    for url in (f"/api/check?lon=113.2&lat=35.2&crs={marker}",
                f"/check?lon=113.2&lat=35.2&crs={marker}"):
        r = client.get(url)
        body = r.get_data(as_text=True)
        assert r.status_code == 400
        assert "QQQQQQQQQQ" not in body
        assert len(body) < 60_000
    r = client.get(f"/api/check?lon=113.2&lat=35.2&crs={'Q' * 101}")
    assert r.status_code == 400 and "过长" in r.json["message"]


def test_unexpected_error_shows_a_reference_and_no_internals(make_app, caplog):
    app = make_app(INTRANET=True, TILES="none")  # a test route is added to it
    secret_path = "/tmp/geoapp-upload-abc123/upload.geojson"

    @app.get("/api/test-boom")
    def _boom():
        raise RuntimeError(f"GDAL failed on {secret_path}: 'utf-8' codec can't decode")

    @app.get("/test-boom")
    def _boom_page():
        raise RuntimeError(f"GDAL failed on {secret_path}")

    client = app.test_client()
    login(client, "viewer")
    with caplog.at_level(logging.ERROR, logger="geoapp.web.errors"):
        r = client.get("/api/test-boom")
        page = client.get("/test-boom")
    assert r.status_code == 500 and page.status_code == 500
    ref = r.json["details"]["reference"]
    assert re.fullmatch(r"[0-9a-f]{8}", ref) and ref in r.json["message"]
    for body in (r.get_data(as_text=True), page.get_data(as_text=True)):
        assert secret_path not in body and "codec" not in body and "GDAL" not in body
    assert ref in caplog.text and secret_path in caplog.text
    assert re.search(r"参考编号 Reference: [0-9a-f]{8}", page.get_data(as_text=True))


@pytest.mark.backends("gpkg")  # SQLite's own page limit stands for the full disk
def test_layer_page_with_the_disk_full_is_a_503_page(make_app, tmp_path):
    """The layer upload answer once crashed rendering a full disk's details (a dict)."""
    app = make_app(INTRANET=True, TILES="none")
    client = app.test_client()
    token = login(client, "planner")
    repo = app.extensions["geoapp"].repo
    before = len(repo.layer("urban_core"))
    conn = repo._conn()
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    data = shapefile_zip(tmp_path, zone([SQUARE] * 300))
    r = upload(client, token, "urban_core", data, "zone.zip")
    body = r.get_data(as_text=True)
    assert r.status_code == 503, body[:500]
    assert "磁盘已满" in body or "disk" in body
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert len(repo.layer("urban_core")) == before
    assert csrf_token(client.get("/layers").get_data(as_text=True))


@pytest.mark.backends("postgis")
def test_layer_page_with_the_database_read_only_is_a_503_page(make_app, tmp_path):
    """The PostgreSQL server refusing every write (its database made read-only) is the same
    503 page, with nothing stored."""
    app = make_app(INTRANET=True, TILES="none")
    client = app.test_client()
    token = login(client, "planner")
    repo = app.extensions["geoapp"].repo
    before = len(repo.layer("urban_core"))
    url = app.config["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    sql(app, f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    repo.close()  # the next connections start read-only
    data = shapefile_zip(tmp_path, zone([SQUARE] * 300))
    r = upload(client, token, "urban_core", data, "zone.zip")
    body = r.get_data(as_text=True)
    assert r.status_code == 503, body[:500]
    assert "数据库只读" in body and "未保存任何内容" in body
    with psycopg.connect(url, autocommit=True,
                         options="-c default_transaction_read_only=off") as conn:
        conn.execute(f"ALTER DATABASE {name} RESET default_transaction_read_only")
    repo.close()
    assert len(repo.layer("urban_core")) == before
    assert csrf_token(client.get("/layers").get_data(as_text=True))


def test_uploads_beyond_the_process_bound_get_503_and_checks_still_answer(offline_app,
                                                                          signed_in):
    """While every upload slot is busy, another upload is refused at once (503, Retry-After,
    nothing parsed or stored) and the inspector's check still answers."""
    client, token = signed_in("planner")
    csv = b"lon,lat\n" + b"113.2,35.2\n" * 2_000
    assert len(csv) > HEAVY_BODY_BYTES  # an upload, by its size

    def flag():
        return client.post("/api/flag", data={"file": (io.BytesIO(csv), "a.csv")},
                           content_type="multipart/form-data", headers={"X-CSRFToken": token})

    slots = offline_app.extensions["geoapp.upload_slots"]
    assert slots.acquire(blocking=False)
    try:
        r = flag()
        assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
        assert r.json["error"] == "busy" and "稍后重试" in r.json["message"]
        assert client.get("/api/check?lon=113.2418&lat=35.2155").status_code == 200
    finally:
        slots.release()
    r = flag()
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert slots.acquire(blocking=False)  # the finished upload gave its slot back
    slots.release()


def _multipart(boundary: str, fields: dict[str, str],
               file: tuple[bytes, str] | None = None) -> bytes:
    out = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                   f"{v}\r\n".encode() for k, v in fields.items())
    if file is not None:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{file[1]}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode() + file[0] + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_a_small_multipart_check_is_answered_while_the_upload_slot_is_held(offline_app,
                                                                           signed_in):
    """The parcel page posts every check as multipart: a pasted parcel (and a small file)
    is not an upload, so one user's long download or large file never refuses it. A
    multipart or chunked body of unknown size is, since it may be anything."""
    client, token = signed_in("viewer")
    boundary = "geoapp-test-boundary"
    multipart = f"multipart/form-data; boundary={boundary}"
    text = "\n".join(f"{x},{y}" for x, y in list(SQUARE.exterior.coords)[:-1])
    paste = _multipart(boundary, {"csrf_token": token, "mode": "paste", "text": text,
                                  "crs": "wgs84"})
    upload_ = _multipart(boundary, {}, (text.encode(), "parcel.txt"))
    assert len(paste) < HEAVY_BODY_BYTES and len(upload_) < HEAVY_BODY_BYTES
    slots = offline_app.extensions["geoapp.upload_slots"]
    assert slots.acquire(blocking=False)
    try:
        r = client.post("/parcel", data=paste, content_type=multipart)
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        assert 'class="pc-parcel"' in r.get_data(as_text=True)
        r = client.post("/api/parcels/check", data=upload_, content_type=multipart,
                        headers={"X-CSRFToken": token})
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        assert len(r.json["parcels"]) == 1
        # the same small check sent chunked, without Content-Length: its size is unknown
        r = client.post("/parcel", input_stream=io.BytesIO(paste), content_type=multipart,
                        headers={"Transfer-Encoding": "chunked"})
        assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
    finally:
        slots.release()


def test_a_large_json_body_takes_an_upload_slot_a_small_one_does_not(offline_app, signed_in):
    """Many parcels as a GeoJSON body cost seconds like a file: beyond HEAVY_BODY_BYTES the
    body is worked on as an upload (503 while every slot is busy); one small parcel is not."""
    client, token = signed_in("planner")
    ring = [[113.24, 35.21], [113.241, 35.21], [113.241, 35.211], [113.24, 35.211],
            [113.24, 35.21]]
    small = {"type": "Feature", "properties": {"id": "A"},
             "geometry": {"type": "Polygon", "coordinates": [ring]}}
    big = {"type": "FeatureCollection", "features": [
        {**small, "properties": {"id": f"P{i}"}} for i in range(600)]}
    assert len(json.dumps(big)) > HEAVY_BODY_BYTES > len(json.dumps(small))
    slots = offline_app.extensions["geoapp.upload_slots"]
    assert slots.acquire(blocking=False)
    try:
        r = client.post("/api/parcels/check", json=big, headers={"X-CSRFToken": token})
        assert r.status_code == 503 and r.json["error"] == "busy"
        r = client.post("/api/parcels/check", json=small, headers={"X-CSRFToken": token})
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
    finally:
        slots.release()


@pytest.mark.parametrize("url", ["/weekly?week=0000-W01", "/weekly/0000-W01/bulletin.txt",
                                 "/weekly/0000-W01.zip", "/weekly/9999-W01.zip",
                                 "/weekly/9999-W52.zip", "/weekly?week=2100-W01"])
def test_weeks_outside_the_supported_years_are_a_400(url, signed_in):
    client, _ = signed_in("viewer")
    r = client.get(url)
    assert r.status_code in (400, 404), (url, r.status_code)
    assert "Reference" not in r.get_data(as_text=True)


def test_weekly_import_naming_year_zero_is_a_400(signed_in):
    client, token = signed_in("planner")
    r = client.post("/weekly/import", data={"week": "0000-W01", "kind": "warnings",
                                            "csrf_token": token,
                                            "file": (io.BytesIO(b"a,b\n1,2\n"), "w.csv")},
                    content_type="multipart/form-data")
    assert 400 <= r.status_code < 500


@pytest.mark.parametrize("path", ["/ledger/import", "/weekly/import", "/api/flag"])
def test_big_uploads_leave_no_open_temporary_file(signed_in, path):
    """werkzeug spools parts over 500 KB to temporary files; each is closed with its request
    (an unclosed one raises ResourceWarning, an error under this suite's settings)."""
    client, token = signed_in("planner")
    data = b"lon,lat\n" + b"113.2,35.2\n" * 60_000
    boundary = "geoapp-test-boundary"
    body = b"".join(
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
        for k, v in (("csrf_token", token), ("kind", "warnings")))
    body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
             f"filename=\"big.xlsx\"\r\nContent-Type: application/octet-stream\r\n\r\n"
             ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    # built in memory: the test client would spool a big body to a file of its own
    r = client.post(path, data=io.BytesIO(body), headers={"X-CSRFToken": token},
                    content_type=f"multipart/form-data; boundary={boundary}")
    assert 400 <= r.status_code < 500
    del r
    gc.collect()

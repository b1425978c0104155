"""Inspection photos: EXIF time and GPS read with Pillow, distances from the checked point,
hostile files refused, and the records kept by both storage backends."""

from __future__ import annotations

import hashlib
import io
import struct
import time
import zlib

import pytest
from PIL import ExifTags, Image
from pyproj import Geod

from geoapp.domain.errors import InvalidInput, NotFound
from geoapp.services import photos

POINT = (113.2418, 35.2159)
LIMITS = photos.Limits(max_bytes=15 * 1024 * 1024, max_count=12, mismatch_m=200.0)
_GEOD = Geod(ellps="WGS84")


def offset_point(lon: float, lat: float, metres: float, azimuth: float = 60.0):
    """The point ``metres`` from (lon, lat) towards ``azimuth`` (geodesic)."""
    x, y, _ = _GEOD.fwd(lon, lat, azimuth, metres)
    return float(x), float(y)


def _dms(value: float) -> tuple[float, float, float]:
    """Degrees, minutes, seconds as a camera writes them (seconds below 60)."""
    total = round(abs(value) * 3600, 4)
    d, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return (float(d), float(m), round(s, 4))


def exif_jpeg(lon: float | None = None, lat: float | None = None, *,
              size: tuple[int, int] = (800, 600), taken: str | None = "2026:11:30 14:05:09",
              offset: str | None = "+08:00", orientation: int = 1,
              colour: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    """A JPEG with EXIF: DateTimeOriginal (+ OffsetTimeOriginal), Orientation and, when
    given, a GPS position (WGS84) in the GPS IFD."""
    im = Image.new("RGB", size, colour)
    for x in range(0, size[0], 37):  # some detail, so the JPEG is not trivially small
        im.paste((x % 255, 200, 60), (x, 0, min(x + 9, size[0]), size[1]))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "geoapp-test"
    if taken:
        ifd = exif.get_ifd(ExifTags.IFD.Exif)
        ifd[ExifTags.Base.DateTimeOriginal] = taken
        if offset:
            ifd[ExifTags.Base.OffsetTimeOriginal] = offset
    if lon is not None and lat is not None:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps[ExifTags.GPS.GPSVersionID] = b"\x02\x02\x00\x00"
        gps[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
        gps[ExifTags.GPS.GPSLatitude] = _dms(lat)
        gps[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
        gps[ExifTags.GPS.GPSLongitude] = _dms(lon)
        gps[ExifTags.GPS.GPSMapDatum] = "WGS-84"
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def png_bytes(size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (200, 30, 30, 128)).save(out, "PNG")
    return out.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def three_photos() -> list[photos.Upload]:
    """One photo 50 m from POINT, one 500 m away, one without a position."""
    near, far = offset_point(*POINT, 50), offset_point(*POINT, 500, azimuth=200)
    return [photos.Upload("near.jpg", exif_jpeg(*near)),
            photos.Upload("far.jpg", exif_jpeg(*far, colour=(200, 60, 40))),
            photos.Upload("nogps.jpg", exif_jpeg(taken=None))]


def test_exif_time_and_position_are_read_and_measured_from_the_checked_point():
    near, far, nogps = photos.read_photos(three_photos(), LIMITS, lon=POINT[0], lat=POINT[1])
    want = offset_point(*POINT, 50)
    assert near["exif_lon"] == pytest.approx(want[0], abs=2e-6)
    assert near["exif_lat"] == pytest.approx(want[1], abs=2e-6)
    assert near["exif_distance_m"] == pytest.approx(50, abs=0.5)
    assert near["position_mismatch"] == 0
    assert near["taken_at"] == "2026-11-30T14:05:09+08:00"
    assert far["exif_distance_m"] == pytest.approx(500, abs=0.5)
    assert far["position_mismatch"] == 1
    assert nogps["exif_lon"] is None and nogps["exif_distance_m"] is None
    assert nogps["taken_at"] is None and nogps["position_mismatch"] == 0
    marks = [photos.photo_marks(p, 200.0) for p in (near, far, nogps)]
    assert [m["state"] for m in marks] == ["ok", "mismatch", "no_gps"]
    assert marks[1]["distance"] == "500"
    for p, upload in zip((near, far, nogps), three_photos(), strict=True):
        assert p["data"] == upload.data  # kept as uploaded
        assert p["sha256"] == hashlib.sha256(upload.data).hexdigest()
        assert p["media_type"] == "image/jpeg" and (p["width"], p["height"]) == (800, 600)
        assert Image.open(io.BytesIO(p["thumb"])).size == (320, 240)


def test_southern_and_western_positions_are_negative_and_a_time_without_offset_is_local():
    p = photos.read_photo(photos.Upload("s.jpg", exif_jpeg(-43.2, -22.9, offset=None)), LIMITS)
    assert (p["exif_lon"], p["exif_lat"]) == (pytest.approx(-43.2, abs=1e-6),
                                              pytest.approx(-22.9, abs=1e-6))
    assert p["taken_at"] == "2026-11-30T14:05:09"


def test_the_thumbnail_is_upright_and_the_size_is_the_upright_one():
    p = photos.read_photo(photos.Upload("r.jpg", exif_jpeg(size=(800, 400), orientation=6)),
                          LIMITS)
    assert (p["width"], p["height"]) == (400, 800)
    assert Image.open(io.BytesIO(p["thumb"])).size == (160, 320)


def test_a_png_named_jpg_is_judged_by_its_content():
    p = photos.read_photo(photos.Upload("really-a.png.jpg", png_bytes()), LIMITS)
    assert p["media_type"] == "image/png"
    assert photos.download_name({**p, "id": 7}) == "really-a.png.png"


@pytest.mark.parametrize("name, data, words", [
    ("notes.jpg", "这不是照片 not a photo\n".encode() * 20, "JPEG、PNG、WebP"),
    ("drawing.svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    ("inline.jpg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "SVG"),
    ("IMG_0001.HEIC", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
     "HEIC"),
    ("empty.jpg", b"", "文件为空"),
])
def test_files_that_are_not_accepted_photos_are_refused_naming_the_file(name, data, words):
    with pytest.raises(InvalidInput) as err:
        photos.read_photo(photos.Upload(name, data), LIMITS)
    assert name in str(err.value.message) and words in str(err.value.message)


def test_a_truncated_jpeg_is_refused():
    data = exif_jpeg(*POINT)
    with pytest.raises(InvalidInput, match="损坏或不完整") as err:
        photos.read_photo(photos.Upload("cut.jpg", data[: len(data) * 2 // 3]), LIMITS)
    assert "cut.jpg" in str(err.value.message)


def test_a_decompression_bomb_is_refused_from_its_header_quickly():
    bomb = png_bomb()
    assert len(bomb) < 1000
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match="像素过多"):
        photos.read_photo(photos.Upload("bomb.png", bomb), LIMITS)
    assert time.perf_counter() - started < 0.5
    # Below Pillow's own bomb limit but above ours: still refused before any decode.
    with pytest.raises(InvalidInput, match="像素过多"):
        photos.read_photo(photos.Upload("big.png", png_bomb(12_000, 9_000)), LIMITS)


def test_size_and_count_limits():
    small = photos.Limits(max_bytes=20_000, max_count=2, mismatch_m=200.0)
    big = exif_jpeg(size=(1600, 1200))
    assert len(big) > 20_000
    with pytest.raises(InvalidInput, match="文件过大") as err:
        photos.read_photo(photos.Upload("big.jpg", big), small)
    assert "big.jpg" in str(err.value.message)
    with pytest.raises(InvalidInput, match="照片过多"):
        photos.read_photos(three_photos(), small, lon=POINT[0], lat=POINT[1])
    with pytest.raises(InvalidInput, match="照片过多"):
        photos.read_photos(three_photos()[:1], small, lon=POINT[0], lat=POINT[1], already=2)


def test_one_bad_photo_refuses_the_whole_upload():
    uploads = [*three_photos(), photos.Upload("broken.jpg", b"\xff\xd8\xff" + b"\x00" * 99)]
    with pytest.raises(InvalidInput) as err:
        photos.read_photos(uploads, LIMITS, lon=POINT[0], lat=POINT[1])
    assert "broken.jpg" in str(err.value.message)


def test_file_names_are_never_paths():
    assert photos.clean_filename("../../etc/passwd") == "passwd"
    assert photos.clean_filename("C:\\Users\\x\\现场 1.jpg") == "现场 1.jpg"
    assert photos.clean_filename("a\x00b\r\n.jpg") == "ab.jpg"
    assert photos.download_name({"id": 3, "filename": "", "media_type": "image/webp"}) \
        == "photo-3.webp"


# -- both storage backends ---------------------------------------------------------------

def _record(site_id=None):
    return {"site_id": site_id, "lon": POINT[0], "lat": POINT[1], "verdict": "pass",
            "hits": [], "notes": "n", "gps_accuracy_m": 8.4}


def test_an_inspection_and_its_photos_are_kept_in_one_write(repo):
    read = photos.read_photos(three_photos(), LIMITS, lon=POINT[0], lat=POINT[1])
    rec = repo.add_inspection(_record("S1"), user="insp", photos=read)
    assert rec["gps_accuracy_m"] == pytest.approx(8.4)
    listed = repo.inspection_photos(inspection_id=rec["id"])
    assert [p["filename"] for p in listed] == ["near.jpg", "far.jpg", "nogps.jpg"]
    assert all("data" not in p and "thumb" not in p for p in listed)
    assert [p["position_mismatch"] for p in listed] == [0, 1, 0]
    assert listed[0]["site_id"] == "S1" and listed[0]["uploaded_by"] == "insp"
    assert repo.inspection_photos(site_id="S1") == listed
    assert repo.inspection_photos(site_id="other") == []
    full = repo.inspection_photo(listed[1]["id"], part="data")
    assert full["data"] == read[1]["data"]
    assert hashlib.sha256(full["data"]).hexdigest() == listed[1]["sha256"]
    assert repo.inspection_photo(listed[1]["id"], part="thumb")["thumb"] == read[1]["thumb"]
    with pytest.raises(NotFound):
        repo.inspection_photo(10_000_000, part="data")
    audit = [h for h in repo.history(str(rec["id"]), "inspection") if h["action"] == "add_photo"]
    assert len(audit) == 3
    assert all("data" not in h["after"] and "thumb" not in h["after"] for h in audit)
    assert {h["after"]["sha256"] for h in audit} == {p["sha256"] for p in listed}


def test_a_failing_photo_leaves_no_inspection_behind(repo):
    before = len(repo.inspections())
    bad = {"filename": "x.jpg", "media_type": "image/jpeg"}  # no bytes, no size
    with pytest.raises(KeyError):
        repo.add_inspection(_record(), user="insp", photos=[bad])
    assert len(repo.inspections()) == before
    assert repo.inspection_photos() == []


def test_photos_added_later_are_all_or_nothing_and_counted(repo):
    rec = repo.add_inspection(_record(), user="insp")
    read = photos.read_photos(three_photos(), LIMITS, lon=POINT[0], lat=POINT[1])
    saved = repo.add_inspection_photos(rec["id"], read[:2], user="insp", max_count=3)
    assert [p["filename"] for p in saved] == ["near.jpg", "far.jpg"]
    assert saved[0]["site_id"] is None
    with pytest.raises(InvalidInput, match="照片过多"):
        repo.add_inspection_photos(rec["id"], read, user="insp", max_count=3)
    with pytest.raises(KeyError):
        repo.add_inspection_photos(rec["id"], [read[2], {"filename": "bad"}], user="insp")
    assert len(repo.inspection_photos(inspection_id=rec["id"])) == 2
    with pytest.raises(NotFound):
        repo.add_inspection_photos(10_000_000, read[:1], user="insp")

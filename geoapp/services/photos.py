"""Photos of an inspection: judged, read and kept as evidence.

Every uploaded photo is judged before it is kept, and one bad photo refuses the whole upload
(the message names the file): its type by content (JPEG, PNG or WebP; SVG, HEIC and anything
else refused), its size (``PHOTO_MAX_MB``), the number of photos of one inspection
(``PHOTO_MAX_COUNT``), its pixel count read from the header before anything is decoded (a
decompression bomb is refused in milliseconds), and then a full decode (a broken or truncated
file is refused). The bytes are kept exactly as uploaded with their SHA-256; a 320 px JPEG
thumbnail with the EXIF orientation applied is made beside them.

From the EXIF the photo's time (DateTimeOriginal with OffsetTimeOriginal when present) and
GPS position (the GPS IFD as decimal degrees, WGS84) are read; an impossible position
(minutes or seconds outside 0-60, a missing or wrong N/S/E/W reference) is no position. A
position farther than ``PHOTO_MISMATCH_M`` from the checked point (geodesic distance) marks
the photo ``position_mismatch``; a photo without a position says so (and the print view says
why). A photo taken more than ``PHOTO_TIME_MISMATCH_H`` hours from the inspection, or after
it was uploaded, is marked too. The same file twice in one inspection is refused.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import re
import unicodedata
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import ExifTags, Image, ImageOps
from pyproj import Geod

from geoapp.domain.bulletin import LOCAL_TZ
from geoapp.domain.errors import GeoappError, InvalidInput, NotFound
from geoapp.domain.messages import Text as _l
from geoapp.services import inspection
from geoapp.services.core import Geoapp
from geoapp.spatial.crs import describe_crs

log = logging.getLogger(__name__)

#: Accepted formats: Pillow's name -> media type and the file extension of a download.
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"),
           "WEBP": ("image/webp", "webp")}
#: The most pixels a photo may have (judged from its header, before it is decoded): a
#: 48-megapixel phone camera's full-size photo passes; an 80-megapixel PNG (about 500 MB
#: and over a second to decode) and a decompression bomb do not.
MAX_PIXELS = 50_000_000
#: A device accuracy (metres) outside (0, MAX_ACCURACY_M] is not kept.
MAX_ACCURACY_M = 10_000.0
#: An EXIF time later than its upload by more than this is "in the future".
FUTURE_SLACK = timedelta(minutes=10)
#: Longest side of a thumbnail, in pixels, and its JPEG quality.
THUMB_PX = 320
THUMB_QUALITY = 80
#: The longest file name kept (characters).
NAME_LIMIT = 120
#: EXIF tags read (ExifTags.Base values).
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4
_GEOD = Geod(ellps="WGS84")
_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")
#: Words for content that is an image but not one accepted here.
_OTHER_IMAGES = ((b"<svg", "SVG"), (b"<?xml", "SVG/XML"), (b"ftypheic", "HEIC"),
                 (b"ftypheix", "HEIC"), (b"ftypmif1", "HEIF"), (b"ftypavif", "AVIF"),
                 (b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the name the client gave and its bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_count: int
    mismatch_m: float
    max_pixels: int = MAX_PIXELS
    time_mismatch_h: float = 24.0

    @classmethod
    def of(cls, app: Geoapp) -> Limits:
        s = app.settings
        return cls(max_bytes=int(float(s["PHOTO_MAX_MB"]) * 1024 * 1024),
                   max_count=int(s["PHOTO_MAX_COUNT"]),
                   mismatch_m=float(s["PHOTO_MISMATCH_M"]),
                   time_mismatch_h=float(s.get("PHOTO_TIME_MISMATCH_H", 24)))


def clean_filename(name: str) -> str:
    """The last part of a client's file name, without control characters, at most
    NAME_LIMIT characters; never a path."""
    text = unicodedata.normalize("NFKC", str(name or ""))
    text = re.split(r"[\\/]", text)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip().strip(".")
    return text[-NAME_LIMIT:]


def download_name(photo: Mapping[str, Any]) -> str:
    """The name a photo is downloaded under: its cleaned name with the extension of what it
    is (a PNG uploaded as ``x.jpg`` comes back as ``x.png``)."""
    ext = next((e for _, (mt, e) in FORMATS.items() if mt == photo["media_type"]), "bin")
    stem = clean_filename(photo.get("filename") or "").rsplit(".", 1)[0]
    return f"{stem or 'photo-' + str(photo['id'])}.{ext}"


def sniff(data: bytes) -> str | None:
    """The accepted format the bytes are (Pillow's name), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _what_else(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    for magic, name in _OTHER_IMAGES:
        if head.startswith(magic.lower()) or (magic.startswith(b"ftyp")
                                              and data[4:12].lower() == magic.lower()):
            return name
    if b"<svg" in head:
        return "SVG"
    return ""


def _refuse(name: str, reason: Any) -> InvalidInput:
    return InvalidInput(_l("照片“%(name)s”未能上传：%(reason)s", name=name or "?", reason=reason),
                        details={"file": name})


def _ratio(value: Any) -> float:
    if isinstance(value, tuple) and len(value) == 2:
        return float(value[0]) / float(value[1])
    return float(value)


def _degrees(dms: Any) -> float | None:
    """Degrees, minutes, seconds as decimal degrees; None when impossible (a negative part,
    minutes or seconds of 60 or more, not a number)."""
    try:
        d, m, s = (_ratio(v) for v in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(v) for v in (d, m, s)) or d < 0 or not (0 <= m < 60 and 0 <= s < 60):
        return None
    return d + m / 60 + s / 3600


def _ref(value: Any) -> str:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value or "")
    return text.strip("\x00 ").upper()


#: Why a photo has no position (shown beside 「无GPS位置」 on the print view).
NO_GPS = _l("照片未记录GPS位置")
BAD_DMS = _l("GPS 度分秒无效（分、秒须在 0–60 之间且不为负）")
BAD_REF = _l("GPS 方位参考缺失或无效（纬度须为 N/S，经度须为 E/W）")
NO_FIX = _l("GPS 位置为 0,0（手机未定位）")
OUT_OF_RANGE = _l("GPS 位置超出经纬度范围")


def read_position(exif: Image.Exif) -> tuple[tuple[float, float] | None, Any]:
    """((lon, lat) in decimal degrees, None) from the GPS IFD, or (None, the reason there is
    no position): absent, impossible degrees-minutes-seconds, a missing or wrong N/S/E/W
    reference, 0,0 (a phone without a fix), out of range."""
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except (KeyError, ValueError, TypeError, OSError):
        return None, NO_GPS
    if not gps or _GPS_LAT not in gps or _GPS_LON not in gps:
        return None, NO_GPS
    lat, lon = _degrees(gps[_GPS_LAT]), _degrees(gps[_GPS_LON])
    if lat is None or lon is None:
        return None, BAD_DMS
    lat_ref, lon_ref = _ref(gps.get(_GPS_LAT_REF)), _ref(gps.get(_GPS_LON_REF))
    if lat_ref not in ("N", "S") or lon_ref not in ("E", "W"):
        return None, BAD_REF
    lat, lon = (-lat if lat_ref == "S" else lat), (-lon if lon_ref == "W" else lon)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, OUT_OF_RANGE
    if lat == 0 and lon == 0:
        return None, NO_FIX
    return (round(lon, 7), round(lat, 7)), None


def exif_position(exif: Image.Exif) -> tuple[float, float] | None:
    """(lon, lat) in decimal degrees from the GPS IFD, or None when absent or impossible
    (0, 0 is a phone without a fix)."""
    return read_position(exif)[0]


def no_position_reason(data: bytes) -> Any:
    """Why a kept photo has no position (its EXIF read again, no pixels decoded)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return read_position(im.getexif())[1] or NO_GPS
    except (OSError, SyntaxError, ValueError, EOFError):
        return NO_GPS


def exif_time(exif: Image.Exif) -> str | None:
    """DateTimeOriginal as ISO 8601, with OffsetTimeOriginal when present
    (``2026-11-30T14:05:09+08:00``); None when absent or not a time."""
    try:
        ifd = exif.get_ifd(ExifTags.IFD.Exif)
    except (KeyError, ValueError, TypeError, OSError):
        return None
    raw = ifd.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME_ORIGINAL)
    if not isinstance(raw, str):
        return None
    try:
        stamp = datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = ifd.get(_OFFSET_TIME_ORIGINAL)
    text = stamp.isoformat()
    if isinstance(offset, str) and _OFFSET.match(offset.strip("\x00 ")):
        text += offset.strip("\x00 ")
    return text


def distance_m(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    """Geodesic distance on the WGS84 ellipsoid, in metres."""
    return float(_GEOD.inv(lon0, lat0, lon1, lat1)[2])


def _thumbnail(im: Image.Image) -> tuple[bytes, int, int]:
    """A JPEG of at most THUMB_PX on its longest side, upright; and the upright size."""
    upright = ImageOps.exif_transpose(im)
    width, height = upright.size
    if upright.mode not in ("RGB", "L"):
        rgba = upright.convert("RGBA")
        upright = Image.new("RGB", rgba.size, "white")
        upright.paste(rgba, mask=rgba.getchannel("A"))
    upright.thumbnail((THUMB_PX, THUMB_PX))
    out = io.BytesIO()
    upright.save(out, "JPEG", quality=THUMB_QUALITY)
    return out.getvalue(), width, height


def read_photo(upload: Upload, limits: Limits) -> dict[str, Any]:
    """Judge and read one photo; InvalidInput naming the file when it is refused."""
    name = clean_filename(upload.filename)
    data = upload.data
    if not data:
        raise _refuse(name, _l("文件为空"))
    if len(data) > limits.max_bytes:
        raise _refuse(name, _l("文件过大（%(mb)s MB），每张照片最大 %(max)s MB",
                               mb=f"{len(data) / 1048576:.1f}",
                               max=f"{limits.max_bytes / 1048576:g}"))
    kind = sniff(data)
    if kind is None:
        other = _what_else(data)
        reason = (_l("%(kind)s 格式不受支持，只接受 JPEG、PNG、WebP 照片", kind=other) if other
                  else _l("不是可识别的图片，只接受 JPEG、PNG、WebP 照片"))
        raise _refuse(name, reason)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[kind]) as im:
                w, h = im.size
                if w <= 0 or h <= 0 or w * h > limits.max_pixels:
                    raise _refuse(name, _l("图片像素过多（%(w)s×%(h)s），最多 %(max)s 万像素",
                                           w=w, h=h, max=limits.max_pixels // 10_000))
                im.load()  # a full decode: a broken or truncated file fails here
                exif = im.getexif()
                (position, no_gps), taken = read_position(exif), exif_time(exif)
                thumb, width, height = _thumbnail(im)
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(name, _l("图片像素过多，最多 %(max)s 万像素",
                               max=limits.max_pixels // 10_000)) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        log.info("photo %r refused: %s", name, exc)
        raise _refuse(name, _l("图片已损坏或不完整，无法读取")) from None
    media_type, ext = FORMATS[kind]
    return {"filename": name or f"photo.{ext}", "media_type": media_type, "size": len(data),
            "width": width, "height": height, "sha256": hashlib.sha256(data).hexdigest(),
            "taken_at": taken, "exif_lon": position[0] if position else None,
            "exif_lat": position[1] if position else None, "no_gps_reason": no_gps,
            "data": data, "thumb": thumb}


def read_photos(uploads: Iterable[Upload], limits: Limits, *, lon: float, lat: float,
                already: int = 0, kept_hashes: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Judge every upload (all or none), each with its distance from the checked point
    (``lon``, ``lat``) and whether it is farther than the limit; ``already`` photos are
    kept for the inspection already, with the SHA-256 ``kept_hashes``. The same file twice
    (in this upload, or one the inspection keeps) is refused, naming it."""
    files = [u for u in uploads if u.filename or u.data]
    if already + len(files) > limits.max_count:
        raise InvalidInput(_l("照片过多：每次检查最多 %(max)s 张（已有 %(have)s 张，本次 %(n)s 张）",
                              max=limits.max_count, have=already, n=len(files)))
    out = []
    seen = {str(h): "" for h in kept_hashes}
    for upload in files:
        photo = read_photo(upload, limits)
        if photo["sha256"] in seen:
            first = seen[photo["sha256"]]
            raise _refuse(photo["filename"],
                          _l("与本次检查的照片“%(first)s”是同一个文件（SHA-256 相同）",
                             first=first) if first else
                          _l("本次检查已保存过同一个文件（SHA-256 相同）"))
        seen[photo["sha256"]] = photo["filename"]
        if photo["exif_lon"] is not None:
            d = distance_m(lon, lat, photo["exif_lon"], photo["exif_lat"])
            photo["exif_distance_m"] = round(d, 1)
            photo["position_mismatch"] = int(d > limits.mismatch_m)
        else:
            photo["exif_distance_m"] = None
            photo["position_mismatch"] = 0
        out.append(photo)
    return out


def gps_accuracy(text: Any) -> float | None:
    """The device's reported accuracy (metres) from a form value; None when absent, not a
    number, not finite, or outside (0, MAX_ACCURACY_M] — ignored, the record is kept."""
    try:
        value = float(str(text).strip())
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or not (0 < value <= MAX_ACCURACY_M):
        return None
    return round(value, 1)


def accuracy_for(view: inspection.CheckView, text: Any) -> float | None:
    """The accuracy a record keeps: only for a point check given in WGS84 (what a phone's
    geolocation reports); never for a site check (the point is the site's stored one) or a
    point typed in another system."""
    if view.site is not None or (view.query.crs or "wgs84").lower() != "wgs84":
        return None
    return gps_accuracy(text)


def add_photos(app: Geoapp, inspection_id: int, uploads: Iterable[Upload], *,
               user: str) -> list[dict[str, Any]]:
    """Add photos to a kept inspection, all or none (the count is checked again inside the
    write, so two uploads at once cannot pass the limit together)."""
    rec = app.repo.inspection(int(inspection_id))
    limits = Limits.of(app)
    kept = app.repo.inspection_photos(inspection_id=int(inspection_id))
    photos = read_photos(uploads, limits, lon=float(rec["lon"]), lat=float(rec["lat"]),
                         already=len(kept), kept_hashes=[p["sha256"] for p in kept])
    if not photos:
        raise InvalidInput(_l("请选择要上传的照片"))
    saved = app.repo.add_inspection_photos(int(inspection_id), photos, user=user,
                                           max_count=limits.max_count)
    log.info("%s photo(s) added to inspection %s by %s", len(saved), inspection_id, user)
    return saved


def distance_text(metres: Any) -> Any:
    """A distance as the pages say it: 「500 米」 below 1 km, 「7.8 公里」 from 1 km."""
    d = float(metres)
    if d >= 1000:
        return _l("%(n)s 公里", n=f"{d / 1000:.1f}")
    return _l("%(n)s 米", n=f"{d:.0f}")


def _parse_time(text: Any, default_tz: Any) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return None
    return stamp.replace(tzinfo=default_tz) if stamp.tzinfo is None else stamp


def time_marks(photo: Mapping[str, Any], record_at: Any, limit_h: float) -> dict[str, Any]:
    """The photo's time against its inspection: ``time_future`` when the EXIF time is after
    the upload (a camera clock or an edited file), ``time_gap`` 「N 天」/「N 小时」 when it is
    more than ``limit_h`` hours from the inspection's time. An EXIF time without an offset
    is the camera's local time, taken as the city's (LOCAL_TZ); stored stamps are UTC."""
    out: dict[str, Any] = {"time_future": False, "time_gap": None}
    taken = _parse_time(photo.get("taken_at"), LOCAL_TZ)
    if taken is None:
        return out
    uploaded = _parse_time(photo.get("uploaded_at"), UTC)
    if uploaded is not None and taken > uploaded + FUTURE_SLACK:
        out["time_future"] = True
    at = _parse_time(record_at, UTC)
    if at is not None:
        hours = abs((taken - at).total_seconds()) / 3600
        if hours > limit_h:
            out["time_gap"] = (_l("%(n)s 天", n=f"{hours / 24:.0f}") if hours >= 48
                               else _l("%(n)s 小时", n=f"{hours:.0f}"))
    return out


def photo_marks(photo: Mapping[str, Any], mismatch_m: float) -> dict[str, Any]:
    """What a page shows of a photo's position: ``state`` (``mismatch``, ``ok``, ``no_gps``)
    and the distance in whole metres (``distance``) and as said (``distance_text``)."""
    if photo.get("exif_lon") is None:
        return {"state": "no_gps", "distance": None, "distance_text": None}
    d = photo.get("exif_distance_m")
    return {"state": "mismatch" if photo.get("position_mismatch") else "ok",
            "distance": None if d is None else f"{float(d):.0f}",
            "distance_text": None if d is None else distance_text(d),
            "limit": f"{mismatch_m:g}"}


def shown(app: Geoapp, photos: Iterable[Mapping[str, Any]],
          records: Mapping[int, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Photo metadata with its position and time marks, for the pages; ``records`` (the
    inspections by id) give each photo's ``added_later`` (uploaded after its record was
    made: 「补充」) and its time against the inspection's."""
    limit = float(app.settings["PHOTO_MISMATCH_M"])
    hours = float(app.settings.get("PHOTO_TIME_MISMATCH_H", 24))
    out = []
    for p in photos:
        rec = (records or {}).get(int(p["inspection_id"])) or {}
        row = {**p, **photo_marks(p, limit), **time_marks(p, rec.get("at"), hours)}
        row["added_later"] = bool(rec.get("at")) and str(p.get("uploaded_at")) != str(rec["at"])
        out.append(row)
    return out


def site_photos(app: Geoapp, site_id: str) -> dict[int, list[dict[str, Any]]]:
    """The photos of a site's inspections, by inspection id (metadata only)."""
    out: dict[int, list[dict[str, Any]]] = {}
    records = {int(r["id"]): r for r in app.repo.inspections(site_id)}
    for p in shown(app, app.repo.inspection_photos(site_id=site_id), records):
        out.setdefault(int(p["inspection_id"]), []).append(p)
    return out


def can_see(app: Geoapp, inspection: Mapping[str, Any], *, sees_records: bool) -> bool:
    """Whether an account may see an inspection (and its photos): anyone who may open its
    site's page (every account) when the inspection names a site that exists; otherwise
    only those who may see inspection records (``sees_records``)."""
    if sees_records:
        return True
    site_id = inspection.get("site_id")
    if not site_id:
        return False
    try:
        app.repo.site(str(site_id))
    except NotFound:
        return False
    return True


def visible_inspection(app: Geoapp, inspection_id: int, *,
                       sees_records: bool) -> dict[str, Any]:
    """The inspection with its photos for its print view; NotFound (the same answer as an
    unknown id) when the account may not see it."""
    try:
        rec = app.repo.inspection(int(inspection_id))
    except NotFound:
        raise NotFound(_l("没有找到该检查记录")) from None
    if not can_see(app, rec, sees_records=sees_records):
        raise NotFound(_l("没有找到该检查记录"))
    rec["photos"] = shown(app, app.repo.inspection_photos(inspection_id=int(inspection_id)),
                          {int(rec["id"]): rec})
    for p in rec["photos"]:
        if p["state"] == "no_gps":
            data = app.repo.inspection_photo(int(p["id"]), part="data")["data"]
            p["no_gps_reason"] = no_position_reason(data)
    given = rec.get("input") or {}
    rec["input_crs_label"] = None
    if not rec.get("site_id") and given.get("lon") not in (None, ""):
        try:
            rec["input_crs_label"] = describe_crs(str(given.get("crs") or "wgs84"))["zh"]
        except GeoappError:  # an old record's system no longer known: shown by its name
            rec["input_crs_label"] = str(given.get("crs") or "")
    return rec


def may_add_photos(inspection: Mapping[str, Any], *, user: str, is_admin: bool) -> bool:
    """Photos may be added to a kept inspection by its own inspector and by admins only."""
    return is_admin or str(inspection.get("inspector") or "") == str(user)


def photo_file(app: Geoapp, photo_id: int, *, part: str, sees_records: bool,
               site_id: str | None = None,
               inspection_id: int | None = None) -> tuple[bytes, dict[str, Any]]:
    """The bytes (``part`` ``data`` or ``thumb``) and metadata of a photo the account may
    see, reached through its site or its inspection; NotFound for an unknown id, another
    site's or inspection's photo, or one the account may not see (all the same answer)."""
    gone = NotFound(_l("没有找到该照片"))
    try:
        photo = app.repo.inspection_photo(int(photo_id), part=part)
    except NotFound:
        raise gone from None
    if site_id is not None and str(photo.get("site_id") or "") != str(site_id):
        raise gone
    if inspection_id is not None and int(photo["inspection_id"]) != int(inspection_id):
        raise gone
    rec = {"site_id": photo.get("site_id")}
    if not can_see(app, rec, sees_records=sees_records):
        raise gone
    return photo.pop(part), photo


def record_inspection(app: Geoapp, view: inspection.CheckView, notes: str,
                      uploads: Iterable[Upload], *, gps_accuracy_m: Any = None,
                      user: str) -> dict[str, Any]:
    """Keep a check as an inspection with its photos (each judged first; one bad photo
    refuses all, and nothing is kept) and the device's GPS accuracy."""
    photos = read_photos(uploads, Limits.of(app), lon=view.result.lon, lat=view.result.lat)
    saved = inspection.record_inspection(app, view, notes, user=user,
                                         gps_accuracy_m=accuracy_for(view, gps_accuracy_m),
                                         photos=photos)
    saved["photos"] = app.repo.inspection_photos(inspection_id=int(saved["id"]))
    return saved

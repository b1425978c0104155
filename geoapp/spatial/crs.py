"""Coordinate systems: the only module of geoapp that names EPSG codes.

Every coordinate that enters the app names its system (``wgs84``, ``cgcs2000``, ``gcj02``,
``bd09``, ``gk``, ``dms`` or ``EPSG:n``) and is turned into WGS84 lon/lat here, because a
400 m buffer check on an unconverted Amap (GCJ-02) point is off by about 600 m around Jiaozuo.
Impossible input raises :class:`CoordinateError` with a message naming the problem and the
value; nothing is guessed silently. Distances are measured elsewhere, in the city's CGCS2000
3-degree Gauss-Krüger zone, which :func:`metric_crs_for` picks.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from geoapp.domain.errors import CoordinateError
from geoapp.domain.messages import Text as _l

log = logging.getLogger(__name__)

WGS84 = "EPSG:4326"
CGCS2000 = "EPSG:4490"

#: The systems a form can name, in the order the UI offers them.
CRS_CHOICES: tuple[str, ...] = ("wgs84", "gcj02", "bd09", "cgcs2000", "gk", "dms")

_LABELS: dict[str, tuple[str, str, str]] = {  # name -> (zh, en, kind)
    "wgs84": ("WGS84（GPS、手机定位）", "WGS84 (GPS, phone location)", "geographic"),
    "gcj02": ("GCJ-02（高德、腾讯、微信）", "GCJ-02 (Amap, Tencent, WeChat)", "geographic"),
    "bd09": ("BD-09（百度）", "BD-09 (Baidu)", "geographic"),
    "cgcs2000": ("CGCS2000（2000国家大地坐标系）", "CGCS2000 (China Geodetic 2000)", "geographic"),
    "gk": ("CGCS2000 高斯-克吕格 3度带（x/y 米）", "CGCS2000 Gauss-Krüger 3-degree zone (x/y metres)",
           "projected"),
    "dms": ("度分秒", "Degrees, minutes, seconds", "text"),
}
_ACCEPTED = "wgs84, cgcs2000, gcj02, bd09, gk, dms, EPSG:4547"

#: China's extent, the one box every coordinate in the app is checked against (forms, the
#: inspector check, source files, uploads, batch files). It is there to catch mistakes, not to
#: draw a border: longitude and latitude swapped, projected metres typed as degrees, a digit
#: lost. So it is generous: 73-135.1°E, and 3.5-53.6°N, down to the South China Sea islands
#: (曾母暗沙 at 3°58'N), so that no Chinese place, Sansha (三沙市) included, is refused. A
#: point in the sea inside the box passes it and is then judged by the city's outline (the
#: out_of_area verdict).
CHINA_LON = (73.0, 135.1)
CHINA_LAT = (3.5, 53.6)

# CGCS2000 3-degree Gauss-Krüger: EPSG:4534-4554 (CM 75..135E), 4513-4533 (zones 25..45,
# zone number in front of the easting).
_GK_PLAIN_FIRST, _GK_PREFIX_FIRST, _CM_MIN, _CM_MAX = 4534, 4513, 75, 135


def _is_scalar(v: Any) -> bool:
    return np.ndim(v) == 0


def _out(a: np.ndarray, b: np.ndarray, scalar: bool) -> tuple[Any, Any]:
    return (float(a), float(b)) if scalar else (a, b)


def _pair(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    scalar = _is_scalar(lon) and _is_scalar(lat)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64), scalar


# --- EPSG systems and Gauss-Krüger zones ---------------------------------------------------

def gk_crs(central_meridian: float, with_zone_prefix: bool = False) -> str:
    """The CGCS2000 3-degree Gauss-Krüger CRS for a central meridian (75..135, step 3).

    With ``with_zone_prefix`` the easting carries the zone number (38 500 000 for CM 114E),
    as many Chinese survey files write it.
    """
    cm = float(central_meridian)
    if not (cm.is_integer() and int(cm) % 3 == 0 and _CM_MIN <= cm <= _CM_MAX):
        raise CoordinateError(_l("中央经线 %(cm)s 不是 CGCS2000 3 度带的中央经线（东经 75、78……135 度）",
                                 cm=central_meridian))
    step = (int(cm) - _CM_MIN) // 3
    return f"EPSG:{(_GK_PREFIX_FIRST if with_zone_prefix else _GK_PLAIN_FIRST) + step}"


def metric_crs_for(lon: float, lat: float) -> str:
    """The GK zone CRS (no zone prefix) whose central meridian is nearest ``lon``.

    Distances in a city are measured in it: Jiaozuo (~113.2E) gives EPSG:4547, CM 114E.
    """
    _raise_first(_lonlat_problems(np.asarray([lon], float), np.asarray([lat], float)),
                 [lon], [lat])
    cm = min(max(3 * round(float(lon) / 3.0), _CM_MIN), _CM_MAX)
    return gk_crs(cm)


#: Longest coordinate-system name accepted; a longer one is refused without being echoed.
MAX_CRS_NAME = 100
#: pyproj CRS kinds a point may be given in: flat lon/lat or flat projected x/y. Geocentric,
#: vertical, 3-D and compound systems would make a "pass" out of a meaningless point.
_POINT_CRS_KINDS = ("Geographic 2D CRS", "Projected CRS")


def _canonical(name: str) -> str:
    """Normalise a system name: 'GCJ-02' -> 'gcj02', 'epsg:4547' / '4547' -> 'EPSG:4547'."""
    text = str(name).strip()
    if len(text) > MAX_CRS_NAME:
        raise CoordinateError(_l("坐标系名称过长（超过 %(max)s 个字符）；可用：%(accepted)s",
                                 max=MAX_CRS_NAME, accepted=_ACCEPTED))
    key = re.sub(r"[\s_\-]", "", text).lower()
    if key in _LABELS:
        return key
    m = re.fullmatch(r"(?:epsg:)?(\d{4,6})", key)
    if m:
        return f"EPSG:{int(m.group(1))}"
    raise CoordinateError(_l("未知的坐标系“%(name)s”；可用：%(accepted)s", name=name,
                             accepted=_ACCEPTED))


def is_flat_crs(crs: CRS) -> bool:
    """2-D geographic (lon/lat) or projected (x/y): the systems a site may be given in. A
    bound CRS (a system with a datum shift attached) is judged by its source system."""
    if crs.type_name == "Bound CRS" and crs.source_crs is not None:
        crs = crs.source_crs
    return crs.type_name in _POINT_CRS_KINDS and len(crs.axis_info) == 2


@lru_cache(maxsize=64)
def resolve_crs(name: str) -> CRS:
    """A pyproj CRS for 'wgs84', 'cgcs2000', 'EPSG:n', 'epsg:n' or 'n'."""
    canon = _canonical(name)
    if canon in ("gcj02", "bd09"):
        raise CoordinateError(_l("“%(name)s”是加偏坐标系，没有 EPSG 代码，这里不能用；"
                                 "请先换算为 WGS84，或写出文件的真实坐标系", name=name))
    if canon in ("gk", "dms"):
        raise CoordinateError(_l("“%(name)s”不是一个确定的坐标系；高斯-克吕格请写出带的 EPSG "
                                 "代码（如 EPSG:4547）", name=name))
    code = {"wgs84": WGS84, "cgcs2000": CGCS2000}.get(canon, canon)
    try:
        crs = CRS.from_user_input(code)
    except CRSError:
        raise CoordinateError(_l("未知的 EPSG 代码“%(name)s”；可用：%(accepted)s", name=name,
                                 accepted=_ACCEPTED)) from None
    if not is_flat_crs(crs):
        raise CoordinateError(_l(
            "不支持的坐标系 %(crs)s（%(kind)s）：只接受二维的地理坐标系（经纬度）或投影坐标系"
            "（x/y），如 EPSG:4326、EPSG:4490 或 EPSG:4547", crs=canon, kind=crs.type_name))
    return crs


@lru_cache(maxsize=64)
def transformer(src: str, dst: str) -> Transformer:
    """A cached lon/lat-ordered (always_xy) Transformer; building one takes milliseconds."""
    return Transformer.from_crs(resolve_crs(src), resolve_crs(dst), always_xy=True)


def to_metric(lon: Any, lat: Any, metric_crs: str) -> tuple[Any, Any]:
    """WGS84 lon/lat (scalars or arrays) to x/y metres in ``metric_crs``."""
    return transformer(WGS84, metric_crs).transform(lon, lat)


def from_metric(x: Any, y: Any, metric_crs: str) -> tuple[Any, Any]:
    """x/y metres in ``metric_crs`` (scalars or arrays) back to WGS84 lon/lat."""
    return transformer(metric_crs, WGS84).transform(x, y)


def gk_central_meridian(metric_crs: str) -> int:
    """The central meridian of a CGCS2000 3-degree GK CRS (with or without zone prefix);
    CoordinateError for any other system."""
    code = resolve_crs(metric_crs).to_epsg()
    if code is not None and _GK_PLAIN_FIRST <= code <= _GK_PLAIN_FIRST + 20:
        return _CM_MIN + 3 * (code - _GK_PLAIN_FIRST)
    if code is not None and _GK_PREFIX_FIRST <= code <= _GK_PREFIX_FIRST + 20:
        return _CM_MIN + 3 * (code - _GK_PREFIX_FIRST)
    raise CoordinateError(_l("量算坐标系 %(crs)s 不是 CGCS2000 3 度带高斯-克吕格投影"
                             "（EPSG:4534-4554 或 4513-4533），不能用于 crs=gk", crs=metric_crs))


# --- GCJ-02 and BD-09 ----------------------------------------------------------------------

_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
_INVERSE_TOL = 1e-9  # degrees, about 0.1 mm
_INVERSE_MAX_ITER = 30


def _gcj_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The public GCJ-02 offset (degrees) of WGS84 points; zero outside the rectangle the
    GCJ-02 algorithm itself defines (part of the published formula, not CHINA_LON/LAT)."""
    pi = math.pi
    x, y = lon - 105.0, lat - 35.0
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + common
            + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + common
            + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0)
    radlat = lat / 180.0 * pi
    magic = 1.0 - _KRASOVSKY_EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrtmagic) * pi)
    dlon = dlon * 180.0 / (_KRASOVSKY_A / sqrtmagic * np.cos(radlat) * pi)
    outside = (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)
    return np.where(outside, 0.0, dlon), np.where(outside, 0.0, dlat)


def _gcj_forward(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _bd_forward(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _invert(forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
            lon: np.ndarray, lat: np.ndarray, lon0: np.ndarray, lat0: np.ndarray,
            ) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point inverse: move the guess by the forward's miss until it is < 1e-9 degrees.

    The usual one-step GCJ-02 inverse is up to ~5 m off in China (BD-09: ~0.2 m); iterating
    makes a round trip exact to a millimetre, so a converted point can be trusted near a
    50 m canal buffer.
    """
    w_lon, w_lat = lon0.copy(), lat0.copy()
    for _ in range(_INVERSE_MAX_ITER):
        f_lon, f_lat = forward(w_lon, w_lat)
        e_lon, e_lat = f_lon - lon, f_lat - lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
        if not (np.any(np.abs(e_lon) > _INVERSE_TOL) or np.any(np.abs(e_lat) > _INVERSE_TOL)):
            break
    return w_lon, w_lat


def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[Any, Any]:
    """WGS84 to GCJ-02 (Amap/Tencent); points outside China are returned unchanged."""
    a, b, scalar = _pair(lon, lat)
    with np.errstate(invalid="ignore", over="ignore"):
        return _out(*_gcj_forward(a, b), scalar)


def gcj02_to_wgs84(lon: Any, lat: Any) -> tuple[Any, Any]:
    """GCJ-02 to WGS84 by iterating the forward formula (round trip < 1e-9 degrees)."""
    a, b, scalar = _pair(lon, lat)
    with np.errstate(invalid="ignore", over="ignore"):
        dlon, dlat = _gcj_offset(a, b)
        return _out(*_invert(_gcj_forward, a, b, a - dlon, b - dlat), scalar)


def gcj02_to_bd09(lon: Any, lat: Any) -> tuple[Any, Any]:
    """GCJ-02 to BD-09 (Baidu)."""
    a, b, scalar = _pair(lon, lat)
    with np.errstate(invalid="ignore", over="ignore"):
        return _out(*_bd_forward(a, b), scalar)


def bd09_to_gcj02(lon: Any, lat: Any) -> tuple[Any, Any]:
    """BD-09 to GCJ-02: the usual closed-form guess, refined by iteration."""
    a, b, scalar = _pair(lon, lat)
    with np.errstate(invalid="ignore", over="ignore"):
        x, y = a - 0.0065, b - 0.006
        z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
        theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
        return _out(*_invert(_bd_forward, a, b, z * np.cos(theta), z * np.sin(theta)), scalar)


def wgs84_to_bd09(lon: Any, lat: Any) -> tuple[Any, Any]:
    """WGS84 to BD-09 (via GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: Any, lat: Any) -> tuple[Any, Any]:
    """BD-09 to WGS84 (via GCJ-02, both steps iterated)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


# --- Degrees, minutes, seconds -------------------------------------------------------------

_DMS_REPLACE = (
    ("东经", "E"), ("西经", "W"), ("北纬", "N"), ("南纬", "S"),
    ("东", "E"), ("西", "W"), ("北", "N"), ("南", "S"),
    ("度", "°"), ("分", "'"), ("秒", '"'), ("º", "°"), ("˚", "°"),
    ("′", "'"), ("’", "'"), ("‘", "'"), ("`", "'"), ("″", '"'), ("”", '"'), ("“", '"'),
    ("''", '"'), ("−", "-"), (":", " "),
)
_NUM = r"\d+(?:\.\d+)?"
_ANGLE = re.compile(rf"([-+]?)\s*({_NUM})\s*°?\s*(?:({_NUM})\s*'?\s*(?:({_NUM})\s*\"?)?)?")
_DMS_EXAMPLE = "113°14'30.5\"E 35°12'10\"N, 东经113度14分30.5秒 北纬35度12分10秒"


def _angle(chunk: str, text: str) -> tuple[float, bool]:
    """One angle of a DMS text -> (absolute degrees, had a minus sign)."""
    m = _ANGLE.fullmatch(chunk.strip(" ,;/"))
    if not m:
        raise CoordinateError(_DMS_UNREADABLE(text))
    sign, deg, mins, secs = m.groups()
    if mins is not None and "." in deg:
        raise CoordinateError(_l("“%(text)s”：带小数的度数 %(deg)s 后面不能再写分", text=text,
                                 deg=deg))
    if secs is not None and "." in mins:
        raise CoordinateError(_l("“%(text)s”：带小数的分 %(min)s 后面不能再写秒", text=text,
                                 min=mins))
    if mins is not None and float(mins) >= 60:
        raise CoordinateError(_l("“%(text)s”：分 %(value)s 须小于 60", text=text, value=mins))
    if secs is not None and float(secs) >= 60:
        raise CoordinateError(_l("“%(text)s”：秒 %(value)s 须小于 60", text=text, value=secs))
    degrees = float(deg) + float(mins or 0) / 60.0 + float(secs or 0) / 3600.0
    return degrees, sign == "-"


def _dms_chunks(norm: str, text: str) -> list[tuple[str, str | None]]:
    """Split normalised text into two (angle text, hemisphere letter or None)."""
    if re.search(r"[^0-9.\s°'\"NSEW,;/+\-]", norm):
        raise CoordinateError(_DMS_UNREADABLE(text))
    letters = [m.start() for m in re.finditer(r"[NSEW]", norm)]
    if not letters:
        parts = re.split(r"[,;/]", norm)
        if len(parts) != 2:
            raise CoordinateError(_l("无法把“%(text)s”读成两个坐标；请写成例如 %(example)s",
                                     text=text, example=_DMS_EXAMPLE))
        return [(parts[0], None), (parts[1], None)]
    if len(letters) != 2:
        raise CoordinateError(_l("“%(text)s”：每个坐标应有一个方位字母（E/W 和 N/S，或东经/北纬），"
                                 "这里有 %(count)s 个", text=text, count=len(letters)))
    i, j = letters
    if not norm[:i].strip():  # prefix style: N35°12'10" E113°14'30.5"
        return [(norm[i + 1:j], norm[i]), (norm[j + 1:], norm[j])]
    if not norm[j + 1:].strip():  # suffix style: 113°14'30.5"E 35°12'10"N
        return [(norm[:i], norm[i]), (norm[i + 1:j], norm[j])]
    raise CoordinateError(_l("“%(text)s”：方位字母须统一写在每个坐标之前或之后；请写成例如 "
                             "%(example)s", text=text, example=_DMS_EXAMPLE))


def _DMS_UNREADABLE(text: str) -> str:  # noqa: N802 - reads as the message it is
    return _l("无法把“%(text)s”读成度分秒；请写成例如 %(example)s", text=text,
              example=_DMS_EXAMPLE)


def parse_dms(text: str) -> tuple[float, float]:
    """Read a lon/lat written by hand (DMS, Chinese 东经/北纬, decimal with letters).

    The order is decided by the hemisphere letters. Without letters the two values must be
    separated by a comma, and only a value above 90 can be told to be the longitude.
    """
    if text is None or not str(text).strip():
        raise CoordinateError(_l("没有填写坐标；请写成例如 %(example)s", example=_DMS_EXAMPLE))
    norm = str(text)
    for _ in range(2):  # before NFKC (which turns º into o) and after (which splits ″ into ′′)
        for old, new in _DMS_REPLACE:
            norm = norm.replace(old, new)
        norm = unicodedata.normalize("NFKC", norm)
    norm = norm.upper()
    values: dict[str, float] = {}
    plain: list[float] = []
    for chunk, letter in _dms_chunks(norm, str(text)):
        deg, minus = _angle(chunk, str(text))
        if letter is None:
            plain.append(-deg if minus else deg)
            continue
        if minus:
            raise CoordinateError(_l("“%(text)s”：负号和方位字母（%(letter)s）只能用一个",
                                     text=text, letter=letter))
        axis = "lon" if letter in "EW" else "lat"
        if axis in values:
            raise CoordinateError(
                _l("“%(text)s”：两个值都是经度（E/W）", text=text) if axis == "lon"
                else _l("“%(text)s”：两个值都是纬度（N/S）", text=text))
        values[axis] = -deg if letter in "SW" else deg
    if plain:
        a, b = plain
        if abs(a) > 90 >= abs(b):
            values = {"lon": a, "lat": b}
        elif abs(b) > 90 >= abs(a):
            values = {"lon": b, "lat": a}
        else:
            raise CoordinateError(_l("“%(text)s”：分不清哪个是经度、哪个是纬度；请加上方位字母"
                                     "（E/N）或东经/北纬", text=text))
    lon, lat = values["lon"], values["lat"]
    if abs(lon) > 180 or abs(lat) > 90:
        raise CoordinateError(_l("“%(text)s”：经度 %(lon)s 或纬度 %(lat)s 超出范围", text=text,
                                 lon=format(lon, "g"), lat=format(lat, "g")))
    return lon, lat


# --- Validation ----------------------------------------------------------------------------

_OK, _NAN, _PROJECTED, _SWAPPED, _LON_RANGE, _LAT_RANGE, _OUTSIDE = range(7)
_G_DEGREES, _G_SWAPPED, _G_IMPLAUSIBLE, _G_SIX_DEGREE, _G_NO_ZONE, _G_LANDS_OUTSIDE = range(10, 16)


def in_china(lon: Any, lat: Any) -> Any:
    """Whether lon/lat degrees (scalars or arrays) lie in the China box (CHINA_LON, CHINA_LAT);
    NaN is not."""
    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        inside = ((lon >= CHINA_LON[0]) & (lon <= CHINA_LON[1])
                  & (lat >= CHINA_LAT[0]) & (lat <= CHINA_LAT[1]))
    return bool(inside) if inside.ndim == 0 else inside


def _lonlat_problems(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """A problem code per point (0 = fine) for values meant as lon/lat degrees in China."""
    finite = np.isfinite(lon) & np.isfinite(lat)
    out_of_range = (np.abs(lon) > 180) | (np.abs(lat) > 90)
    inside = in_china(lon, lat)
    return np.select(
        [~finite, out_of_range & (np.abs(lon) >= 1000) & (np.abs(lat) >= 1000),
         ~inside & in_china(lat, lon), np.abs(lon) > 180, np.abs(lat) > 90, ~inside],
        [_NAN, _PROJECTED, _SWAPPED, _LON_RANGE, _LAT_RANGE, _OUTSIDE], _OK)


def _gk_problems(x: np.ndarray, y: np.ndarray, has_plain_zone: bool) -> np.ndarray:
    """A problem code per point for values meant as CGCS2000 GK easting (x) / northing (y)."""
    def easting_plain(v: np.ndarray) -> np.ndarray:
        return (v >= 1e5) & (v < 9e5)

    def easting_prefixed(v: np.ndarray, first_zone: int = 13) -> np.ndarray:
        zone = np.floor(v / 1e6)
        return (zone >= first_zone) & (zone <= 45) & easting_plain(v - zone * 1e6)

    def northing(v: np.ndarray) -> np.ndarray:
        return (v >= 1.5e6) & (v <= 6.2e6)

    finite = np.isfinite(x) & np.isfinite(y)
    ok_y = northing(y)
    return np.select(
        [~finite, (np.abs(x) <= 180) & (np.abs(y) <= 90),
         northing(x) & (easting_plain(y) | easting_prefixed(y)),
         ok_y & easting_prefixed(x, 25), ok_y & easting_prefixed(x),
         ok_y & easting_plain(x) & has_plain_zone, ok_y & easting_plain(x)],
        [_NAN, _G_DEGREES, _G_SWAPPED, _OK, _G_SIX_DEGREE, _OK, _G_NO_ZONE], _G_IMPLAUSIBLE)


def _message(code: int, x: float, y: float, crs: str) -> str:
    """The catalogue message for a problem code, naming the values and the system."""
    fx, fy = f"{float(x):.10g}", f"{float(y):.10g}"
    v = {"x": fx, "y": fy, "crs": crs}
    if code == _NAN:
        return _l("坐标缺失或不是数字（x=%(x)s，y=%(y)s）[crs=%(crs)s]", **v)
    if code == _PROJECTED:
        return _l("(%(x)s, %(y)s) 不是度数，像是投影坐标（高斯-克吕格 x/y，米）；请选择 crs=gk "
                  "[crs=%(crs)s]", **v)
    if code == _SWAPPED:
        return _l("经度和纬度像是填反了：(%(x)s, %(y)s) 在中国境外，而 (%(y)s, %(x)s) 在境内；"
                  "请先填经度 [crs=%(crs)s]", **v)
    if code == _LON_RANGE:
        return _l("经度 %(x)s 超出 -180..180 [crs=%(crs)s]", **v)
    if code == _LAT_RANGE:
        return _l("纬度 %(y)s 超出 -90..90 [crs=%(crs)s]", **v)
    if code == _OUTSIDE:
        return _l("点（经度 %(x)s，纬度 %(y)s）在中国境外（东经 %(west)s-%(east)s°，北纬 "
                  "%(south)s-%(north)s°）[crs=%(crs)s]", **v, **_BOX)
    if code == _G_DEGREES:
        return _l("(%(x)s, %(y)s) 像是经纬度（度），不是高斯-克吕格米数；经纬度请选择 crs=wgs84、"
                  "gcj02 或 bd09 [crs=%(crs)s]", **v)
    if code == _G_SWAPPED:
        return _l("东坐标和北坐标像是填反了：x=%(x)s 是北坐标，y=%(y)s 是东坐标（测绘习惯 X 为北、"
                  "Y 为东）；请把东坐标填为 x、北坐标填为 y [crs=%(crs)s]", **v)
    if code == _G_IMPLAUSIBLE:
        return _l("(%(x)s, %(y)s) 不是中国境内的 CGCS2000 高斯-克吕格坐标：东坐标应在 500000 "
                  "附近（带号在前则如 38500000），北坐标应在 2000000-6000000 之间 "
                  "[crs=%(crs)s]", **v)
    if code == _G_SIX_DEGREE:
        return _l("东坐标 %(x)s 的带号 %(zone)s 是 6 度带；只接受 CGCS2000 3 度带（25-45）"
                  "[crs=%(crs)s]", **v, zone=format(float(x) // 1e6, ".0f"))
    if code == _G_NO_ZONE:
        return _l("东坐标 %(x)s 前面没有带号；请给出城市的量算坐标系（如 EPSG:4547），或在前面写上"
                  "带号（如 38500000）[crs=%(crs)s]", **v)
    return _l("(%(x)s, %(y)s) 换算后落在中国境外；请检查坐标系和高斯-克吕格带号 [crs=%(crs)s]", **v)


_BOX = {"west": f"{CHINA_LON[0]:g}", "east": f"{CHINA_LON[1]:g}",
        "south": f"{CHINA_LAT[0]:g}", "north": f"{CHINA_LAT[1]:g}"}


def _raise_first(codes: np.ndarray, x: Any, y: Any, crs: str = "wgs84") -> None:
    bad = np.flatnonzero(codes)
    if bad.size:
        i = int(bad[0])
        raise CoordinateError(_message(int(codes[i]), x[i], y[i], crs),
                              details={"x": float(x[i]), "y": float(y[i]), "crs": crs})


# --- Entry points --------------------------------------------------------------------------

def _as_floats(values: Any) -> np.ndarray:
    try:
        return np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        return np.array([_number_or_nan(v) for v in np.atleast_1d(np.asarray(values, object))])


def _number_or_nan(v: Any) -> float:
    try:
        return _parse_number(v, metric=True)
    except CoordinateError:
        return math.nan


def _convert(x: np.ndarray, y: np.ndarray, canon: str, metric_crs: str | None,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert arrays to WGS84; returns lon, lat (NaN where bad) and problem codes."""
    lon, lat = np.full(x.shape, np.nan), np.full(x.shape, np.nan)
    src_crs = None if canon in ("gcj02", "bd09", "gk") else resolve_crs(canon)
    if canon == "gk" or (src_crs is not None and src_crs.is_projected):
        codes = _gk_problems(x, y, metric_crs is not None) if canon == "gk" else np.where(
            (np.abs(x) <= 180) & (np.abs(y) <= 90), _G_DEGREES, _OK)
        ok = codes == _OK
        if canon == "gk":
            zone = np.where(x >= 1e7, np.floor(x / 1e6), 0)
            for z in np.unique(zone[ok]):
                crs = gk_crs(3 * z, True) if z else gk_crs(gk_central_meridian(metric_crs))
                sel = ok & (zone == z)
                lon[sel], lat[sel] = transformer(crs, WGS84).transform(x[sel], y[sel])
        elif ok.any():
            lon[ok], lat[ok] = transformer(canon, WGS84).transform(x[ok], y[ok])
        after = _lonlat_problems(lon, lat)
        codes = np.where(ok & (after != _OK), _G_LANDS_OUTSIDE, codes)
        return lon, lat, codes
    codes = _lonlat_problems(x, y)
    ok = codes == _OK
    if canon == "gcj02":
        lon[ok], lat[ok] = gcj02_to_wgs84(x[ok], y[ok])
    elif canon == "bd09":
        lon[ok], lat[ok] = bd09_to_wgs84(x[ok], y[ok])
    elif ok.any():
        lon[ok], lat[ok] = transformer(canon, WGS84).transform(x[ok], y[ok])
    return lon, lat, codes


def _check_name(crs: str) -> str:
    canon = _canonical(crs)
    if canon == "dms":
        raise CoordinateError(_l("crs=dms 是文字形式的度分秒，这里需要数值坐标；请选择其他坐标系"))
    return canon


def array_to_wgs84(x: Any, y: Any, crs: str, metric_crs: str | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, str]]:
    """Vectorised :func:`to_wgs84` for batch files: bad rows are reported, not raised.

    Returns lon, lat (NaN on bad rows), a boolean ``bad`` mask and ``reasons``, a dict from
    row index to the same message :func:`to_wgs84` would raise. A wrong ``crs`` name still
    raises, since it spoils every row.
    """
    canon = _check_name(crs)
    xa, ya = _as_floats(x), _as_floats(y)
    if xa.shape != ya.shape:
        raise CoordinateError(f"x has {xa.size} values but y has {ya.size}")
    with np.errstate(invalid="ignore", over="ignore"):
        lon, lat, codes = _convert(xa, ya, canon, metric_crs)
    bad = codes != _OK
    reasons = {int(i): _message(int(codes[i]), xa[i], ya[i], crs) for i in np.flatnonzero(bad)}
    return lon, lat, bad, reasons


def to_wgs84(x: float, y: float, crs: str, *, metric_crs: str | None = None,
             ) -> tuple[float, float]:
    """The one entry point: a point in a named system to WGS84 (lon, lat), validated.

    ``crs`` is wgs84, cgcs2000, gcj02, bd09, gk (x = easting, with or without the zone number
    in front; without it the zone comes from ``metric_crs``) or EPSG:n.
    """
    fast = _fast_lonlat(x, y, crs)
    if fast is not None:
        return fast
    lon, lat, bad, reasons = array_to_wgs84([x], [y], crs, metric_crs)
    if bad[0]:
        raise CoordinateError(reasons[0], details={"x": _plain(x), "y": _plain(y), "crs": crs})
    return float(lon[0]), float(lat[0])


def _fast_lonlat(x: Any, y: Any, crs: str) -> tuple[float, float] | None:
    """The inspector's common case without arrays: plain lon/lat numbers, inside China, in an
    EPSG geographic system. Same arithmetic as the array path; None sends anything else (bad
    values, offset datums whose inverse iterates over the whole array, projected systems)
    down that path, which owns validation and messages."""
    if not (isinstance(x, float | int) and isinstance(y, float | int)):
        return None
    if not (CHINA_LON[0] <= x <= CHINA_LON[1] and CHINA_LAT[0] <= y <= CHINA_LAT[1]):
        return None  # NaN fails the comparisons too
    canon = _canonical(crs)
    if canon in ("gcj02", "bd09", "gk", "dms") or resolve_crs(canon).is_projected:
        return None
    lon, lat = transformer(canon, WGS84).transform(float(x), float(y))
    return float(lon), float(lat)


def _plain(v: Any) -> Any:
    """A value safe for JSON error details (NaN and inf are not valid JSON)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f if math.isfinite(f) else str(f)


def _parse_number(value: Any, *, metric: bool) -> float:
    """A number typed into a form: full-width digits, spaces or 1,000 grouping in metres."""
    if isinstance(value, int | float | np.number):
        return float(value)
    text = unicodedata.normalize("NFKC", str(value if value is not None else "")).strip()
    if metric:
        text = re.sub(r"(?<=\d)[\s_](?=\d)", "", text)
        if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?", text):
            text = text.replace(",", "")
    text = text.rstrip("°").replace("−", "-")
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
        if not text:
            raise CoordinateError(_l("坐标缺失"))
        if "," in text:
            raise CoordinateError(_l("坐标“%(value)s”不是数字；小数点请用“.”", value=value))
        raise CoordinateError(_l("坐标“%(value)s”不是数字", value=value))
    return float(text)


def parse_point(lon_or_x: Any, lat_or_y: Any, crs: str, *, metric_crs: str | None = None,
                ) -> tuple[float, float]:
    """Form input to WGS84 (lon, lat): two fields, or one field holding both values.

    For crs=dms ``lon_or_x`` is the whole text (a second field, if filled, is appended).
    """
    canon = _canonical(crs)
    first = "" if lon_or_x is None else str(lon_or_x).strip()
    second = "" if lat_or_y is None else str(lat_or_y).strip()
    if canon == "dms":
        lon, lat = parse_dms(f"{first}, {second}" if second else first)
        return to_wgs84(lon, lat, "wgs84")
    if not second and first:
        parts = [p for p in re.split(r"[,;，；]" if re.search(r"[,;，；]", first) else r"\s+",
                                      first) if p.strip()]
        if len(parts) != 2:
            raise CoordinateError(_l("应填两个数，而不是“%(value)s”", value=first))
        first, second = parts
    metric = canon == "gk" or (canon.startswith("EPSG:") and resolve_crs(canon).is_projected)
    return to_wgs84(_parse_number(first, metric=metric), _parse_number(second, metric=metric),
                    crs, metric_crs=metric_crs)


def describe_crs(name: str) -> dict[str, Any]:
    """Labels for the UI's coordinate-system choice: name, zh, en, kind, epsg."""
    canon = _canonical(name)
    if canon in _LABELS:
        zh, en, kind = _LABELS[canon]
        epsg = {"wgs84": WGS84, "cgcs2000": CGCS2000}.get(canon)
        return {"name": canon, "zh": zh, "en": en, "kind": kind, "epsg": epsg}
    crs = resolve_crs(canon)
    kind = "projected" if crs.is_projected else "geographic"
    return {"name": canon, "zh": crs.name, "en": crs.name, "kind": kind, "epsg": canon}


def crs_choices() -> list[dict[str, Any]]:
    """Every system a form offers, in order, with its labels."""
    return [describe_crs(n) for n in CRS_CHOICES]

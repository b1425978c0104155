"""Geodetic datums of coordinate data, and whether its conversion to WGS84 can be trusted.

CGCS2000 and WGS84 agree to a few centimetres at the scale of a siting check, so data on
either is converted as it is. The older Chinese datums do not: Xi'an 1980 (IAG-75 ellipsoid)
and Beijing 1954 (Krassowsky; "New Beijing" too) are tied to WGS84 by no public
transformation — PROJ's own is a *ballpark* one that ignores the datum shift altogether (or,
for Beijing 1954, one made for another region: 54.6 m off around Jiaozuo), more than the
50 m of the tightest rule. Data on them is read only with the seven (or three) Helmert
parameters of the local survey office (``towgs84``, proj's ``+towgs84`` order and units),
applied on the datum's own ellipsoid, whatever the format (survey file, GeoJSON, .prj,
GeoPackage, a named EPSG code).

Any other datum is judged by the operation PROJ would use for the data's area: a ballpark
one (accuracy unknown: the shift ignored) is refused like Xi'an 1980 unless ``towgs84`` is
given; a known accuracy worse than :data:`WARN_ACCURACY_M` is read with a warning that says
it. See docs/parcels.md.
"""

from __future__ import annotations

import math
import re
import unicodedata
import warnings
from collections.abc import Sequence
from typing import Any

from pyproj import CRS
from pyproj.exceptions import CRSError
from pyproj.transformer import AreaOfInterest, TransformerGroup

from geoapp.domain.errors import InvalidInput
from geoapp.domain.messages import Text as _l
from geoapp.spatial.crs import WGS84, resolve_crs

#: A conversion to WGS84 less accurate than this (m) is read with a warning.
WARN_ACCURACY_M = 1.0

#: Datum -> proj ellipsoid of its Gauss-Krüger projections (survey files name no ellipsoid).
ELLIPSOIDS = {"cgcs2000": "GRS80", "xian80": "IAU76",  # IAG-75: a = 6378140, 1/f = 298.257
              "beijing54": "krass"}
#: How messages call the datums that need parameters.
LABELS = {"xian80": _l("1980西安坐标系"), "beijing54": _l("1954北京坐标系")}
#: Datums converted as they are (their difference is centimetres).
EXACT = frozenset({"wgs84", "cgcs2000"})

_XIAN = re.compile(r"西安|XIAN")
_BEIJING = re.compile(r"北京|BEIJING|BJ54")
_CGCS = re.compile(r"CGCS|CHINA2000|CHINAGEODETIC|(?<!\d)2000(?!\d)")
_YEAR_80 = re.compile(r"(?<!\d)(19)?80(?!\d)")
_YEAR_54 = re.compile(r"(?<!\d)(19)?54(?!\d)")
_WGS84 = re.compile(r"WGS(19)?84|WORLDGEODETICSYSTEM1984")
#: What PROJ strings of a system carry about its datum, replaced by ellipsoid + towgs84.
_DATUM_TERMS = ("+datum=", "+ellps=", "+towgs84=", "+nadgrids=", "+geoidgrids=", "+a=",
                "+b=", "+rf=", "+f=", "+R=", "+type=", "+no_defs")


def _key(text: str) -> str:
    """Upper case, full-width folded, no spaces or punctuation: 'Xi'an 1980' -> 'XIAN1980'."""
    folded = unicodedata.normalize("NFKC", text).upper()
    return re.sub(r"[\s_\-'’.()（）/]", "", folded)


def datum_of_text(text: str) -> str | None:
    """The Chinese datum a coordinate-system name written by people names: ``xian80``,
    ``beijing54`` or ``cgcs2000``, else None.

    Xi'an 80 takes precedence when 西安 appears ("1980西安坐标系(2000年平差)" is Xi'an 80
    re-adjusted, not CGCS2000), then Beijing 54 when 北京 does, then CGCS2000 (CGCS, or 2000
    as a number of its own); a bare 80 / 1980 or 54 / 1954 names Xi'an 80 / Beijing 54.
    """
    t = _key(text)
    if _XIAN.search(t):
        return "xian80"
    if _BEIJING.search(t):
        return "beijing54"
    if _CGCS.search(t):
        return "cgcs2000"
    if _YEAR_80.search(t):
        return "xian80"
    if _YEAR_54.search(t):
        return "beijing54"
    return None


def datum_of_crs(crs: CRS) -> str:
    """``wgs84``, ``cgcs2000``, ``xian80``, ``beijing54`` or ``other``, from the name of
    the system's datum (an EPSG datum, an ESRI ``D_Xian_1980`` or a WKT of any writer)."""
    try:
        geodetic = crs.geodetic_crs or crs
        datum = geodetic.datum
        name = datum.name if datum is not None else ""
    except CRSError:
        name = ""
    t = _key(name)
    if _WGS84.search(t):
        return "wgs84"
    if "CHINA2000" in t or "CGCS2000" in t or "CHINAGEODETIC" in t:
        return "cgcs2000"
    if _XIAN.search(t):
        return "xian80"
    if _BEIJING.search(t):
        return "beijing54"
    return "other"


def needs_parameters(value: str, datum: str) -> str:
    """The message refusing data on Xi'an 80 / Beijing 54 without ``towgs84``."""
    return _l("坐标系是“%(value)s”（%(datum)s）：文件中没有它到 CGCS2000 的转换参数，"
              "不能直接使用；请先转换为 2000国家大地坐标系，或提供七参数", value=value,
              datum=LABELS[datum])


def towgs84_problem(towgs84: Sequence[float]) -> str | None:
    """Why ``towgs84`` cannot be Helmert parameters (3 or 7 finite numbers), else None."""
    if len(towgs84) not in (3, 7):
        return _l("转换参数应为 3 个或 7 个数，而不是 %(count)s 个", count=len(towgs84))
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in towgs84):
        return _l("转换参数应为有限的数")
    return None


def towgs84_text(towgs84: Sequence[float]) -> str:
    return ",".join(f"{float(v):.10g}" for v in towgs84)


def with_towgs84(crs: CRS, towgs84: Sequence[float]) -> CRS:
    """``crs`` on its own ellipsoid, tied to WGS84 by the Helmert parameters ``towgs84``.

    Raises InvalidInput when the system cannot be written as a PROJ string (a projection
    PROJ strings cannot express)."""
    with warnings.catch_warnings():  # "you will likely lose important projection information"
        warnings.simplefilter("ignore", UserWarning)
        try:
            proj4 = crs.to_proj4()
        except CRSError:
            proj4 = None
    ellipsoid = crs.ellipsoid
    if not proj4 or ellipsoid is None:
        raise InvalidInput(_l("坐标系 %(crs)s 不能加上七参数；请先转换为 2000国家大地坐标系",
                              crs=crs.name))
    terms = [t for t in proj4.split() if not t.startswith(_DATUM_TERMS)]
    a, rf = ellipsoid.semi_major_metre, ellipsoid.inverse_flattening
    shape = f"+a={a!r} +rf={rf!r}" if rf else f"+a={a!r} +b={ellipsoid.semi_minor_metre!r}"
    return CRS.from_proj4(" ".join([*terms, shape, f"+towgs84={towgs84_text(towgs84)}",
                                    "+no_defs", "+type=crs"]))


def conversion_accuracy(crs: CRS, area: tuple[float, float, float, float] | None) -> float | None:
    """The accuracy (m) of the operation PROJ uses from ``crs`` to WGS84 for ``area`` (west,
    south, east, north in degrees; None: anywhere); None when it is a ballpark one (the
    datum shift ignored, accuracy unknown)."""
    aoi = AreaOfInterest(*area) if area is not None else None
    with warnings.catch_warnings():  # a better operation needing a grid we do not fetch
        warnings.simplefilter("ignore", UserWarning)
        group = TransformerGroup(crs, resolve_crs(WGS84), always_xy=True,
                                 area_of_interest=aoi)
    if not group.transformers:
        return None
    accuracy = group.transformers[0].accuracy
    return float(accuracy) if accuracy is not None and accuracy >= 0 else None


def describe(crs: Any) -> str:
    """A system's name and EPSG code for messages."""
    code = crs.to_epsg()
    return f"{crs.name} (EPSG:{code})" if code else str(crs.name)


__all__ = ["ELLIPSOIDS", "EXACT", "LABELS", "WARN_ACCURACY_M", "conversion_accuracy",
           "datum_of_crs", "datum_of_text", "describe", "needs_parameters", "towgs84_problem",
           "towgs84_text", "with_towgs84"]

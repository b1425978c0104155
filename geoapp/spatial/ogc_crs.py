"""Coordinate systems as OGC API – Features names them (Part 2, "CRS by reference").

The service names a system by its OGC URI (``http://www.opengis.net/def/crs/EPSG/0/4490``,
``…/OGC/1.3/CRS84``) and writes coordinates in the axis order of that system's definition:
CRS84 is longitude, latitude; EPSG:4326 and EPSG:4490 are latitude, longitude; the CGCS2000
Gauss-Krüger zones are northing (X), easting (Y). Everything stored is EPSG:4326 in
longitude, latitude order, so this module turns stored geometries into the order and
system asked for, and a ``bbox`` given in any offered system into a lon/lat box.

The EPSG codes themselves come from :mod:`geoapp.spatial.crs` (the only module naming them);
here they are only turned into URIs and back.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS

from geoapp.spatial.crs import WGS84, resolve_crs, transformer

#: The default system of OGC API – Features: WGS84 longitude, latitude.
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: Coordinates past this (metres or degrees) are clipped in a bbox.
_FAR = 1e12
_EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"
_URI = re.compile(r"https?://www\.opengis\.net/def/crs/(?:EPSG/[0-9.]+/(\d{4,6})|OGC/1\.3/(CRS84))")
_CURIE = re.compile(r"\[?(?:EPSG|epsg):(\d{4,6})\]?|\[?(?:OGC|ogc):(CRS84)\]?")


def uri_of(code: str) -> str:
    """The OGC URI of ``EPSG:n`` (or CRS84 for ``OGC:CRS84``)."""
    if code in (CRS84, "OGC:CRS84"):
        return CRS84
    auth, _, number = code.partition(":")
    if auth.upper() != "EPSG" or not number.isdigit():
        raise ValueError(f"not an EPSG code: {code!r}")
    return _EPSG_URI.format(code=int(number))


def parse_uri(text: str) -> str | None:
    """The OGC URI a client named: a URI (http or https) or a safe CURIE such as
    ``[EPSG:4490]``; None when it is neither."""
    t = (text or "").strip()
    m = _URI.fullmatch(t) or _CURIE.fullmatch(t)
    if m is None:
        return None
    number, crs84 = m.group(1), m.group(2)
    return CRS84 if crs84 else _EPSG_URI.format(code=int(number))


def code_of(uri: str) -> str:
    """``EPSG:n`` for an EPSG URI; the stored system (lon/lat WGS84) for CRS84."""
    m = _URI.fullmatch(uri)
    if m is None:
        raise ValueError(f"not an OGC CRS URI: {uri!r}")
    return WGS84 if m.group(2) else f"EPSG:{m.group(1)}"


@lru_cache(maxsize=32)
def northing_first(uri: str) -> bool:
    """True when the system's first axis points north or south (lat/lon, X/Y northing)."""
    if uri == CRS84:
        return False
    crs: CRS = resolve_crs(code_of(uri))
    return crs.axis_info[0].direction in ("north", "south")


def from_lonlat(geoms: np.ndarray, uri: str) -> np.ndarray:
    """Stored lon/lat geometries in ``uri``'s system and axis order."""
    if uri == CRS84:
        return geoms
    tf = transformer(WGS84, code_of(uri))
    swap = northing_first(uri)

    def convert(xy: np.ndarray) -> np.ndarray:
        x, y = tf.transform(xy[:, 0], xy[:, 1])
        return np.column_stack((y, x) if swap else (x, y))

    return shapely.transform(geoms, convert)


def to_lonlat(geoms: np.ndarray, uri: str) -> np.ndarray:
    """Geometries written in ``uri``'s system and axis order, back to stored lon/lat."""
    if uri == CRS84:
        return geoms
    tf = transformer(code_of(uri), WGS84)
    swap = northing_first(uri)

    def convert(xy: np.ndarray) -> np.ndarray:
        a, b = (xy[:, 1], xy[:, 0]) if swap else (xy[:, 0], xy[:, 1])
        lon, lat = tf.transform(a, b)
        return np.column_stack((lon, lat))

    return shapely.transform(geoms, convert)


def bbox_to_lonlat(bbox: tuple[float, float, float, float], uri: str) -> shapely.Geometry:
    """A ``bbox`` (lower corner, upper corner, in the axis order of ``uri``) as the lon/lat
    area it covers: the box itself for CRS84, else the box drawn in its own system with
    each edge cut into 64 pieces and brought to lon/lat (a projected box is not a lon/lat
    rectangle). A box of no width is the line or point it is; one outside the system's
    domain is empty."""
    a0, b0, a1, b1 = bbox
    if uri == CRS84:
        return shapely.box(a0, b0, a1, b1)
    # Beyond any coordinate of a supported system; keeps the edge length finite.
    a0, b0, a1, b1 = (min(max(v, -_FAR), _FAR) for v in (a0, b0, a1, b1))
    t = np.linspace(0.0, 1.0, 64, endpoint=False)
    a = np.concatenate([a0 + (a1 - a0) * t, np.full(64, a1), a1 - (a1 - a0) * t,
                        np.full(64, a0), [a0]])
    b = np.concatenate([np.full(64, b0), b0 + (b1 - b0) * t, np.full(64, b1),
                        b1 - (b1 - b0) * t, [b0]])
    if northing_first(uri):
        a, b = b, a
    lon, lat = transformer(code_of(uri), WGS84).transform(a, b)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        return shapely.Polygon()
    ring = np.column_stack((lon, lat))
    if a0 == a1 or b0 == b1:
        return shapely.convex_hull(shapely.multipoints(ring))
    return shapely.polygons(ring)


def bbox_from_lonlat(bbox: tuple[float, float, float, float],
                     uri: str) -> tuple[float, float, float, float]:
    """A lon/lat box as a box in ``uri``'s system and axis order (lower, upper corner)."""
    if uri == CRS84:
        return bbox
    tf = transformer(WGS84, code_of(uri))
    x0, y0, x1, y1 = tf.transform_bounds(*bbox, densify_pts=21)
    out = (y0, x0, y1, x1) if northing_first(uri) else (x0, y0, x1, y1)
    return tuple(float(v) for v in out)  # type: ignore[return-value]

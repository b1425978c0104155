"""KML documents read without following anything they reference.

A KML (or the document of a KMZ) is parsed here with ``defusedxml`` — no DTD, no entities,
no external references — and only what a parcel needs is taken: every ``Placemark`` at any
depth of ``Document``/``Folder`` nesting, its ``name``, ``description`` and
``ExtendedData`` (``Data``/``value`` and ``SchemaData``/``SimpleData``), and its geometry
(``Polygon`` with ``outerBoundaryIs``/``innerBoundaryIs``, ``MultiGeometry`` at any depth;
points, lines and models are counted, not read). ``NetworkLink`` elements are counted and
never followed. Coordinates are KML's ``lon,lat[,alt]`` tuples; KML is WGS84 by its
specification.

GDAL's LIBKML driver, which this GDAL picks for KML, turns a non-ASCII ``Data`` name such as
地块编号 into underscores; reading the XML here keeps every name as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
import numpy as np
from defusedxml.common import DefusedXmlException

from geoapp.domain.errors import InvalidInput
from geoapp.domain.messages import Text as _l

_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([\w.:-]+)[\"']",
                                re.IGNORECASE)
_CHINESE_ENCODINGS = {"gbk", "gb2312", "gb18030", "cp936", "x-gbk"}


@dataclass
class Placemark:
    """One placemark: its position among the document's placemarks (1-based), its name
    and data, and its polygons as parts of rings (outer first), or what else it holds."""

    position: int
    name: str | None
    properties: dict[str, Any]
    parts: list[list[np.ndarray]] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # "point", "line", "other"
    bad: str | None = None  # why a coordinate text could not be read


@dataclass
class KmlDocument:
    placemarks: list[Placemark]
    network_links: int = 0


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(el: Element, name: str) -> list[Element]:
    return [c for c in el if _local(c.tag) == name]


def _text(el: Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def parse_kml(data: bytes, *, label: str) -> Element:
    """The KML's root element; refused when it is not KML or holds a DTD or entities."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise InvalidInput(_l("%(file)s：KML 中有 DTD 或实体声明，已拒绝", file=label)) from None
    except ValueError as exc:  # expat reads no multi-byte encoding but UTF-8/16
        m = _DECLARED_ENCODING.match(data)
        if not m or m.group(1).decode().lower() not in _CHINESE_ENCODINGS:
            raise InvalidInput(_l("%(file)s：不是有效的 KML 文件（%(why)s）", file=label,
                                  why=str(exc)[:80])) from None
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise InvalidInput(_l("%(file)s：KML 声明为 %(encoding)s 编码，内容却不是", file=label,
                                  encoding=m.group(1).decode())) from None
        root = parse_kml(("<?xml version=\"1.0\"?>" + text[text.index("?>") + 2:])
                         .encode("utf-8"), label=label)
    except ParseError as exc:
        raise InvalidInput(_l("%(file)s：不是有效的 KML 文件（%(why)s）", file=label,
                              why=str(exc)[:80])) from None
    if _local(root.tag) != "kml":
        raise InvalidInput(_l("%(file)s：XML 的根元素是 %(root)s，不是 kml", file=label,
                              root=_local(root.tag)[:40]))
    return root


def _coordinates(text: str) -> np.ndarray | None:
    """KML coordinate tuples (lon,lat[,alt], whitespace between tuples) as an (n, 2) array;
    None when a tuple is not two or three numbers."""
    tuples = re.sub(r"\s*,\s*", ",", text.strip()).split()
    out = np.empty((len(tuples), 2))
    for i, t in enumerate(tuples):
        values = t.split(",")
        if len(values) not in (2, 3):
            return None
        try:
            out[i] = float(values[0]), float(values[1])
        except ValueError:
            return None
    return out


def _ring(boundary: Element) -> list[Element]:
    return [r for r in boundary.iter() if _local(r.tag) == "LinearRing"]


def _geometry(el: Element, mark: Placemark) -> None:
    """The geometry ``el`` into ``mark``: MultiGeometry nesting walked with a stack of our
    own, in document order, so no depth of nesting can exhaust Python's recursion."""
    stack = [el]
    while stack:
        node = stack.pop()
        name = _local(node.tag)
        if name == "MultiGeometry":
            stack.extend(reversed(list(node)))
        elif name == "Polygon":
            if not _polygon(node, mark):
                return
        elif name in _OTHER_KINDS:
            mark.others.append(_OTHER_KINDS[name])


def _polygon(el: Element, mark: Placemark) -> bool:
    """A Polygon's rings as one part of ``mark``; False (``mark.bad`` set) when unreadable."""
    rings: list[np.ndarray] = []
    for kind in ("outerBoundaryIs", "innerBoundaryIs"):
        for boundary in _children(el, kind):
            for ring in _ring(boundary):
                coords = _coordinates(_text(next(
                    (c for c in ring if _local(c.tag) == "coordinates"), None)))
                if coords is None:
                    mark.bad = mark.bad or _l("第 %(n)s 个多边形的坐标不是“经度,纬度[,高程]”",
                                              n=len(mark.parts) + 1)
                    return False
                rings.append(coords)
        if kind == "outerBoundaryIs" and not rings:
            mark.bad = mark.bad or _l("第 %(n)s 个多边形没有外边界（outerBoundaryIs）",
                                      n=len(mark.parts) + 1)
            return False
    mark.parts.append(rings)
    return True


def _properties(pm: Element) -> dict[str, Any]:
    props: dict[str, Any] = {}
    description = _text(next((c for c in pm if _local(c.tag) == "description"), None))
    if description:
        props["description"] = description
    for ext in _children(pm, "ExtendedData"):
        for el in ext.iter():
            tag = _local(el.tag)
            if tag == "Data" and el.get("name"):
                props[el.get("name")] = _text(next(
                    (c for c in el if _local(c.tag) == "value"), None))
            elif tag == "SimpleData" and el.get("name"):
                props[el.get("name")] = _text(el)
    return props


_OTHER_KINDS = {"Point": "point", "LineString": "line", "LinearRing": "line", "Track": "line",
                "MultiTrack": "line", "Model": "other"}
_GEOMETRIES = {"Polygon", "MultiGeometry", *_OTHER_KINDS}


def read_kml(data: bytes, *, label: str) -> KmlDocument:
    """Every placemark of a KML document, in document order, at any folder depth."""
    root = parse_kml(data, label=label)
    marks: list[Placemark] = []
    links = 0
    for el in root.iter():
        tag = _local(el.tag)
        if tag == "NetworkLink":
            links += 1
        elif tag == "Placemark":
            name = _text(next((c for c in el if _local(c.tag) == "name"), None)) or None
            mark = Placemark(position=len(marks) + 1, name=name, properties=_properties(el))
            for child in el:
                if _local(child.tag) in _GEOMETRIES:
                    _geometry(child, mark)
            marks.append(mark)
    return KmlDocument(placemarks=marks, network_links=links)


__all__ = ["KmlDocument", "Placemark", "parse_kml", "read_kml"]

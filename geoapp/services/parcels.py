"""The parcel siting check as a use case: parcels in, one answer per parcel out.

A parcel set comes from a file (the land-survey coordinate file, GeoJSON, KML, GeoPackage,
zipped Shapefile, DXF), a GeoJSON body (a polygon drawn on the map) or a pasted coordinate
list (``storage.parcel_in``). Each parcel is checked by ``spatial.parcels.check_parcel`` with
the current rule engine, and measured against two layers outside the engine: the 三线一单
environmental control units (every unit it touches, with its overlap, its 准入清单 and the
lines naming the project's industry) and the counties (where the parcel lies).

``ParcelReport.to_dict()`` is the JSON answer of the command line and the API::

    {"parcels": [{"id", "name", "area_m2", "verdict", "overlaps": [...], "hits": [...],
                  "units": [{"code", "category", "overlap_m2", "requirements": {...}}], ...}],
     "input": {...}, "source": {...}, "warnings": [...], "summary": {...}}
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import shapely

from geoapp.domain.errors import InvalidInput, Problem
from geoapp.domain.messages import Text as _l
from geoapp.domain.parcels import ParcelResult, round_area
from geoapp.domain.results import Verdict
from geoapp.domain.rules import split_layer_key
from geoapp.domain.units import (
    PARTS,
    UnitRequirements,
    flagged_lines,
    normalise_unit_code,
)
from geoapp.exports.parcel_docx import MAX_DETAILED, write_parcel_docx
from geoapp.exports.parcel_map import render_parcel_png
from geoapp.exports.parcel_tables import write_parcels_gpkg, write_parcels_xlsx
from geoapp.services import checks
from geoapp.services.core import Geoapp
from geoapp.services.units import unit_requirements, units_layer_name
from geoapp.spatial.crs import WGS84
from geoapp.spatial.parcels import AreaLayer, check_parcel, parcel_drawing
from geoapp.storage.parcel_in import (
    InputParcel,
    ParcelSet,
    parcels_from_geojson,
    parcels_from_text,
    read_parcel_file,
)

#: The layer the parcel's county is read from, when the city has it.
COUNTIES_LAYER = "counties"
#: The city's outline: a parcel (partly) outside it was not (wholly) checked.
CITY_LAYER = "city"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

_lock = threading.Lock()


@dataclass(frozen=True)
class UnitTouch:
    """One control unit the parcel overlaps: its overlap on the ground, its 准入清单 (None when
    no list is stored for the unit) and the lines of it that name the project's industry, as
    (part key, line) in list order."""

    code: str
    name: str | None
    category: str | None
    county: str | None
    overlap_m2: float
    share: float
    requirements: UnitRequirements | None
    flagged: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        names = dict(PARTS)
        req = self.requirements
        return {
            "code": self.code, "name": self.name, "category": self.category,
            "county": self.county, "overlap_m2": round_area(self.overlap_m2),
            "share": round(self.share, 6),
            "requirements": {k: (req.requirements.get(k, "") if req else "") for k, _ in PARTS},
            "requirements_known": req is not None,
            "flagged_lines": [{"part": p, "part_name": names[p], "line": line}
                              for p, line in self.flagged],
        }


@dataclass(frozen=True)
class CountyShare:
    name: str
    area_m2: float
    share: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "area_m2": round_area(self.area_m2),
                "share": round(self.share, 6)}


@dataclass(frozen=True)
class ParcelAnswer:
    """One parcel of the input and everything its check found."""

    parcel: InputParcel
    result: ParcelResult
    units: tuple[UnitTouch, ...] = ()
    counties: tuple[CountyShare, ...] = ()
    layer_titles: Mapping[str, str] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        return self.result.verdict

    def to_dict(self) -> dict[str, Any]:
        r = self.result.to_dict()
        declared = self.parcel.declared_area_m2
        overlaps = [{**o, "layer_title": self.layer_titles.get(o["layer"], o["layer"])}
                    for o in r["overlaps"]]
        return {
            "id": self.parcel.id,
            "name": self.parcel.name,
            "feature": self.parcel.feature,
            "area_m2": r["area_m2"],
            "area": r["area"],
            "declared_area_m2": None if declared is None else round_area(declared),
            "verdict": r["verdict"],
            "verdict_text": r["verdict_text"],
            "counties": [c.to_dict() for c in self.counties],
            "overlaps": overlaps,
            "hits": r["hits"],
            "conditional_hits": r["conditional_hits"],
            "rules": r["rules"],
            "units": [u.to_dict() for u in self.units],
            "covered": r["covered"],
            "outside_city_m2": r["outside_city_m2"],
            "outside_city_share": r["outside_city_share"],
            "attributes": {str(k): _plain(v) for k, v in self.parcel.attributes.items()},
        }


@dataclass(frozen=True)
class ParcelReport:
    """The answer to one parcel input: one ``ParcelAnswer`` per parcel, in input order."""

    answers: tuple[ParcelAnswer, ...]
    site_type: str | None
    industry: str | None
    attrs: Mapping[str, Any]
    source: Mapping[str, Any]
    warnings: tuple[Any, ...]
    checked_at: datetime
    city: str
    #: The industry as typed when the rules know it under another name (or not at all).
    industry_given: str | None = None

    def summary(self) -> dict[str, Any]:
        counts = {v.value: 0 for v in Verdict}
        for a in self.answers:
            counts[a.verdict.value] += 1
        return {"parcels": len(self.answers), "verdicts": counts,
                "area_m2": round_area(sum(a.result.area.m2 for a in self.answers))}

    def to_dict(self) -> dict[str, Any]:
        return {
            "parcels": [a.to_dict() for a in self.answers],
            "input": {"site_type": self.site_type, "industry": self.industry,
                      **({"industry_given": self.industry_given}
                         if self.industry_given else {}),
                      **{str(k): _plain(v) for k, v in self.attrs.items()}},
            "source": dict(self.source),
            "warnings": [w.to_dict() if hasattr(w, "to_dict") else dict(w)
                         for w in self.warnings],
            "summary": self.summary(),
            "checked_at": self.checked_at.isoformat(timespec="seconds"),
            "city": self.city,
        }


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


# --------------------------------------------------------------------------- layers


@dataclass
class _AreaLayers:
    key: tuple
    units: AreaLayer | None
    unit_rows: list[dict[str, Any]]
    counties: AreaLayer | None
    county_names: list[str]
    city: AreaLayer | None = None


def _area_layers(app: Geoapp) -> _AreaLayers:
    """The units and counties layers projected and indexed, rebuilt when a layer changes
    (the same change key as the rule engine's)."""
    key = checks.inputs_key(app)
    built: _AreaLayers | None = app.cache.get("parcel_layers")
    if built is not None and built.key == key:
        return built
    with _lock:
        built = app.cache.get("parcel_layers")
        if built is not None and built.key == key:
            return built
        names = set(app.repo.layer_names())
        units, rows = None, []
        unit_layer = units_layer_name(app)
        if unit_layer and unit_layer in names:
            frame = app.repo.layer(unit_layer)
            units = AreaLayer(frame.geometry.values, app.metric_crs, frame.crs or WGS84)
            cols = [c for c in ("id", "code", "name", "category", "county") if c in frame]
            rows = frame[cols].to_dict("records")
        counties, county_names = None, []
        if COUNTIES_LAYER in names:
            frame = app.repo.layer(COUNTIES_LAYER)
            counties = AreaLayer(frame.geometry.values, app.metric_crs,
                                 frame.crs or WGS84)
            county_names = [str(n) for n in frame["name"]] if "name" in frame \
                else [str(i) for i in frame["id"]]
        city = None
        outline = CITY_LAYER if CITY_LAYER in names else (
            COUNTIES_LAYER if COUNTIES_LAYER in names else None)
        if outline is not None:
            frame = app.repo.layer(outline)
            city = AreaLayer([shapely.union_all(frame.geometry.values)], app.metric_crs,
                             frame.crs or WGS84)
        built = _AreaLayers(key, units, rows, counties, county_names, city)
        app.cache["parcel_layers"] = built
        return built


def _text(v: Any) -> str | None:
    if v is None:
        return None
    try:
        if v != v:  # NaN
            return None
    except TypeError:
        pass
    s = str(v).strip()
    return s or None


def layer_title(app: Geoapp, name: str) -> str:
    """A layer's Chinese title; a subset layer such as ``water_source_zones?level=一级`` gets
    its base layer's title and the condition."""
    titles = app.city.layers
    if name in titles:
        return titles[name].title_zh
    base, _ = split_layer_key(name)
    title = titles[base].title_zh if base in titles else base
    cond = name.partition("?")[2]
    return f"{title}（{cond}）" if cond else title


# --------------------------------------------------------------------------- checks


def check_parcels(app: Geoapp, parcels: ParcelSet, *, site_type: str | None = None,
                  industry: str | None = None, attrs: Mapping[str, Any] | None = None,
                  source: Mapping[str, Any] | None = None) -> ParcelReport:
    """Check every parcel of ``parcels`` for the described project; one answer each.

    The industry is read as the rules' industry it names (化工厂 → 化工, through the city's
    keyword table); one the rules do not know is checked as not given, so a rule on
    industries that could apply makes the parcel needs_info, never pass. A parcel partly
    outside the city is never pass; one wholly outside it is out_of_area. Both are said in
    the warnings."""
    st = checks.parse_site_type(site_type)
    eng = checks.engine(app)
    keywords = getattr(app.city, "industry_keywords", None)
    reading = checks.read_industry(app, industry)
    ind, given, how = reading.used, reading.given, reading.how
    notes: list[Problem] = []
    if how == "matched":
        notes.append(Problem(field="industry", value=given, message=_l(
            "行业“%(given)s”按规则中的“%(industry)s”核查。", given=given, industry=ind)))
    elif how and how.startswith("several:"):
        notes.append(Problem(field="industry", value=given, message=_l(
            "行业“%(given)s”含有规则中的多个行业（%(names)s），不能只按其中一个核查，按未填写行业核查："
            "涉及这些行业的规则如可能适用，结论为“待核实”。请按每个行业分别核查。", given=given,
            names=how.partition(":")[2])))
    elif how == "unknown":
        notes.append(Problem(field="industry", value=given, message=_l(
            "行业“%(given)s”不是管控规则使用的行业，按未填写行业核查：涉及行业的规则如可能适用，"
            "结论为“待核实”。请从建议的行业中选择最接近的一项。", given=given)))
    extra = {k: v for k, v in (attrs or {}).items()
             if k in eng.rules.attributes() and v not in (None, "")}
    layers = _area_layers(app)
    codes: list[list[tuple[int, float, float]]] = []
    for p in parcels.parcels:
        codes.append(layers.units.overlaps(p.lonlat) if layers.units is not None else [])
    wanted = {_unit_code(layers.unit_rows[f]) for found in codes for f, _, _ in found}
    stored = unit_requirements(app, sorted(c for c in wanted if c))
    titles = {n: layer_title(app, n) for n in eng.prepared.layer_names}
    flag_as = ind or given
    answers = []
    for p, touched in zip(parcels.parcels, codes, strict=True):
        result = check_parcel(eng, p.lonlat, site_type=st, industry=ind, attrs=extra or None)
        if layers.city is not None:
            inside = sum(a for _, a, _ in layers.city.overlaps(p.lonlat,
                                                               area_m2=result.area.m2))
            outside = max(result.area.m2 - inside, 0.0)
            result = replace(result, covered=result.covered and inside > 0.0,
                             outside_m2=outside if inside > 0.0 else result.area.m2)
            if result.outside_counts:
                notes.append(_outside_note(app, p, result))
        units = tuple(_unit_touch(layers.unit_rows[f], a, s, stored, flag_as, keywords)
                      for f, a, s in sorted(touched, key=lambda t: (-t[1], t[0])))
        counties = ()
        if layers.counties is not None:
            counties = tuple(
                CountyShare(layers.county_names[f], a, s)
                for f, a, s in sorted(layers.counties.overlaps(p.lonlat,
                                                               area_m2=result.area.m2),
                                      key=lambda t: (-t[1], t[0])))
        answers.append(ParcelAnswer(p, result, units, counties, titles))
    src = {"format": parcels.format, "crs": parcels.crs, **dict(source or {})}
    return ParcelReport(answers=tuple(answers), site_type=st, industry=ind,
                        industry_given=given if reading.differs else None, attrs=extra,
                        source=src, warnings=tuple(parcels.warnings) + tuple(notes),
                        checked_at=datetime.now(LOCAL_TZ), city=app.city.name)


def _outside_note(app: Geoapp, p: InputParcel, result: ParcelResult) -> Problem:
    share = result.outside_m2 / result.area.m2 if result.area.m2 > 0 else 1.0
    if result.outside_m2 >= result.area.m2:
        return Problem(feature=p.feature, id=p.id, message=_l(
            "地块 %(id)s 整体位于%(city)s范围以外，本市数据未覆盖，未作判断。",
            id=p.id, city=app.city.name))
    return Problem(feature=p.feature, id=p.id, message=_l(
        "地块 %(id)s 有 %(m2)s 平方米（%(pct)s%%）位于%(city)s范围以外，该部分未按本市数据核查，"
        "结论不会是“符合”；请向相邻地区核实。", id=p.id, m2=f"{result.outside_m2:,.1f}",
        pct=f"{share * 100:.2f}", city=app.city.name))


def _unit_code(row: Mapping[str, Any]) -> str | None:
    code = _text(row.get("code")) or _text(row.get("id"))
    return normalise_unit_code(code) if code else None


def _unit_touch(row: Mapping[str, Any], area: float, share: float,
                stored: Mapping[str, UnitRequirements], industry: str | None,
                keywords: Mapping[str, Sequence[str]] | None) -> UnitTouch:
    code = _unit_code(row) or ""
    req = stored.get(code)
    flagged = flagged_lines(req, industry, keywords) if req is not None else []
    return UnitTouch(code=code,
                     name=(req.name if req is not None else None) or _text(row.get("name")),
                     category=(req.category if req is not None else None)
                     or _text(row.get("category")),
                     county=(req.county if req is not None else None) or _text(row.get("county")),
                     overlap_m2=area, share=share, requirements=req, flagged=tuple(flagged))


def check_parcel_file(app: Geoapp, source: bytes | str | Path, *, filename: str,
                      crs: str | None = None, towgs84: Sequence[float] | None = None,
                      **kw: Any) -> ParcelReport:
    """Read a parcel file (any format ``storage.parcel_in`` reads) and check it."""
    parcels = read_parcel_file(source, filename=filename, crs=crs, towgs84=towgs84)
    return check_parcels(app, parcels, source={"filename": Path(filename).name}, **kw)


def check_parcel_geojson(app: Geoapp, obj: Any, *, crs: str | None = None,
                         towgs84: Sequence[float] | None = None, **kw: Any) -> ParcelReport:
    """Check a GeoJSON geometry, feature or feature collection (a drawn polygon)."""
    return check_parcels(app, parcels_from_geojson(obj, crs=crs, towgs84=towgs84), **kw)


def check_parcel_text(app: Geoapp, text: str, *, crs: str | None = None,
                      towgs84: Sequence[float] | None = None, **kw: Any) -> ParcelReport:
    """Check a pasted coordinate list."""
    if not (text or "").strip():
        raise InvalidInput(_l("请粘贴地块的坐标。"))
    return check_parcels(app, parcels_from_text(text, crs=crs, towgs84=towgs84), **kw)


#: Answer formats ``write_answer`` writes, by file extension.
ANSWER_FORMATS = {".json": "JSON", ".xlsx": "Excel", ".gpkg": "GeoPackage", ".docx": "Word"}


def write_answer(app: Geoapp, report: ParcelReport, path: str | Path) -> Path:
    """Write ``report`` to ``path`` in the format its extension names: .json (the answer
    as printed by ``--json``), .xlsx (one sheet per kind of row), .gpkg (the parcels as
    polygons with their verdicts, plus attribute tables) or .docx (the 项目选址环境合理性预判
    report, with a map per parcel)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in ANSWER_FORMATS:
        raise InvalidInput(_l("不支持的输出格式“%(ext)s”；可用：%(allowed)s", ext=path.suffix,
                              allowed=", ".join(ANSWER_FORMATS)))
    if not path.parent.is_dir():
        raise InvalidInput(_l("输出文件夹不存在：%(folder)s", folder=str(path.parent)))
    data = report.to_dict()
    if ext == ".json":
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    elif ext == ".xlsx":
        write_parcels_xlsx(data, path)
    elif ext == ".gpkg":
        write_parcels_gpkg(data, [a.parcel.lonlat for a in report.answers], path)
    else:
        write_report_docx(app, report, path)
    return path


def write_report_docx(app: Geoapp, report: ParcelReport, path: str | Path) -> Path:
    """The 项目选址环境合理性预判报告 of ``report`` as DOCX, a map for each parcel described."""
    with tempfile.TemporaryDirectory(prefix="geoapp-parcel-") as tmp:
        maps = []
        for i, answer in enumerate(report.answers[:MAX_DETAILED]):
            title = f"地块 {answer.parcel.id} {answer.parcel.name or ''}".strip()
            maps.append(render_parcel_png(answer.parcel.lonlat, drawing(app, answer),
                                          Path(tmp) / f"parcel-{i}.png",
                                          metric_crs=app.metric_crs, title=title))
        return write_parcel_docx(report.to_dict(), path, maps=maps,
                                 issuer=app.city.issuer)


__all__ = ["ANSWER_FORMATS", "write_answer", "write_report_docx", "COUNTIES_LAYER", "CountyShare", "ParcelAnswer", "ParcelReport", "UnitTouch",
           "check_parcel_file", "check_parcel_geojson", "drawing", "check_parcel_text", "check_parcels",
           "layer_title"]


def drawing(app: Geoapp, answer: ParcelAnswer) -> dict[str, list[dict[str, Any]]]:
    """What a map of one parcel answer draws, all in lon/lat: ``pieces`` (the part of the
    parcel each overlapped layer feature covers, with its ground area), ``units`` (the part
    each control unit covers, with its code and category) and ``links`` (the shortest line
    to the nearest feature of each rule layer the parcel does not touch)."""
    out = parcel_drawing(checks.engine(app), answer.parcel.lonlat, answer.result)
    layers = _area_layers(app)
    units = []
    if layers.units is not None:
        by_code = {_unit_code(r): f for f, r in enumerate(layers.unit_rows)}
        for u in answer.units:
            f = by_code.get(u.code)
            part = None if f is None else layers.units.piece(answer.parcel.lonlat, f)
            if part is not None:
                units.append({"code": u.code, "name": u.name, "category": u.category,
                              "area_m2": u.overlap_m2, "share": u.share, "geometry": part})
    out["units"] = units
    return out

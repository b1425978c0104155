"""The parcel page's use cases: read the form, run the parcel check, show it, send it back.

The page takes a parcel three ways (an uploaded file, a polygon drawn on the map, a pasted
coordinate list) and answers with one section per parcel. It keeps no state: the answer
page carries the parcels (WGS84 GeoJSON, full precision), their source (file name, format,
coordinate system), the reading warnings and the project in a hidden form, and the downloads
and the print page post them back and are checked again here — never taken from the form
as answers. What the form carries is sealed: a signature (the app's secret key, a salt
naming this purpose, a time stamp) over exactly the carried text, so a report names the
source and parcels of the answer that was shown and nothing a browser made up or edited;
a seal older than ``SEAL_MAX_AGE_S`` asks for the check to be run again.

The page's map draws a parcel of more than ``maps.parcel.MAP_VERTICES`` vertices from a
simplified copy (``maps.parcel.map_copy``); the carried form keeps it whole, once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import folium
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from shapely.geometry import mapping

from geoapp.domain.errors import InvalidInput, Problem
from geoapp.domain.fields import label as field_label
from geoapp.domain.messages import Text as _l
from geoapp.domain.results import Verdict
from geoapp.domain.units import PART_LABELS, PARTS, category_colour, requirement_lines
from geoapp.domain.vocab import SiteType
from geoapp.maps.base import outline_map
from geoapp.maps.parcel import MAX_DETAILED, add_draw_control, bounds_of, map_copy, parcel_map
from geoapp.services import checks
from geoapp.services import parcels as parcel_service
from geoapp.services.core import Geoapp
from geoapp.services.inspection import hit_row, layer_title
from geoapp.services.pagemap import basemap
from geoapp.storage.parcel_in import parcels_from_geojson

#: How a parcel reaches the page: an uploaded file, a polygon drawn on the map, a pasted
#: coordinate list, or the parcels an answer page carries back (downloads, print, re-check).
MODES = ("file", "draw", "paste", "carried")
#: The coordinate-system choices of the form: (value, Chinese label). ``auto``: what the
#: file says (survey files, .prj, GeoJSON's WGS84); ``epsg``: the code typed beside it.
CRS_CHOICES: tuple[tuple[str, _l], ...] = (
    ("auto", _l("自动识别")),
    ("wgs84", _l("WGS84（GPS）")),
    ("cgcs2000", _l("CGCS2000（国家2000）")),
    ("gcj02", _l("GCJ-02（高德、腾讯）")),
    ("bd09", _l("BD-09（百度）")),
    ("epsg", _l("EPSG 代码")),
)
#: File types the page's upload offers (the reader judges the content, not the name).
UPLOAD_SUFFIXES = (".txt", ".geojson", ".json", ".kml", ".kmz", ".gpkg", ".zip", ".dxf")
#: Answer formats offered as downloads: format -> (extension, mimetype).
DOWNLOADS = {
    "docx": (".docx",
             "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xlsx": (".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "gpkg": (".gpkg", "application/geopackage+sqlite3"),
    "json": (".json", "application/json"),
}
#: Parcels shown open on the answer page (the others start collapsed).
OPEN_SECTIONS = 3
#: Parcels described in full on the print page (all are in its summary table).
PRINT_DETAILED = 20
#: Longest carried source description (file name, format, crs) kept, in characters.
_SOURCE_TEXT = 200
#: Most reading warnings an answer page carries back.
_CARRIED_WARNINGS = 200
#: What a seal signs for (itsdangerous' salt): the answer a parcel page carries.
SEAL_SALT = "geoapp.parcel-page.carried-answer"
#: A carried answer older than this (seconds) is not downloaded or printed: check again.
SEAL_MAX_AGE_S = 24 * 3600
#: The longest seal read from a form (a seal is about 110 characters).
_SEAL_TEXT = 400
#: GeoJSON's object types; a body or drawing of any other JSON is refused by name.
GEOJSON_TYPES = frozenset({"Feature", "FeatureCollection", "Point", "MultiPoint",
                           "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                           "GeometryCollection"})

Translate = Callable[[str], str]


def _strip(value: Any, limit: int | None = None) -> str:
    text = "" if value is None else str(value).strip()
    return text[:limit] if limit else text


@dataclass
class ParcelQuery:
    """What the parcel form (or the carried answer form) sent, stripped."""

    mode: str = ""
    crs: str = "auto"
    epsg: str = ""
    towgs84: str = ""
    site_type: str = ""
    industry: str = ""
    attrs: dict[str, str] = field(default_factory=dict)
    text: str = ""
    geojson: str = ""
    source: str = ""
    seal: str = ""
    draw_crs: str = "wgs84"

    @classmethod
    def from_form(cls, form: Mapping[str, Any], attr_names: tuple[str, ...] = (),
                  *, has_file: bool = False) -> ParcelQuery:
        """The query of ``form``; without a ``mode`` it is what the form holds (a file, a
        drawing, pasted text, carried parcels, in that order)."""
        q = cls(mode=_strip(form.get("mode")), crs=_strip(form.get("crs")) or "auto",
                epsg=_strip(form.get("epsg"), 20), towgs84=_strip(form.get("towgs84"), 200),
                site_type=_strip(form.get("site_type"), 40),
                industry=_strip(form.get("industry"), 100),
                attrs={a: _strip(form.get(a), 100) for a in attr_names
                       if _strip(form.get(a))},
                text=_strip(form.get("text")), geojson=_strip(form.get("geojson")),
                source=_strip(form.get("source")), seal=_strip(form.get("seal"), _SEAL_TEXT),
                draw_crs=_strip(form.get("draw_crs")) or "wgs84")
        if q.mode not in MODES:
            q.mode = ("file" if has_file else "draw" if q.geojson and not q.source
                      else "paste" if q.text else "carried" if q.geojson else "")
        return q

    def crs_name(self) -> str | None:
        """The coordinate system to read the input in (None: as the file says)."""
        if self.crs in ("", "auto"):
            return None
        if self.crs == "epsg":
            code = self.epsg.upper().removeprefix("EPSG:").strip()
            if not code:
                raise InvalidInput(_l("请填写 EPSG 代码，例如 4547（CGCS2000 3度带 38带，无带号）"))
            if not code.isdigit():
                raise InvalidInput(_l("EPSG 代码应为数字，而不是“%(value)s”", value=self.epsg))
            return f"EPSG:{int(code)}"
        return self.crs

    def towgs84_values(self) -> list[float] | None:
        """The Helmert parameters typed for a Xi'an 80 / Beijing 54 file, or None."""
        return parse_towgs84(self.towgs84)

    def project(self) -> dict[str, str]:
        """The project fields as form values (site type, industry, attributes)."""
        out = {"site_type": self.site_type, "industry": self.industry}
        out.update(self.attrs)
        return {k: v for k, v in out.items() if v}


def parse_towgs84(text: str | None) -> list[float] | None:
    """3 or 7 numbers separated by commas (proj's ``+towgs84`` order), or None when blank."""
    t = (text or "").strip().replace("，", ",")
    if not t:
        return None
    try:
        values = [float(v) for v in t.split(",") if v.strip()]
    except ValueError:
        raise InvalidInput(_l("七参数/三参数应为以逗号分隔的 3 个或 7 个数字")) from None
    if len(values) not in (3, 7) or not all(math.isfinite(v) for v in values):
        raise InvalidInput(_l("七参数/三参数应为以逗号分隔的 3 个或 7 个数字"))
    return values


# --------------------------------------------------------------------------- the form


def industries(app: Geoapp) -> list[str]:
    """Industries to suggest: those of the stored sites and those the rules and the city's
    industry keyword table name, sorted."""
    names: set[str] = set()
    try:
        sites = app.repo.sites(columns=["industry"])
        names.update(str(v).strip() for v in sites["industry"].dropna())
    except (KeyError, ValueError):
        pass
    for rule in checks.engine(app).rules:
        for clause in rule.applies_to.clauses:
            names.update(v for c in clause if c.attr == "industry" for v in c.values)
    names.update(str(k) for k in (getattr(app.city, "industry_keywords", None) or {}))
    return sorted(n for n in names if n)


def attribute_fields(app: Geoapp) -> list[dict[str, Any]]:
    """The other site attributes the rules read (e.g. fuel), each with its label and the
    values the rules name."""
    rules = checks.engine(app).rules
    out = []
    for name in checks.rule_attributes(app):
        values: list[str] = []
        for rule in rules:
            for clause in rule.applies_to.clauses:
                for c in clause:
                    if c.attr == name:
                        values += [v for v in (c.ordered or sorted(c.values)) if v not in values]
        out.append({"name": name, "label": field_label(name), "values": values})
    return out


def form_choices(app: Geoapp) -> dict[str, Any]:
    """What the parcel form offers."""
    return {"crs_choices": CRS_CHOICES, "site_types": [(t.value, t.zh) for t in SiteType],
            "industries": industries(app), "attribute_fields": attribute_fields(app),
            "upload_accept": ",".join(UPLOAD_SUFFIXES)}


# --------------------------------------------------------------------------- the check


@dataclass
class ParcelView:
    """A parcel check with everything the answer page, the print page and the downloads
    need."""

    query: ParcelQuery
    report: parcel_service.ParcelReport
    parcels: list[dict[str, Any]]
    summary: dict[str, Any]
    source: dict[str, Any]
    carried_geojson: str
    carried_source: str
    warnings: list[str]
    #: The seal of the carried form ("" when the view was made without keys: no form).
    carried_seal: str = ""

    @property
    def many(self) -> bool:
        return len(self.parcels) > 1


def geojson_object(obj: Any, what: str = _l("请求体")) -> dict[str, Any]:
    """``obj`` (parsed JSON) when it is a GeoJSON object: a Geometry, Feature or
    FeatureCollection by its ``type``. Anything else (a list, a string, a number, an object
    of another type) is refused naming what is expected and what came."""
    if isinstance(obj, dict):
        kind = obj.get("type")
        if isinstance(kind, str) and kind in GEOJSON_TYPES:
            return obj
        got = (_l("“type”为“%(type)s”的对象", type=kind[:40])
               if isinstance(kind, str) and kind.strip() else _l("没有“type”的对象"))
    elif isinstance(obj, list):
        got = _l("列表（数组）")
    elif isinstance(obj, str):
        got = _l("字符串")
    elif isinstance(obj, bool) or obj is None:
        got = json.dumps(obj)
    else:
        got = _l("数字")
    raise InvalidInput(_l("%(what)s不是 GeoJSON：应为 Geometry、Feature 或 FeatureCollection "
                          "对象，收到的是%(got)s", what=what, got=got))


def _json_body(text: str, what: _l) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInput(_l("%(what)s不是有效的 GeoJSON", what=what)) from None
    return geojson_object(obj, what)


# --------------------------------------------------------------------------- the seal


SealKeys = Sequence[str | bytes]


def carried_digest(geojson: str, source: str, project: Mapping[str, str]) -> str:
    """SHA-256 (hex) of exactly what an answer page carries: the parcels' GeoJSON text, the
    source-and-warnings text and the project's form values."""
    text = json.dumps([geojson, source, sorted(project.items())], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _sealer(keys: SealKeys) -> URLSafeTimedSerializer:
    """itsdangerous' signer for seals: ``keys`` oldest first, the last one signs (the app's
    ``SECRET_KEY`` after its ``SECRET_KEY_FALLBACKS``)."""
    return URLSafeTimedSerializer(list(keys), salt=SEAL_SALT)


def seal(keys: SealKeys, geojson: str, source: str, project: Mapping[str, str]) -> str:
    """The seal of what an answer page carries: its digest signed, with the time."""
    return _sealer(keys).dumps(carried_digest(geojson, source, project))


def check_seal(keys: SealKeys, query: ParcelQuery) -> None:
    """Refuse (400) carried parcels whose seal was not made by this app for exactly these
    parcels, source, warnings and project, or was made more than ``SEAL_MAX_AGE_S`` ago."""
    signed = None
    if keys and query.seal:
        try:
            signed = _sealer(keys).loads(query.seal, max_age=SEAL_MAX_AGE_S)
        except SignatureExpired:
            raise InvalidInput(_l("这份核查结果已超过 %(hours)s 小时，请重新核查地块后再下载或打印",
                                  hours=SEAL_MAX_AGE_S // 3600)) from None
        except BadSignature:
            signed = None
    expected = carried_digest(query.geojson, query.source, query.project())
    if not isinstance(signed, str) or not hmac.compare_digest(signed, expected):
        raise InvalidInput(_l("页面携带的核查结果与其签名不符（地块、来源、提示或项目信息被改动过）："
                              "只能下载或打印本系统给出的核查结果，请重新核查"))


def _carried(text: str) -> tuple[dict[str, str], tuple[Problem, ...]]:
    """The source description and reading warnings an answer page carries: a few short
    strings only, anything else is dropped."""
    if not text:
        return {}, ()
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInput(_l("页面数据已损坏，请重新核查")) from None
    if not isinstance(raw, dict):
        raise InvalidInput(_l("页面数据已损坏，请重新核查"))
    src = raw.get("source") if isinstance(raw.get("source"), dict) else {}
    source = {str(k)[:40]: _strip(v, _SOURCE_TEXT) for k, v in list(src.items())[:8]
              if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
    warnings = []
    items = raw.get("warnings") if isinstance(raw.get("warnings"), list) else []
    for w in items[:_CARRIED_WARNINGS]:
        if not isinstance(w, dict) or not isinstance(w.get("message"), str):
            continue
        feature = w.get("feature")
        warnings.append(Problem(
            message=w["message"][:_SOURCE_TEXT * 3],
            id=_strip(w.get("id"), 100) or None,
            feature=feature if isinstance(feature, int) and not isinstance(feature, bool)
            else None))
    return source, tuple(warnings)


def check(app: Geoapp, query: ParcelQuery, upload: tuple[bytes, str] | None = None, *,
          seal_keys: SealKeys = ()) -> parcel_service.ParcelReport:
    """Run the parcel check ``query`` asks for (``upload``: the file's bytes and name).
    Carried parcels are checked only under a valid seal made with ``seal_keys``."""
    project = {"site_type": query.site_type or None, "industry": query.industry or None,
               "attrs": dict(query.attrs) or None}
    if query.mode == "file":
        if upload is None or not upload[1]:
            raise InvalidInput(_l("请选择要上传的地块文件"))
        data, name = upload
        if not data:
            raise InvalidInput(_l("上传的文件是空的：%(file)s", file=name))
        return parcel_service.check_parcel_file(app, data, filename=name,
                                                crs=query.crs_name(),
                                                towgs84=query.towgs84_values(), **project)
    if query.mode == "draw":
        if not query.geojson:
            raise InvalidInput(_l("请先在地图上画出地块（多边形或矩形）"))
        obj = _json_body(query.geojson, _l("所画地块"))
        parcels = parcels_from_geojson(obj, crs=query.draw_crs or "wgs84", kind="drawn")
        return parcel_service.check_parcels(app, parcels, **project)
    if query.mode == "paste":
        return parcel_service.check_parcel_text(app, query.text, crs=query.crs_name(),
                                                towgs84=query.towgs84_values(), **project)
    if query.mode == "carried":
        if not query.geojson:
            raise InvalidInput(_l("页面数据已损坏，请重新核查"))
        check_seal(seal_keys, query)
        obj = _json_body(query.geojson, _l("页面携带的地块"))
        source, warnings = _carried(query.source)
        parcels = parcels_from_geojson(obj, crs="wgs84")
        parcels = dataclasses.replace(parcels, warnings=warnings + tuple(parcels.warnings))
        return parcel_service.check_parcels(app, parcels, source=source, **project)
    raise InvalidInput(_l("请上传地块文件、在地图上画出地块或粘贴坐标"))


def run(app: Geoapp, query: ParcelQuery, upload: tuple[bytes, str] | None = None, *,
        seal_keys: SealKeys = ()) -> ParcelView:
    """Check and lay out the answer for the page, its carried form sealed with
    ``seal_keys``."""
    report = check(app, query, upload, seal_keys=seal_keys)
    return view_of(app, query, report, seal_keys=seal_keys)


def carried(report: parcel_service.ParcelReport) -> tuple[str, str]:
    """(parcels as a WGS84 GeoJSON FeatureCollection, source and reading warnings as JSON):
    what the answer page sends back. Coordinates at full precision, so a re-check measures
    the same polygons; messages as their Chinese catalogue text."""
    features = []
    for a in report.answers:
        p = a.parcel
        props: dict[str, Any] = {"id": p.id, "name": p.name}
        if p.declared_area_m2 is not None:
            props["declared_area_m2"] = p.declared_area_m2
        for k, v in (p.attributes or {}).items():
            if k not in props and (v is None or isinstance(v, (str, int, float, bool))):
                props[str(k)] = v
        features.append({"type": "Feature", "properties": props,
                         "geometry": mapping(p.lonlat)})
    fc = {"type": "FeatureCollection", "features": features}
    source = {k: v for k, v in dict(report.source).items()
              if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
    warnings = []
    for w in list(report.warnings)[:_CARRIED_WARNINGS]:
        if isinstance(w, Problem):
            warnings.append({"message": w.message, "id": w.id, "feature": w.feature})
    extra = {"source": source, "warnings": warnings}
    return (json.dumps(fc, ensure_ascii=False, separators=(",", ":")),
            json.dumps(extra, ensure_ascii=False, separators=(",", ":")))


def _fmt_share(share: float) -> str:
    return f"{share * 100:.1f}%" if share >= 0.001 else f"{share * 100:.2f}%"


def _rule_rows(app: Geoapp, answer: parcel_service.ParcelAnswer) -> list[dict[str, Any]]:
    """Every rule measured for the parcel, broken ones first: title, layer, feature,
    distance, overlap, limit, outcome, basis, action."""
    rules = checks.engine(app).rules
    order = {"hit": 0, "conditional_hit": 1, "no_hit": 2}
    rows = []
    for r in answer.result.rules:
        try:
            spec = rules[r.rule_id]
        except KeyError:
            spec = None
        rows.append({
            "rule_id": r.rule_id, "outcome": r.outcome, "applies": r.applies, "test": r.test,
            "title": spec.title if spec else {"zh": r.rule_id, "en": r.rule_id},
            "layer": r.layer, "layer_title": layer_title(app, r.layer),
            "feature_name": r.feature_name,
            "distance": None if r.distance_m is None else f"{r.distance_m:,.1f}",
            "distance_m": r.distance_m,
            "overlap": None if r.overlap_m2 is None else f"{r.overlap_m2:,.1f}",
            "limit": (None if spec is None or spec.distance_m is None
                      else f"{float(spec.distance_m):g}"),
            "severity": spec.severity if spec else "low",
            "basis": spec.basis if spec else "", "basis_note": spec.basis_note if spec else None,
            "action": spec.action if spec else ""})
    rows.sort(key=lambda row: (order.get(row["outcome"], 3),
                               math.inf if row["distance_m"] is None else row["distance_m"]))
    return rows


def _unit_rows(answer: parcel_service.ParcelAnswer) -> list[dict[str, Any]]:
    out = []
    for u in answer.units:
        flagged = set(u.flagged)
        parts = []
        for key, zh in PARTS:
            text = u.requirements.part(key) if u.requirements is not None else ""
            lines = [{"text": line, "flagged": (key, line) in flagged}
                     for line in requirement_lines(text)]
            parts.append({"key": key, "label": PART_LABELS.get(key, zh), "lines": lines})
        out.append({"code": u.code, "name": u.name, "category": u.category,
                    "county": u.county, "colour": category_colour(u.category),
                    "overlap": f"{u.overlap_m2:,.1f}", "share": _fmt_share(u.share),
                    "known": u.requirements is not None, "parts": parts,
                    "flagged_count": len(u.flagged)})
    return out


def _parcel_row(app: Geoapp, i: int, answer: parcel_service.ParcelAnswer) -> dict[str, Any]:
    rules = checks.engine(app).rules
    result = answer.result
    verdict = Verdict(result.verdict)
    area = result.area
    declared = getattr(answer.parcel, "declared_area_m2", None)
    hits = []
    for ph in result.hits:
        row = hit_row(rules, ph.hit)
        row["overlap"] = None if ph.overlap_m2 is None else f"{ph.overlap_m2:,.1f}"
        hits.append(row)
    conditional = []
    if verdict is not Verdict.OUT_OF_AREA:
        for ph in result.conditional_hits:
            row = hit_row(rules, ph.hit)
            row["overlap"] = None if ph.overlap_m2 is None else f"{ph.overlap_m2:,.1f}"
            conditional.append(row)
    return {
        "index": i, "anchor": f"parcel-{i + 1}", "id": answer.parcel.id,
        "name": answer.parcel.name, "verdict": verdict.value,
        "sentence": {"zh": verdict.sentence_zh, "en": verdict.sentence_en},
        "area_m2": f"{area.m2:,.1f}", "area_mu": f"{area.mu:,.2f}",
        "area_ha": f"{area.ha:,.4f}",
        "declared_m2": None if declared is None else f"{float(declared):,.1f}",
        "counties": [{"name": c.name, "share": _fmt_share(c.share)} for c in answer.counties],
        "hits": hits, "conditional_hits": conditional,
        "rules": _rule_rows(app, answer),
        "overlaps": [{"layer_title": layer_title(app, o.layer),
                      "feature_name": o.feature_name, "feature_id": o.feature_id,
                      "area": f"{o.area_m2:,.1f}", "share": _fmt_share(o.share)}
                     for o in result.overlaps],
        "units": _unit_rows(answer),
        "flagged_count": sum(len(u.flagged) for u in answer.units),
        "bounds": bounds_of([answer.parcel.lonlat]),
        "open": i < OPEN_SECTIONS,
    }


def view_of(app: Geoapp, query: ParcelQuery, report: parcel_service.ParcelReport, *,
            seal_keys: SealKeys = ()) -> ParcelView:
    """The page's view of ``report``; with ``seal_keys`` its carried form is sealed."""
    geojson, source = carried(report)
    summary = report.summary()
    warnings = [str(w) for w in report.warnings]
    sealed = seal(seal_keys, geojson, source, query.project()) if seal_keys else ""
    return ParcelView(query=query, report=report,
                      parcels=[_parcel_row(app, i, a) for i, a in enumerate(report.answers)],
                      summary=summary, source=dict(report.source), carried_geojson=geojson,
                      carried_source=source, warnings=warnings, carried_seal=sealed)


# --------------------------------------------------------------------------- maps


def _map_drawing(app: Geoapp, answer: parcel_service.ParcelAnswer, shown: Any
                 ) -> dict[str, list[dict[str, Any]]]:
    """What the map draws of ``answer`` (``services.parcels.drawing``), cut from ``shown``,
    the parcel as the map draws it. When that is a simplified copy, the overlaps are labelled
    with the areas the check measured on the parcel itself (an overlap the copy does not
    show is left off the map; the tables list it)."""
    if shown is answer.parcel.lonlat:
        return parcel_service.drawing(app, answer)
    copy = dataclasses.replace(answer, parcel=dataclasses.replace(answer.parcel, lonlat=shown))
    drawing = parcel_service.drawing(app, copy)
    measured = {(o.layer, o.feature_id): o.area_m2 for o in answer.result.overlaps}
    drawing["pieces"] = [{**p, "area_m2": measured[(p["layer"], p["feature_id"])]}
                         for p in drawing.get("pieces", [])
                         if (p["layer"], p["feature_id"]) in measured]
    return drawing


def page_map(app: Geoapp, view: ParcelView | None, *, gettext: Translate | None = None,
             draw: bool = True) -> folium.Map:
    """The page's map: the city to draw a parcel in, or the answer (every parcel's outline;
    the first few with their overlaps, units and shortest lines) with the drawing tool."""
    tiles, key = basemap(app)
    words = {"gettext": gettext} if gettext is not None else {}
    if view is None:
        outline = app.repo.layer("city").geometry.union_all()
        m = outline_map(outline, app.city.zoom, tiles, key, **words)
    else:
        answers = view.report.answers
        titles: dict[str, str] = {}
        rows = []
        for i, (a, row) in enumerate(zip(answers, view.parcels, strict=True)):
            shown = map_copy(a.parcel.lonlat)
            drawing = _map_drawing(app, a, shown) if i < MAX_DETAILED else None
            if drawing is not None:
                for item in drawing.get("pieces", []) + drawing.get("links", []):
                    titles.setdefault(item["layer"],
                                      layer_title(app, item["layer"]))
            label = Verdict(row["verdict"])
            rows.append({"id": a.parcel.id, "name": a.parcel.name,
                         "geometry": shown, "area_m2": a.result.area.m2,
                         "verdict_label": (gettext or str)(label.zh), "drawing": drawing})
        m = parcel_map(rows, tiles=tiles, tianditu_key=key, layer_titles=titles, **words)
    if draw:
        add_draw_control(m, **words)
    return m


# --------------------------------------------------------------------------- downloads


def download(app: Geoapp, report: parcel_service.ParcelReport, fmt: str
             ) -> tuple[bytes, str, str]:
    """The answer as a file: (bytes, file name, mimetype) for ``fmt`` (docx, xlsx, gpkg,
    json)."""
    if fmt not in DOWNLOADS:
        raise InvalidInput(_l("不支持的下载格式“%(format)s”；可用：%(allowed)s",
                              format=fmt[:20], allowed=", ".join(DOWNLOADS)))
    ext, mimetype = DOWNLOADS[fmt]
    stamp = report.checked_at.strftime("%Y%m%d-%H%M")
    stem = ("项目选址环境合理性预判报告" if fmt == "docx" else "地块选址预判结果")
    with tempfile.TemporaryDirectory(prefix="geoapp-parcel-") as tmp:
        path = Path(tmp) / f"answer{ext}"
        parcel_service.write_answer(app, report, path)
        data = path.read_bytes()
    return data, f"{stem}-{stamp}{ext}", mimetype


#: The input formats as the pages name them (``ParcelSet.format``).
FORMAT_LABELS: dict[str, str] = {
    "survey": _l("勘测定界坐标文件"), "geojson": "GeoJSON", "kml": "KML", "kmz": "KMZ",
    "gpkg": "GeoPackage", "shapefile": "Shapefile", "dxf": "DXF", "text": _l("坐标文本"),
    "drawn": _l("地图上绘制"),
}


def source_label(source: Mapping[str, Any]) -> dict[str, str]:
    """The input's source as the pages name it: file name (or 地图绘制 / 粘贴坐标), format
    and coordinate system."""
    kind = source.get("format")
    name = source.get("filename") or (
        _l("地图上绘制") if kind == "drawn" else _l("粘贴的坐标") if kind == "text" else "")
    fmt = str(source.get("format") or "") if source.get("filename") else ""
    return {"name": str(name), "format": str(FORMAT_LABELS.get(fmt, fmt)),
            "crs": str(source.get("crs") or "")}


__all__ = ["CRS_CHOICES", "DOWNLOADS", "GEOJSON_TYPES", "MODES", "SEAL_MAX_AGE_S", "SEAL_SALT",
           "ParcelQuery", "ParcelView", "carried", "carried_digest", "check", "check_seal",
           "download", "form_choices", "geojson_object", "page_map", "parse_towgs84", "run",
           "seal", "source_label", "view_of"]

"""The API's OpenAPI 3.1 document, at /api/openapi.json.

Other systems of the bureau (and the schemathesis tests) read it to call the API. Operations
described here carry their parameters and response schemas; any /api route registered later
without a description still appears (built from the URL map, with its path parameters and the
shared error responses), so the document never silently misses a route.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify

from geoapp import __version__
from geoapp.domain.errors import ConfigError
from geoapp.domain.results import Verdict
from geoapp.domain.vocab import SiteType
from geoapp.services.checks import rule_attributes

bp = Blueprint("openapi", __name__, url_prefix="/api")

_STR = {"type": "string"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_STR_OR_NULL = {"type": ["string", "null"]}

ERROR = {"type": "object", "required": ["error", "message"],
         "properties": {"error": _STR, "message": _STR, "details": {}}}

_ZH_EN = {"type": "object", "required": ["zh", "en"], "properties": {"zh": _STR, "en": _STR}}

_HIT_PROPERTIES = {
    "rule_id": _STR,
    "title": _ZH_EN,
    "feature_id": _STR_OR_NULL, "feature_name": _STR_OR_NULL,
    "distance_m": {"type": ["number", "null"],
                   "description": "ground distance in metres, 0.1 m (0 when inside)"},
    "severity": {"enum": ["high", "medium", "low"]},
    "basis": _STR_OR_NULL, "action": _STR_OR_NULL,
    "limit_m": {"type": ["number", "null"],
                "description": "the rule's distance limit (within_distance rules), else null"},
    "test": {"type": "string", "description": "within_distance, inside or not_inside"},
    "basis_note": {"type": ["string", "null"],
                   "description": "what is uncertain about the legal basis"},
    "point": {"enum": ["site", "new_site"],
              "description": "where the rule was checked: the site, or a relocation's new "
                             "site"},
}

HIT = {"type": "object",
       "required": ["rule_id", "title", "feature_id", "feature_name", "distance_m", "severity",
                    "basis", "action", "limit_m", "test", "basis_note", "point"],
       "properties": _HIT_PROPERTIES}

CONDITIONAL_HIT = {
    "type": "object",
    "description": "A rule whose geometry holds but which applies only if the site is what "
                   "`condition` says; `missing` names the attributes not given",
    "required": [*HIT["required"], "missing", "condition", "sentence"],
    "properties": {**_HIT_PROPERTIES,
                   "missing": {"type": "array", "items": _STR},
                   "condition": _ZH_EN,
                   "sentence": _ZH_EN},
}

NEAREST = {"type": "object", "required": ["layer", "distance_m"],
           "properties": {"layer": _STR, "feature_id": _STR_OR_NULL,
                          "feature_name": _STR_OR_NULL, "distance_m": _NUM_OR_NULL}}

VERDICTS = [v.value for v in Verdict]

CHECK_RESULT = {
    "type": "object",
    "required": ["input", "point", "verdict", "verdict_text", "hits", "conditional_hits",
                 "nearest", "covered"],
    "properties": {
        "input": {"type": "object"},
        "point": {"type": "object", "required": ["lon", "lat"],
                  "properties": {"lon": {"type": "number", "minimum": -180, "maximum": 180},
                                 "lat": {"type": "number", "minimum": -90, "maximum": 90}}},
        "verdict": {"enum": VERDICTS,
                    "description": "out_of_area > fail > needs_info > pass: fail when a rule "
                                   "is broken, needs_info when a rule applies only if a "
                                   "missing attribute has the value it names, out_of_area "
                                   "outside the area the city's data covers"},
        "verdict_text": {**_ZH_EN, "description": "the verdict in Chinese and English"},
        "hits": {"type": "array", "items": HIT},
        "conditional_hits": {"type": "array", "items": CONDITIONAL_HIT},
        "nearest": {"type": "array", "items": NEAREST},
        "covered": {"type": "boolean",
                    "description": "whether the point lies in the area the city's data "
                                   "covers"},
    },
}

RELOCATION_HIT = {
    "type": "object", "required": ["rule_id", "title_zh", "title_en", "point"],
    "properties": {"rule_id": _STR, "title_zh": _STR, "title_en": _STR, "feature": _STR,
                   "distance_m": {"type": ["integer", "null"]}, "severity": _STR,
                   "point": {"enum": ["site", "new_site"]}}}

RELOCATION_SITE = {
    "type": "object", "required": ["id", "hits", "new_site_hits"],
    "properties": {"id": _STR,
                   "hits": {"type": "array", "items": RELOCATION_HIT,
                            "description": "rule hits at the current site"},
                   "new_site_hits": {"type": "array", "items": RELOCATION_HIT,
                                     "description": "rule hits at the relocation's new "
                                                    "site (empty without one)"}}}

FLAG_HEADERS = {
    "X-Geoapp-Rows": "rows read",
    "X-Geoapp-Flagged": "rows with the verdict fail (不符合)",
    "X-Geoapp-Passed": "rows with the verdict pass (符合)",
    "X-Geoapp-Needs-Info": "rows with the verdict needs_info (待核实)",
    "X-Geoapp-Out-Of-Area": "rows with the verdict out_of_area (超出本市数据范围)",
    "X-Geoapp-Bad-Rows": "rows whose coordinates were refused (坐标错误; only with skip_bad)",
}

_AREA = {"type": "object", "required": ["m2", "mu", "ha"],
         "properties": {"m2": {"type": "number", "minimum": 0},
                        "mu": {"type": "number", "minimum": 0},
                        "ha": {"type": "number", "minimum": 0}}}

_PARCEL_HIT = {"type": "object", "required": ["rule_id", "distance_m", "overlap_m2"],
               "properties": {**_HIT_PROPERTIES,
                              "overlap_m2": {"type": ["number", "null"],
                                             "description": "ground area of the parcel "
                                                            "inside the rule's features "
                                                            "(area rules), else null"}}}

PARCEL = {
    "type": "object",
    "required": ["id", "name", "area_m2", "area", "verdict", "verdict_text", "overlaps",
                 "hits", "conditional_hits", "rules", "units", "covered"],
    "properties": {
        "id": {"type": "string", "description": "地块编号 of a survey file, the `id` "
                                                "property, else the position (1, 2, …)"},
        "name": _STR_OR_NULL,
        "area_m2": {"type": "number", "minimum": 0,
                    "description": "ground (ellipsoidal, CGCS2000/GRS80) area, 0.1 m²"},
        "area": _AREA,
        "declared_area_m2": _NUM_OR_NULL,
        "verdict": {"enum": VERDICTS, "description": "as for a point: out_of_area when the "
                                                     "parcel lies wholly outside the city's "
                                                     "data"},
        "verdict_text": _ZH_EN,
        "counties": {"type": "array", "items": {"type": "object"}},
        "overlaps": {"type": "array", "items": {
            "type": "object", "required": ["layer", "feature_id", "feature_name", "area_m2",
                                           "share"],
            "properties": {"layer": _STR, "feature_id": _STR_OR_NULL,
                           "feature_name": _STR_OR_NULL,
                           "area_m2": {"type": "number", "minimum": 0},
                           "share": {"type": "number", "minimum": 0, "maximum": 1}}}},
        "hits": {"type": "array", "items": _PARCEL_HIT},
        "conditional_hits": {"type": "array", "items": _PARCEL_HIT},
        "rules": {"type": "array", "items": {
            "type": "object", "required": ["rule_id", "distance_m", "overlap_m2", "outcome"],
            "properties": {"rule_id": _STR, "distance_m": _NUM_OR_NULL,
                           "overlap_m2": _NUM_OR_NULL,
                           "outcome": {"enum": ["hit", "conditional_hit", "no_hit"]}}}},
        "units": {"type": "array", "items": {
            "type": "object", "required": ["code", "category", "overlap_m2", "requirements"],
            "properties": {"code": _STR, "name": _STR_OR_NULL, "category": _STR_OR_NULL,
                           "overlap_m2": {"type": "number", "minimum": 0},
                           "share": {"type": "number", "minimum": 0, "maximum": 1},
                           "requirements": {"type": "object",
                                            "description": "the 准入清单 in four parts: "
                                                           "spatial_layout, emission_control, "
                                                           "risk_prevention, "
                                                           "resource_efficiency"},
                           "flagged_lines": {"type": "array", "items": {"type": "object"},
                                             "description": "the lines naming the "
                                                            "project's industry"}}}},
        "covered": {"type": "boolean"},
    },
}

PARCEL_REPORT = {
    "type": "object",
    "required": ["parcels", "input", "source", "warnings", "summary"],
    "properties": {
        "parcels": {"type": "array", "items": PARCEL},
        "input": {"type": "object", "description": "the project: site_type, industry, "
                                                   "attributes"},
        "source": {"type": "object", "description": "format, crs and file name of the input"},
        "warnings": {"type": "array", "items": {"type": "object"},
                     "description": "what did not stop the check (e.g. a declared area that "
                                    "differs from the measured one)"},
        "summary": {"type": "object", "required": ["parcels", "verdicts", "area_m2"],
                    "properties": {"parcels": {"type": "integer", "minimum": 0},
                                   "verdicts": {"type": "object"},
                                   "area_m2": {"type": "number", "minimum": 0}}},
        "checked_at": _STR,
        "city": _STR,
    },
}

#: Documented when the rules cannot be read: the attribute the fuel rule reads.
_FALLBACK_ATTRIBUTES = ("fuel",)


def _query(name: str, description: str, *, required: bool = False,
           schema: dict | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or _STR}


def _json(schema: dict, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "invalid input, with a message naming the problem", 401: "not logged in",
            403: "the account's role may not do this", 404: "unknown id",
            413: "upload larger than MAX_UPLOAD_MB"}
    return {str(c): _json(ERROR, text[c]) for c in codes}


def _rule_attributes(app: Flask) -> tuple[str, ...]:
    """The site attributes the current rules read besides site_type and industry."""
    core = app.extensions.get("geoapp")
    if core is None:
        return _FALLBACK_ATTRIBUTES
    try:
        return rule_attributes(core)
    except ConfigError:
        return _FALLBACK_ATTRIBUTES


def _attribute_parameter(name: str) -> dict[str, Any]:
    example = {"fuel": "coal", "classification": "relocate", "status": "banned"}.get(name)
    text = (f"Site attribute `{name}` read by some rule; without it, a rule that depends on "
            "it makes the verdict needs_info where its geometry holds")
    param = _query(name, text)
    if example:
        param["example"] = example
    return param


def _operations(app: Flask) -> dict[tuple[str, str], dict[str, Any]]:
    """Described operations, keyed by (OpenAPI path, method)."""
    site_types = [t.value for t in SiteType]
    attributes = [a for a in _rule_attributes(app) if a not in ("lon", "lat", "crs")]
    check = {
        "summary": "Check one point against every restriction rule",
        "description": "Besides the parameters below, any further site attribute some rule "
                       "reads may be given as a query parameter of its name (the current "
                       "rules read: " + (", ".join(attributes) or "none") + "); parameters "
                       "no rule reads are ignored.",
        "parameters": [
            _query("lon", "Longitude, x (Gauss-Krüger easting) or, for crs=dms, the whole "
                   "text", required=True),
            _query("lat", "Latitude or y; unused for crs=dms"),
            _query("crs", "Coordinate system: wgs84, cgcs2000, gcj02, bd09, gk, dms or "
                   "EPSG:<code>"),
            _query("site_type", "Site type (rules that apply to it): "
                   + ", ".join(site_types)),
            _query("industry", "Industry (GB/T 4754 wording, e.g. 化工)"),
            *(_attribute_parameter(a) for a in attributes),
        ],
        "responses": {"200": _json(CHECK_RESULT, "the verdict, the rule hits, the "
                                                 "conditional hits and nearest features"),
                      **_errors(400, 401)},
    }
    check_site = {
        "summary": "Check one stored site",
        "parameters": [{"name": "site_id", "in": "path", "required": True, "schema": _STR}],
        "responses": {"200": _json(CHECK_RESULT, "the site's rule hits"),
                      **_errors(401, 404)},
    }
    flag = {
        "summary": "Flag every row of an uploaded CSV/XLSX/GeoJSON/GeoPackage",
        "description": "Every row comes out with the verdict /api/check gives the same point "
                       "and attributes (columns 结论, 触发规则, … or, with lang=en, verdict, "
                       "rules, …; see docs/api.md). The counts are in the X-Geoapp-* "
                       "response headers.",
        "parameters": [_query("lang", "Language of the added columns' headers and texts "
                                      "(also accepted as a form field)",
                              schema={"enum": ["zh", "en"], "default": "zh"})],
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"},
                           "format": {"enum": ["csv", "xlsx", "geojson", "gpkg"]},
                           "crs": _STR, "lon_col": _STR, "lat_col": _STR,
                           "type_col": _STR, "industry_col": _STR, "skip_bad": _STR,
                           "site_type": _STR,
                           "lang": {"enum": ["zh", "en"], "default": "zh",
                                    "description": "headers and texts of the added columns: "
                                                   "Chinese (default) or English"}}}}}},
        "responses": {"200": {"description": "the flagged file, same format unless `format` "
                                             "names another",
                              "headers": {name: {"description": text,
                                                 "schema": {"type": "integer", "minimum": 0}}
                                          for name, text in FLAG_HEADERS.items()},
                              "content": {"application/octet-stream": {
                                  "schema": {"type": "string", "format": "binary"}}}},
                      **_errors(400, 401, 413)},
    }
    relocation = {
        "summary": "The relocation programme view: filters, summary, sites with their hits",
        "parameters": [_query(n, f"Filter by {n} (repeatable)") for n in
                       ("district", "industry", "classification", "stage")]
        + [_query("year", "Programme year of the targets")],
        "responses": {"200": _json({"type": "object",
                                    "required": ["filters", "summary", "sites"],
                                    "properties": {"filters": {"type": "object"},
                                                   "year": {},
                                                   "summary": {"type": "object"},
                                                   "sites": {"type": "array",
                                                             "items": RELOCATION_SITE}}},
                                   "the filtered programme"),
                      **_errors(400, 401)},
    }
    parcel_form = {"type": "object", "required": ["file"],
                   "properties": {"file": {"type": "string", "format": "binary",
                                           "description": "survey coordinate file (.txt), "
                                                          "GeoJSON, KML/KMZ, GeoPackage, "
                                                          "zipped Shapefile or DXF"},
                                  "crs": _STR, "towgs84": _STR, "site_type": _STR,
                                  "industry": _STR},
                   "additionalProperties": {"type": "string"}}
    geojson = {"type": "object", "required": ["type"],
               "description": "a GeoJSON Polygon or MultiPolygon geometry, Feature or "
                              "FeatureCollection (properties `id` and `name` name the "
                              "parcels)"}
    parcels = {
        "summary": "Check the parcels of a file or a GeoJSON body for a project",
        "description": "A multipart upload (field `file`; options as form fields) or a "
                       "GeoJSON body (Content-Type application/json or application/geo+json;"
                       " options as query parameters). Every further field or parameter "
                       "some rule reads (the current rules read: "
                       + (", ".join(attributes) or "none") + ") describes the project. One "
                       "answer per parcel: ground area, overlaps, every rule with its "
                       "distance, the control units with their 准入清单, the verdict. See "
                       "docs/api.md.",
        "parameters": [
            _query("crs", "Coordinate system of the input when it does not say: wgs84, "
                   "cgcs2000, gcj02, bd09 or EPSG:<code>; `auto` or empty: as the file "
                   "says"),
            _query("site_type", "Site type of the project: " + ", ".join(site_types)),
            _query("industry", "Industry of the project (e.g. 化工)"),
            *(_attribute_parameter(a) for a in attributes),
        ],
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": parcel_form},
            "application/json": {"schema": geojson},
            "application/geo+json": {"schema": geojson}}},
        "responses": {"200": _json(PARCEL_REPORT, "one answer per parcel, in input order"),
                      **_errors(400, 401, 413)},
    }
    spec = {"summary": "This document", "responses": {
        "200": _json({"type": "object", "required": ["openapi", "paths"]}, "OpenAPI 3.1")}}
    return {("/api/check", "get"): check, ("/api/sites/{site_id}/check", "get"): check_site,
            ("/api/flag", "post"): flag, ("/api/relocation", "get"): relocation,
            ("/api/parcels/check", "post"): parcels,
            ("/api/openapi.json", "get"): spec}


def _openapi_path(rule: str) -> tuple[str, list[str]]:
    names = re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", rule)
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule), names


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every /api route registered on ``app``."""
    described = _operations(app)
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path, names = _openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op = described.get((path, method.lower()))
            if op is None:
                view = app.view_functions.get(rule.endpoint)
                doc = (view.__doc__ or rule.endpoint).strip().splitlines()[0] if view else ""
                op = {"summary": doc,
                      "parameters": [{"name": n, "in": "path", "required": True,
                                      "schema": _STR} for n in names],
                      "responses": {"200": {"description": "success"}, **_errors(400, 401)}}
            op = {**op, "operationId": f"{rule.endpoint}.{method.lower()}"}
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "geoapp API", "version": __version__,
                 "description": "Restriction checks of points and parcels, batch "
                                "flagging and the relocation programme. Log in first: "
                                "every operation needs the session cookie; POSTs also "
                                "send the X-CSRFToken header."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": {"Error": ERROR, "CheckResult": CHECK_RESULT,
                                   "Hit": HIT, "ConditionalHit": CONDITIONAL_HIT,
                                   "ParcelReport": PARCEL_REPORT},
                       "securitySchemes": {"session": {"type": "apiKey", "in": "cookie",
                                                       "name": "session"}}},
        "security": [{"session": []}],
    }


@bp.get("/openapi.json")
def document():
    """The OpenAPI 3.1 document of this API."""
    return jsonify(build_document(current_app))

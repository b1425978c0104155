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
from geoapp.domain.vocab import SiteType

bp = Blueprint("openapi", __name__, url_prefix="/api")

_STR = {"type": "string"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_STR_OR_NULL = {"type": ["string", "null"]}

ERROR = {"type": "object", "required": ["error", "message"],
         "properties": {"error": _STR, "message": _STR, "details": {}}}

HIT = {"type": "object",
       "required": ["rule_id", "title", "feature_id", "feature_name", "distance_m", "severity"],
       "properties": {"rule_id": _STR,
                      "title": {"type": "object", "properties": {"zh": _STR, "en": _STR}},
                      "feature_id": _STR_OR_NULL, "feature_name": _STR_OR_NULL,
                      "distance_m": {"type": "number"}, "severity": _STR,
                      "basis": _STR_OR_NULL, "action": _STR_OR_NULL}}

NEAREST = {"type": "object", "required": ["layer", "distance_m"],
           "properties": {"layer": _STR, "feature_id": _STR_OR_NULL,
                          "feature_name": _STR_OR_NULL, "distance_m": _NUM_OR_NULL}}

CHECK_RESULT = {
    "type": "object", "required": ["input", "point", "verdict", "hits", "nearest"],
    "properties": {
        "input": {"type": "object"},
        "point": {"type": "object", "required": ["lon", "lat"],
                  "properties": {"lon": {"type": "number", "minimum": -180, "maximum": 180},
                                 "lat": {"type": "number", "minimum": -90, "maximum": 90}}},
        "verdict": {"enum": ["pass", "fail"]},
        "hits": {"type": "array", "items": HIT},
        "nearest": {"type": "array", "items": NEAREST},
    },
}


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


def _operations() -> dict[tuple[str, str], dict[str, Any]]:
    """Described operations, keyed by (OpenAPI path, method)."""
    site_types = [t.value for t in SiteType]
    check = {
        "summary": "Check one point against every restriction rule",
        "parameters": [
            _query("lon", "Longitude, x (Gauss-Krüger easting) or, for crs=dms, the whole "
                   "text", required=True),
            _query("lat", "Latitude or y; unused for crs=dms"),
            _query("crs", "Coordinate system: wgs84, cgcs2000, gcj02, bd09, gk, dms or "
                   "EPSG:<code>"),
            _query("site_type", "Site type (rules that apply to it): "
                   + ", ".join(site_types)),
            _query("industry", "Industry (GB/T 4754 wording, e.g. 化工)"),
        ],
        "responses": {"200": _json(CHECK_RESULT, "the rule hits and nearest features"),
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
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"},
                           "format": {"enum": ["csv", "xlsx", "geojson", "gpkg"]},
                           "crs": _STR, "lon_col": _STR, "lat_col": _STR,
                           "type_col": _STR, "industry_col": _STR, "skip_bad": _STR,
                           "site_type": _STR}}}}},
        "responses": {"200": {"description": "the flagged file, same format unless `format` "
                                             "names another",
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
                                                   "sites": {"type": "array"}}},
                                   "the filtered programme"),
                      **_errors(400, 401)},
    }
    spec = {"summary": "This document", "responses": {
        "200": _json({"type": "object", "required": ["openapi", "paths"]}, "OpenAPI 3.1")}}
    return {("/api/check", "get"): check, ("/api/sites/{site_id}/check", "get"): check_site,
            ("/api/flag", "post"): flag, ("/api/relocation", "get"): relocation,
            ("/api/openapi.json", "get"): spec}


def _openapi_path(rule: str) -> tuple[str, list[str]]:
    names = re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", rule)
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule), names


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every /api route registered on ``app``."""
    described = _operations()
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
                 "description": "Restriction checks, batch flagging and the relocation "
                                "programme. Log in first: every operation needs the session "
                                "cookie; POSTs also send the X-CSRFToken header."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": {"Error": ERROR, "CheckResult": CHECK_RESULT},
                       "securitySchemes": {"session": {"type": "apiKey", "in": "cookie",
                                                       "name": "session"}}},
        "security": [{"session": []}],
    }


@bp.get("/openapi.json")
def document():
    """The OpenAPI 3.1 document of this API."""
    return jsonify(build_document(current_app))

"""OGC API – Features under /ogc: the layers, sites and exclusion zones for GIS tools
(QGIS, ArcGIS Pro, GDAL's OAPIF driver) and, as HTML pages, for people.

Part 1 (core, GeoJSON, HTML, OpenAPI 3.0), Part 2 (``crs``, ``bbox-crs``, ``Content-Crs``)
and the queryables of Part 3 (equality filters ``?name=…``). Every route needs an account,
like every page (anonymous callers get 401, see ``web/auth.py``). The layers and the
exclusion zones are every account's; the site collections carry every ledger field, so they
are read by the roles that may download the sites from /ledger (:data:`SITE_ROLES`): for
any other account they are not listed and their resources are 403. JSON unless ``f=html`` or an
``Accept`` header preferring HTML asks for a page. Errors are the OGC exception document
``{"code", "description"}`` (or the error page for HTML).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from geoapp import __version__
from geoapp.domain.errors import GeoappError, InvalidInput
from geoapp.services import ogc
from geoapp.web import ledger as ledger_views
from geoapp.web.common import core
from geoapp.web.errors import render_error
from geoapp.web.i18n import current_language, role_label

bp = Blueprint("ogc", __name__, url_prefix="/ogc")


class FeatureIdConverter(PathConverter):
    """A feature id in a URL: any text, "/" included (a layer's own ids may hold one, even
    first), written with "/" as ``%2F`` so a link to the feature leads back to it."""

    regex = ".+"  # PathConverter's "[^/].*?" would refuse an id starting with "/"
    part_isolating = False  # the id may span several path segments

    def to_url(self, value: Any) -> str:
        return quote(str(value), safe="!$&'()*+,:;=@")


@bp.record_once
def _install(state) -> None:
    """The feature id converter, before the routes that use it are added."""
    state.app.url_map.converters.setdefault("ogc_fid", FeatureIdConverter)


GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
SCHEMA = "application/schema+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
REL_QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
_CONF = "http://www.opengis.net/spec/"
CONFORMANCE = (
    _CONF + "ogcapi-features-1/1.0/conf/core",
    _CONF + "ogcapi-features-1/1.0/conf/oas30",
    _CONF + "ogcapi-features-1/1.0/conf/html",
    _CONF + "ogcapi-features-1/1.0/conf/geojson",
    _CONF + "ogcapi-features-2/1.0/conf/crs",
    _CONF + "ogcapi-features-3/1.0/conf/queryables",
    _CONF + "ogcapi-features-3/1.0/conf/queryables-query-parameters",
)
#: Query parameters of the pages other than items (``f`` and the page language).
_PAGE_PARAMS = ("f", "lang")
#: Who reads the site collections (every ledger field of every site): the roles of the
#: ledger's layer downloads, which hand out the same sites as files.
SITE_ROLES: tuple[str, ...] = ledger_views.layer.required_roles


def readable(col: ogc.Collection) -> bool:
    """Whether the current account may read ``col``: the site collections need
    :data:`SITE_ROLES`, the layers and the exclusion zones any account."""
    return col.kind != "sites" or current_user.has_role(*SITE_ROLES)


def _collections() -> list[ogc.Collection]:
    """The collections the current account may read, in the service's order."""
    return [c for c in ogc.collections(core()) if readable(c)]


def _collection(collection_id: str) -> ogc.Collection:
    """The collection named ``collection_id``: 403 when the account may not read it, 404
    (naming the ones it may read) when there is none."""
    every = ogc.collections(core())
    for col in every:
        if col.id == collection_id and not readable(col):
            abort(403, description=_("需要角色：%(roles)s",
                                     roles=", ".join(role_label(r) for r in SITE_ROLES)))
    return ogc.collection(core(), collection_id, known=[c for c in every if readable(c)])


def _format() -> str:
    """``json`` or ``html``: ``f`` wins, else the Accept header (JSON when undecided)."""
    asked = request.args.get("f")
    if asked is not None:
        f = asked.strip().lower()
        if f in ("json", "geojson", "application/json", "application/geo+json"):
            return "json"
        if f in ("html", "text/html"):
            return "html"
        raise InvalidInput(_("参数 f 只能是 json 或 html"))
    best = request.accept_mimetypes.best_match((GEOJSON, JSON, HTML), default=JSON)
    return "html" if best == HTML else "json"


def _json(body: Any, mimetype: str = JSON, status: int = 200, **headers: str) -> Response:
    resp = Response(json.dumps(body, ensure_ascii=False, allow_nan=False), status=status,
                    mimetype=mimetype)
    resp.headers["Vary"] = "Accept"
    resp.headers.update(headers)
    return resp


def _html(template: str, status: int = 200, **context: Any) -> Response:
    resp = Response(render_template(template, city=core().city, **context), status=status,
                    mimetype=HTML)
    resp.headers["Vary"] = "Accept"
    return resp


def _url(endpoint: str, f: str | None = None, **values: Any) -> str:
    if f is not None:
        values["f"] = f
    return url_for(endpoint, _external=True, **values)


def _link(href: str, rel: str, mimetype: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": mimetype, "title": title}


def _self_links(endpoint: str, fmt: str, json_type: str = JSON,
                **values: Any) -> list[dict[str, str]]:
    """``self`` in the format answered and ``alternate`` in the other."""
    as_json = _link(_url(endpoint, "json", **values), "self" if fmt == "json" else "alternate",
                    json_type, _("本页（JSON）"))
    as_html = _link(_url(endpoint, "html", **values), "self" if fmt == "html" else "alternate",
                    HTML, _("本页（HTML）"))
    return [as_json, as_html]


def _page_args() -> None:
    """Pages other than items take only ``f`` and ``lang``."""
    unknown = sorted(k for k in request.args if k not in _PAGE_PARAMS)
    if unknown:
        raise InvalidInput(_("未知的查询参数：%(names)s", names=", ".join(unknown)[:200]))


@bp.errorhandler(GeoappError)
def _domain_error(exc: GeoappError):
    body = exc.to_dict()
    return _error(exc.status, exc.code, body["message"])


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return _error(exc.code or 500, exc.name.lower().replace(" ", "_"),
                  exc.description or exc.name)


def _error(status: int, code: str, message: str):
    try:
        fmt = _format()
    except GeoappError:
        fmt = "json"
    if fmt == "html":
        return render_error(status, code, message)
    return _json({"code": code, "description": message}, status=status)


# --------------------------------------------------------------------------- resources
@bp.get("", strict_slashes=False)
def landing():
    """The landing page: links to the API description, the conformance classes and the
    collections."""
    _page_args()
    fmt = _format()
    city = core().city
    en = current_language() == "en"
    title = _("%(city)s生态环境一张图 · OGC API 要素服务",
              city=city.name_en if en else city.name)
    links = [*_self_links("ogc.landing", fmt),
             _link(_url("ogc.openapi"), "service-desc", OPENAPI, _("API 说明（OpenAPI 3.0）")),
             _link(_url("ogc.conformance", "json"), "conformance", JSON, _("符合的标准类")),
             _link(_url("ogc.collections_page", "json"), "data", JSON, _("数据集"))]
    body = {"title": title,
            "description": _("本市图层、企业与场所、规则缓冲区，供 GIS 软件（QGIS、ArcGIS）读取。"),
            "links": links}
    if fmt == "html":
        return _html("ogc_landing.html", body=body, conformance=CONFORMANCE)
    return _json(body)


@bp.get("/conformance")
def conformance():
    _page_args()
    fmt = _format()
    body = {"conformsTo": list(CONFORMANCE)}
    if fmt == "html":
        return _html("ogc_conformance.html", body=body)
    return _json(body)


@bp.get("/api")
def openapi():
    """The OpenAPI 3.0 description of this service (clients read ``limit``'s maximum)."""
    return _json(openapi_document(), mimetype=OPENAPI)


def _collection_body(summary: dict[str, Any], fmt: str, crs: list[str]) -> dict[str, Any]:
    col: ogc.Collection = summary["collection"]
    lang = current_language()
    cid = col.id
    links = [*_self_links("ogc.collection_page", fmt, collection_id=cid),
             _link(_url("ogc.items_page", "json", collection_id=cid), "items", GEOJSON,
                   _("要素（GeoJSON）")),
             _link(_url("ogc.items_page", "html", collection_id=cid), "items", HTML,
                   _("要素（HTML）")),
             _link(_url("ogc.schema", collection_id=cid), "describedby", SCHEMA,
                   _("属性说明（JSON Schema）")),
             _link(_url("ogc.queryables", collection_id=cid), REL_QUERYABLES, SCHEMA,
                   _("可筛选的属性"))]
    body: dict[str, Any] = {"id": cid, "title": col.title(lang), "links": links,
                            "itemType": "feature", "crs": crs, "storageCrs": ogc.CRS84,
                            "itemCount": summary["count"]}
    if summary["bbox"] is not None:
        body["extent"] = {"spatial": {"bbox": [summary["bbox"]], "crs": ogc.CRS84}}
    return body


@bp.get("/collections")
def collections_page():
    """Every collection with its extent, item count and systems."""
    _page_args()
    fmt = _format()
    app = core()
    crs = ogc.crs_list(app)
    summaries = [ogc.summary(app, c, gettext=_) for c in _collections()]
    body = {"links": _self_links("ogc.collections_page", fmt),
            "collections": [_collection_body(s, fmt, crs) for s in summaries],
            "crs": crs}
    if fmt == "html":
        return _html("ogc_collections.html", body=body, summaries=summaries)
    return _json(body)


@bp.get("/collections/<collection_id>")
def collection_page(collection_id: str):
    _page_args()
    fmt = _format()
    app = core()
    summary = ogc.summary(app, _collection(collection_id), gettext=_)
    body = _collection_body(summary, fmt, ogc.crs_list(app))
    if fmt == "html":
        return _html("ogc_collection.html", body=body, summary=summary)
    return _json(body)


@bp.get("/collections/<collection_id>/queryables")
def queryables(collection_id: str):
    """The attributes ``?name=value`` may filter on, as a JSON Schema."""
    _page_args()
    app = core()
    col = _collection(collection_id)
    doc = ogc.queryables(app, col, lang=current_language(), gettext=_)
    doc["$id"] = _url("ogc.queryables", collection_id=collection_id)
    return _json(doc, mimetype=SCHEMA)


@bp.get("/collections/<collection_id>/schema")
def schema(collection_id: str):
    """The features' attributes as a JSON Schema (the collection's ``describedby``)."""
    _page_args()
    app = core()
    col = _collection(collection_id)
    doc = ogc.queryables(app, col, lang=current_language(), gettext=_)
    doc["$id"] = _url("ogc.schema", collection_id=collection_id)
    return _json(doc, mimetype=SCHEMA)


def _items_links(collection_id: str, page: ogc.ItemsPage, fmt: str) -> list[dict[str, str]]:
    args = {k: v for k, v in request.args.items() if k not in ("f", "offset")}
    q = page.query
    json_type = GEOJSON
    links = _self_links("ogc.items_page", fmt, json_type, collection_id=collection_id,
                        offset=q.offset, **args)
    mimetype = json_type if fmt == "json" else HTML
    if page.has_next:
        links.append(_link(_url("ogc.items_page", fmt, collection_id=collection_id,
                                **{**args, "offset": q.offset + q.limit}),
                           "next", mimetype, _("下一页")))
    if q.offset > 0:
        links.append(_link(_url("ogc.items_page", fmt, collection_id=collection_id,
                                **{**args, "offset": max(0, q.offset - q.limit)}),
                           "prev", mimetype, _("上一页")))
    links.append(_link(_url("ogc.collection_page", "json", collection_id=collection_id),
                       "collection", JSON, _("数据集")))
    return links


@bp.get("/collections/<collection_id>/items")
def items_page(collection_id: str):
    """One page of features: ``bbox`` (``bbox-crs``), ``limit`` (10 by default, at most
    10,000), ``offset``, ``crs`` and ``?name=value`` filters; next/prev links."""
    fmt = _format()
    app = core()
    col = _collection(collection_id)
    page = ogc.items(app, col, request.args.to_dict(flat=False))
    body = {"type": "FeatureCollection", "features": page.features,
            "numberMatched": page.matched, "numberReturned": page.returned,
            "links": _items_links(collection_id, page, fmt)}
    headers = {"Content-Crs": f"<{page.query.crs}>"}
    if fmt == "html":
        resp = _html("ogc_items.html", body=body, page=page, collection=col,
                     titles={n: ogc.field_title(n, _) for n in page.fields})
        resp.headers.update(headers)
        return resp
    return _json(body, mimetype=GEOJSON, **headers)


@bp.get("/collections/<collection_id>/items/<ogc_fid:feature_id>")
def item_page(collection_id: str, feature_id: str):
    """One feature by its id, in ``crs``."""
    fmt = _format()
    app = core()
    col = _collection(collection_id)
    feature, crs, fields = ogc.item(app, col, feature_id, request.args.to_dict(flat=False))
    extra = {"crs": request.args["crs"]} if "crs" in request.args else {}
    feature["links"] = [
        *_self_links("ogc.item_page", fmt, GEOJSON, collection_id=collection_id,
                     feature_id=feature_id, **extra),
        _link(_url("ogc.collection_page", "json", collection_id=collection_id), "collection",
              JSON, _("数据集"))]
    headers = {"Content-Crs": f"<{crs}>"}
    if fmt == "html":
        resp = _html("ogc_item.html", feature=feature, collection=col, crs=crs,
                     titles={n: ogc.field_title(n, _) for n in fields})
        resp.headers.update(headers)
        return resp
    return _json(feature, mimetype=GEOJSON, **headers)


# ---------------------------------------------------------------------------- OpenAPI
def _param(name: str, schema: dict[str, Any], description: str, *, where: str = "query",
           required: bool = False, explode: bool | None = None) -> dict[str, Any]:
    p = {"name": name, "in": where, "required": required, "schema": schema,
         "description": description}
    if explode is not None:
        p["style"], p["explode"] = "form", explode
    return p


def openapi_document() -> dict[str, Any]:
    """A compact OpenAPI 3.0 description of the routes above, with each collection's items
    path and its attribute filters (GDAL's OAPIF driver reads both ``limit``'s maximum and
    which attributes it may send to the server from here)."""
    app = core()
    crs = ogc.crs_list(app)
    f = _param("f", {"type": "string", "enum": ["json", "html"]}, "json or html")
    cols = _collections()
    cid = _param("collectionId", {"type": "string", "enum": [c.id for c in cols]},
                 "collection id", where="path", required=True)
    fid = _param("featureId", {"type": "string"}, "feature id", where="path", required=True)
    crs_p = _param("crs", {"type": "string", "format": "uri", "enum": crs,
                           "default": crs[0]}, "coordinate system of the answer")
    items_params = [
        f,
        _param("limit", {"type": "integer", "minimum": 1, "maximum": ogc.LIMIT_MAX,
                         "default": ogc.LIMIT_DEFAULT}, "features per page", explode=False),
        _param("offset", {"type": "integer", "minimum": 0, "default": 0},
               "features to skip", explode=False),
        _param("bbox", {"type": "array", "minItems": 4, "maxItems": 6,
                        "items": {"type": "number"}},
               "lower and upper corner, in bbox-crs (CRS84 by default)", explode=False),
        _param("bbox-crs", {"type": "string", "format": "uri", "enum": crs,
                            "default": crs[0]}, "coordinate system of bbox"),
        crs_p,
    ]
    ok = {"description": "OK"}
    err = {"description": "bad request, unknown id or not logged in"}

    def op(summary: str, params: list[dict[str, Any]], mime: str = JSON) -> dict[str, Any]:
        return {"get": {"summary": summary, "parameters": params,
                        "responses": {"200": {**ok, "content": {mime: {}, HTML: {}}},
                                      "400": err, "401": err, "404": err}}}

    paths = {
        "/": op("landing page", [f]),
        "/conformance": op("conformance classes", [f]),
        "/api": {"get": {"summary": "this document",
                         "responses": {"200": {**ok, "content": {OPENAPI: {}}}}}},
        "/collections": op("collections", [f]),
        "/collections/{collectionId}": op("one collection", [cid, f]),
        "/collections/{collectionId}/queryables": op("queryables", [cid], SCHEMA),
        "/collections/{collectionId}/schema": op("schema", [cid], SCHEMA),
        "/collections/{collectionId}/items": op("features", [cid, *items_params], GEOJSON),
        "/collections/{collectionId}/items/{featureId}": op("one feature",
                                                             [cid, fid, f, crs_p], GEOJSON),
    }
    for col in cols:
        fields = ogc.summary(app, col)["fields"]
        filters = [_param(name, {"type": spec["type"]}, f"{name} equals")
                   for name, spec in fields.items()]
        paths[f"/collections/{col.id}/items"] = op(f"features of {col.id}",
                                                   [*items_params, *filters], GEOJSON)
    return {
        "openapi": "3.0.3",
        "info": {"title": f"geoapp OGC API - Features ({app.city.name_en})",
                 "version": __version__},
        "servers": [{"url": _url("ogc.landing").rstrip("/")}],
        "components": {"securitySchemes": {"session": {"type": "apiKey", "in": "cookie",
                                                       "name": "session"}}},
        "security": [{"session": []}],
        "paths": paths,
    }

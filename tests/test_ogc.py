"""OGC API – Features under /ogc through the test client: the resources, paging, boxes,
filters, coordinate systems and their axis order, formats, errors and access (the site
collections for the roles of the ledger's downloads, the rest for every account)."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import numpy as np
import pytest
import shapely

from geoapp.services import ogc
from geoapp.services.inspection import site_page
from geoapp.spatial import ogc_crs
from geoapp.spatial.crs import CGCS2000, WGS84, to_metric
from geoapp.web import create_app, ledger
from geoapp.web import ogc as ogc_web

from webutil import ROLES, login, make_users

CRS84 = ogc_crs.CRS84
EPSG4326 = ogc_crs.uri_of(WGS84)
EPSG4490 = ogc_crs.uri_of(CGCS2000)
CONF = "http://www.opengis.net/spec/"
SITE_COLLECTIONS = ("enterprises", "farms", "workshops")


@pytest.fixture(scope="module")
def core(offline_app):
    return offline_app.extensions["geoapp"]


@pytest.fixture(scope="module")
def client(offline_app):
    """A planner: reads every collection."""
    c = offline_app.test_client()
    login(c, "planner")
    return c


def _get(client, url: str, status: int = 200, **kw):
    r = client.get(url, **kw)
    assert r.status_code == status, (url, r.status_code, r.get_data(as_text=True)[:500])
    return r


def _rel(links, rel: str, mimetype: str | None = None) -> str:
    found = [lk["href"] for lk in links
             if lk["rel"] == rel and (mimetype is None or lk["type"] == mimetype)]
    assert found, (rel, links)
    return found[0]


def _path(href: str) -> str:
    """An absolute link as the test client opens it (path and query)."""
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# ------------------------------------------------------------------------------ access
def test_anonymous_gets_401_everywhere_under_ogc(offline_app):
    c = offline_app.test_client()
    for url in ("/ogc", "/ogc/", "/ogc/conformance", "/ogc/api", "/ogc/collections",
                "/ogc/collections/rivers", "/ogc/collections/rivers/items",
                "/ogc/collections/enterprises/items/E0001?f=html"):
        r = c.get(url)
        assert r.status_code == 401, url
        assert r.get_json()["error"] == "unauthorized"


def test_the_site_collections_take_the_role_of_the_ledgers_layer_downloads():
    assert ogc_web.SITE_ROLES is ledger.layer.required_roles
    assert ogc_web.SITE_ROLES == ("planner",)


@pytest.mark.parametrize("role", ROLES)
def test_site_collections_are_listed_and_served_to_planners_and_admins_only(offline_app, core,
                                                                              role):
    """The sites carry every ledger field, like /ledger/layers/enterprises.geojson: the
    roles that may download that read them here, the others see neither a listing nor a
    resource of them; the layers and the exclusion zones are every account's."""
    c = offline_app.test_client()
    login(c, role)
    allowed = role in ("planner", "admin")
    assert (c.get("/ledger/layers/enterprises.geojson").status_code == 200) == allowed
    listed = {col["id"] for col in _get(c, "/ogc/collections").get_json()["collections"]}
    layers = set(core.repo.layer_names())
    assert layers | {"exclusion_zones"} <= listed
    assert (set(SITE_COLLECTIONS) <= listed) == allowed
    assert not (set(SITE_COLLECTIONS) & listed) or allowed
    page = _get(c, "/ogc/collections?f=html").get_data(as_text=True)
    assert ("/ogc/collections/enterprises" in page) == allowed and "rivers" in page
    paths = _get(c, "/ogc/api").get_json()["paths"]
    assert ("/collections/farms/items" in paths) == allowed
    assert "/collections/rivers/items" in paths
    sites = core.repo.sites()
    for cid, site_type in zip(SITE_COLLECTIONS, ("enterprise", "livestock_farm",
                                                 "scattered_workshop"), strict=True):
        fid = sites["id"][sites["site_type"] == site_type].iloc[0]
        for url in (f"/ogc/collections/{cid}", f"/ogc/collections/{cid}/items?limit=10000",
                    f"/ogc/collections/{cid}/items/{fid}", f"/ogc/collections/{cid}/schema",
                    f"/ogc/collections/{cid}/queryables",
                    f"/ogc/collections/{cid}/items?colour=red"):  # 403 before the query
            if allowed and url.endswith("colour=red"):
                _get(c, url, 400)
            elif allowed:
                body = _get(c, url).get_json()
                if "/items?" in url:
                    assert body["numberMatched"] == (sites["site_type"] == site_type).sum()
            else:
                r = _get(c, url, 403)
                assert r.get_json()["code"] == "forbidden", url
                assert "规划" in r.get_json()["description"] or "Planner" in \
                    r.get_json()["description"], url
                assert "credit_code" not in r.get_data(as_text=True), url
                html = _get(c, url.split("?")[0] + "?f=html", 403)
                assert html.mimetype == "text/html" and "<html" in html.get_data(as_text=True)
    for url in ("/ogc/collections/rivers", "/ogc/collections/rivers/items",
                "/ogc/collections/rivers/schema", "/ogc/collections/rivers/queryables",
                "/ogc/collections/exclusion_zones/items?limit=1",
                "/ogc/collections/rivers/items?f=html"):
        _get(c, url)
    # a collection that does not exist: 404 naming only the ones the account reads
    missing = _get(c, "/ogc/collections/nope", 404).get_json()["description"]
    assert "rivers" in missing and ("enterprises" in missing) == allowed


def test_landing_page_links_the_api_the_conformance_and_the_collections(client):
    body = _get(client, "/ogc").get_json()
    links = body["links"]
    assert _path(_rel(links, "service-desc")) == "/ogc/api"
    assert _path(_rel(links, "conformance")).startswith("/ogc/conformance")
    assert _path(_rel(links, "data")).startswith("/ogc/collections")
    assert _rel(links, "self", "application/json").endswith("/ogc?f=json")
    assert _rel(links, "alternate", "text/html").endswith("/ogc?f=html")
    assert _get(client, "/ogc/").get_json() == body


def test_conformance_names_core_geojson_html_openapi_and_crs(client):
    conf = set(_get(client, "/ogc/conformance").get_json()["conformsTo"])
    for part in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
                 "ogcapi-features-1/1.0/conf/html", "ogcapi-features-1/1.0/conf/oas30",
                 "ogcapi-features-2/1.0/conf/crs"):
        assert CONF + part in conf


def test_collections_are_every_layer_the_site_types_and_the_exclusion_zones(client, core):
    body = _get(client, "/ogc/collections").get_json()
    cols = {c["id"]: c for c in body["collections"]}
    assert list(cols)[:len(core.repo.layer_names())] == core.repo.layer_names()
    assert {"enterprises", "farms", "workshops", "exclusion_zones"} <= set(cols)
    assert len(cols) == len(core.repo.layer_names()) + 4
    expected_crs = [CRS84, EPSG4326, EPSG4490, ogc_crs.uri_of(core.metric_crs)]
    assert body["crs"] == expected_crs
    for cid, col in cols.items():
        gdf = ogc.frame(core, ogc.collection(core, cid))
        assert col["itemCount"] == len(gdf), cid
        assert col["crs"] == expected_crs and col["storageCrs"] == CRS84
        assert col["extent"]["spatial"]["crs"] == CRS84
        assert col["extent"]["spatial"]["bbox"][0] == pytest.approx(list(gdf.total_bounds))
        assert _path(_rel(col["links"], "items", "application/geo+json")) \
            .startswith(f"/ogc/collections/{cid}/items")
        assert _path(_rel(col["links"], "describedby")).startswith(f"/ogc/collections/{cid}/")
    sites = core.repo.sites()
    assert cols["enterprises"]["itemCount"] == (sites["site_type"] == "enterprise").sum()
    assert cols["farms"]["itemCount"] == (sites["site_type"] == "livestock_farm").sum()
    assert cols["exclusion_zones"]["itemCount"] == len(core.repo.derived_layer("exclusion_zones"))
    one = _get(client, "/ogc/collections/counties").get_json()
    assert one == {**cols["counties"], "links": one["links"]}


def test_unknown_collection_or_feature_is_a_404_exception(client):
    r = _get(client, "/ogc/collections/nope", 404)
    assert r.get_json()["code"] == "not_found" and "rivers" in r.get_json()["description"]
    r = _get(client, "/ogc/collections/rivers/items/nope", 404)
    assert r.get_json()["code"] == "not_found"
    r = _get(client, "/ogc/collections/nope?f=html", 404)
    assert r.mimetype == "text/html"


# ------------------------------------------------------------------------------- paging
def test_items_page_by_ten_and_the_next_links_walk_every_feature_once(client, core):
    stored = list(ogc.frame(core, ogc.collection(core, "farms"))["id"])
    first = _get(client, "/ogc/collections/farms/items")
    assert first.mimetype == "application/geo+json"
    body = first.get_json()
    assert body["numberMatched"] == len(stored) and body["numberReturned"] == 10
    assert [f["id"] for f in body["features"]] == stored[:10]
    assert not [lk for lk in body["links"] if lk["rel"] == "prev"]
    seen, url, pages = [], "/ogc/collections/farms/items?limit=37", 0
    while url:
        page = _get(client, url).get_json()
        seen += [f["id"] for f in page["features"]]
        pages += 1
        if pages > 1:
            assert _rel(page["links"], "prev", "application/geo+json")
        nxt = [lk["href"] for lk in page["links"] if lk["rel"] == "next"]
        url = _path(nxt[0]) if nxt else None
    assert seen == stored and pages == -(-len(stored) // 37)


def test_limit_and_offset_are_checked_and_the_limit_capped(client, core):
    body = _get(client, "/ogc/collections/farms/items?limit=20000").get_json()
    assert body["numberReturned"] == min(ogc.LIMIT_MAX, body["numberMatched"])
    body = _get(client, "/ogc/collections/farms/items?offset=195&limit=10").get_json()
    assert body["numberReturned"] == body["numberMatched"] - 195
    prev = parse_qs(urlsplit(_rel(body["links"], "prev")).query)
    assert prev["offset"] == ["185"] and prev["limit"] == ["10"]
    for bad in ("limit=0", "limit=abc", "limit=-1", "offset=-1", "offset=1.5"):
        r = _get(client, f"/ogc/collections/farms/items?{bad}", 400)
        assert r.get_json()["code"] == "invalid_input", bad
    huge = "9" * 5000
    assert _get(client, f"/ogc/collections/farms/items?limit={huge}").get_json()[
        "numberReturned"] == min(ogc.LIMIT_MAX, body["numberMatched"])
    assert _get(client, f"/ogc/collections/farms/items?offset={huge}").get_json()[
        "numberReturned"] == 0


# ------------------------------------------------------------------ boxes and filters
def _ids(client, url: str) -> list[str]:
    body = _get(client, url).get_json()
    assert body["numberMatched"] == body["numberReturned"]
    return [f["id"] for f in body["features"]]


def test_bbox_in_crs84_epsg4326_and_the_gauss_kruger_zone(client, core):
    gdf = ogc.frame(core, ogc.collection(core, "enterprises"))
    west, south, east, north = 113.15, 35.15, 113.30, 35.28
    want = list(gdf[gdf.intersects(shapely.box(west, south, east, north))]["id"])
    assert 0 < len(want) < len(gdf)
    base = "/ogc/collections/enterprises/items?limit=1000"
    assert _ids(client, f"{base}&bbox={west},{south},{east},{north}") == want
    assert _ids(client, f"{base}&bbox={west},{south},0,{east},{north},100") == want
    # EPSG:4326 names latitude first: the same box written lat,lon
    assert _ids(client, f"{base}&bbox={south},{west},{north},{east}&bbox-crs={EPSG4326}") == want
    # the city's Gauss-Krüger zone is northing (X), easting (Y)
    x, y = to_metric(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy(), core.metric_crs)
    e0, e1, n0, n1 = np.percentile(x, 20), np.percentile(x, 70), np.percentile(y, 10), \
        np.percentile(y, 60)
    inside = list(gdf["id"][(x >= e0) & (x <= e1) & (y >= n0) & (y <= n1)])
    metric = ogc_crs.uri_of(core.metric_crs)
    assert _ids(client, f"{base}&bbox={n0},{e0},{n1},{e1}&bbox-crs={metric}") == inside
    x0, y0 = float(gdf.geometry.x.iloc[7]), float(gdf.geometry.y.iloc[7])  # a point-sized box
    assert gdf["id"].iloc[7] in _ids(client, f"{base}&bbox={x0!r},{y0!r},{x0!r},{y0!r}")
    assert gdf["id"].iloc[7] in _ids(client, f"{base}&bbox={y0!r},{x0!r},{y0!r},{x0!r}"
                                             f"&bbox-crs={EPSG4326}")
    everything = f"{base}&bbox=-1e308,-1e308,1e308,1e308"
    assert len(_ids(client, everything)) == len(gdf)
    _ids(client, f"{everything}&bbox-crs={metric}")  # answered, whatever it holds
    for bad in ("1,2,3", "a,b,c,d", "113,36,114,35", "nan,1,2,3", "inf,1,2,3"):
        _get(client, f"{base}&bbox={bad}", 400)
    _get(client, f"{base}&bbox=1,2,3,4&bbox-crs=EPSG:3857", 400)


def test_property_filters_are_equalities_of_the_typed_value(client, core):
    farms = ogc.frame(core, ogc.collection(core, "farms"))
    district = farms["district"].iloc[0]
    body = _get(client, f"/ogc/collections/farms/items?district={district}&limit=1000") \
        .get_json()
    assert body["numberMatched"] == (farms["district"] == district).sum()
    assert {f["properties"]["district"] for f in body["features"]} == {district}
    count = int(farms["head_count"].iloc[3])
    got = _ids(client, f"/ogc/collections/farms/items?head_count={count}&limit=1000")
    assert got == list(farms["id"][farms["head_count"] == count])
    assert _ids(client, "/ogc/collections/farms/items?head_count=abc") == []
    assert _ids(client, f"/ogc/collections/farms/items?id={farms['id'].iloc[5]}") == \
        [farms["id"].iloc[5]]
    name = farms["name"].iloc[2]
    both = f"/ogc/collections/farms/items?name={name}&district={farms['district'].iloc[2]}"
    assert _ids(client, both) == [farms["id"].iloc[2]]


def test_unknown_repeated_and_datetime_parameters_are_400(client):
    r = _get(client, "/ogc/collections/farms/items?colour=red", 400)
    assert "colour" in r.get_json()["description"]
    _get(client, "/ogc/collections/farms/items?limit=5&limit=6", 400)
    r = _get(client, "/ogc/collections/farms/items?datetime=2024-01-01T00:00:00Z", 400)
    assert "datetime" in r.get_json()["description"]
    _get(client, "/ogc/collections?colour=red", 400)
    _get(client, "/ogc/collections/farms/items?f=xml", 400)


# --------------------------------------------------------------- coordinate systems
def test_crs_writes_the_axis_order_of_the_system(client, core):
    gdf = ogc.frame(core, ogc.collection(core, "enterprises"))
    lon, lat = gdf.geometry.x.iloc[0], gdf.geometry.y.iloc[0]
    fid = gdf["id"].iloc[0]
    r = _get(client, f"/ogc/collections/enterprises/items/{fid}")
    assert r.headers["Content-Crs"] == f"<{CRS84}>"
    assert r.get_json()["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-12)
    for uri in (EPSG4326, EPSG4490):
        r = _get(client, f"/ogc/collections/enterprises/items/{fid}?crs={uri}")
        assert r.headers["Content-Crs"] == f"<{uri}>"
        assert r.get_json()["geometry"]["coordinates"] == pytest.approx([lat, lon], abs=1e-9)
    metric = ogc_crs.uri_of(core.metric_crs)
    r = _get(client, f"/ogc/collections/enterprises/items?limit=1&crs={metric}")
    assert r.headers["Content-Crs"] == f"<{metric}>"
    x, y = to_metric(lon, lat, core.metric_crs)
    assert r.get_json()["features"][0]["geometry"]["coordinates"] == \
        pytest.approx([y, x], abs=1e-3)
    _get(client, "/ogc/collections/enterprises/items?crs=http://www.opengis.net/def/crs/"
                 "EPSG/0/3857", 400)


def test_crs_names_are_read_as_uris_or_safe_curies():
    assert ogc_crs.parse_uri("[EPSG:4490]") == EPSG4490
    assert ogc_crs.parse_uri("https://www.opengis.net/def/crs/EPSG/0/4326") == EPSG4326
    assert ogc_crs.parse_uri("OGC:CRS84") == CRS84
    assert ogc_crs.parse_uri("EPSG:4326; DROP") is None
    assert not ogc_crs.northing_first(CRS84) and ogc_crs.northing_first(EPSG4490)
    box = (113.1, 35.0, 113.5, 35.4)
    for uri in (CRS84, EPSG4326, EPSG4490):
        back = ogc_crs.bbox_to_lonlat(ogc_crs.bbox_from_lonlat(box, uri), uri)
        assert back.bounds == pytest.approx(box, abs=1e-9)


# ------------------------------------------------------------------ formats and pages
def test_accept_header_and_f_choose_json_or_html(client):
    url = "/ogc/collections/rivers/items"
    assert _get(client, url, headers={"Accept": "text/html,*/*;q=0.8"}).mimetype == "text/html"
    assert _get(client, url, headers={"Accept": "application/geo+json"}).mimetype == \
        "application/geo+json"
    assert _get(client, url, headers={"Accept": "*/*"}).mimetype == "application/geo+json"
    assert _get(client, url + "?f=json", headers={"Accept": "text/html"}).mimetype == \
        "application/geo+json"
    r = _get(client, "/ogc/collections", headers={"Accept": "text/html"})
    assert r.mimetype == "text/html" and "Accept" in r.headers["Vary"]


def test_html_pages_speak_chinese_first_and_english_on_request(client, core):
    page = _get(client, "/ogc/collections?f=html").get_data(as_text=True)
    assert "数据集" in page and "enterprises" in page and "工业企业" in page
    items = _get(client, "/ogc/collections/enterprises/items?f=html&limit=3") \
        .get_data(as_text=True)
    assert "统一社会信用代码" in items and 'rel="next"' in items
    middle = _get(client, "/ogc/collections/enterprises/items?f=html&limit=3&offset=3") \
        .get_data(as_text=True)
    assert middle.index('rel="prev"') < middle.index('rel="next"')
    assert ">是<" in middle or ">否<" in middle  # online_monitoring in words, not True
    assert ">True<" not in middle and ">False<" not in middle
    en = _get(client, "/ogc/collections?f=html&lang=en").get_data(as_text=True)
    assert "Collections" in en and "Industrial enterprise" in en
    _get(client, "/ogc/collections?lang=zh")  # the session's language back to Chinese
    for url in ("/ogc?f=html", "/ogc/conformance?f=html", "/ogc/collections/rivers?f=html",
                "/ogc/collections/enterprises/items/E0001?f=html"):
        assert "<html" in _get(client, url).get_data(as_text=True)


# ------------------------------------------------------------------- what is shown
def test_site_attributes_are_those_the_site_page_shows(client, core):
    sid = str(core.repo.sites("enterprise", columns=["id"])["id"].iloc[0])
    feature = _get(client, f"/ogc/collections/enterprises/items/{sid}").get_json()
    page = site_page(core, sid)
    stored = core.repo.site(sid)
    shown = {a["field"] for a in page["attributes"]} - {"lon", "lat"}
    assert shown <= set(feature["properties"])
    assert set(feature["properties"]) == set(ogc.SITE_FIELDS["enterprise"]) - {"id"}
    assert not {"lon", "lat", "site_type", "species"} & set(feature["properties"])
    for k, v in feature["properties"].items():
        assert v == ogc.plain(stored[k]), k


def test_openapi_and_schemas_describe_limits_and_attributes(client):
    doc = _get(client, "/ogc/api").get_json()
    assert _get(client, "/ogc/api").mimetype == "application/vnd.oai.openapi+json"
    params = {p["name"]: p for p in doc["paths"]["/collections/farms/items"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == ogc.LIMIT_MAX
    assert params["limit"]["schema"]["default"] == ogc.LIMIT_DEFAULT
    assert params["head_count"]["schema"]["type"] == "integer"
    schema = _get(client, "/ogc/collections/workshops/queryables").get_json()
    assert schema["properties"]["found_date"] == {"title": "排查日期", "type": "string",
                                                  "format": "date"}
    assert schema["properties"]["id"]["x-ogc-role"] == "id"
    r = _get(client, "/ogc/collections/workshops/schema")
    assert r.mimetype == "application/schema+json"


def test_an_edit_is_seen_at_the_next_request(make_app):
    """The collections are kept between requests, but never past a change in the store."""
    app = make_app(INTRANET=True, TILES="none")
    c = app.test_client()
    login(c, "planner")
    core = app.extensions["geoapp"]
    farm = core.repo.sites("livestock_farm").iloc[0]
    url = f"/ogc/collections/farms/items/{farm['id']}"
    assert _get(c, url).get_json()["properties"]["head_count"] == farm["head_count"]
    before = _get(c, "/ogc/collections/farms/items?limit=1").get_json()["numberMatched"]
    core.repo.update_site(farm["id"], {"head_count": 12345}, user="planner",
                          expected_version=int(farm["version"]))
    assert _get(c, url).get_json()["properties"]["head_count"] == 12345
    core.repo.create_site({"site_type": "livestock_farm", "id": "F9999", "name": "新养殖场",
                           "district": farm["district"], "lon": 113.2, "lat": 35.2},
                          user="planner")
    assert _get(c, "/ogc/collections/farms/items?limit=1").get_json()["numberMatched"] == \
        before + 1
    counties = core.repo.layer("counties")
    core.repo.replace_layer("counties", counties.iloc[:3], user="admin")
    assert _get(c, "/ogc/collections/counties/items").get_json()["numberMatched"] == 3


def test_the_service_answers_the_same_on_postgis(pg_url, offline_app, tmp_path):
    """Read through the repository interface only: a PostGIS store built from the same
    source files gives the same collections, pages and features."""
    pg = create_app({"INSTANCE_PATH": str(tmp_path / "pg"), "STORAGE_BACKEND": "postgis",
                     "DATABASE_URL": pg_url, "TESTING": True, "INTRANET": True,
                     "TILES": "none"})
    make_users(pg)
    clients = []
    for app in (offline_app, pg):
        c = app.test_client()
        login(c, "planner")
        clients.append(c)

    def answers(c) -> list:
        out = []
        body = _get(c, "/ogc/collections").get_json()
        for col in body["collections"]:
            col.pop("links")
            col["extent"]["spatial"]["bbox"] = [pytest.approx(v, abs=1e-9) for v in
                                                col["extent"]["spatial"]["bbox"][0]]
            page = _get(c, f"/ogc/collections/{col['id']}/items?limit=10000").get_json()
            for f in page["features"]:
                f["geometry"] = shapely.normalize(shapely.geometry.shape(f["geometry"]))
                f["properties"].pop("updated_at", None)  # when each store was built
            out.append((col, page["numberMatched"], page["features"]))
        return out

    gpkg, postgis = answers(clients[0]), answers(clients[1])
    assert [a[0]["id"] for a in postgis] == [a[0]["id"] for a in gpkg]
    for (col_a, n_a, feats_a), (col_b, n_b, feats_b) in zip(gpkg, postgis, strict=True):
        assert col_b == col_a and n_b == n_a, col_a["id"]
        assert [f["id"] for f in feats_b] == [f["id"] for f in feats_a], col_a["id"]
        for fa, fb in zip(feats_a, feats_b, strict=True):
            assert fb["properties"] == fa["properties"], (col_a["id"], fa["id"])
            assert shapely.equals_exact(fa["geometry"], fb["geometry"], tolerance=1e-9), \
                (col_a["id"], fa["id"])


def test_feature_ids_holding_slashes_are_fetched_and_their_links_lead_back(make_app):
    """A layer's own ids may hold "/" (even first, or twice): the feature's URL takes any id,
    and every link to a feature writes "/" as %2F so following it finds the same feature."""
    app = make_app(INTRANET=True, TILES="none")
    c = app.test_client()
    login(c, "viewer")
    core = app.extensions["geoapp"]
    odd = ["<b>C</b>", "/first", "a//b", "last/", "中/文 ?#%"]
    counties = core.repo.layer("counties").iloc[:len(odd)].copy()
    counties["id"] = odd
    core.repo.replace_layer("counties", counties, user="admin")
    page = _get(c, "/ogc/collections/counties/items?limit=100").get_json()
    assert [f["id"] for f in page["features"]] == odd
    html = _get(c, "/ogc/collections/counties/items?limit=100&f=html") \
        .get_data(as_text=True)
    for fid in odd:
        quoted = quote(fid, safe="")
        assert f"/ogc/collections/counties/items/{quoted}?f=html" in \
            html.replace("&amp;", "&"), fid
        one = _get(c, f"/ogc/collections/counties/items/{quoted}").get_json()
        assert one["id"] == fid
        self_link = _rel(one["links"], "self", "application/geo+json")
        assert quoted in self_link, (fid, self_link)
        assert _get(c, _path(self_link)).get_json()["id"] == fid
        as_html = _get(c, _path(_rel(one["links"], "alternate", "text/html")))
        assert as_html.mimetype == "text/html"
    r = _get(c, "/ogc/collections/counties/items/%3Cb%3EC%3C%2Fb%3E")
    assert r.get_json()["id"] == "<b>C</b>"
    # unescaped, as a client that does not encode would send it: the same feature
    assert _get(c, "/ogc/collections/counties/items/<b>C</b>").get_json()["id"] == \
        "<b>C</b>"
    _get(c, "/ogc/collections/counties/items/b%2FC", 404)

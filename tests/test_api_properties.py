"""Property tests over /api/check: whatever strings or numbers arrive, the answer is a 200
with the documented shape or a 400 with a message, never a 500."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webutil import login

TEXT = st.text(max_size=40)
NUMBER_TEXT = st.floats(allow_nan=True, allow_infinity=True).map(repr)
NEAR = st.tuples(st.floats(112.5, 113.8), st.floats(34.8, 35.5))
CRS = st.sampled_from(["wgs84", "cgcs2000", "gcj02", "bd09", "gk", "dms", "EPSG:4547",
                       "EPSG:4326", "", "EPSG:0", "nonsense"]) | TEXT


@pytest.fixture(scope="module")
def client(offline_app):
    c = offline_app.test_client()
    login(c, "inspector")
    return c


def _assert_well_formed(r) -> None:
    assert r.status_code in (200, 400), (r.status_code, r.get_data(as_text=True)[:300])
    body = r.get_json()
    if r.status_code == 400:
        assert isinstance(body["message"], str) and body["message"]
        return
    assert body["verdict"] in ("pass", "fail", "needs_info", "out_of_area")
    assert body["verdict"] != "pass" or (body["covered"] and not body["conditional_hits"])
    assert -180 <= body["point"]["lon"] <= 180 and -90 <= body["point"]["lat"] <= 90
    for hit in body["hits"]:
        assert math.isfinite(hit["distance_m"]) and hit["distance_m"] >= 0
        assert hit["rule_id"]


PROPS = settings(max_examples=150, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPS
@given(lon=TEXT | NUMBER_TEXT, lat=TEXT | NUMBER_TEXT, crs=CRS, site_type=TEXT,
       industry=TEXT)
def test_any_strings_give_200_or_400_never_500(client, lon, lat, crs, site_type, industry):
    r = client.get("/api/check", query_string={"lon": lon, "lat": lat, "crs": crs,
                                               "site_type": site_type, "industry": industry})
    _assert_well_formed(r)


@pytest.mark.slow  # 150 checks
@PROPS
@given(point=NEAR, site_type=st.sampled_from(["", "enterprise", "livestock_farm",
                                               "scattered_workshop"]),
       industry=st.sampled_from(["", "化工", "畜禽养殖", "商混站", "钢铁"]))
def test_points_inside_the_city_are_always_answered(client, point, site_type, industry):
    r = client.get("/api/check", query_string={"lon": repr(point[0]), "lat": repr(point[1]),
                                               "site_type": site_type, "industry": industry})
    assert r.status_code == 200
    _assert_well_formed(r)


@PROPS
@given(lon=st.floats(allow_nan=True, allow_infinity=True),
       lat=st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_pair_is_answered_or_refused_with_a_message(client, lon, lat):
    r = client.get("/api/check", query_string={"lon": repr(lon), "lat": repr(lat)})
    _assert_well_formed(r)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        assert r.status_code == 400

"""The OpenAPI document at /api/openapi.json: it lists every /api route, and the API keeps
its promises (schemathesis generates requests from the document and checks the answers)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from geoapp.web.openapi import build_document

from webutil import login


@pytest.fixture(scope="module")
def app(make_module_app):
    return make_module_app(INTRANET=True, TILES="none", WTF_CSRF_ENABLED=False)


@pytest.fixture(scope="module")
def cookie(app) -> str:
    client = app.test_client()
    login(client, "planner")
    return client.get_cookie("session").value


def test_document_lists_every_api_route_with_its_methods(app, cookie):
    client = app.test_client()
    client.set_cookie("session", cookie)
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = rule.rule.replace("<", "{").replace(">", "}").replace("{string:", "{")
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert method.lower() in doc["paths"][path], (path, method)


def test_check_operation_documents_its_parameters_and_response(app):
    op = build_document(app)["paths"]["/api/check"]["get"]
    assert {p["name"] for p in op["parameters"]} >= {"lon", "lat", "crs", "site_type",
                                                      "industry"}
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["input", "point", "verdict", "verdict_text", "hits",
                                  "conditional_hits", "nearest", "covered"]
    assert "400" in op["responses"]


def test_check_result_schema_names_the_four_verdicts_and_the_new_hit_fields(app):
    from geoapp.domain.results import Verdict

    op = build_document(app)["paths"]["/api/check"]["get"]
    props = op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]
    assert sorted(props["verdict"]["enum"]) == sorted(v.value for v in Verdict) == [
        "fail", "needs_info", "out_of_area", "pass"]
    assert props["verdict_text"]["required"] == ["zh", "en"]
    assert props["covered"]["type"] == "boolean"
    hit = props["hits"]["items"]["properties"]
    assert {"limit_m", "test", "basis_note", "point"} <= set(hit)
    assert hit["point"]["enum"] == ["site", "new_site"]
    conditional = props["conditional_hits"]["items"]
    assert {"missing", "condition", "sentence", "point"} <= set(conditional["properties"])
    assert {"missing", "condition"} <= set(conditional["required"])


def test_check_documents_the_attributes_rules_read(app):
    op = build_document(app)["paths"]["/api/check"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["fuel"]["in"] == "query" and not params["fuel"]["required"]
    assert "fuel" in op["description"]
    assert len(params) == len(op["parameters"])  # no name twice


def test_flag_documents_lang_and_its_count_headers(app):
    op = build_document(app)["paths"]["/api/flag"]["post"]
    lang = next(p for p in op["parameters"] if p["name"] == "lang")
    assert lang["schema"]["enum"] == ["zh", "en"]
    form = op["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert form["lang"]["enum"] == ["zh", "en"]
    assert set(op["responses"]["200"]["headers"]) == {
        "X-Geoapp-Rows", "X-Geoapp-Flagged", "X-Geoapp-Bad-Rows", "X-Geoapp-Passed",
        "X-Geoapp-Needs-Info", "X-Geoapp-Out-Of-Area"}


def test_flag_headers_documented_are_the_ones_sent(app, cookie):
    import io

    client = app.test_client()
    client.set_cookie("session", cookie)
    body = b"id,lon,lat\n1,113.24,35.22\n"
    r = client.post("/api/flag?lang=en", data={"file": (io.BytesIO(body), "sites.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 200, r.get_data(as_text=True)
    documented = build_document(app)["paths"]["/api/flag"]["post"]["responses"]["200"]
    for name in documented["headers"]:
        assert r.headers[name].isdigit(), name
    assert r.headers["X-Geoapp-Rows"] == "1"


def test_document_needs_a_login(app):
    assert app.test_client().get("/api/openapi.json").status_code == 401


@pytest.mark.slow
def test_every_operation_answers_within_its_schema_and_never_500(app, cookie):
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    schema = schemathesis.openapi.from_dict(build_document(app))
    client = app.test_client()
    client.set_cookie("session", cookie)
    seen, calls = [], []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.path == "/api/flag":
            continue  # multipart uploads: covered by tests/test_hostile_input.py

        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case):
            kwargs = case.as_transport_kwargs(base_url="")
            response = client.open(kwargs["url"], method=case.method,
                                   query_string=kwargs.get("params"),
                                   headers=kwargs.get("headers"))
            calls.append(response.status_code)
            case.validate_response(response, checks=checks)

        run()
        seen.append(op.path)
    assert "/api/check" in seen and "/api/relocation" in seen
    assert len(calls) > 20 and 200 in calls and 400 in calls

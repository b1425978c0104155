"""The OpenAPI document at /api/openapi.json: it lists every /api route, and the API keeps
its promises (schemathesis generates requests from the document and checks the answers)."""

from __future__ import annotations

import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from geoapp.web import create_app
from geoapp.web.openapi import build_document

from webutil import login, make_users


@pytest.fixture(scope="module")
def app(tmp_path_factory, jiaozuo_db):
    inst = tmp_path_factory.mktemp("instance")
    shutil.copyfile(jiaozuo_db, inst / "geoapp.gpkg")
    app = create_app({"INSTANCE_PATH": str(inst), "INTRANET": True, "TESTING": True,
                      "TILES": "none", "WTF_CSRF_ENABLED": False})
    make_users(app)
    return app


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
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["required"] == [
        "input", "point", "verdict", "hits", "nearest"]
    assert "400" in op["responses"]


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

"""API Gateway's own answers in the synthesized stack, and the local API held against them.

AWS documents the response types and their default statuses (THROTTLED 429, QUOTA_EXCEEDED 429,
MISSING_AUTHENTICATION_TOKEN 403, WAF_FILTERED 403, REQUEST_TOO_LARGE 413, INTEGRATION_TIMEOUT 504,
INTEGRATION_FAILURE 504, DEFAULT_4XX, DEFAULT_5XX) and that a gateway response header is "a static
value enclosed in single quotes" or a request parameter:
https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-gatewayResponse-definition.html
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.config import PipelineSettings
from infra.gateway_responses import DEFAULT_5XX, NOT_FOUND, REQUEST_TOO_LARGE, THROTTLED
from leadpipe.local.gateway import API_GATEWAY_MAX_BODY_BYTES, ApiGatewayApp
from leadpipe.local.stage_throttle import StageThrottle
from tests.leadpipe.local.gateway_requests import RecordingFunction
from tests.leadpipe.local.gateway_requests import request as local_request

REQUIRED_TYPES = {
    "DEFAULT_4XX",
    "DEFAULT_5XX",
    "THROTTLED",
    "QUOTA_EXCEEDED",
    "MISSING_AUTHENTICATION_TOKEN",
    "WAF_FILTERED",
    "REQUEST_TOO_LARGE",
    "INTEGRATION_TIMEOUT",
    "INTEGRATION_FAILURE",
}
RETRY_STATUSES = {429, 502, 503, 504}


def gateway_responses(template: Template) -> dict[str, dict[str, Any]]:
    """Response type -> the properties of its AWS::ApiGateway::GatewayResponse."""
    found = template.find_resources("AWS::ApiGateway::GatewayResponse")
    by_type = {resource["Properties"]["ResponseType"]: resource["Properties"] for resource in found.values()}
    assert len(by_type) == len(found), "two gateway responses for one response type"
    return by_type


def static_headers(properties: dict[str, Any]) -> dict[str, str]:
    """The response's headers with their quotes removed; fails on a header copied from the request."""
    headers = {}
    for key, value in properties.get("ResponseParameters", {}).items():
        assert key.startswith("gatewayresponse.header."), key
        assert value.startswith("'") and value.endswith("'"), f"{key} is not a static value: {value}"
        headers[key.removeprefix("gatewayresponse.header.")] = value[1:-1]
    return headers


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_answer_api_gateway_gives_itself_is_in_the_project_shape(
    stage: str, request: pytest.FixtureRequest
) -> None:
    # Given the synthesized stack of a stage
    template: Template = request.getfixturevalue(stage)
    responses = gateway_responses(template)
    # Then every required response type is defined
    assert set(responses) >= REQUIRED_TYPES
    for response_type, properties in responses.items():
        # And each answers JSON in the project's error shape, with no field errors
        body = json.loads(properties["ResponseTemplates"]["application/json"])
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, response_type
        assert body["error"]["fields"] == [] and body["error"]["code"] and body["error"]["message"]


def test_cors_names_one_allowed_origin_never_a_wildcard(prod: Template, prod_settings: PipelineSettings) -> None:
    # Given prod, which allows two origins
    assert len(prod_settings.allowed_origins) == 2
    for response_type, properties in gateway_responses(prod).items():
        headers = static_headers(properties)
        # Then each answer allows the first allowed origin (a static header cannot choose per request)
        assert headers["Access-Control-Allow-Origin"] == prod_settings.allowed_origins[0], response_type
        assert headers["Vary"] == "Origin"
        # And lets fetch() read Retry-After (not a CORS-safelisted header)
        assert headers["Access-Control-Expose-Headers"] == "Retry-After"


def test_statuses_and_retry_after(prod: Template) -> None:
    responses = gateway_responses(prod)
    statuses = {response_type: properties.get("StatusCode") for response_type, properties in responses.items()}
    # Then a typo'd route is a 404, not API Gateway's 403 "Missing Authentication Token"
    assert statuses["MISSING_AUTHENTICATION_TOKEN"] == "404"
    assert (
        json.loads(responses["MISSING_AUTHENTICATION_TOKEN"]["ResponseTemplates"]["application/json"])["error"]["code"]
        == "not_found"
    )
    # And the other types keep the statuses AWS documents for them
    assert {
        t: statuses[t]
        for t in ("THROTTLED", "QUOTA_EXCEEDED", "WAF_FILTERED", "REQUEST_TOO_LARGE", "INTEGRATION_TIMEOUT")
    } == {
        "THROTTLED": "429",
        "QUOTA_EXCEEDED": "429",
        "WAF_FILTERED": "403",
        "REQUEST_TOO_LARGE": "413",
        "INTEGRATION_TIMEOUT": "504",
    }
    # And the DEFAULT_* families keep API Gateway's own status (500, 502, 503, 504 under DEFAULT_5XX)
    assert statuses["DEFAULT_4XX"] is None and statuses["DEFAULT_5XX"] is None
    for response_type, properties in responses.items():
        headers = static_headers(properties)
        may_be_retried = response_type == "DEFAULT_5XX" or int(properties.get("StatusCode") or 0) in RETRY_STATUSES
        # And every answer that can be 429, 502, 503 or 504 says when to retry; the others do not
        assert ("Retry-After" in headers) == may_be_retried, response_type
        if may_be_retried:
            assert int(headers["Retry-After"]) >= 1


# --- the local API, held against the stack ----------------------------------------------------


# API Gateway's own status for a type whose gateway response sets none (AWS's table, linked above).
AWS_DEFAULT_STATUS = {"MISSING_AUTHENTICATION_TOKEN": 403, "REQUEST_TOO_LARGE": 413, "THROTTLED": 429}


def local_answer_matches(local: tuple[int, dict[str, str], bytes], properties: dict[str, Any]) -> None:
    status, headers, body = local
    response_type = properties["ResponseType"]
    if response_type in AWS_DEFAULT_STATUS:
        assert status == int(properties.get("StatusCode") or AWS_DEFAULT_STATUS[response_type]), response_type
    assert json.loads(body) == json.loads(properties["ResponseTemplates"]["application/json"])
    assert headers["content-type"] == "application/json"
    for name, value in static_headers(properties).items():
        assert headers.get(name.lower()) == value, name


def test_the_local_api_answers_as_the_stack_does(dev: Template) -> None:
    # Given the dev stack's gateway responses, and the local API with dev's settings, exhausted by one request
    responses = gateway_responses(dev)
    origins = ("https://www.example.com",)
    app = ApiGatewayApp(
        RecordingFunction(RuntimeError("the function crashed")),
        "dev",
        "http://127.0.0.1:9",
        allowed_origins=origins,
        throttle=StageThrottle(1, 3, clock=lambda: 0.0),
    )
    # When the local API answers for itself: an unknown route, a body over 10 MB, a failing function
    local_answer_matches(local_request(app, "POST", "/lead", b"{}"), responses["MISSING_AUTHENTICATION_TOKEN"])
    too_large = local_request(app, "POST", "/leads", b"", {"Content-Length": str(API_GATEWAY_MAX_BODY_BYTES + 1)})
    local_answer_matches(too_large, responses["REQUEST_TOO_LARGE"])
    failed = local_request(app, "POST", "/leads", b"{}", {"Content-Type": "application/json"})
    assert failed[0] == 502
    local_answer_matches(failed, responses["DEFAULT_5XX"])
    # And when the stage's bucket is empty
    local_answer_matches(local_request(app, "POST", "/leads", b"{}"), responses["THROTTLED"])


def test_the_local_table_is_the_one_the_stack_uses(dev: Template) -> None:
    # The answers the local API sends are rendered from these entries; each must be in the stack as it is here.
    responses = gateway_responses(dev)
    for answer in (NOT_FOUND, REQUEST_TOO_LARGE, DEFAULT_5XX, THROTTLED):
        properties = responses[answer.response_type]
        assert properties.get("StatusCode") == (str(answer.status) if answer.status else None)
        assert properties["ResponseTemplates"]["application/json"] == answer.body()

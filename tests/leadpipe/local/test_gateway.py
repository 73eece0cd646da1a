"""The local API Gateway stand-in: what reaches the function, and what API Gateway answers itself."""

from __future__ import annotations

import json

from leadpipe.local.gateway import API_GATEWAY_MAX_BODY_BYTES, ApiGatewayApp
from tests.leadpipe.local.gateway_requests import ACCEPTED, RecordingFunction, request


def test_a_post_to_leads_reaches_the_function_as_a_rest_proxy_event() -> None:
    function = RecordingFunction(ACCEPTED)
    app = ApiGatewayApp(function, stage="dev", public_url="http://127.0.0.1:8080")
    status, headers, body = request(
        app,
        "POST",
        "/leads",
        b'{"email": "a@example.com"}',
        {"Content-Type": "application/json", "Idempotency-Key": "k1"},
        query="src=ad",
    )
    # The function's answer comes back as it was
    assert (status, headers["content-type"], body) == (202, "application/json", b'{"status": "queued"}')
    [event] = function.events
    assert event["httpMethod"] == "POST" and event["path"] == "/leads" and event["requestContext"]["stage"] == "dev"
    assert event["headers"]["Idempotency-Key"] == "k1" and event["queryStringParameters"] == {"src": "ad"}
    assert json.loads(event["body"]) == {"email": "a@example.com"} and event["isBase64Encoded"] is False


def test_bytes_that_are_not_utf8_arrive_base64_encoded() -> None:
    function = RecordingFunction(ACCEPTED)
    request(ApiGatewayApp(function, "dev", "http://x"), "POST", "/leads", b"\xff\xfe", {"Content-Type": "text/plain"})
    assert function.events[0]["isBase64Encoded"] is True and function.events[0]["body"] == "//4="


def test_what_api_gateway_answers_without_calling_the_function() -> None:
    # Given the local API in front of a function that records its calls
    function = RecordingFunction(ACCEPTED)
    app = ApiGatewayApp(function, "dev", "http://x", allowed_origins=("https://www.example.com",))
    not_found = {"error": {"code": "not_found", "message": "no such route; POST leads to /leads", "fields": []}}
    # When a path or method the stack does not define is asked for; Then the stack's 404, not API Gateway's 403
    for method, path in [("GET", "/admin"), ("POST", "/lead"), ("DELETE", "/leads"), ("GET", "/leads")]:
        status, headers, body = request(app, method, path)
        assert (status, json.loads(body)) == (404, not_found)
        assert headers["access-control-allow-origin"] == "https://www.example.com"
    # When a body over API Gateway's 10 MB arrives; Then 413 in the project's shape, and the connection closes
    too_long = request(app, "POST", "/leads", b"", {"Content-Length": str(API_GATEWAY_MAX_BODY_BYTES + 1)})
    assert too_long[0] == 413 and too_long[1]["connection"] == "close"
    assert json.loads(too_long[2])["error"]["code"] == "payload_too_large"
    # And none of it reached the function
    assert function.events == []


def test_a_failing_function_is_a_502() -> None:
    # Given a function that raises; When a lead is posted
    app = ApiGatewayApp(RecordingFunction(RuntimeError("boom")), "dev", "http://x")
    status, headers, body = request(app, "POST", "/leads", b"{}", {"Content-Type": "application/json"})
    # Then API Gateway's DEFAULT_5XX answer with a 502, with Retry-After, and no internal detail
    assert status == 502 and json.loads(body)["error"]["code"] == "upstream_error"
    assert headers["retry-after"] == "5" and b"boom" not in body


def test_the_landing_page_posts_to_this_api() -> None:
    status, headers, body = request(ApiGatewayApp(RecordingFunction(ACCEPTED), "dev", "http://127.0.0.1:9"), "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'action="http://127.0.0.1:9/leads"' in body

"""The local API enforces the limits API Gateway and Lambda enforce, and answers as they do.

AWS documents:
- API Gateway REST quotas: payload size 10 MB; integration timeout 50 ms to 29 s.
  https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
- Lambda quotas: invocation payload (request and response) 6 MB each for synchronous invocation.
  https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
- "If the Lambda API rejects the invocation request, API Gateway returns a 500 error code. If the function
  runs but returns an error, or returns a response in the wrong format, API Gateway returns a 502."
  https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html
- A function that runs past its timeout is stopped: an error, so API Gateway's 502.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from leadpipe.local.gateway import (
    API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS,
    API_GATEWAY_MAX_BODY_BYTES,
    LAMBDA_SYNC_PAYLOAD_BYTES,
    ApiGatewayApp,
)
from tests.leadpipe.local.gateway_requests import ACCEPTED, RecordingFunction, request

JSON_POST = {"Content-Type": "application/json"}


class SlowFunction:
    """A function that takes `seconds`, and tries to swallow whatever interrupts it, as careless code does."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.finished = False

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            time.sleep(self.seconds)
        except Exception:
            return ACCEPTED
        self.finished = True
        return ACCEPTED


def test_the_documented_limits() -> None:
    assert API_GATEWAY_MAX_BODY_BYTES == 10 * 1024 * 1024
    assert LAMBDA_SYNC_PAYLOAD_BYTES == 6 * 1024 * 1024
    assert API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS == 29


def test_a_function_past_its_timeout_is_stopped_and_answered_502() -> None:
    # Given a function timeout of 0.2 s and a function that needs 5 s
    function = SlowFunction(5)
    app = ApiGatewayApp(function, "dev", "http://x", function_timeout_seconds=0.2)
    # When a lead is posted
    status, headers, body = request(app, "POST", "/leads", b"{}", JSON_POST)
    # Then Lambda stopped it (it never finished, its `except Exception` did not help) and API Gateway answered 502
    assert function.finished is False
    assert status == 502 and json.loads(body)["error"]["code"] == "upstream_error" and headers["retry-after"] == "5"


def test_api_gateway_stops_waiting_at_its_integration_timeout_with_a_504() -> None:
    # Given a function allowed 5 s behind an integration that waits 0.2 s (29 s in the cloud)
    function = SlowFunction(5)
    app = ApiGatewayApp(function, "dev", "http://x", function_timeout_seconds=5, integration_timeout_seconds=0.2)
    # When a lead is posted
    status, headers, body = request(app, "POST", "/leads", b"{}", JSON_POST)
    # Then API Gateway's INTEGRATION_TIMEOUT answer, with Retry-After
    assert status == 504 and json.loads(body)["error"]["code"] == "timeout" and headers["retry-after"] == "5"


def test_a_function_within_its_time_answers_normally() -> None:
    function = SlowFunction(0.01)
    app = ApiGatewayApp(function, "dev", "http://x", function_timeout_seconds=2)
    assert request(app, "POST", "/leads", b"{}", JSON_POST)[0] == 202 and function.finished is True


def test_an_event_over_lambdas_6_mb_is_refused_before_the_function_runs() -> None:
    # Given a body under API Gateway's 10 MB but over Lambda's 6 MB once in the event
    function = RecordingFunction(ACCEPTED)
    app = ApiGatewayApp(function, "dev", "http://x")
    body = b'{"email": "' + b"a" * (LAMBDA_SYNC_PAYLOAD_BYTES + 10) + b'"}'
    # When it is posted
    status, _, answer = request(app, "POST", "/leads", body, JSON_POST)
    # Then Lambda refused the invocation, so API Gateway's 500, and the function never ran
    assert status == 500 and json.loads(answer)["error"]["code"] == "upstream_error"
    assert function.events == []


def test_binary_bodies_count_at_their_base64_size() -> None:
    # Given 5 MB of bytes that are not UTF-8: base64 makes them about 6.7 MB in the event
    function = RecordingFunction(ACCEPTED)
    status = request(
        ApiGatewayApp(function, "dev", "http://x"),
        "POST",
        "/leads",
        b"\xff" * (5 * 1024 * 1024),
        {"Content-Type": "text/plain"},
    )[0]
    # Then Lambda's limit applies to what it receives
    assert status == 500 and function.events == []


def test_a_body_under_the_limit_reaches_the_function() -> None:
    function = RecordingFunction(ACCEPTED)
    body = b'{"email": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    assert request(ApiGatewayApp(function, "dev", "http://x"), "POST", "/leads", body, JSON_POST)[0] == 202
    assert len(function.events) == 1


def test_an_answer_over_6_mb_is_a_function_error() -> None:
    # Given a function whose answer is over Lambda's 6 MB response quota
    huge = {**ACCEPTED, "body": "x" * (LAMBDA_SYNC_PAYLOAD_BYTES + 1)}
    status, _, body = request(
        ApiGatewayApp(RecordingFunction(huge), "dev", "http://x"), "POST", "/leads", b"{}", JSON_POST
    )
    # Then the client gets API Gateway's 502, not the answer
    assert status == 502 and len(body) < 1000


@pytest.mark.parametrize("answer", [{"body": "no status"}, "not even an object", {"statusCode": "abc"}])
def test_a_malformed_proxy_answer_is_a_502(answer: Any) -> None:
    status, _, body = request(
        ApiGatewayApp(RecordingFunction(answer), "dev", "http://x"), "POST", "/leads", b"{}", JSON_POST
    )
    assert status == 502 and json.loads(body)["error"]["code"] == "upstream_error"

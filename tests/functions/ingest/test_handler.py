"""The ingest Lambda, end to end in process, with SQS served by moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import boto3
import botocore
import pytest
from botocore.stub import Stubber

from functions.contract import parse_envelope
from functions.contract.observability import INGEST_SERVICE
from functions.ingest import handler as ingest
from tests.events import api_event, emitted_metrics
from tests.moto_mock import mock_aws

ALLOWED_ORIGIN = "https://www.example.com"
THANKS = f"{ALLOWED_ORIGIN}/thanks"
LEAD = {"email": "Jane.Doe@Example.com", "first_name": "Jane", "campaign": "summersale20", "consent": True}


class Queue:
    def __init__(self, url: str) -> None:
        self.url = url
        self.sqs = boto3.client("sqs")

    def drain(self) -> list[dict[str, Any]]:
        """Every message body on the queue, parsed (and removed)."""
        bodies = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return bodies
            for message in batch:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    with mock_aws():
        url = boto3.client("sqs").create_queue(QueueName="leads")["QueueUrl"]
        monkeypatch.setenv("LEADS_QUEUE_URL", url)
        monkeypatch.setenv("ALLOWED_ORIGINS", f"{ALLOWED_ORIGIN},https://landing.example.org")
        monkeypatch.setenv("HONEYPOT_FIELD", "website")
        monkeypatch.setenv("METRIC_CAMPAIGNS", "SUMMERSALE20")
        yield Queue(url)


def call(event: dict[str, Any], lambda_context: Any) -> tuple[int, dict[str, str], Any]:
    response = ingest.lambda_handler(event, lambda_context)
    # The REST API proxy integration answers with multiValueHeaders; one value each here.
    headers = {name: ",".join(values) for name, values in response["multiValueHeaders"].items()}
    body = response.get("body")
    parsed = json.loads(body) if body and headers.get("Content-Type") == "application/json" else body
    return response["statusCode"], headers, parsed


def test_json_lead_is_queued_and_answered_202(queue: Queue, lambda_context: Any) -> None:
    # Given a valid lead posted as JSON by fetch()
    event = api_event(json.dumps(LEAD), headers={"Origin": ALLOWED_ORIGIN, "Referer": f"{ALLOWED_ORIGIN}/summer"})
    # When the ingest handles it
    status, headers, body = call(event, lambda_context)
    # Then it answers 202 with the lead id, and exactly that envelope is on the queue
    assert status == 202
    [message] = queue.drain()
    envelope = parse_envelope(json.dumps(message))
    assert body == {"lead_id": str(envelope.lead_id), "status": "queued"}
    assert envelope.lead.email == "jane.doe@example.com"
    assert envelope.lead.campaign == "SUMMERSALE20"
    assert envelope.source.origin == ALLOWED_ORIGIN
    assert envelope.source.referer == f"{ALLOWED_ORIGIN}/summer"
    assert headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def test_the_sqs_call_names_the_ingest_in_a_fixed_user_agent(queue: Queue, lambda_context: Any) -> None:
    # Given the ingest's own SQS client, with every outgoing request's User-Agent recorded
    sent: list[bytes | str] = []
    ingest.get_sqs_client().meta.events.register(
        "before-send.sqs.SendMessage", lambda request, **_: sent.append(request.headers["User-Agent"])
    )
    # When a lead is accepted
    status, _, _ = call(api_event(json.dumps(LEAD)), lambda_context)
    # Then SQS (and CloudTrail) saw a constant naming the function and botocore, not botocore's
    # default (os, language, config and feature metadata, rebuilt on every call at a CPU cost)
    assert status == 202
    [user_agent] = [value.decode() if isinstance(value, bytes) else value for value in sent]
    assert user_agent.startswith(f"{INGEST_SERVICE} Botocore/{botocore.__version__}")
    assert not any(field in user_agent for field in ("os/", "lang/python", "cfg/retry-mode"))


def test_form_and_json_give_the_same_envelope(queue: Queue, lambda_context: Any) -> None:
    # Given the same lead once as JSON and once as a plain HTML form (custom fields both ways)
    as_json = {**LEAD, "consent": True, "custom": {"size": "XL", "colour": "red"}}
    as_form = {**LEAD, "consent": "on", "custom[size]": "XL", "custom.colour": "red", "phone": ""}
    # When both are submitted
    call(api_event(json.dumps(as_json)), lambda_context)
    call(api_event(urlencode(as_form), "application/x-www-form-urlencoded"), lambda_context)
    # Then the two envelopes are identical except for their arrival time
    first, second = queue.drain()
    first.pop("received_at"), second.pop("received_at")
    assert first == second
    assert first["lead"]["custom"] == {"size": "XL", "colour": "red"}


def test_base64_form_body_is_decoded(queue: Queue, lambda_context: Any) -> None:
    event = api_event(
        urlencode({"email": "b@example.com"}).encode(), "application/x-www-form-urlencoded; charset=UTF-8"
    )
    status, _, _ = call(event, lambda_context)
    assert status == 202
    assert [m["lead"]["email"] for m in queue.drain()] == ["b@example.com"]


def test_form_redirect_to_allowed_origin_answers_303(queue: Queue, lambda_context: Any) -> None:
    # Given a no-JavaScript form that asks to land on a thank-you page of an allowed origin
    form = urlencode({"email": "c@example.com", "_redirect": THANKS})
    # When it is posted
    status, headers, _ = call(api_event(form, "application/x-www-form-urlencoded"), lambda_context)
    # Then the browser is sent there with 303 (GET), and the lead is queued
    assert status == 303
    assert headers["Location"] == THANKS
    assert len(queue.drain()) == 1


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.net/thanks",
        "//evil.example.net/thanks",
        "https://www.example.com.evil.net/",
        "https://user@evil.example.net/",
        "https://www.example.com@evil.example.net/",
        "javascript:alert(1)",
        "http://www.example.com/thanks",  # scheme differs from the allowed https origin
        "https:\\\\evil.example.net",
        "/thanks",
    ],
)
def test_open_redirects_are_refused_and_nothing_is_queued(queue: Queue, lambda_context: Any, target: str) -> None:
    form = urlencode({"email": "d@example.com", "_redirect": target})
    status, headers, body = call(api_event(form, "application/x-www-form-urlencoded"), lambda_context)
    assert status == 422
    assert "Location" not in headers
    assert body["error"]["fields"] == [
        {"field": "_redirect", "code": "redirect_not_allowed", "message": "the redirect must be on an allowed origin"}
    ]
    assert queue.drain() == []


def test_invalid_lead_gets_422_with_field_errors_and_is_not_queued(queue: Queue, lambda_context: Any) -> None:
    # Given a lead with a bad email, an overlong name and an unknown field
    event = api_event(json.dumps({"email": "jane@", "first_name": "x" * 101, "favourite": "blue"}))
    # When it is posted
    status, _, body = call(event, lambda_context)
    # Then each problem is named by field, no input is echoed, and nothing reached SQS
    assert status == 422
    assert body["error"]["code"] == "invalid_lead"
    assert sorted((f["field"], f["code"]) for f in body["error"]["fields"]) == [
        ("email", "value_error"),
        ("favourite", "extra_forbidden"),
        ("first_name", "string_too_long"),
    ]
    assert "jane@" not in json.dumps(body)
    assert queue.drain() == []


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (api_event("{not json"), 400, "malformed_body"),
        (api_event(""), 400, "malformed_body"),
        (api_event("[" * 50_000 + "]" * 50_000, headers={}), 413, "payload_too_large"),
        (api_event(b'{"email": "\xff@example.com"}'), 400, "malformed_body"),
        (api_event("[1, 2]"), 422, "invalid_lead"),
        (api_event(json.dumps({**LEAD, "x": "y" * 20_000})), 413, "payload_too_large"),
        (api_event(json.dumps(LEAD), "text/plain"), 415, "unsupported_media_type"),
        (api_event(json.dumps(LEAD), None), 415, "unsupported_media_type"),
        (api_event(json.dumps(LEAD), "multipart/form-data; boundary=x"), 415, "unsupported_media_type"),
        (api_event(json.dumps(LEAD), path="/admin"), 404, "not_found"),
        (api_event(json.dumps(LEAD), method="GET"), 404, "not_found"),
        (api_event(json.dumps(LEAD), headers={"Idempotency-Key": "x" * 300}), 400, "malformed_body"),
    ],
    ids=[
        "bad-json",
        "empty",
        "deep-nesting-over-limit",
        "invalid-utf8",
        "not-an-object",
        "over-byte-limit",
        "text-plain",
        "no-content-type",
        "multipart",
        "unknown-route",
        "wrong-method",
        "bad-idempotency-key",
    ],
)
def test_bad_requests_get_a_clear_4xx_and_nothing_is_queued(
    queue: Queue, lambda_context: Any, event: dict, status: int, code: str
) -> None:
    got_status, headers, body = call(event, lambda_context)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert set(body["error"]) == {"code", "message", "fields"}
    assert "Traceback" not in json.dumps(body)
    assert queue.drain() == []


def test_same_idempotency_key_and_same_lead_gives_the_same_lead_id(queue: Queue, lambda_context: Any) -> None:
    # Given a client that retries with the same Idempotency-Key and the same lead (case aside)
    key = {"Idempotency-Key": "8d3c1c52-retry"}
    _, _, first = call(api_event(json.dumps(LEAD), headers=key), lambda_context)
    _, _, retry = call(api_event(json.dumps({**LEAD, "email": LEAD["email"].upper()}), headers=key), lambda_context)
    _, _, other = call(api_event(json.dumps(LEAD), headers={"Idempotency-Key": "another"}), lambda_context)
    # Then both attempts share one lead id (one row in the DB), and another key gets another id
    assert first["lead_id"] == retry["lead_id"] != other["lead_id"]


def test_same_idempotency_key_with_a_different_lead_is_never_merged(queue: Queue, lambda_context: Any) -> None:
    # Given two different people whose forms (a buggy client, a reused key) send the same key
    key = {"Idempotency-Key": "8d3c1c52-reused"}
    first_status, _, first = call(api_event(json.dumps(LEAD), headers=key), lambda_context)
    second_status, _, second = call(
        api_event(json.dumps({**LEAD, "email": "someone.else@example.com"}), headers=key), lambda_context
    )
    # Then each gets a lead id of its own, and both leads are on the queue (both will be rows)
    assert (first_status, second_status) == (202, 202)
    assert first["lead_id"] != second["lead_id"]
    queued = {m["lead_id"]: m["lead"]["email"] for m in queue.drain()}
    assert queued == {first["lead_id"]: "jane.doe@example.com", second["lead_id"]: "someone.else@example.com"}


def test_the_same_lead_without_a_key_merges_within_a_utc_day_only() -> None:
    # Given one lead submitted without a key at three moments
    from datetime import UTC, datetime

    from functions.contract import Lead
    from functions.ingest.logic import derive_lead_id

    lead = Lead(email="jane@example.com", campaign="SPRING")
    morning, evening = datetime(2026, 11, 30, 0, 0, 1, tzinfo=UTC), datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    weeks_later = datetime(2026, 12, 21, 12, 0, tzinfo=UTC)
    # Then a double submit on the same UTC day is one lead; a return visit weeks later is a new one
    assert (
        derive_lead_id(lead, None, morning)
        == derive_lead_id(lead, None, evening)
        != derive_lead_id(lead, None, weeks_later)
    )
    # And a keyed retry is the same lead whatever the day (a retry can cross midnight)
    assert (
        derive_lead_id(lead, "k", morning)
        == derive_lead_id(lead, "k", weeks_later)
        != derive_lead_id(lead, None, morning)
    )


def test_no_request_key_survives_into_the_next_invocation(queue: Queue, lambda_context: Any, capsys) -> None:
    # Given one accepted lead, then an invalid one in the same execution environment
    _, _, accepted = call(api_event(json.dumps(LEAD)), lambda_context)
    capsys.readouterr()
    status, _, _ = call(api_event(json.dumps({"email": "nope"})), lambda_context)
    # Then the second invocation's log lines do not carry the first one's lead_id
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{") and '"level"' in line
    ]
    assert status == 422 and [line["message"] for line in lines] == ["submission refused"]
    assert all("lead_id" not in line for line in lines) and accepted["lead_id"] not in json.dumps(lines)


def test_double_submitted_form_gives_the_same_lead_id(queue: Queue, lambda_context: Any) -> None:
    form = urlencode({"email": "Double@Example.com", "first_name": "Dee"})
    _, _, first = call(api_event(form, "application/x-www-form-urlencoded"), lambda_context)
    _, _, second = call(
        api_event(form.replace("Double", "double"), "application/x-www-form-urlencoded"), lambda_context
    )
    _, _, different = call(
        api_event(urlencode({"email": "double@example.com"}), "application/x-www-form-urlencoded"), lambda_context
    )
    assert first["lead_id"] == second["lead_id"] != different["lead_id"]
    assert {m["lead_id"] for m in queue.drain()} == {first["lead_id"], different["lead_id"]}


def test_filled_honeypot_gets_202_but_is_not_queued(queue: Queue, lambda_context: Any, capsys) -> None:
    # Given a bot that fills every field, the hidden honeypot included
    form = urlencode({"email": "bot@example.com", "website": "http://spam.example"})
    # When it posts
    status, _, body = call(api_event(form, "application/x-www-form-urlencoded"), lambda_context)
    # Then it sees the usual answer, nothing is queued, and the spam is counted
    assert status == 202 and body["status"] == "queued"
    assert queue.drain() == []
    assert emitted_metrics(capsys.readouterr().out) == {"SpamDropped": 1.0}


def test_sqs_failure_answers_503_with_retry_after_never_202(queue: Queue, lambda_context: Any, capsys) -> None:
    # Given SQS refusing the message
    client = ingest.get_sqs_client()
    with Stubber(client) as stub:
        stub.add_client_error("send_message", service_error_code="ServiceUnavailable", http_status_code=503)
        # When a valid lead is posted
        status, headers, body = call(api_event(json.dumps(LEAD)), lambda_context)
    # Then the client is told to retry, with no internal detail
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert body["error"]["code"] == "queue_unavailable"
    assert "ServiceUnavailable" not in json.dumps(body)
    assert queue.drain() == []
    assert emitted_metrics(capsys.readouterr().out) == {"Rejected_queue_unavailable": 1.0, "EnqueueFailures": 1.0}


def test_missing_queue_is_a_503_too(queue: Queue, lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADS_QUEUE_URL", queue.url + "-gone")
    status, headers, _ = call(api_event(json.dumps(LEAD)), lambda_context)
    assert status == 503 and "Retry-After" in headers


def test_cors_preflight_for_an_allowed_origin(queue: Queue, lambda_context: Any) -> None:
    event = api_event(
        None,
        None,
        method="OPTIONS",
        headers={
            "Origin": "https://landing.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,idempotency-key",
        },
    )
    status, headers, _ = call(event, lambda_context)
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "https://landing.example.org"
    assert "Idempotency-Key" in headers["Access-Control-Allow-Headers"]
    assert "POST" in headers["Access-Control-Allow-Methods"]


def test_cors_never_reflects_another_origin(queue: Queue, lambda_context: Any) -> None:
    event = api_event(json.dumps(LEAD), headers={"Origin": "https://evil.example.net"})
    status, headers, _ = call(event, lambda_context)
    assert status == 202
    assert "Access-Control-Allow-Origin" not in headers


def test_error_answers_carry_cors_headers_for_allowed_origins(queue: Queue, lambda_context: Any) -> None:
    # fetch() can only read a 422's field errors if the error answer allows the origin too
    event = api_event(json.dumps({"email": "nope"}), headers={"Origin": ALLOWED_ORIGIN})
    status, headers, _ = call(event, lambda_context)
    assert status == 422
    assert headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def test_campaign_dimension_only_for_allow_listed_campaigns(queue: Queue, lambda_context: Any, capsys) -> None:
    # Given one lead of a tracked campaign and one with a free-form code
    call(api_event(json.dumps(LEAD)), lambda_context)
    call(api_event(json.dumps({**LEAD, "campaign": "random-code-123"})), lambda_context)
    # Then the total counts both, and only the tracked campaign gets a per-campaign metric
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    per_campaign = [doc for doc in emf if "LeadsAcceptedByCampaign" in doc]
    totals = [doc for doc in emf if "LeadsAccepted" in doc]
    assert [(doc["campaign"], doc["LeadsAcceptedByCampaign"]) for doc in per_campaign] == [("SUMMERSALE20", [1.0])]
    assert [doc["LeadsAccepted"] for doc in totals] == [[1.0], [1.0]]
    assert all("campaign" not in doc for doc in totals)


def test_header_injection_attempts_never_reach_a_response_header(queue: Queue, lambda_context: Any) -> None:
    # A redirect target or idempotency key carrying CR/LF must not become a header of ours
    attacks = [
        api_event(
            urlencode({"email": "e@example.com", "_redirect": f"{THANKS}\r\nSet-Cookie: session=evil"}),
            "application/x-www-form-urlencoded",
        ),
        api_event(json.dumps(LEAD), headers={"Idempotency-Key": "k\r\nSet-Cookie: session=evil"}),
        api_event(json.dumps({**LEAD, "first_name": "Eve\r\nSet-Cookie: session=evil"})),
    ]
    statuses = []
    for event in attacks:
        status, headers, _ = call(event, lambda_context)
        statuses.append(status)
        assert "Set-Cookie" not in headers and "Location" not in headers
        assert all("\r" not in value and "\n" not in value for value in headers.values())
    assert statuses == [422, 400, 422]

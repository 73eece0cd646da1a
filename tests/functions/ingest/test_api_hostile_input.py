"""Property-based: whatever a client sends, the ingest answers 2xx or a clear 4xx, never a 5xx,
and only what it accepted reaches the queue."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.ingest import handler as ingest
from functions.ingest.api import build_app
from functions.ingest.settings import IngestSettings
from tests.events import RecordingQueue, api_event

ALLOWED = {202, 303, 400, 413, 415, 422}
# Example counts and seeds come from the hypothesis profile (tests/conftest.py: "ci" or "fuzz").
PROPERTY_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=300),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=8),
    max_leaves=30,
)
lead_like = st.fixed_dictionaries(
    {"email": st.one_of(st.emails(), st.text(max_size=300))},
    optional={
        "first_name": st.text(max_size=150),
        "phone": st.text(max_size=40),
        "campaign": st.text(max_size=90),
        "country": st.text(max_size=4),
        "landing_page": st.text(max_size=100),
        "consent": json_values,
        "custom": json_values,
        "_redirect": st.text(max_size=100),
        "website": st.text(max_size=5),
    },
)


def make_app() -> tuple[Any, RecordingQueue]:
    queue = RecordingQueue()
    config = IngestSettings(LEADS_QUEUE_URL="https://sqs.invalid/q", ALLOWED_ORIGINS="https://www.example.com")
    return build_app(config, queue.publish, ingest.logger, ingest.metrics), queue


def answer(event: dict[str, Any]) -> tuple[int, dict[str, Any] | None, RecordingQueue]:
    app, queue = make_app()
    response = app.resolve(event, None)
    ingest.metrics.clear_metrics()
    body = response.get("body")
    return response["statusCode"], json.loads(body) if body else None, queue


def check(status: int, body: dict[str, Any] | None, queue: RecordingQueue) -> None:
    assert status in ALLOWED
    if status >= 400:
        assert queue.sent == []
        assert set(body["error"]) == {"code", "message", "fields"}
        assert "Traceback" not in json.dumps(body)


@PROPERTY_SETTINGS
@given(document=json_values)
def test_any_json_document(document: Any) -> None:
    check(*answer(api_event(json.dumps(document))))


@PROPERTY_SETTINGS
@given(fields=lead_like)
def test_lead_shaped_json_with_hostile_values(fields: dict[str, Any]) -> None:
    status, body, queue = answer(api_event(json.dumps(fields)))
    check(status, body, queue)
    if status == 202 and not (fields.get("website") or "").strip():
        [envelope] = queue.sent
        if "first_name" in fields and fields["first_name"].strip():
            assert envelope.lead.first_name == fields["first_name"].strip()  # kept as sent, no escaping


@PROPERTY_SETTINGS
@given(fields=st.dictionaries(st.text(max_size=30), st.text(max_size=200), max_size=12))
def test_any_form_body(fields: dict[str, str]) -> None:
    check(*answer(api_event(urlencode(fields), "application/x-www-form-urlencoded")))


@PROPERTY_SETTINGS
@given(
    raw=st.binary(max_size=2_000),
    content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", ""]),
)
def test_any_bytes_any_content_type(raw: bytes, content_type: str) -> None:
    check(*answer(api_event(raw, content_type or None)))


@PROPERTY_SETTINGS
@given(header=st.text(max_size=400))
def test_any_idempotency_key_header(header: str) -> None:
    event = api_event(json.dumps({"email": "a@example.com"}), headers={"Idempotency-Key": header})
    check(*answer(event))


def test_deep_nesting_and_nul_bytes() -> None:
    for raw in (
        '{"email": "a@example.com", "custom": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"email": "a\\u0000@example.com"}',
        "\x00" * 100,
    ):
        check(*answer(api_event(raw)))


def test_confusable_emails_are_never_merged_with_their_lookalike() -> None:
    # Cyrillic "а" (U+0430) and fullwidth letters look like ASCII ones but are other addresses
    lookalikes = ["jаne@example.com", "ｊane@example.com", "jane@exаmple.com", "jane\u200b@example.com"]
    _, _, ascii_queue = answer(api_event(json.dumps({"email": "jane@example.com"})))
    [ascii_envelope] = ascii_queue.sent
    for email in lookalikes:
        status, body, queue = answer(api_event(json.dumps({"email": email})))
        check(status, body, queue)
        if status == 202:
            [envelope] = queue.sent
            assert envelope.lead.email != "jane@example.com"
            assert envelope.lead_id != ascii_envelope.lead_id

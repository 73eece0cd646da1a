"""The Lead model and the envelope: what is accepted, how it is normalised, what is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import ValidationError

from functions.contract import (
    Lead,
    LeadEnvelope,
    Source,
    UnknownEnvelopeVersion,
    UnreadableEnvelope,
    lead_json_schema,
    parse_envelope,
)
from functions.contract.lead import MAX_CUSTOM_KEYS


def error_fields(error: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in error.errors()}


def test_full_lead_is_normalised() -> None:
    # Given a lead typed the way people type
    raw = {
        "email": "  Jane.Doe@Example.COM ",
        "first_name": " Jane ",
        "phone": "+49 170   1234567",
        "country": "de",
        "campaign": " summersale20 ",
        "landing_page": "https://www.example.com/summer?x=1",
        "utm_source": "newsletter",
        "consent": "on",
        "custom": {"shirt_size": "XL"},
    }
    # When it is validated
    lead = Lead.model_validate(raw)
    # Then every field is in its canonical form
    assert lead.to_record() == {
        "email": "jane.doe@example.com",
        "first_name": "Jane",
        "last_name": None,
        "phone": "+49 170 1234567",
        "company": None,
        "job_title": None,
        "country": "DE",
        "campaign": "SUMMERSALE20",
        "landing_page": "https://www.example.com/summer?x=1",
        "utm_source": "newsletter",
        "utm_medium": None,
        "utm_campaign": None,
        "utm_term": None,
        "utm_content": None,
        "consent": True,
        "custom": {"shirt_size": "XL"},
        **dict.fromkeys(("gclid", "gbraid", "wbraid", "fbclid", "msclkid", "li_fat_id", "ttclid", "referrer")),
        **dict.fromkeys(
            ("first_touch", "last_touch", "consent_text_id", "consent_text_version", "consent_text_sha256")
        ),
        "consent_purposes": [],
        "consent_at": None,
        "consent_page": None,
    }


def test_blank_form_inputs_mean_absent() -> None:
    # Given the empty strings an HTML form sends for untouched inputs
    lead = Lead.model_validate({"email": "a@example.com", "phone": "", "campaign": " ", "consent": "", "custom": ""})
    # Then they become "not given", not invalid values
    assert (lead.phone, lead.campaign, lead.consent, lead.custom) == (None, None, False, {})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", "a@b"),
        ("email", "x" * 250 + "@example.com"),
        ("first_name", "x" * 101),
        ("first_name", "Eve\r\nBcc: everyone@example.com"),
        ("company", "tab\there"),
        ("company", "x" * 201),
        ("phone", "call me maybe"),
        ("country", "Germany"),
        ("campaign", "summer sale!"),
        ("landing_page", "javascript:alert(1)"),
        ("landing_page", "https://example.com/" + "x" * 2100),
        ("consent", "maybe"),
        ("custom", {"bad key": "v"}),
        ("custom", {"k": "v" * 501}),
        ("custom", {f"k{i}": "v" for i in range(MAX_CUSTOM_KEYS + 1)}),
        ("custom", {"nested": {"a": 1}}),
    ],
)
def test_invalid_values_are_refused_with_their_field(field: str, value: object) -> None:
    # Given a lead with one bad field
    raw = {"email": "a@example.com", field: value}
    # When it is validated, Then the error names that field
    with pytest.raises(ValidationError) as caught:
        Lead.model_validate(raw)
    assert {f.split(".")[0] for f in error_fields(caught.value)} == {field}


def test_missing_email_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Lead.model_validate({"frist_name": "typo"})
    assert error_fields(caught.value) == {"email", "frist_name"}


def test_json_schema_is_exported_with_bounds() -> None:
    schema = lead_json_schema()
    assert schema["required"] == ["email"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["email"]["maxLength"] == 254
    assert schema["properties"]["first_name"]["anyOf"][0]["maxLength"] == 100
    json.dumps(schema)  # serialisable as-is for docs and OpenAPI


def make_envelope() -> LeadEnvelope:
    return LeadEnvelope(
        lead_id=uuid4(),
        received_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        source=Source(user_agent="ua", origin="https://www.example.com"),
        lead=Lead(email="a@example.com"),
    )


def test_envelope_round_trips_through_the_message_body() -> None:
    envelope = make_envelope()
    assert parse_envelope(envelope.to_message_body()) == envelope
    assert json.loads(envelope.to_message_body())["v"] == 1


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_unknown_envelope_version_is_refused(version: object) -> None:
    # Given a message from a producer this worker does not know
    body = json.loads(make_envelope().to_message_body())
    body["v"] = version
    # When parsed, Then it fails loudly (so it is retried and reaches the DLQ), never ignored
    with pytest.raises(UnknownEnvelopeVersion):
        parse_envelope(json.dumps(body))


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"v": 1, "lead_id": "nope"}', "[" * 100_000])
def test_unreadable_bodies_are_refused_without_echoing_them(body: str) -> None:
    with pytest.raises(UnreadableEnvelope) as caught:
        parse_envelope(body)
    assert "nope" not in str(caught.value)


@pytest.mark.parametrize(
    "email",
    ["Ada@Example.com", "not-an-email", "ada@localhost", "ada @example.com", "a@b@example.com", "ada@exam\nple.com"],
)
def test_a_queued_email_must_be_in_the_form_the_ingest_stores(email: str) -> None:
    # Given a queued envelope whose e-mail the ingest would never have produced
    body = json.loads(make_envelope().to_message_body())
    body["lead"]["email"] = email
    # Then the worker refuses it by field, without echoing the address
    with pytest.raises(UnreadableEnvelope, match="lead.email") as caught:
        parse_envelope(json.dumps(body))
    assert email not in str(caught.value)


@pytest.mark.parametrize("raw", ["Ada.Lovelace@Example.COM", "josé@bücher.de", "a+tag@sub.example.co.uk"])
def test_what_the_ingest_normalises_the_worker_reads_back_unchanged(raw: str) -> None:
    # The worker's cheap check accepts exactly what the ingest's full normalisation produced
    envelope = make_envelope().model_copy(update={"lead": Lead(email=raw)})
    assert parse_envelope(envelope.to_message_body()).lead.email == Lead(email=raw).email

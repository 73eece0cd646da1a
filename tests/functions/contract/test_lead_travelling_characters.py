"""Every 202 can travel: whatever the contract accepts is a legal SQS message, and whatever
it refuses gets a 4xx naming the field -- over all of Unicode, surrogates included.

SQS accepts only #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF in a
message body and answers InvalidMessageContents for anything else; the largest message is
1 MiB (1,048,576 bytes). Source: the SendMessage API reference,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from functions.contract import Lead, LeadEnvelope, Source
from functions.ingest import handler as ingest
from functions.ingest.api import build_app
from functions.ingest.settings import IngestSettings
from tests.all_of_unicode import any_character, field_text
from tests.events import RecordingQueue, api_event
from tests.functions.conftest import TEXT_FIELDS, with_value

SQS_MESSAGE_CHARACTERS = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
SQS_MAX_MESSAGE_BYTES = 1_048_576
FORBIDDEN = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\ud800", "\udfff", "\ufffe", "\uffff"]
# Fields kept exactly as typed: a character accepted there must be stored, never dropped.
VERBATIM_FIELDS = {
    "first_name",
    "last_name",
    "company",
    "job_title",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "custom.note",
}
PROPERTY_SETTINGS = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

lead_fields = st.fixed_dictionaries(
    {"email": st.emails() | st.builds("{}@{}.example".format, field_text, st.sampled_from(["a", "b"]))},
    optional={
        **{
            name: field_text
            for name in ("first_name", "last_name", "company", "job_title", "utm_source", "utm_term", "utm_content")
        },
        "custom": st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True), field_text, max_size=4),
    },
)


def answer(event: dict[str, Any]) -> tuple[int, dict[str, Any], RecordingQueue]:
    queue = RecordingQueue()
    config = IngestSettings(LEADS_QUEUE_URL="https://sqs.invalid/q")
    response = build_app(config, queue.publish, ingest.logger, ingest.metrics).resolve(event, None)
    ingest.metrics.clear_metrics()
    return response["statusCode"], json.loads(response["body"]), queue


def refused_fields(body: dict[str, Any]) -> set[str]:
    return {f["field"] for f in body["error"]["fields"]}


def as_json_text(fields: dict[str, Any]) -> str:
    # json.dumps escapes lone surrogates as \ud800, exactly as a hostile client would send them
    return json.dumps(fields)


@PROPERTY_SETTINGS
@given(fields=lead_fields)
def test_every_lead_the_contract_accepts_is_a_legal_sqs_message(fields: dict[str, Any]) -> None:
    # Given any lead-shaped JSON, with text drawn from all of Unicode
    status, body, queue = answer(api_event(as_json_text(fields)))
    # Then it is accepted and queued as a body SQS takes, or refused with a 4xx naming fields
    assert status in (202, 422), body
    if status == 202:
        [envelope] = queue.sent
        message = envelope.to_message_body()
        assert SQS_MESSAGE_CHARACTERS.fullmatch(message)
        assert len(message.encode("utf-8")) <= SQS_MAX_MESSAGE_BYTES
    else:
        assert queue.sent == [] and refused_fields(body)


@PROPERTY_SETTINGS
@given(field=st.sampled_from(sorted(TEXT_FIELDS)), character=any_character)
@example(field="custom.note", character="\x00")  # the lead that started "Every 202 is a row"
@example(field="first_name", character="\uffff")
def test_any_character_in_any_field_is_kept_and_queued_or_refused_naming_the_field(field: str, character: str) -> None:
    # Given a valid lead with one character from all of Unicode typed into one of its fields
    fields = with_value(field, TEXT_FIELDS[field].format(character))
    # When it is posted
    status, body, queue = answer(api_event(as_json_text(fields)))
    # Then it is queued as a legal SQS message, with a typed character kept as typed...
    if status == 202:
        [envelope] = queue.sent
        assert SQS_MESSAGE_CHARACTERS.fullmatch(envelope.to_message_body())
        if field in VERBATIM_FIELDS:
            record = envelope.lead.to_record()
            stored = record["custom"]["note"] if field == "custom.note" else record[field]
            assert stored == TEXT_FIELDS[field].format(character)
    # ...or refused with a 422 naming that field (never a 5xx), and nothing queued
    else:
        assert status == 422, body
        assert field in refused_fields(body)
        assert queue.sent == []
    # And a character SQS would refuse is never queued
    if not SQS_MESSAGE_CHARACTERS.fullmatch(character):
        assert status == 422


@PROPERTY_SETTINGS
@given(key=st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True), bad=st.sampled_from(FORBIDDEN))
def test_a_forbidden_character_in_a_custom_value_names_the_custom_key(key: str, bad: str) -> None:
    status, body, queue = answer(api_event(as_json_text({"email": "ada@example.com", "custom": {key: f"a{bad}b"}})))
    assert (status, refused_fields(body), queue.sent) == (422, {f"custom.{key}"}, [])


# The hostile inputs and what each gets (every 202 is a row).
HOSTILE = [
    (
        "nul-in-custom-value-json",
        api_event('{"email": "a@example.com", "custom": {"k": "a\\u0000b"}}'),
        422,
        "custom.k",
    ),
    (
        "u+ffff-in-first-name-form",
        api_event("email=a%40example.com&first_name=%EF%BF%BF", "application/x-www-form-urlencoded"),
        422,
        "first_name",
    ),
    ("u+fffe-in-company-json", api_event('{"email": "a@example.com", "company": "Acme\\ufffe"}'), 422, "company"),
    (
        "lone-high-surrogate-in-last-name",
        api_event('{"email": "a@example.com", "last_name": "x\\ud800"}'),
        422,
        "last_name",
    ),
    (
        "lone-low-surrogate-in-custom-form",
        api_event(
            f"email=a%40example.com&custom[k]={quote(chr(0xDC00), errors='surrogatepass')}",
            "application/x-www-form-urlencoded",
        ),
        400,
        "",
    ),
    ("nul-in-email", api_event('{"email": "a\\u0000@example.com"}'), 422, "email"),
    (
        "vertical-tab-in-custom-value",
        api_event('{"email": "a@example.com", "custom": {"note": "a\\u000bb"}}'),
        422,
        "custom.note",
    ),
    (
        "emoji-and-cjk-are-fine",
        api_event('{"email": "a@example.com", "first_name": "\\u5c71\\u7530 \\ud83d\\ude00"}'),
        202,
        None,
    ),
    (
        "tab-and-newline-in-custom-are-fine",
        api_event('{"email": "a@example.com", "custom": {"note": "line 1\\n\\tline 2"}}'),
        202,
        None,
    ),
]


@pytest.mark.parametrize(("event", "status", "field"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_characters_of_issue_13(event: dict[str, Any], status: int, field: str | None) -> None:
    got, body, queue = answer(event)
    assert got == status, body
    if status == 202:
        [envelope] = queue.sent
        assert SQS_MESSAGE_CHARACTERS.fullmatch(envelope.to_message_body())
    else:
        assert queue.sent == []
        if field:
            assert field in refused_fields(body)


def test_the_refusal_says_which_character_without_echoing_the_value() -> None:
    status, body, _ = answer(api_event('{"email": "a@example.com", "first_name": "Zo\\u0000e"}'))
    [error] = body["error"]["fields"]
    assert (status, error["code"]) == (422, "character_not_allowed")
    assert "U+0000" in error["message"] and "Zo" not in json.dumps(body)


def test_a_browser_header_with_an_odd_character_never_costs_the_lead() -> None:
    # Headers are not the visitor's data: an untravellable character becomes U+FFFD
    source = Source(user_agent="Mozilla\uffff/5.0", origin=None, referer="https://x.example/\x00")
    assert (source.user_agent, source.referer) == ("Mozilla\ufffd/5.0", "https://x.example/\ufffd")


def test_a_queued_lead_with_a_forbidden_character_is_unreadable_not_stored() -> None:
    # An old producer's message with NUL fails in the worker (and reaches the DLQ), never silently
    from functions.contract import UnreadableEnvelope, parse_envelope

    good = LeadEnvelope(
        lead_id="6f1c2b1e-3f57-4c8e-9a51-0d6a4c1b7e42",
        received_at="2026-11-30T00:00:00Z",
        source=Source(),
        lead=Lead(email="a@example.com", custom={"k": "ab"}),
    )
    poisoned = good.to_message_body().replace('"ab"', '"a\\u0000b"')
    with pytest.raises(UnreadableEnvelope, match="lead.custom.k"):
        parse_envelope(poisoned)


def test_form_and_json_refuse_the_same_character_the_same_way() -> None:
    form = urlencode({"email": "a@example.com", "custom[size]": "X\uffffL"})
    as_json = json.dumps({"email": "a@example.com", "custom": {"size": "X\uffffL"}})
    answers = [answer(api_event(form, "application/x-www-form-urlencoded")), answer(api_event(as_json))]
    assert [(status, refused_fields(body)) for status, body, _ in answers] == [(422, {"custom.size"})] * 2


def test_the_largest_lead_the_contract_accepts_fits_in_one_sqs_message() -> None:
    # Given every field at its bound, in 4-byte characters, and browser headers at theirs
    wide = "\U0001f600"
    lead = Lead(
        email=f"{'a' * 64}@{'b' * 63}.{'c' * 63}.example",
        first_name=wide * 100,
        last_name=wide * 100,
        company=wide * 200,
        job_title=wide * 200,
        utm_source=wide * 200,
        utm_medium=wide * 200,
        utm_campaign=wide * 200,
        utm_term=wide * 200,
        utm_content=wide * 200,
        phone="+" + "1" * 31,
        campaign="C" * 64,
        country="DE",
        landing_page="https://example.com/" + "p" * 2000,
        consent=True,
        custom={f"k{i:02d}{'x' * 60}": wide * 500 for i in range(20)},
    )
    source = Source(user_agent=wide * 1024, origin=wide * 1024, referer=wide * 1024)
    body = LeadEnvelope(
        lead_id="6f1c2b1e-3f57-4c8e-9a51-0d6a4c1b7e42", received_at="2026-11-30T00:00:00Z", source=source, lead=lead
    ).to_message_body()
    # Then its message is well within SQS's 1 MiB, so no accepted lead can be refused for size
    assert len(body.encode("utf-8")) <= SQS_MAX_MESSAGE_BYTES
    assert SQS_MESSAGE_CHARACTERS.fullmatch(body)

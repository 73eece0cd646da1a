"""The attribution and consent fields are as strict as every other: a hostile value in any of them is
accepted as a valid value or refused with a 422 naming that field, never a 5xx, never queued."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.contract import Lead
from functions.contract.lead import CLICK_ID_FIELDS
from functions.ingest import handler as ingest
from functions.ingest.api import build_app
from functions.ingest.settings import IngestSettings
from tests.events import RecordingQueue, api_event

FORM = "application/x-www-form-urlencoded"
PROPERTY_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOUCH_FIELDS = ("touched_at", "landing_page", "referrer", "utm_source", "utm_campaign", *CLICK_ID_FIELDS)
NEW_FIELDS = (
    *CLICK_ID_FIELDS,
    "referrer",
    *(f"{touch}.{name}" for touch in ("first_touch", "last_touch") for name in TOUCH_FIELDS),
    "consent_text_id",
    "consent_text_version",
    "consent_text_sha256",
    "consent_purposes",
    "consent_at",
    "consent_page",
)
hostile_values = st.one_of(
    st.text(max_size=3000),
    st.text(alphabet=st.characters(codec="ascii"), min_size=400, max_size=2600),
    st.sampled_from(["javascript:alert(1)", "ftp://x.example/", "\x00", "\ud800", " ", "2026-13-45T25:00:00Z"]),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=40), max_size=15),
    st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
)


def lead_with(field: str, value: Any) -> dict[str, Any]:
    lead: dict[str, Any] = {"email": "ada@example.com", "consent": True}
    parent, _, key = field.partition(".")
    lead[parent] = {key: value} if key else value
    return lead


def post(body: str, content_type: str = "application/json") -> tuple[int, dict[str, Any], RecordingQueue]:
    queue = RecordingQueue()
    config = IngestSettings(LEADS_QUEUE_URL="https://sqs.invalid/q")
    response = build_app(config, queue.publish, ingest.logger, ingest.metrics).resolve(
        api_event(body, content_type), None
    )
    ingest.metrics.clear_metrics()
    return response["statusCode"], json.loads(response["body"]), queue


@PROPERTY_SETTINGS
@given(field=st.sampled_from(NEW_FIELDS), value=hostile_values)
def test_a_hostile_value_in_any_new_field_is_kept_valid_or_refused_naming_it(field: str, value: Any) -> None:
    # Given a valid lead with a hostile value in one attribution or consent field
    status, body, queue = post(json.dumps(lead_with(field, value)))
    # Then it is accepted and queued, or refused with a 422 naming that field (its list items included)
    assert status in (202, 422), body
    if status == 422:
        named = {f["field"] for f in body["error"]["fields"]}
        assert named and all(name == field or name.startswith(f"{field}.") for name in named), named
        assert queue.sent == []
    else:
        [envelope] = queue.sent
        # And what was accepted reads back the same from the queue (what the worker will store)
        assert Lead.model_validate_json(envelope.lead.model_dump_json()) == envelope.lead


@PROPERTY_SETTINGS
@given(field=st.sampled_from(NEW_FIELDS), value=st.text(max_size=600))
def test_the_same_in_a_form_post(field: str, value: str) -> None:
    # Given the same as a plain form sends it (`first_touch[gclid]=...`)
    parent, _, key = field.partition(".")
    name = f"{parent}[{key}]" if key else field
    status, body, queue = post(urlencode({"email": "ada@example.com", "consent": "on", name: value}), FORM)
    # Then: accepted, or a 422 naming the field
    assert status in (202, 422), body
    if status == 422:
        assert {f["field"].split(".")[0] for f in body["error"]["fields"]} == {parent}
        assert queue.sent == []


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("gclid", "x" * 501, "gclid"),
        ("fbclid", "has space", "fbclid"),
        ("msclkid", "naïve", "msclkid"),
        ("referrer", "android-app://com.google.android.gm/", "referrer"),
        ("first_touch.landing_page", "javascript:alert(1)", "first_touch.landing_page"),
        ("last_touch.utm_source", "x" * 201, "last_touch.utm_source"),
        ("last_touch.touched_at", "2026-05-04T09:30:00", "last_touch.touched_at"),  # no offset: which time zone?
        ("first_touch.colour", "red", "first_touch.colour"),  # a touch holds only what the browser records
        ("consent_text_sha256", "abc", "consent_text_sha256"),
        ("consent_text_id", "newsletter\ntext", "consent_text_id"),
        ("consent_purposes", [f"p{i}" for i in range(11)], "consent_purposes"),
        ("consent_purposes", ["Newsletter!"], "consent_purposes.0"),
        ("consent_at", "yesterday", "consent_at"),
        ("consent_page", "https://www.example.com/" + "a" * 2048, "consent_page"),
    ],
)
def test_each_rule_names_its_field(field: str, value: Any, named: str) -> None:
    status, body, queue = post(json.dumps(lead_with(field, value)))
    assert status == 422
    assert [f["field"] for f in body["error"]["fields"]] == [named]
    assert queue.sent == []


def test_a_form_sends_purposes_as_checkboxes_or_one_list_and_unticked_means_none() -> None:
    # Given a plain form with two purpose checkboxes ticked and the consent box ticked
    status, _, queue = post(
        "email=ada%40example.com&consent=on&consent_text_id=newsletter&consent_text_version=3"
        "&consent_purposes=newsletter&consent_purposes=Offers",
        FORM,
    )
    assert status == 202
    lead = queue.sent[0].lead
    assert (lead.consent, lead.consent_text_id, lead.consent_purposes) == (True, "newsletter", ("newsletter", "offers"))
    # When the consent box is left unticked, with the same hidden purposes and a time
    status, _, queue = post(
        "email=ada%40example.com&consent_text_id=newsletter&consent_purposes=newsletter+offers"
        "&consent_at=2026-05-04T09%3A30%3A00Z",
        FORM,
    )
    # Then it is stored as no consent: the text shown is kept, no purpose and no time
    assert status == 202
    lead = queue.sent[0].lead
    assert (lead.consent, lead.consent_text_id, lead.consent_purposes, lead.consent_at) == (
        False,
        "newsletter",
        (),
        None,
    )

"""The queue message stays readable by the worker of the first contract, whose `Lead` refuses unknown keys.

In one stack update CloudFormation updates the ingest and the worker in parallel (no reference links them),
and a failed update rolls the worker back while the new ingest's messages wait in the queue
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-dependson.html: resources
without a dependency are updated in parallel).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

from pydantic import ConfigDict, create_model

from functions.contract.envelope import LeadEnvelope, Source, parse_envelope
from functions.contract.lead import FIELDS_ADDED_LATER, Lead

RECEIVED_AT = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
LEAD_ID = UUID("6f1c2a7e-0000-4000-8000-000000000001")

# The first contract's lead as its worker reads it: the same fields, less the later ones, unknown keys refused.
FirstContractLead = create_model(
    "FirstContractLead",
    __config__=ConfigDict(extra="forbid"),
    **{name: (object, None) for name in Lead.model_fields if name not in FIELDS_ADDED_LATER},
)


def envelope(**lead: object) -> LeadEnvelope:
    return LeadEnvelope(lead_id=LEAD_ID, received_at=RECEIVED_AT, source=Source(), lead=Lead.model_validate(lead))


def test_a_lead_without_the_later_fields_travels_as_the_first_contract_wrote_it() -> None:
    # Given a lead from a form that sends none of the attribution or consent-evidence fields
    message = envelope(email="jane@example.com", utm_source="newsletter", consent="on")
    # When the ingest writes its queue message
    body = json.loads(message.to_message_body())
    # Then a worker of the first contract reads the lead (no unknown key), and the current worker reads it unchanged
    assert FirstContractLead.model_validate(body["lead"]).email == "jane@example.com"
    assert parse_envelope(message.to_message_body()) == message


def test_a_lead_with_attribution_and_consent_evidence_keeps_them_in_the_message() -> None:
    # Given a lead carrying a click id, a touch and a consent record
    message = envelope(
        email="jane@example.com",
        consent="on",
        gclid="Cj0KCQiA-ad.click_1",
        last_touch={"utm_source": "google", "landing_page": "https://example.com/?utm_source=google"},
        consent_text_id="newsletter",
        consent_purposes="offers newsletter",
    )
    # When the ingest writes its queue message
    body = json.loads(message.to_message_body())
    # Then they travel, and the current worker reads the lead unchanged
    assert (body["lead"]["gclid"], body["lead"]["consent_purposes"]) == (
        "Cj0KCQiA-ad.click_1",
        ["offers", "newsletter"],
    )
    assert parse_envelope(message.to_message_body()) == message

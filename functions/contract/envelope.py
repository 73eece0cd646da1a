"""The versioned SQS message body that carries one accepted lead from ingest to worker."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, ValidationError

from functions.contract.lead import ALREADY_NORMALISED, FIELDS_ADDED_LATER, UNTRAVELLABLE_CHARACTER, Lead

ENVELOPE_VERSION = 1
KNOWN_ENVELOPE_VERSIONS = frozenset({ENVELOPE_VERSION})

# Leads in the queue were normalised by the ingest: reading one confirms that, cheaply.
QUEUED = {ALREADY_NORMALISED: True}


def _replace_untravellable(value: Any) -> Any:
    # A browser's header is not the visitor's data: one odd byte in it must not cost the lead.
    return UNTRAVELLABLE_CHARACTER.sub("\ufffd", value) if isinstance(value, str) else value


HeaderText = Annotated[str | None, StringConstraints(max_length=1024), BeforeValidator(_replace_untravellable)]


class UnreadableEnvelope(ValueError):
    """The message body is not a lead envelope this worker can read; it must not be dropped."""


class UnknownEnvelopeVersion(UnreadableEnvelope):
    """The envelope comes from a newer (or broken) producer; it must fail, not vanish."""


class Source(BaseModel):
    """Where the submission came from: enough to debug a form, no IP address (it is PII)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_agent: HeaderText = None
    origin: HeaderText = None
    referer: HeaderText = None


class LeadEnvelope(BaseModel):
    """Version 1 of the queue message: `{"v", "lead_id", "received_at", "source", "lead"}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = ENVELOPE_VERSION
    lead_id: UUID
    received_at: datetime
    source: Source
    lead: Lead

    def to_message_body(self) -> str:
        # Without the later fields the lead left empty: a worker of the first contract (not yet updated by a
        # deploy, or rolled back to) refuses unknown keys, and would send every lead to the DLQ.
        empty = {name for name in FIELDS_ADDED_LATER if getattr(self.lead, name) in (None, ())}
        return self.model_dump_json(exclude={"lead": empty})


def parse_envelope(body: str) -> LeadEnvelope:
    """Read a queue message body, or raise `UnreadableEnvelope` saying why (never PII)."""
    try:
        # Fast path for the common case: pydantic parses and validates the JSON in one pass.
        return LeadEnvelope.model_validate_json(body, context=QUEUED)
    except ValidationError:
        pass  # find out why, below, to fail with the right reason
    try:
        raw: Any = json.loads(body)
    except (ValueError, RecursionError):
        raise UnreadableEnvelope("message body is not JSON") from None
    if not isinstance(raw, dict):
        raise UnreadableEnvelope("message body is not a JSON object")
    version = raw.get("v")
    if version not in KNOWN_ENVELOPE_VERSIONS:
        raise UnknownEnvelopeVersion(f"unknown envelope version {version!r}")
    try:
        return LeadEnvelope.model_validate(raw, context=QUEUED)
    except ValidationError as error:
        # Field paths only: the error's input values would carry the lead's personal data.
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
        raise UnreadableEnvelope(f"invalid envelope fields: {', '.join(fields)}") from None

"""The contract both functions share: the `Lead`, its envelope, and log redaction."""

from functions.contract.envelope import (
    ENVELOPE_VERSION,
    KNOWN_ENVELOPE_VERSIONS,
    LeadEnvelope,
    Source,
    UnknownEnvelopeVersion,
    UnreadableEnvelope,
    parse_envelope,
)
from functions.contract.lead import Lead, lead_json_schema
from functions.contract.redaction import RedactingFormatter, mask_email, redact_text

__all__ = [
    "ENVELOPE_VERSION",
    "KNOWN_ENVELOPE_VERSIONS",
    "Lead",
    "RedactingFormatter",
    "LeadEnvelope",
    "Source",
    "UnknownEnvelopeVersion",
    "UnreadableEnvelope",
    "lead_json_schema",
    "mask_email",
    "parse_envelope",
    "redact_text",
]

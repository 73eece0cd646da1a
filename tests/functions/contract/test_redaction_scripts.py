"""Addresses the ingest accepts, in scripts whose letters carry combining marks (Devanagari,
Malayalam, Tamil, Bengali...), must be masked in logs too: `\\w` alone does not match a vowel sign (Mn/Mc)."""

from __future__ import annotations

import json

import pytest

from functions.contract.lead import normalise_email
from functions.contract.redaction import RedactingFormatter
from tests.functions.contract.conftest import capture_with

ADDRESSES = ["नमस्ते@example.com", "user@हिन्दी.com", "राम@हिन्दी.भारत", "ജോ@example.com", "தமிழ்@example.com"]


@pytest.mark.parametrize("address", ADDRESSES)
def test_an_address_the_ingest_accepts_is_masked_in_any_script(address: str) -> None:
    assert normalise_email(address) == address  # the contract accepts (and stores) it as is
    logger, stream = capture_with(RedactingFormatter(service="test"))
    logger.warning("could not store lead of %s", address)
    decoded = json.dumps(json.loads(stream.getvalue()), ensure_ascii=False)
    local, domain = address.split("@")
    assert local not in decoded and f"{local[1:]}@" not in decoded, decoded

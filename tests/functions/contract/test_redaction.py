"""The log formatter both functions use masks e-mail addresses and phone numbers, whoever logs them."""

from __future__ import annotations

import json
import re

import pytest

from functions.contract.redaction import RedactingFormatter, mask_email, redact_text
from tests.functions.contract.conftest import capture_with

EMAILS = [
    "jane.doe@example.com",
    "jöhn@exämple.com",
    "用户@例子.中国",
    "o'neil+news@sub.example.co.uk",
    "jane@xn--exmple-cua.com",
]
PHONES = [
    "+1 202 555 0143",
    "+44 20 7946 0958",
    "(202) 555-0143",
    "202-555-0143",
    "202.555.0143",
    "030 1234567",
    "07700 900123",
    "0171/2345678",
    "0044 20 7946 0958",
]
NOT_PERSONAL = [
    "2026-11-30 03:02:13,123+0000",
    "lead_id 6f1c2b1e-3f57-4c8e-9a51-0d6a4c1b7e42",
    "took 1732934533123 ms",
    "arn:aws:lambda:eu-west-1:123456789012:function:x",
    "batch of 10 in 0.042 s",
    "version 5.2.5",
]


@pytest.mark.parametrize("address", EMAILS)
def test_every_e_mail_address_is_masked_in_free_text(address: str) -> None:
    masked = redact_text(f"contact <{address}> today")
    assert address not in masked
    assert masked == f"contact <{address[0]}***@{address.rsplit('@', 1)[1]}> today"


@pytest.mark.parametrize("number", PHONES)
def test_phone_numbers_in_international_and_national_formats_are_masked(number: str) -> None:
    masked = redact_text(f"call {number} now")
    assert number not in masked and not re.search(r"\d{3}", masked), masked


@pytest.mark.parametrize("text", NOT_PERSONAL)
def test_timestamps_ids_and_durations_are_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_mask_email_shows_only_the_first_character_and_the_domain() -> None:
    assert [mask_email(a) for a in ("jöhn@exämple.com", '"odd local"@example.com', "no-at-sign")] == [
        "j***@exämple.com",
        '"***@example.com',
        "***",
    ]


def test_a_log_call_that_tries_to_leak_personal_data_writes_none_of_it() -> None:
    # Given the functions' formatter on a logger
    logger, stream = capture_with(RedactingFormatter(service="test"))

    # When code logs personal data every way it can: in the message, in extra fields (named and
    # not), nested, as an object's str(), and inside an exception's traceback
    class Visitor:
        def __str__(self) -> str:
            return "visitor jöhn@exämple.com (202) 555-0143"

    try:
        raise ValueError("duplicate key (email)=(用户@例子.中国) phone 030 1234567")
    except ValueError:
        logger.exception(
            "failed for jane.doe@example.com, call +44 20 7946 0958",
            extra={
                "email": "jane.doe@example.com",
                "first_name": "Jane",
                "note": {"text": "or 07700 900123"},
                "who": Visitor(),
            },
        )
    line = stream.getvalue()
    logged = json.loads(line)
    decoded = json.dumps(logged, ensure_ascii=False)  # non-ASCII letters as letters, not \\u escapes
    # Then the line is still Powertools' JSON, and no address, number or name is in it
    assert logged["level"] == "ERROR" and "ValueError" in logged["exception"]
    for secret in (
        "jane.doe@example.com",
        "jöhn@exämple.com",
        "用户@例子.中国",
        "+44 20 7946 0958",
        "(202) 555-0143",
        "030 1234567",
        "07700 900123",
        "Jane",
    ):
        assert secret not in decoded and secret not in line
    assert "j***@example.com" in logged["message"] and logged["email"] == logged["first_name"] == "***"
    assert "用***@例子.中国" in logged["exception"]


@pytest.mark.parametrize(
    "url",
    [
        "https://www.example.com/thanks?email=jane.doe%40example.com&utm_source=ad",
        "https://www.example.com/?ref=JANE%40Example.COM",
        "https://www.example.com/%E0%A4%A8%40example.com",
    ],
)
def test_an_address_url_encoded_in_a_logged_url_is_masked(url: str) -> None:
    # Given a landing page or referrer URL that carries an address in its query, as some form tools write it
    # When it is logged
    logger, stream = capture_with(RedactingFormatter())
    logger.info("lead queued", extra={"landing_page": url})
    # Then no part of the address before its domain reaches the log
    line = stream.getvalue()
    assert not any(local in line for local in ("jane.doe", "JANE", "%E0%A4%A8")), line

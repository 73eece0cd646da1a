"""Shared by the tests in this folder."""

from __future__ import annotations

from typing import Any

# Every string field of the contract, each with a value it would otherwise accept.
TEXT_FIELDS = {
    "email": "ada{}@example.com",
    "first_name": "A{}da",
    "last_name": "Love{}lace",
    "company": "Ac{}me",
    "job_title": "C{}TO",
    "utm_source": "ne{}ws",
    "utm_medium": "ma{}il",
    "utm_campaign": "spr{}ing",
    "utm_term": "le{}ads",
    "utm_content": "ban{}ner",
    "phone": "+44 20{} 7946 0958",
    "campaign": "SPR{}ING",
    "country": "D{}",
    "landing_page": "https://www.example.com/{}",
    "custom.note": "li{}ne",
}


def with_value(field: str, value: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"email": "ada@example.com"}
    if field.startswith("custom."):
        fields["custom"] = {field.removeprefix("custom."): value}
    else:
        fields[field] = value
    return fields

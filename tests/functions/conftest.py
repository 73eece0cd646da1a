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
    **{name: "Cj0K{}CQiA" for name in ("gclid", "gbraid", "wbraid", "fbclid", "msclkid", "li_fat_id", "ttclid")},
    "referrer": "https://news.example.org/{}",
    **{
        f"{touch}.{name}": value
        for touch in ("first_touch", "last_touch")
        for name, value in (
            ("utm_source", "ne{}ws"),
            ("utm_campaign", "spr{}ing"),
            ("gclid", "Cj0K{}CQiA"),
            ("ttclid", "E.C{}.P"),
            ("landing_page", "https://www.example.com/{}"),
            ("referrer", "https://news.example.org/{}"),
            ("touched_at", "2026-05-0{}T10:00:00Z"),
        )
    },  # fmt: skip
    "consent_text_id": "news{}letter",
    "consent_text_version": "3{}",
    "consent_text_sha256": "{}" + "a" * 63,
    "consent_purposes.0": "news{}letter",
    "consent_at": "2026-05-0{}T10:00:00Z",
    "consent_page": "https://www.example.com/{}",
}


def with_value(field: str, value: str) -> dict[str, Any]:
    """A valid lead with `value` at `field`: a name, or a dotted path (`first_touch.gclid`, `consent_purposes.0`)."""
    fields: dict[str, Any] = {"email": "ada@example.com"}
    if field.startswith("consent_"):
        fields["consent"] = True  # what was agreed to counts only with the box ticked
    parent, _, key = field.partition(".")
    if not key:
        fields[field] = value
    elif key.isdigit():
        fields[parent] = [value]
    else:
        fields[parent] = {key: value}
    return fields

"""The `LeadStored` event: its shape, and PutEvents requests that respect EventBridge's limits.

Pure: no AWS call here (event_publisher.py makes them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from functions.contract import LeadEnvelope

EVENT_SOURCE = "leadpipe"
LEAD_STORED = "LeadStored"
DETAIL_VERSION = 1
# PutEvents takes at most 10 entries, whose sizes add up to less than 256 KB; an entry's size is
# its Source, DetailType, Detail and Resources in UTF-8 bytes, plus 14 for Time
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html).
PUT_EVENTS_MAX_ENTRIES = 10
# The page does not say whether a KB is 1,000 or 1,024 bytes: the smaller reading is the safe one.
PUT_EVENTS_MAX_BYTES = 256_000


@dataclass(frozen=True)
class StoredLead:
    """A lead the leads table holds, and when its row was committed."""

    envelope: LeadEnvelope
    stored_at: datetime


def headline(campaign: str | None) -> str:
    """The one line a chat channel shows: no personal data."""
    return f"New lead for {campaign}" if campaign else "New lead (no campaign)"


def lead_stored_detail(stored: StoredLead) -> dict[str, Any]:
    """The event's `detail`: the lead as stored, keyed by `lead_id` (consumers dedupe by it)."""
    envelope = stored.envelope
    lead = envelope.lead.model_dump(mode="json", exclude_none=False)
    return {
        "version": DETAIL_VERSION,
        "lead_id": str(envelope.lead_id),
        "campaign": envelope.lead.campaign,
        "received_at": envelope.received_at.isoformat(),
        "stored_at": stored.stored_at.isoformat(),
        "headline": headline(envelope.lead.campaign),
        "lead": lead,
    }


def slim_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail without the lead's fields: what goes when the whole one would not fit in an entry."""
    return {**detail, "lead": None, "lead_omitted": "over EventBridge's entry size limit: read the row by lead_id"}


def entry_size(entry: dict[str, Any]) -> int:
    """EventBridge's size of one PutEvents entry (see PUT_EVENTS_MAX_BYTES)."""
    size = 14 if entry.get("Time") is not None else 0
    size += len(entry["Source"].encode()) + len(entry["DetailType"].encode())
    size += len(entry.get("Detail", "").encode())
    size += sum(len(resource.encode()) for resource in entry.get("Resources", []))
    return size


def lead_stored_entry(stored: StoredLead, event_bus_name: str) -> dict[str, Any]:
    """One PutEvents entry; one that would not fit alone carries the slim detail instead."""
    detail = lead_stored_detail(stored)
    entry = {"Source": EVENT_SOURCE, "DetailType": LEAD_STORED, "Detail": _json(detail), "EventBusName": event_bus_name}
    if entry_size(entry) >= PUT_EVENTS_MAX_BYTES:
        entry["Detail"] = _json(slim_detail(detail))
    return entry


def put_events_requests(entries: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """The entries in order, in requests of at most 10 entries and less than 256 KB each."""
    request: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        this = entry_size(entry)
        if request and (len(request) == PUT_EVENTS_MAX_ENTRIES or size + this >= PUT_EVENTS_MAX_BYTES):
            yield request
            request, size = [], 0
        request.append(entry)
        size += this
    if request:
        yield request


def entry_lead_id(entry: dict[str, Any]) -> str:
    return json.loads(entry["Detail"])["lead_id"]


def _json(value: Any) -> str:
    # Compact, and UTF-8 as is: \\u escapes would count six bytes a character against the entry limit.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

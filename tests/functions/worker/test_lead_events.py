"""The LeadStored event's shape and the PutEvents requests it travels in (EventBridge's limits, cited)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from functions.worker.lead_events import (
    PUT_EVENTS_MAX_BYTES,
    StoredLead,
    entry_size,
    headline,
    lead_stored_entry,
    put_events_requests,
)
from tests.functions.worker.conftest import make_envelope

STORED_AT = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def entry(detail_bytes: int) -> dict:
    return {"Source": "leadpipe", "DetailType": "LeadStored", "Detail": "x" * detail_bytes, "EventBusName": "bus"}


def test_the_headline_names_the_campaign_and_no_person() -> None:
    assert headline("SUMMERSALE20") == "New lead for SUMMERSALE20"
    assert headline(None) == "New lead (no campaign)"


def test_an_entry_carries_the_lead_its_times_and_its_id() -> None:
    # Given a stored lead
    envelope = make_envelope("jane@example.com", campaign="summersale20", custom={"size": "XL"})

    # When it becomes a PutEvents entry
    made = lead_stored_entry(StoredLead(envelope, STORED_AT), "leads-bus")

    # Then it is addressed to the bus as LeadStored, and its detail holds what consumers need
    assert (made["Source"], made["DetailType"], made["EventBusName"]) == ("leadpipe", "LeadStored", "leads-bus")
    detail = json.loads(made["Detail"])
    assert detail["lead_id"] == str(envelope.lead_id)
    assert detail["campaign"] == "SUMMERSALE20"
    assert detail["stored_at"] == "2026-12-06T09:00:00+00:00"
    assert detail["received_at"] == envelope.received_at.isoformat()
    assert detail["lead"]["email"] == "jane@example.com" and detail["lead"]["custom"] == {"size": "XL"}


def test_entry_size_is_counted_as_eventbridge_counts_it() -> None:
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html: Source, DetailType,
    # Detail and each Resource in UTF-8 bytes, plus 14 bytes for Time; EventBusName does not count.
    made = {"Source": "leadpipe", "DetailType": "LeadStored", "Detail": '{"a":"é"}', "EventBusName": "b" * 50}
    assert entry_size(made) == len("leadpipe") + len("LeadStored") + len('{"a":"é"}'.encode())
    assert entry_size({**made, "Time": "2026-12-06T09:00:00Z", "Resources": ["arn:x"]}) == entry_size(made) + 14 + 5


def test_requests_hold_at_most_ten_entries() -> None:
    # https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html: 1 to 10 entries per request
    sizes = [len(request) for request in put_events_requests([entry(10)] * 25)]
    assert sizes == [10, 10, 5]


def test_requests_stay_under_256_kb_in_total() -> None:
    # Given entries of about 100 KB each: three would pass EventBridge's 256 KB per request
    big = [entry(100 * 1024) for _ in range(5)]

    # When grouped into requests
    requests = list(put_events_requests(big))

    # Then no request reaches the limit, and every entry is sent once, in order
    assert [len(r) for r in requests] == [2, 2, 1]
    assert all(sum(entry_size(e) for e in r) < PUT_EVENTS_MAX_BYTES for r in requests)


def test_a_lead_too_big_for_one_entry_travels_without_its_fields() -> None:
    # Given a lead whose detail would pass the entry limit (the settings allow a body up to 1 MiB)
    envelope = make_envelope("big@example.com")
    huge = envelope.model_copy(update={"lead": envelope.lead.model_copy(update={"custom": {"k": "x" * 300_000}})})

    # When it becomes an entry
    made = lead_stored_entry(StoredLead(huge, STORED_AT), "bus")

    # Then it fits, and still says which lead was stored (the consumer reads the row by lead_id)
    assert entry_size(made) < PUT_EVENTS_MAX_BYTES
    detail = json.loads(made["Detail"])
    assert detail["lead_id"] == str(envelope.lead_id) and detail["lead"] is None and "lead_omitted" in detail

"""The events lane leaves `leadpipe verify`'s canary out: no CRM or chat channel hears of a lead that is nobody's."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from functions.worker.canary import canary_address
from functions.worker.event_publisher import PublishOutcome
from functions.worker.repository import StoreOutcome
from functions.worker.stored_events import LeadStoredLane
from tests.functions.worker.conftest import canary_envelope, make_envelope


class RecordingPublisher:
    """Takes every entry, as EventBridge would."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def publish(
        self, entries: Sequence[dict[str, Any]], time_left: Callable[[], float] | None = None
    ) -> PublishOutcome:
        self.entries.extend(entries)
        return PublishOutcome(published=len(entries))


def test_a_batch_with_the_canary_publishes_only_the_real_leads_event() -> None:
    # Given a committed batch holding verify's canary beside a real lead
    canary, real = canary_envelope(canary_address("verify-events")), make_envelope("jane@example.com")
    publisher = RecordingPublisher()
    lane = LeadStoredLane(publisher, stored_at_of=lambda ids: {}, event_bus_name="leadpipe-dev")
    # When the lane runs after the commit
    outcome = lane.after_commit([canary, real], StoreOutcome(inserted=2, duplicates=0))
    # Then one LeadStored event went out, the real lead's
    assert outcome.published == 1
    assert [json.loads(e["Detail"])["lead_id"] for e in publisher.entries] == [str(real.lead_id)]


def test_a_batch_of_only_the_canary_publishes_nothing() -> None:
    publisher = RecordingPublisher()
    lane = LeadStoredLane(publisher, stored_at_of=lambda ids: {}, event_bus_name="leadpipe-dev")
    outcome = lane.after_commit(
        [canary_envelope(canary_address("verify-alone"))], StoreOutcome(inserted=1, duplicates=0)
    )
    assert (outcome.published, publisher.entries) == (0, [])

"""After a batch's commit: one `LeadStored` event for every lead of the batch that the table holds.

Rows exactly once, events at least once: a redelivered batch whose rows were already there
publishes their events again (consumers dedupe by `lead_id`), and a lead whose events neither
EventBridge nor the hand-off queue took is reported back, so SQS delivers its record again and
the (idempotent) store is followed by another try. A lead erased before its row was written has
no row, and so no event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from functions.contract import LeadEnvelope
from functions.worker.canary import is_canary_address
from functions.worker.event_publisher import LeadStoredPublisher
from functions.worker.lead_events import StoredLead, lead_stored_entry
from functions.worker.repository import StoreOutcome

# lead ids -> when each one's row was stored; a lead without a row is left out.
StoredAtOf = Callable[[Sequence[str]], dict[str, datetime]]


@dataclass
class LaneOutcome:
    """What the events lane did with one batch; `not_handed_off` holds lead ids to deliver again."""

    published: int = 0
    handed_off: int = 0
    not_handed_off: list[str] = field(default_factory=list)
    error: str | None = None


class LeadStoredLane:
    """Turns a committed batch into events and hands them to the publisher."""

    def __init__(
        self,
        publisher: LeadStoredPublisher,
        stored_at_of: StoredAtOf,
        event_bus_name: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._publisher = publisher
        self._stored_at_of = stored_at_of
        self._event_bus_name = event_bus_name
        self._clock = clock

    def after_commit(
        self,
        stored: Sequence[LeadEnvelope],
        outcome: StoreOutcome,
        time_left: Callable[[], float] | None = None,
    ) -> LaneOutcome:
        """Publish the events of `stored` (the batch's envelopes the store did not fail), committed as `outcome`,
        within the invocation's `time_left` seconds."""
        # `leadpipe verify`'s canary is nobody's lead: no CRM or chat channel hears of it.
        stored = [envelope for envelope in stored if not is_canary_address(envelope.lead.email)]
        if not stored:
            return LaneOutcome()
        lead_ids = [str(envelope.lead_id) for envelope in stored]
        if outcome.duplicates == 0:
            # Every one was inserted by this commit: no need to ask the database.
            now = self._clock()
            stored_at = dict.fromkeys(lead_ids, now)
        else:
            # Some rows were there already (a redelivery) or were skipped (erased): only the table knows which.
            try:
                stored_at = self._stored_at_of(lead_ids)
            except Exception as error:
                return LaneOutcome(not_handed_off=lead_ids, error=type(error).__name__)
        leads = [StoredLead(e, stored_at[str(e.lead_id)]) for e in stored if str(e.lead_id) in stored_at]
        entries = [lead_stored_entry(lead, self._event_bus_name) for lead in leads]
        published = self._publisher.publish(entries, time_left)
        return LaneOutcome(
            published=published.published,
            handed_off=published.handed_off,
            not_handed_off=published.not_handed_off,
            error=published.put_events_error,
        )

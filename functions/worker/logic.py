"""Turn one SQS batch into one transaction, and report exactly the records that failed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.contract import LeadEnvelope, parse_envelope
from functions.worker.repository import DatabaseUnavailable, StoreOutcome
from functions.worker.stored_events import LaneOutcome


class RejectedByDatabase(Exception):
    """The database refused this lead's row (e.g. a constraint); it goes back, then to the DLQ."""


class NotStored(Exception):
    """The batch's store failed as a whole (database away, timeout): this record is retried with it."""


class NotTriedInTime(Exception):
    """Row by row, the invocation ran out of time before this record's row was tried: it is retried, not refused."""


class EventsNotHandedOff(Exception):
    """The row is stored, but neither EventBridge nor the hand-off queue took its event: delivered again,
    the record's store is a no-op and its event is published then."""


class AfterCommit(Protocol):
    """`LeadStoredLane.after_commit`: publishes the events of the stored envelopes of a committed batch."""

    def __call__(
        self, stored: Sequence[LeadEnvelope], outcome: StoreOutcome, time_left: Callable[[], float] | None = None
    ) -> LaneOutcome: ...


class StoreBatch(Protocol):
    """`LeadRepository.store_batch`: stores the envelopes, giving up before `time_left()` seconds run out."""

    def __call__(
        self, envelopes: Sequence[LeadEnvelope], *, time_left: Callable[[], float] | None = None
    ) -> StoreOutcome: ...


def parse_record(record: SQSRecord) -> LeadEnvelope:
    """One record's envelope; raises `UnreadableEnvelope` (unknown version, bad JSON, bad lead)."""
    return parse_envelope(record.body)


@dataclass(frozen=True)
class FailedRecord:
    message_id: str
    reason: str


@dataclass
class BatchSummary:
    """What one invocation did, for the log line and the metrics."""

    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    failed: list[FailedRecord] = field(default_factory=list)
    oldest_received_at: datetime | None = None
    store_error: str | None = None
    database_unavailable: bool = False  # the store failed because the database could not be reached
    events: LaneOutcome | None = None  # what the events lane did after the commit (None: no events lane)

    def seconds_since_oldest_received(self, now: datetime) -> float | None:
        if self.oldest_received_at is None:
            return None
        return max(0.0, (now - self.oldest_received_at).total_seconds())


class StoringBatchProcessor:
    """Parse each record, store every good one with ONE statement, answer the exact `batchItemFailures`.

    Built on Powertools' public batch API only: each record is parsed on its own (a bad one fails
    alone); the good envelopes are stored together; then Powertools' `BatchProcessor` settles each
    record with what happened to it and builds the partial-batch answer itself. If the store fails
    as a whole, every good record is reported failed.
    """

    def __init__(self, store_batch: StoreBatch, after_commit: AfterCommit | None = None) -> None:
        self._store_batch = store_batch
        self._after_commit = after_commit
        self.summary = BatchSummary()

    def handle(self, event: dict[str, Any], context: LambdaContext | None = None) -> dict[str, Any]:
        """The Lambda answer for one SQS event; `summary` then describes the batch."""
        records = [SQSRecord(raw) for raw in event.get("Records", [])]
        self.summary = BatchSummary(received=len(records))
        errors: dict[str, Exception] = {}
        envelopes: dict[str, LeadEnvelope] = {}
        for record in records:
            try:
                envelopes[record.message_id] = parse_record(record)
            except Exception as error:  # as Powertools does per record: whatever fails it fails alone
                errors[record.message_id] = error
        if envelopes:
            errors.update(self._store(envelopes, context))
        self.summary.failed = [
            FailedRecord(r.message_id, _reason(errors[r.message_id])) for r in records if r.message_id in errors
        ]

        def settle(record: SQSRecord) -> None:
            if record.message_id in errors:
                raise errors[record.message_id]

        # Powertools builds the answer from what each record's handler raised. Whole-batch failures
        # are returned as failures, not raised: the answer stays exact.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return process_partial_response(event=event, record_handler=settle, processor=processor, context=context)

    def _store(self, envelopes: dict[str, LeadEnvelope], context: LambdaContext | None) -> dict[str, Exception]:
        """Store the parsed envelopes; the errors of the records that were not stored, by message id."""
        self.summary.oldest_received_at = min(e.received_at for e in envelopes.values()).astimezone(UTC)
        # The store gives up before the invocation ends: a database that never answers is an outage, not a timeout.
        time_left = None if context is None else (lambda: context.get_remaining_time_in_millis() / 1000)
        try:
            outcome = self._store_batch(list(envelopes.values()), time_left=time_left)
        except Exception as error:  # any failure to commit means: retry the whole batch
            self.summary.store_error = type(error).__name__
            self.summary.database_unavailable = isinstance(error, DatabaseUnavailable)
            failure = NotStored(f"{type(error).__name__}: {error}")
            return dict.fromkeys(envelopes, failure)
        self.summary.inserted = outcome.inserted
        self.summary.duplicates = outcome.duplicates
        not_stored: Exception = NotTriedInTime("the invocation ran out of time before this row was tried")
        if outcome.interrupted_by is not None:
            error = outcome.interrupted_by
            self.summary.store_error = type(error).__name__
            self.summary.database_unavailable = isinstance(error, DatabaseUnavailable)
            not_stored = NotStored(f"{type(error).__name__}: {error}")
        errors: dict[str, Exception] = {}
        not_tried = set(outcome.not_tried)
        for message_id, envelope in envelopes.items():
            lead_id = str(envelope.lead_id)
            if lead_id in outcome.rejected:
                errors[message_id] = RejectedByDatabase(f"the database refused the row: {outcome.rejected[lead_id]}")
            elif lead_id in not_tried:
                errors[message_id] = not_stored
        if self._after_commit is not None:
            errors.update(self._publish_events(envelopes, errors, outcome, time_left))
        return errors

    def _publish_events(
        self,
        envelopes: dict[str, LeadEnvelope],
        errors: dict[str, Exception],
        outcome: StoreOutcome,
        time_left: Callable[[], float] | None,
    ) -> dict[str, Exception]:
        """The committed rows' events; the records whose events went nowhere come back (their rows stay)."""
        stored = {message_id: e for message_id, e in envelopes.items() if message_id not in errors}
        try:
            self.summary.events = self._after_commit(list(stored.values()), outcome, time_left)
        except Exception as error:  # a bug in the lane must not lose an event: the records come back
            self.summary.events = LaneOutcome(not_handed_off=[str(e.lead_id) for e in stored.values()])
            self.summary.events.error = type(error).__name__
        unsent = set(self.summary.events.not_handed_off)
        failure = EventsNotHandedOff(
            "stored; its LeadStored event went neither to EventBridge nor to the hand-off queue"
        )
        return {message_id: failure for message_id, e in stored.items() if str(e.lead_id) in unsent}


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]

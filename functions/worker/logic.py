"""Turn one SQS batch into one transaction, and report exactly the records that failed."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.contract import LeadEnvelope, parse_envelope
from functions.worker.repository import StoreOutcome


class RejectedByDatabase(Exception):
    """The database refused this lead's row (e.g. a constraint); it goes back, then to the DLQ."""


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

    def seconds_since_oldest_received(self, now: datetime) -> float | None:
        if self.oldest_received_at is None:
            return None
        return max(0.0, (now - self.oldest_received_at).total_seconds())


class StoringBatchProcessor(BatchProcessor):
    """Powertools' SQS `BatchProcessor`, with the store moved out of the per-record loop.

    Each record is parsed on its own (a bad one is reported in `batchItemFailures` and does not
    touch the others); then every good record is stored in ONE transaction with ONE statement.
    If that store fails, every good record of the batch is reported failed, to be retried.
    """

    def __init__(self, store_batch: Callable[[Sequence[LeadEnvelope]], StoreOutcome]) -> None:
        # Whole-batch failures are returned as failures, not raised: the answer stays exact.
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._store_batch = store_batch
        self.summary = BatchSummary()

    def _prepare(self) -> None:
        super()._prepare()
        self.summary = BatchSummary(received=len(self.records))

    def process(self) -> list[tuple]:
        results = super().process()
        envelopes = [result for status, result, _ in results if status == "success"]
        if envelopes:
            self.summary.oldest_received_at = min(e.received_at for e in envelopes).astimezone(UTC)
            try:
                outcome = self._store_batch(envelopes)
            except Exception as error:  # any failure to commit means: retry the whole batch
                self.summary.store_error = type(error).__name__
                self._fail_all_successes()
            else:
                self.summary.inserted = outcome.inserted
                self.summary.duplicates = outcome.duplicates
                if outcome.rejected:
                    self._fail_rejected(results, outcome.rejected)
        self.summary.failed = [
            FailedRecord(message.message_id, _reason(error)) for message, error in zip(self.fail_messages, self.exceptions, strict=True)
        ]
        return results

    def _fail_rejected(self, results: list[tuple], rejected: dict[str, str]) -> None:
        for status, envelope, raw_record in results:
            reason = rejected.get(str(envelope.lead_id)) if status == "success" else None
            if reason is None:
                continue
            error = RejectedByDatabase(f"the database refused the row: {reason}")
            self._fail_success(raw_record, (type(error), error, None))

    def _fail_all_successes(self) -> None:
        exception = sys.exc_info()
        for raw_record in list(self.success_messages):
            self._fail_success(raw_record, exception)

    def _fail_success(self, raw_record: dict, exception: tuple) -> None:
        """A record that parsed but could not be stored: reported in batchItemFailures after all."""
        self.success_messages.remove(raw_record)
        self.failure_handler(record=SQSRecord(raw_record), exception=exception)


def _reason(exception_info: tuple) -> str:
    error = exception_info[1]
    return f"{type(error).__name__}: {error}"[:300]

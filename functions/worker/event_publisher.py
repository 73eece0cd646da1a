"""The only code in the worker that calls EventBridge (PutEvents) and the events hand-off queue (SQS).

What EventBridge does not take (a failed entry or call) goes to the durable hand-off queue for the relay, so an
EventBridge outage neither loses an event nor fails a stored lead; after a failed call the publisher goes
straight to the queue for a while, so the drain never waits on it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config

from functions.worker.lead_events import (
    entry_lead_id,
    put_events_requests,
)
from functions.worker.round_trip_deadline import RESPONSE_RESERVE_SECONDS

# A short leash: the worker holds a database writer slot while it publishes.
EVENTS_CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "total_max_attempts": 2},
    user_agent="leadpipe-worker",
)
# SQS is where the leads come from: if it does not answer, the records come back anyway.
HAND_OFF_CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "total_max_attempts": 3},
    user_agent="leadpipe-worker",
)
# After a PutEvents call failed as a whole, batches go straight to the hand-off queue this long.
PUT_EVENTS_PAUSE_SECONDS = 30.0
# The longest one PutEvents call may take with that client: each attempt's timeouts, and the standard mode's
# back-off before each retry (2^(n-1) s at most before the n-th). Lambda ending the invocation inside it would
# send the whole batch back, its stored records included.
_ATTEMPTS = EVENTS_CLIENT_CONFIG.retries["total_max_attempts"]
PUT_EVENTS_LONGEST_SECONDS = _ATTEMPTS * (
    EVENTS_CLIENT_CONFIG.connect_timeout + EVENTS_CLIENT_CONFIG.read_timeout
) + sum(2 ** (retry - 1) for retry in range(1, _ATTEMPTS))
# With less left than this, the rest goes straight to the hand-off queue: the call, then the store's own reserve
# to hand off and answer.
TIME_NEEDED_FOR_PUT_EVENTS_SECONDS = PUT_EVENTS_LONGEST_SECONDS + RESPONSE_RESERVE_SECONDS
# SendMessageBatch: 10 messages, 256 KiB together; PutEvents' own grouping (10 entries, under 256 KB) fits it.
SQS_MAX_BATCH_BYTES = 256 * 1024


@dataclass
class PublishOutcome:
    """What became of one batch's events: on the bus, in the hand-off queue, or neither (by lead_id)."""

    published: int = 0
    handed_off: int = 0
    not_handed_off: list[str] = field(default_factory=list)
    put_events_error: str | None = None  # the error class of a failed call or of failed entries


class EventBusPublisher:
    """PutEvents in requests EventBridge accepts; failed entries are retried once, then given back."""

    def __init__(
        self,
        events: Any,
        *,
        pause_seconds: float = PUT_EVENTS_PAUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._events = events
        self._pause_seconds = pause_seconds
        self._clock = clock
        self._paused_until = 0.0

    def put_events(
        self, entries: Sequence[dict[str, Any]], time_left: Callable[[], float] | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Send `entries`; the ones EventBridge did not take (in order) and why (None if all went). With
        `time_left` (the invocation's seconds left), no call starts that Lambda could end half-way."""
        if not entries:
            return [], None
        if self._clock() < self._paused_until:
            return list(entries), "PutEventsPaused"
        failed: list[dict[str, Any]] = []
        error: str | None = None
        requests = list(put_events_requests(entries))
        for index, request in enumerate(requests):
            if time_left is not None and time_left() < TIME_NEEDED_FOR_PUT_EVENTS_SECONDS:
                failed.extend(entry for rest in requests[index:] for entry in rest)
                return failed, "NoTimeForPutEvents"
            try:
                rejected, reason = self._put_with_one_retry(request)
            except Exception as call_error:
                self._paused_until = self._clock() + self._pause_seconds
                failed.extend(entry for rest in requests[index:] for entry in rest)
                return failed, type(call_error).__name__
            failed.extend(rejected)
            error = error or reason
        return failed, error

    def _put_with_one_retry(self, request: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
        # Each response entry matches the request entry at the same index; a failed one has an ErrorCode
        # and must be sent again (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html).
        reason = None
        for _attempt in range(2):
            response = self._events.put_events(Entries=request)
            if not response.get("FailedEntryCount"):
                return [], reason
            results = response["Entries"]
            reason = next(r["ErrorCode"] for r in results if r.get("ErrorCode"))
            request = [entry for entry, result in zip(request, results, strict=True) if result.get("ErrorCode")]
        return request, reason


class HandOffQueue:
    """The durable queue for events EventBridge did not take; each message is one PutEvents entry."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Queue `entries`; the ones SQS did not accept (after one more try)."""
        refused: list[dict[str, Any]] = []
        for chunk in _sqs_batches(entries):
            left = chunk
            for _attempt in range(2):
                left = self._send_batch(left)
                if not left:
                    break
            refused.extend(left)
        return refused

    def _send_batch(self, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            response = self._sqs.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "MessageBody": json.dumps(entry, ensure_ascii=False)}
                    for i, entry in enumerate(chunk)
                ],
            )
        except Exception:
            return chunk
        return [chunk[int(failure["Id"])] for failure in response.get("Failed", [])]


class LeadStoredPublisher:
    """Publish after the commit; hand off what EventBridge did not take; report what neither took."""

    def __init__(self, bus: EventBusPublisher, hand_off: HandOffQueue | None) -> None:
        self._bus = bus
        self._hand_off = hand_off

    def publish(
        self, entries: Sequence[dict[str, Any]], time_left: Callable[[], float] | None = None
    ) -> PublishOutcome:
        failed, error = self._bus.put_events(entries, time_left)
        outcome = PublishOutcome(published=len(entries) - len(failed), put_events_error=error)
        if not failed:
            return outcome
        refused = failed if self._hand_off is None else self._hand_off.send(failed)
        outcome.handed_off = len(failed) - len(refused)
        outcome.not_handed_off = [entry_lead_id(entry) for entry in refused]
        return outcome


def _sqs_batches(entries: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """SendMessageBatch takes 10 messages of at most 256 KiB together; an entry is under the same limit,
    and its message adds only the JSON keys around it, so PutEvents' own grouping fits, with a margin."""
    margin = 1024
    batches: list[list[dict[str, Any]]] = []
    for request in put_events_requests(entries):
        size = sum(len(json.dumps(e, ensure_ascii=False).encode()) for e in request)
        if size + margin < SQS_MAX_BATCH_BYTES:
            batches.append(request)
        else:  # rare: near the limit, one message per call
            batches.extend([entry] for entry in request)
    return batches

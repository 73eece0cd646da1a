"""The local event source mapping keeps Lambda's batch size and batching window: a batch is never
bigger than batch_size, and within the window the poller keeps gathering instead of invoking."""

from __future__ import annotations

import threading
from typing import Any

from leadpipe.local.poller import EventSourceSettings, SqsEventSourcePoller

BOUNDED_WAIT_SECONDS = 30


class TrickleQueue:
    """An SQS stand-in: `ready` messages at once, then at most `per_receive` per receive call."""

    def __init__(self, ready: int, per_receive: int = 10) -> None:
        self._messages = [{"MessageId": f"m{i}", "ReceiptHandle": f"h{i}", "Body": "{}"} for i in range(ready)]
        self._per_receive = per_receive
        self._lock = threading.Lock()
        self.receives = 0
        self.deleted: list[str] = []

    def add(self, count: int) -> None:
        with self._lock:
            start = len(self._messages) + len(self.deleted)
            self._messages += [
                {"MessageId": f"m{start + i}", "ReceiptHandle": f"h{start + i}", "Body": "{}"} for i in range(count)
            ]

    def receive_message(self, *, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        with self._lock:
            self.receives += 1
            taken = self._messages[: min(MaxNumberOfMessages, self._per_receive)]
            del self._messages[: len(taken)]
        return {"Messages": taken}

    def delete_message_batch(self, *, Entries: list[dict[str, str]], **_: Any) -> dict[str, Any]:
        with self._lock:
            self.deleted += [e["ReceiptHandle"] for e in Entries]
        return {"Successful": Entries}


def run_until(queue: TrickleQueue, settings: EventSourceSettings, records_expected: int) -> list[int]:
    """Batch sizes the worker was invoked with, once `records_expected` records were handled."""
    batches: list[int] = []
    done = threading.Event()

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        batches.append(len(event["Records"]))
        if sum(batches) >= records_expected:
            done.set()
        return {"batchItemFailures": []}

    poller = SqsEventSourcePoller(queue, settings, invoke)
    poller.start()
    try:
        assert done.wait(BOUNDED_WAIT_SECONDS), f"only {sum(batches)} of {records_expected} records invoked"
    finally:
        poller.stop()
    return batches


def event_source(batch_size: int, window_seconds: float) -> EventSourceSettings:
    return EventSourceSettings(
        queue_url="q",
        queue_arn="arn:aws:sqs:eu-west-1:123456789012:q",
        region="eu-west-1",
        batch_size=batch_size,
        max_batching_window_seconds=window_seconds,
        max_concurrency=1,
    )


def test_a_batch_never_exceeds_batch_size() -> None:
    # Given 57 messages waiting and a batch size of 25 (more than one SQS receive of 10)
    queue = TrickleQueue(ready=57)
    # When one poller drains them
    batches = run_until(queue, event_source(batch_size=25, window_seconds=0.5), records_expected=57)
    # Then the worker saw full batches of 25 and the remainder, and everything invoked was deleted
    assert batches == [25, 25, 7]
    assert len(queue.deleted) == 57


def test_within_the_window_the_poller_gathers_before_invoking() -> None:
    # Given a queue that hands out one message per receive, and 4 messages
    queue = TrickleQueue(ready=4, per_receive=1)
    # When the batching window is far longer than gathering them takes (Lambda invokes once the batch size is met
    # or the window ends, whichever comes first, so a full batch does not sit out the window:
    # https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html#invocation-eventsourcemapping-batching)
    batches = run_until(queue, event_source(batch_size=4, window_seconds=BOUNDED_WAIT_SECONDS), records_expected=4)
    # Then they arrive in one invocation, not four
    assert batches == [4]


def test_without_a_window_the_poller_invokes_with_what_one_receive_returned() -> None:
    # Given the same trickling queue
    queue = TrickleQueue(ready=4, per_receive=1)
    # When there is no batching window
    batches = run_until(queue, event_source(batch_size=10, window_seconds=0), records_expected=4)
    # Then each receive is invoked at once, as Lambda does with a window of 0
    assert batches == [1, 1, 1, 1]

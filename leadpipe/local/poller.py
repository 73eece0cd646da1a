"""Lambda's SQS event source mapping, on one machine.

`max_concurrency` pollers each invoke the worker with a real SQS event and delete what succeeded; records in
`batchItemFailures` reappear after the visibility timeout, as in AWS. `pause()` / `resume()` are the mapping's
Enabled flag (the drain breaker's); a `gate` is the drain governor's cap below `max_concurrency`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leadpipe.local.drain_governor import WriterGate

SQS_MAX_RECEIVE = 10
PARTIAL_BATCH_PAUSE_SECONDS = 0.2  # between receives while a batch fills: fewer, fuller receives
IDLE_LONG_POLL_SECONDS = 1  # an idle poller waits on SQS instead of spinning
PAUSED_CHECK_SECONDS = 0.1  # how often a paused poller looks whether it may receive again


@dataclass(frozen=True)
class EventSourceSettings:
    queue_url: str
    queue_arn: str
    region: str
    batch_size: int
    max_batching_window_seconds: float
    max_concurrency: int


@dataclass
class PollerStats:
    """Counters the CLI reads for status and spike reports (thread-safe)."""

    invocations: int = 0
    records_deleted: int = 0
    records_failed: int = 0
    function_errors: int = 0
    busy_pollers: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def to_sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One received message in the shape Lambda hands the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class SqsEventSourcePoller:
    """Runs `max_concurrency` polling threads until `stop()`."""

    def __init__(
        self,
        sqs: Any,
        settings: EventSourceSettings,
        invoke: Callable[[dict[str, Any]], dict[str, Any]],
        on_batch_failed: Callable[[], None] | None = None,
        gate: WriterGate | None = None,
    ):
        self._sqs = sqs
        self._settings = settings
        self._invoke = invoke
        self._on_batch_failed = on_batch_failed
        self._gate = gate
        self._stopping = threading.Event()
        self._receiving = threading.Event()
        self._receiving.set()
        self._in_cycle = 0  # pollers inside a receive-invoke-delete cycle
        self._cycles = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.stats = PollerStats()
        # message id -> latest receipt handle of every message received and not (yet) deleted:
        # on shutdown they are made visible again, so the queue snapshot keeps them.
        self._held: dict[str, str] = {}
        self._held_lock = threading.Lock()

    def start(self) -> None:
        for index in range(self._settings.max_concurrency):
            thread = threading.Thread(target=self._poll, args=(index,), name=f"leadpipe-poller-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop_soon(self) -> None:
        """Ask every poller to stop after the batch it holds, without waiting (`stop` waits)."""
        self._stopping.set()

    def stop(self) -> None:
        """Let every poller finish the batch it holds, then return."""
        self.stop_soon()
        for thread in self._threads:
            thread.join()
        self._threads.clear()

    def held_receipt_handles(self) -> list[str]:
        """Receipt handles of messages a poller received and did not delete (failed, or the delete did)."""
        with self._held_lock:
            return list(self._held.values())

    def pause(self) -> None:
        """Receive nothing more; a poller holding a batch still invokes and deletes it."""
        self._receiving.clear()

    def resume(self) -> None:
        self._receiving.set()

    @property
    def receiving(self) -> bool:
        return self._receiving.is_set()

    def wait_until_idle(self, timeout: float) -> bool:
        """After `pause()`: True once no poller is receiving or holding a batch (False on timeout)."""
        with self._cycles:
            return self._cycles.wait_for(lambda: self._in_cycle == 0, timeout)

    def _poll(self, index: int = 0) -> None:
        while not self._stopping.is_set():
            if not self._receiving.wait(PAUSED_CHECK_SECONDS):
                continue
            if self._gate is not None and not self._gate.may_write(index):
                self._stopping.wait(PAUSED_CHECK_SECONDS)
                continue
            with self._cycles:
                self._in_cycle += 1
            try:
                # Checked again once counted: a pause between the wait and here is then never missed.
                whole_batch_failed = self._receiving.is_set() and self._cycle()
            finally:
                with self._cycles:
                    self._in_cycle -= 1
                    self._cycles.notify_all()
            if whole_batch_failed:
                self._report_failed_batch()
            if self._gate is not None:
                self._stopping.wait(
                    self._gate.pause_for(threading.current_thread().name)
                )  # outside the cycle: a pause never waits for it

    def _cycle(self) -> bool:
        """One receive-invoke-delete cycle; True when every record of the batch failed."""
        try:
            messages = self._gather_batch()
        except Exception:  # SQS briefly unreachable: back off, as the real poller does
            time.sleep(1)
            return False
        if not messages:
            return False
        return self._process(messages)

    def _gather_batch(self) -> list[dict[str, Any]]:
        """Up to batch_size messages: the window starts with the first message, as in Lambda."""
        settings = self._settings
        batch: list[dict[str, Any]] = []
        deadline = 0.0
        while len(batch) < settings.batch_size:
            received = self._sqs.receive_message(
                QueueUrl=settings.queue_url,
                MaxNumberOfMessages=min(SQS_MAX_RECEIVE, settings.batch_size - len(batch)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0 if batch else IDLE_LONG_POLL_SECONDS,
            ).get("Messages", [])
            if not batch:
                if not received:
                    return batch  # idle
                deadline = time.monotonic() + settings.max_batching_window_seconds
            batch.extend(received)
            if time.monotonic() >= deadline or self._stopping.is_set() or not self._receiving.is_set():
                break
            if len(received) < SQS_MAX_RECEIVE:
                time.sleep(min(PARTIAL_BATCH_PAUSE_SECONDS, max(0.0, deadline - time.monotonic())))
        return batch

    def _process(self, messages: list[dict[str, Any]]) -> bool:
        settings = self._settings
        event = {"Records": [to_sqs_record(m, settings.queue_arn, settings.region) for m in messages]}
        with self._held_lock:
            self._held.update((m["MessageId"], m["ReceiptHandle"]) for m in messages)
        self.stats.add(busy_pollers=1)
        started = time.perf_counter()
        try:
            response = self._invoke(event)
        except Exception:
            # A function error: nothing is deleted, the whole batch comes back after the timeout.
            self.stats.add(invocations=1, function_errors=1, records_failed=len(messages))
            return True
        finally:
            self.stats.add(busy_pollers=-1)
        failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if self._gate is not None:
            self._gate.batch_done(threading.current_thread().name, time.perf_counter() - started, len(done))
        deleted = 0
        for start in range(0, len(done), SQS_MAX_RECEIVE):
            deleted += self._delete(done[start : start + SQS_MAX_RECEIVE])
        self.stats.add(invocations=1, records_deleted=deleted, records_failed=len(failed))
        return not done

    def _delete(self, chunk: list[dict[str, Any]]) -> int:
        """Delete one chunk; what SQS did not delete stays held and comes back (a stored lead's
        second delivery is a no-op in the worker). A failed call never stops the poller."""
        try:
            response = self._sqs.delete_message_batch(
                QueueUrl=self._settings.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        except Exception:
            return 0
        deleted = [chunk[int(entry["Id"])] for entry in response.get("Successful", [])]
        with self._held_lock:
            for message in deleted:
                self._held.pop(message["MessageId"], None)
        return len(deleted)

    def _report_failed_batch(self) -> None:
        """Every record failed (a database outage looks like this): let the breaker look before the next receive."""
        if self._on_batch_failed is not None:
            self._on_batch_failed()

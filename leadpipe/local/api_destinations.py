"""EventBridge API destinations, on one machine: a rule's events POSTed to a URL, never faster than the rate.

As in AWS, 401, 407, 409, 429, 5xx, a timeout and a refused connection are retried until `retry_attempts` or
`max_event_age_hours`, then dead-lettered; any other answer is dead-lettered at once
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-api-destinations.html).
The rate is stricter than AWS's, so that no one-second window at the endpoint ever sees more than `rate` requests.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from infra.destinations import EventDestination
from leadpipe.local.input_transformer import render

REQUEST_TIMEOUT_SECONDS = 5  # API destinations' client execution timeout
RETRIED_STATUSES = frozenset({401, 407, 409, 429})
LONGEST_BACK_OFF_SECONDS = 60
RECEIVE_WAIT_SECONDS = 1
SHORT_POLL_PAUSE_SECONDS = 0.05  # between empty receives when not long polling: no busy loop


class RateLimit:
    """At most `per_second` requests in any one-second window, measured from answers to starts."""

    def __init__(self, per_second: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._answered: deque[float] = deque(maxlen=per_second)
        self._clock = clock

    def wait(self, stopping: threading.Event) -> bool:
        """Block until the next request may start; False if asked to stop first."""
        if len(self._answered) == self._answered.maxlen:
            pause = self._answered[0] + 1.0 - self._clock()
            if pause > 0 and stopping.wait(pause):
                return False
        return not stopping.is_set()

    def answered(self) -> None:
        self._answered.append(self._clock())


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)


class LocalApiDestination:
    """One destination's sender: its delivery queue -> the endpoint, its failures -> its DLQ."""

    def __init__(
        self,
        sqs: Any,
        destination: EventDestination,
        delivery_url: str,
        dead_letter_url: str,
        endpoint: str,
        echo: TextIO | None = None,
        *,
        receive_wait_seconds: int = RECEIVE_WAIT_SECONDS,
        longest_back_off_seconds: int = LONGEST_BACK_OFF_SECONDS,
    ) -> None:
        """`receive_wait_seconds`: SQS long polling (0 short-polls, so `stop` need not wait out a receive);
        `longest_back_off_seconds`: the cap on a retry's back-off (2 s, 4 s, ... doubling)."""
        self.destination = destination
        self.endpoint = endpoint
        self.stats = DeliveryStats()
        self._sqs = sqs
        self._delivery_url = delivery_url
        self._dead_letter_url = dead_letter_url
        self._echo = echo
        self._receive_wait = receive_wait_seconds
        self._longest_back_off = longest_back_off_seconds
        self._limit = RateLimit(destination.invocation_rate_per_second)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"leadpipe-destination-{destination.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop_soon(self) -> None:
        """Ask the sender to stop after the request it is making, without waiting (`stop` waits)."""
        self._stopping.set()

    def stop(self) -> None:
        self.stop_soon()
        self._thread.join(REQUEST_TIMEOUT_SECONDS + self._receive_wait + 5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._delivery_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=self._receive_wait,
                    AttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                self._stopping.wait(1)
                continue
            if not messages and self._receive_wait == 0:
                self._stopping.wait(SHORT_POLL_PAUSE_SECONDS)
            delivered = []
            for message in messages:
                if not self._limit.wait(self._stopping):
                    break
                if self._deliver(message):
                    delivered.append(message)
            self._delete(delivered)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        """One call for the batch's delivered events (what is not deleted comes back: at least once)."""
        if not messages:
            return
        try:
            self._sqs.delete_message_batch(
                QueueUrl=self._delivery_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        except Exception:
            return

    def _deliver(self, message: dict[str, Any]) -> bool:
        """Send one event; True when the endpoint took it (the caller deletes it)."""
        event = json.loads(message["Body"])
        attempts = int(message["Attributes"].get("ApproximateReceiveCount", "1"))
        age = time.time() - int(message["Attributes"].get("SentTimestamp", "0")) / 1000
        if age > self.destination.max_event_age_seconds:
            self._dead_letter(
                message, "MaximumEventAgeExceeded", f"older than {self.destination.max_event_age_hours} h"
            )
            return False
        body = render(self.destination.template, event).encode()
        status, error = self._post(body)
        self._limit.answered()
        if status is not None and 200 <= status < 300:
            self.stats.add(delivered=1)
            return True
        retried = status is None or status in RETRIED_STATUSES or status >= 500
        if not retried or attempts > self.destination.retry_attempts:
            self._dead_letter(message, f"HTTP {status}" if status else "NetworkError", error)
            return False
        self.stats.add(retried=1)
        back_off = min(self._longest_back_off, 2**attempts)
        self._sqs.change_message_visibility(
            QueueUrl=self._delivery_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=back_off
        )
        return False

    def _post(self, body: bytes) -> tuple[int | None, str]:
        request = urllib.request.Request(
            self.endpoint,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "X-Leadpipe-Destination": self.destination.name},
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                return response.status, ""
        except urllib.error.HTTPError as error:
            return error.code, str(error.reason)
        except OSError as error:  # refused, reset, timed out
            return None, type(error).__name__

    def _dead_letter(self, message: dict[str, Any], code: str, detail: str) -> None:
        # What an EventBridge DLQ message carries: the event, and why it was not delivered.
        self._sqs.send_message(
            QueueUrl=self._dead_letter_url,
            MessageBody=message["Body"],
            MessageAttributes={
                "ERROR_CODE": {"DataType": "String", "StringValue": code},
                "ERROR_MESSAGE": {"DataType": "String", "StringValue": detail or code},
                "TARGET_ARN": {"DataType": "String", "StringValue": f"local:api-destination/{self.destination.name}"},
            },
        )
        self._sqs.delete_message(QueueUrl=self._delivery_url, ReceiptHandle=message["ReceiptHandle"])
        self.stats.add(dead_lettered=1)
        if self._echo is not None:
            self._echo.write(f"{self.destination.name}: dead-lettered an event ({code})\n")

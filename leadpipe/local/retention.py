"""The retention of the local runtime: the same function as in AWS, on the same kind of schedule.

The retention handler runs in an execution environment of its own (a LambdaPool of one, as reserved
concurrency 1 gives it in AWS), once at start and then every `interval_seconds` (AWS: every hour).
What each run did is recorded in the database, where `leadpipe status` reads it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

logger = logging.getLogger(__name__)
SCHEDULED_EVENT = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


class Invoker(Protocol):
    def invoke(self, event: dict[str, Any], timeout: float | None = None) -> dict[str, Any]: ...


class LocalRetention:
    """Invokes the retention function on a schedule, never two runs at once."""

    def __init__(self, function: Invoker, interval_seconds: float, timeout_seconds: float) -> None:
        self._function = function
        self._interval = interval_seconds
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_run: dict[str, Any] | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leadpipe-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join()

    def run_now(self) -> dict[str, Any] | None:
        """One run, as a scheduled invocation; None when it failed (the database holds its record, the log why)."""
        with self._lock:
            try:
                self.last_run = self._function.invoke(SCHEDULED_EVENT, timeout=self._timeout)
            except Exception:  # a failed run must not stop the schedule; AWS invokes again next hour too
                logger.exception("retention run failed")
                self.last_run = None
            return self.last_run

    def _run(self) -> None:
        while True:  # a run at start, whatever comes next: a short-lived runtime still applies its retention
            self.run_now()
            if self._stopping.wait(self._interval):
                return

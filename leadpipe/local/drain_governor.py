"""The drain governor of the local runtime: the same decision as the probe function in AWS.

`WriterGate` is what the poller asks before each receive and after each batch; `LocalDrainGovernor` sets it every
`interval_seconds` with `functions.worker.governor.decide_writers`.
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from functions.worker.governor import (
    REASONS_KEPT,
    GovernorLimits,
    GovernorState,
    HealthSample,
    decide_writers,
    pacing,
    pause_after_batch,
)
from functions.worker.governor_switch import GOVERNOR_APPLICATION_NAME, other_active_sessions
from leadpipe.local.drain_breaker import write_atomically

STATE_FILE_NAME = "governor.json"
SAMPLES_PER_DECISION = 10  # pg_stat_activity looks within one decision period
LONGEST_PAUSE_SECONDS = 5.0  # a paced writer never waits longer between batches: the drain never starves

logger = logging.getLogger(__name__)


class WriterGate:
    """How many of the poller's writers may run, and how long each pauses after a batch (thread-safe)."""

    def __init__(self, cap: int, longest_pause_seconds: float = LONGEST_PAUSE_SECONDS) -> None:
        self._lock = threading.Lock()
        self._writers = float(cap)
        self._longest_pause = longest_pause_seconds
        self._last_batch_seconds: dict[Hashable, float] = {}
        self._seconds_per_row: list[float] = []

    @property
    def writers(self) -> float:
        with self._lock:
            return self._writers

    def set_writers(self, writers: float) -> None:
        with self._lock:
            self._writers = writers

    def may_write(self, index: int) -> bool:
        """Whether writer `index` (0-based) may receive a batch now."""
        return index < pacing(self.writers)[0]

    def batch_done(self, writer: Hashable, seconds: float, rows: int) -> None:
        with self._lock:
            self._last_batch_seconds[writer] = seconds
            if rows > 0:
                self._seconds_per_row.append(seconds / rows)

    def pause_for(self, writer: Hashable) -> float:
        """Seconds `writer` waits before its next receive, to keep to its share of the time."""
        _, duty = pacing(self.writers)
        with self._lock:
            last = self._last_batch_seconds.pop(writer, 0.0)
        return pause_after_batch(last, duty, self._longest_pause)

    def take_seconds_per_row(self) -> list[float]:
        with self._lock:
            taken, self._seconds_per_row = self._seconds_per_row, []
        return taken


@dataclass(frozen=True)
class WriterChange:
    at: str
    writers: float
    reason: str


class LocalDrainGovernor:
    """Drives `gate` from the database's health as the drain sees it."""

    def __init__(
        self,
        gate: WriterGate,
        limits: GovernorLimits,
        database_url: str,
        data_dir: Path,
        drain_receiving: Callable[[], bool],
        interval_seconds: float = 1.0,
    ) -> None:
        self._gate = gate
        self._limits = limits
        self._database_url = database_url
        self._state_file = data_dir / STATE_FILE_NAME
        self._receiving = drain_receiving
        self.interval_seconds = interval_seconds  # read at every look: a change applies from the next one
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: psycopg.Connection | None = None
        self.state = GovernorState(writers=float(limits.cap))
        self.reason = "starting at the cap"
        self.changes: list[WriterChange] = []

    def start(self) -> None:
        self._write_state()
        self._thread = threading.Thread(target=self._run, name="leadpipe-drain-governor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join()
        if self._connection is not None:
            self._connection.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.decide_once(self._sample_sessions())
            except Exception:  # a broken governor must not stop the drain: the gate keeps its last writers
                logger.exception("drain governor decision failed")
                self._stopping.wait(self.interval_seconds)

    def _sample_sessions(self) -> float | None:
        """The mean of SAMPLES_PER_DECISION looks over one period (None if the database cannot be asked)."""
        seen: list[float] = []
        for _ in range(SAMPLES_PER_DECISION):
            if self._stopping.wait(self.interval_seconds / SAMPLES_PER_DECISION):
                break
            try:
                others = other_active_sessions(self._monitor_connection())
            except psycopg.Error:  # the breaker speaks for a database that is away
                self._discard_connection()
                continue
            if others is not None:
                seen.append(others)
        return statistics.fmean(seen) if seen else None

    def decide_once(self, other_sessions: float | None) -> float:
        """One decision from the sessions seen and the batches the gate collected; applies and records it."""
        per_row = self._gate.take_seconds_per_row()
        sample = HealthSample(other_sessions, statistics.median(per_row) if per_row else None)
        decision = decide_writers(self.state, sample, self._limits, drain_receiving=self._receiving())
        if decision.writers != self.state.writers or decision.reason != self.reason:
            if decision.writers != self.state.writers:
                change = WriterChange(
                    datetime.now(UTC).isoformat(timespec="milliseconds"), decision.writers, decision.reason
                )
                self.changes = [*self.changes, change][-REASONS_KEPT:]
                logger.info("drain writers %s: %s", decision.writers, decision.reason)
            self.state, self.reason = decision.state, decision.reason
            self._gate.set_writers(decision.writers)
            self._write_state()
        self.state = decision.state  # the baselines learn even when the writers stay
        return decision.writers

    def _monitor_connection(self) -> psycopg.Connection:
        if self._connection is None or self._connection.closed or self._connection.broken:
            self._connection = psycopg.connect(
                self._database_url, autocommit=True, connect_timeout=2, application_name=GOVERNOR_APPLICATION_NAME
            )
        return self._connection

    def _discard_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None

    def _write_state(self) -> None:
        running, duty = pacing(self.state.writers)
        write_atomically(
            self._state_file,
            json.dumps(
                {
                    "writers": self.state.writers,
                    "cap": self._limits.cap,
                    "floor": self._limits.floor,
                    "running_writers": running,
                    "duty": round(duty, 3),
                    "reason": self.reason,
                    "changes": [asdict(c) for c in self.changes],
                }
            ),
        )


def read_local_governor_state(data_dir: Path) -> dict[str, object] | None:
    """What the running local governor decided last (None: no governor, e.g. it is turned off)."""
    path = data_dir / STATE_FILE_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

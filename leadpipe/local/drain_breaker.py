"""The drain breaker of the local runtime: the same decision as the probe function in AWS.

A thread probes the database every `interval_seconds` (and at once when the poller reports a
batch in which every record failed), reads the operator's pause file, decides with
`functions.worker.drain.decide`, and pauses or resumes the poller. It writes what it decided
to `<data_dir>/drain.json` for `leadpipe status` and `leadpipe drain status`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from functions.worker.drain import DrainDecision, decide, parse_pause_record
from functions.worker.drain_switch import database_answers

PAUSE_FILE_NAME = "drain-pause.json"  # written by `leadpipe drain pause`, removed by `resume`
STATE_FILE_NAME = "drain.json"  # written by the runtime: what the breaker decided last
PROBE_CONNECT_TIMEOUT_SECONDS = 2
IDLE_WAIT_SECONDS = 60  # for pollers to finish the batch they hold before the state says "stopped"

logger = logging.getLogger(__name__)


class PausableSource(Protocol):
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def wait_until_idle(self, timeout: float) -> bool: ...


def probe_database(database_url: str, leads_table: str, answer_within_seconds: float) -> bool:
    """The AWS probe's own check (connects, leads table not locked, a heartbeat write commits), with a short connect
    timeout; a connected database silent for `answer_within_seconds` (the probe's round-trip limit) counts as away."""
    return database_answers(
        database_url,
        leads_table,
        connect_timeout_seconds=PROBE_CONNECT_TIMEOUT_SECONDS,
        answer_within_seconds=answer_within_seconds,
    )


def write_atomically(path: Path, text: str) -> None:
    """Readers never see half a file: write beside it, then rename over it."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


class LocalDrainBreaker:
    """Drives `source` (the poller) from probes of the database and the operator's pause file."""

    def __init__(
        self, source: PausableSource, probe: Callable[[], bool], data_dir: Path, interval_seconds: float = 1.0
    ) -> None:
        self._source = source
        self._probe = probe
        self._pause_file = data_dir / PAUSE_FILE_NAME
        self._state_file = data_dir / STATE_FILE_NAME
        self._interval = interval_seconds
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.decision: DrainDecision | None = None  # the last decision written to the state file
        self._noted: DrainDecision | None = None  # the last decision applied, logged and added to `transitions`
        self.since: str | None = None
        self.transitions: list[tuple[str, str]] = []  # (UTC time, state entered), for drills and status

    def start(self) -> None:
        self.check_now()
        self._thread = threading.Thread(target=self._run, name="leadpipe-drain-breaker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread:
            self._thread.join()

    def check_now(self) -> DrainDecision | None:
        """Probe, decide and apply now; never raises (a poller thread calls it)."""
        try:
            with self._lock:
                return self._check()
        except Exception:  # a broken breaker must not kill the poller; the next tick tries again
            logger.exception("drain breaker check failed")
            return None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if not self._stopping.is_set():
                self.check_now()

    def _check(self) -> DrainDecision:
        pause = parse_pause_record(self._pause_file.read_text(encoding="utf-8") if self._pause_file.is_file() else None)
        # A paused drain needs no probe: nothing would change until the operator resumes.
        decision = decide(database_answers=pause is not None or self._probe(), pause=pause)
        # A change from what was last applied, or one the state file does not say yet (its write failed)
        changed = decision != self._noted or self.decision is None or decision != self.decision
        if not decision.receiving:
            self._source.pause()
            if changed:
                # Recorded only once nothing is being received, so `drain pause` returning means it.
                self._source.wait_until_idle(IDLE_WAIT_SECONDS)
        try:
            if changed:
                self._record(decision)
        finally:
            # After the record, so a lead stored after a hold is never seen while the state still says held;
            # but even when the record cannot be written: a stale status line must not keep leads from their rows.
            if decision.receiving:
                self._source.resume()
        return decision

    def _record(self, decision: DrainDecision) -> None:
        if decision != self._noted:  # once per change applied, however many ticks a failing write is retried on
            self.since = datetime.now(UTC).isoformat(timespec="milliseconds")
            self.transitions.append((self.since, decision.state.value))
            logger.warning("drain %s", decision.state.value)
            self._noted = decision
        # The file first: whoever sees the new decision finds `leadpipe status` saying it too.
        write_atomically(self._state_file, json.dumps({**decision.as_dict(), "since": self.since}))
        self.decision = decision


def read_local_drain_state(data_dir: Path) -> dict[str, object]:
    """What the running local breaker decided last (as written to drain.json)."""
    path = data_dir / STATE_FILE_NAME
    if not path.is_file():  # a runtime from before the breaker, or one still starting
        return {"state": "unknown", "receiving": True, "pause": None, "since": None}
    return json.loads(path.read_text(encoding="utf-8"))

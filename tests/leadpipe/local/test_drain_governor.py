"""The local runtime's drain governor against a real PostgreSQL with a synthetic competing load.

No timing assertions: each step waits (with a generous liveness limit) for the governor to react.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from functions.worker.governor import GovernorLimits
from functions.worker.governor_switch import other_active_sessions
from leadpipe.local.drain_governor import STATE_FILE_NAME, LocalDrainGovernor, WriterGate

LIVENESS_SECONDS = 60  # how long a step may take on a loaded machine before the test gives up


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + LIVENESS_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


@contextmanager
def competing_load(uri: str, sessions: int) -> Iterator[None]:
    """`sessions` connections of another application, each running one short statement after another."""
    stop = threading.Event()

    def run() -> None:
        with psycopg.connect(uri, autocommit=True, application_name="main-app") as connection:
            while not stop.is_set():
                connection.execute("SELECT pg_sleep(0.05)")

    threads = [threading.Thread(target=run, daemon=True) for _ in range(sessions)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def test_the_governor_yields_to_a_competing_load_and_takes_the_cap_back_after_it(leads_db, tmp_path) -> None:
    # Given the runtime's governor over a gate capped at 2 writers, deciding every 0.2 s, the drain receiving
    gate = WriterGate(cap=2)
    limits = GovernorLimits(floor=0.25, cap=2, busy_sessions=1.0, latency_tolerance=0.5)
    governor = LocalDrainGovernor(gate, limits, leads_db.uri, tmp_path, lambda: True, interval_seconds=0.2)
    governor.start()
    try:
        assert gate.writers == 2
        # When another application keeps 3 sessions busy
        with competing_load(leads_db.uri, sessions=3):
            wait_until(lambda: gate.writers == limits.floor, "the writers to reach the floor")
            # Then the governor went down to the floor, and says why
            state = json.loads((tmp_path / STATE_FILE_NAME).read_text())
            assert state["writers"] == 0.25 and state["running_writers"] == 1 and state["duty"] == 0.25
            assert state["reason"].startswith("main application busy")
            down = [change["writers"] for change in state["changes"]]
            assert down == sorted(down, reverse=True) and down[-1] == 0.25
            assert not gate.may_write(1) and gate.may_write(0)
        # When the load stops
        wait_until(lambda: gate.writers == limits.cap, "the writers to return to the cap")
        # Then the governor is back at the cap, one step at a time, and both writers may run
        state = json.loads((tmp_path / STATE_FILE_NAME).read_text())
        assert [change["writers"] for change in state["changes"]][-4:] == [0.75, 1.25, 1.75, 2.0]
        assert state["reason"] == "healthy: at the cap" or state["reason"] == "healthy: one step up"
        assert gate.may_write(0) and gate.may_write(1)
    finally:
        governor.stop()


def test_the_drains_own_sessions_are_not_the_main_application(leads_db) -> None:
    # Given a worker session and a governor session, each running a statement
    with psycopg.connect(leads_db.uri, autocommit=True, application_name="leadpipe-worker") as worker:
        thread = threading.Thread(target=lambda: worker.execute("SELECT pg_sleep(0.5)"))
        thread.start()
        with psycopg.connect(leads_db.uri, autocommit=True, application_name="leadpipe-governor") as monitor:
            time.sleep(0.1)
            # When the governor counts the other active sessions
            others = other_active_sessions(monitor)
        thread.join()
    # Then neither the worker nor the governor itself is counted
    assert others == 0.0


def test_a_breaker_hold_takes_the_writers_to_zero(leads_db, tmp_path) -> None:
    # Given a governor whose drain the breaker holds
    gate = WriterGate(cap=2)
    limits = GovernorLimits(floor=0.25, cap=2, busy_sessions=1.0, latency_tolerance=0.5)
    governor = LocalDrainGovernor(gate, limits, leads_db.uri, tmp_path, lambda: False, interval_seconds=0.2)
    # When it decides once
    writers = governor.decide_once(other_sessions=0.0)
    # Then no writer may run
    assert writers == 0 and not gate.may_write(0)
    assert json.loads((tmp_path / STATE_FILE_NAME).read_text())["reason"].startswith("held")

"""A client-side deadline on a database round trip, for what the server cannot time out itself.

`statement_timeout` and `connect_timeout` never end a round trip the server did not receive: RDS Proxy
waiting to borrow a connection (ConnectionBorrowTimeout, 120 s by default), a half-open TCP path, a commit
waiting for a synchronous standby. Without this the worker would wait until Lambda kills it, uncounted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from types import TracebackType

import psycopg

# Past statement_timeout: the server's own cancel (57014) and its answer arrive before the client gives up.
ROUND_TRIP_MARGIN_SECONDS = 2.0
# Of the invocation, kept to answer `batchItemFailures` and print the metrics after a round trip gave up.
RESPONSE_RESERVE_SECONDS = 2.0
# Even an invocation almost out of time gets a real try rather than none.
SHORTEST_ROUND_TRIP_SECONDS = 0.5


def round_trip_seconds(limit_seconds: float, time_left_seconds: float | None) -> float:
    """How long the next round trip may wait: `limit_seconds`, but never past the invocation's end less a reserve."""
    if time_left_seconds is None:
        return limit_seconds
    return max(SHORTEST_ROUND_TRIP_SECONDS, min(limit_seconds, time_left_seconds - RESPONSE_RESERVE_SECONDS))


def invocation_round_trip_seconds(time_left_seconds: float | None, fallback_seconds: float | None) -> float | None:
    """How long the worker's next round trip may wait: all the invocation has left but the reserve to answer.

    Not statement_timeout plus a margin: through RDS Proxy a healthy statement may first wait to borrow a
    connection. `fallback_seconds` when there is no invocation clock (a script, a test).
    """
    if time_left_seconds is None:
        return fallback_seconds
    return max(SHORTEST_ROUND_TRIP_SECONDS, time_left_seconds - RESPONSE_RESERVE_SECONDS)


def time_for_another_round_trip(time_left_seconds: float | None) -> bool:
    """Whether a round trip started now could still get its shortest try and leave the reserve to answer."""
    return time_left_seconds is None or time_left_seconds >= RESPONSE_RESERVE_SECONDS + SHORTEST_ROUND_TRIP_SECONDS


class RoundTripDeadline:
    """While open, shuts `connection`'s socket if the round trips inside have not finished within `seconds`.

    The waiting call then fails at once with `psycopg.OperationalError` and `expired` is true; `seconds=None`:
    no deadline. Not a cancel request: that opens a second connection down the same stalled path.
    """

    def __init__(self, connection: psycopg.Connection, seconds: float | None) -> None:
        self.seconds = seconds
        self.expired = False
        self._connection = connection

    def __enter__(self) -> RoundTripDeadline:
        if self.seconds is not None:
            _watchdog().arm(self, time.monotonic() + self.seconds)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.seconds is not None:
            _watchdog().disarm(self)  # from here on, a late expiry leaves the socket alone

    def expire(self) -> None:
        """Called by the watchdog, under its lock, only while this deadline is armed."""
        self.expired = True
        shut_down_socket(self._connection)


class _Watchdog:
    """One daemon thread per process expires the armed deadlines (cheaper than a thread per round trip)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._armed: dict[int, tuple[float, RoundTripDeadline]] = {}
        threading.Thread(target=self._run, name="round-trip-deadline", daemon=True).start()

    def arm(self, deadline: RoundTripDeadline, at: float) -> None:
        with self._changed:
            self._armed[id(deadline)] = (at, deadline)
            self._changed.notify()

    def disarm(self, deadline: RoundTripDeadline) -> None:
        with self._changed:
            self._armed.pop(id(deadline), None)  # no wake-up needed: the thread finds nothing due and waits on

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for key, (at, deadline) in list(self._armed.items()):
                    if at <= now:
                        del self._armed[key]
                        deadline.expire()
                next_at = min((at for at, _ in self._armed.values()), default=None)
                self._changed.wait(None if next_at is None else next_at - now)


_watchdog_of_process: _Watchdog | None = None
_watchdog_lock = threading.Lock()


def _watchdog() -> _Watchdog:
    """This process's watchdog, started on first use."""
    global _watchdog_of_process
    with _watchdog_lock:
        if _watchdog_of_process is None:
            _watchdog_of_process = _Watchdog()
        return _watchdog_of_process


def _forget_watchdog_in_forked_child() -> None:
    # Threads do not survive fork, and the lock may have been held by one that did not come along.
    global _watchdog_of_process, _watchdog_lock
    _watchdog_of_process, _watchdog_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_watchdog_in_forked_child)


def shut_down_socket(connection: psycopg.Connection) -> None:
    """End the connection's TCP (or Unix) stream both ways, from any thread, without waiting on the network."""
    try:
        descriptor = connection.pgconn.socket
    except psycopg.OperationalError:
        return  # already closed: nothing waits on it
    # A duplicate descriptor: shutdown acts on the shared socket, and closing our copy leaves libpq's own intact.
    # OSError: the peer already ended it.
    with socket.socket(fileno=os.dup(descriptor)) as duplicate, contextlib.suppress(OSError):
        duplicate.shutdown(socket.SHUT_RDWR)

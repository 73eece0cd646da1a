"""A client-side deadline on a database round trip: the limit that holds when the server cannot enforce its own.

`statement_timeout` runs on the server and `connect_timeout` covers only the connect. Neither ends a
round trip the server never receives: RDS Proxy authenticates the client itself, then waits up to
ConnectionBorrowTimeout (default 120 s, AWS RDS API `ConnectionPoolConfiguration`) to borrow a database
connection for the first statement; a half-open TCP path (a NAT or security group dropping the flow)
answers nothing at all. Without a deadline of its own the worker would wait until Lambda kills it, and
count no `DatabaseUnavailable`.
"""

from __future__ import annotations

import os
import socket
import threading
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


class RoundTripDeadline:
    """While open, shuts `connection`'s socket if the round trips inside have not finished within `seconds`.

    The waiting call then fails at once with `psycopg.OperationalError` and `expired` is true. Shutting the
    socket needs no network and cannot block. A cancel request (`cancel_safe`) was not used: it opens a
    second connection to the same host -- the proxy that is stalling, or a path that answers nothing -- and
    a query that never reached the server has nothing to cancel. A statement that did reach it was already
    ended by `statement_timeout`, which the deadline outlasts by ROUND_TRIP_MARGIN_SECONDS.
    `seconds=None`: no deadline.
    """

    def __init__(self, connection: psycopg.Connection, seconds: float | None) -> None:
        self.seconds = seconds
        self.expired = False
        self._connection = connection
        self._lock = threading.Lock()
        self._finished = False
        self._timer: threading.Timer | None = None
        if seconds is not None:
            self._timer = threading.Timer(seconds, self._expire)
            self._timer.daemon = True  # never keeps a Lambda environment or a test run alive

    def __enter__(self) -> RoundTripDeadline:
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        with self._lock:  # once finished, a late timer leaves the socket alone
            self._finished = True
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            shut_down_socket(self._connection)


def shut_down_socket(connection: psycopg.Connection) -> None:
    """End the connection's TCP (or Unix) stream both ways, from any thread, without waiting on the network."""
    try:
        descriptor = connection.pgconn.socket
    except psycopg.OperationalError:
        return  # already closed: nothing waits on it
    # A duplicate descriptor: shutdown acts on the shared socket, and closing our copy leaves libpq's own intact.
    with socket.socket(fileno=os.dup(descriptor)) as duplicate:
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the peer already ended it

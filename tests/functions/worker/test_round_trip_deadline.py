"""The client-side deadline's arithmetic and its one action (shutting the socket), without a database."""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace

import pytest

from functions.worker.round_trip_deadline import (
    RESPONSE_RESERVE_SECONDS,
    ROUND_TRIP_MARGIN_SECONDS,
    SHORTEST_ROUND_TRIP_SECONDS,
    RoundTripDeadline,
    invocation_round_trip_seconds,
    round_trip_seconds,
    time_for_another_round_trip,
)
from functions.worker.settings import WorkerSettings


@pytest.mark.parametrize(
    ("limit", "time_left", "expected"),
    [
        (12.0, None, 12.0),  # no invocation to fit in (a test, a script): the limit alone
        (12.0, 60.0, 12.0),  # plenty of time left: the limit
        (12.0, 6.0, 6.0 - RESPONSE_RESERVE_SECONDS),  # little time left: what is left, less the reserve to answer
        (12.0, 1.0, SHORTEST_ROUND_TRIP_SECONDS),  # almost none left: still one real try
    ],
)
def test_round_trip_seconds_fit_the_limit_and_the_invocation(
    limit: float, time_left: float | None, expected: float
) -> None:
    assert round_trip_seconds(limit, time_left) == expected


@pytest.mark.parametrize(
    ("time_left", "fallback", "expected"),
    [
        (None, 12.0, 12.0),  # no invocation clock (a script, a test): the bounded fallback
        (None, None, None),  # nor a fallback: no deadline
        (
            30.0,
            12.0,
            30.0 - RESPONSE_RESERVE_SECONDS,
        ),  # a 30 s invocation: all of it but the reserve, past the fallback
        (1.0, 12.0, SHORTEST_ROUND_TRIP_SECONDS),  # almost none left: still one real try
    ],
)
def test_the_workers_round_trip_may_take_what_the_invocation_has_left(
    time_left: float | None, fallback: float | None, expected: float | None
) -> None:
    # Given a worker's round trip, with or without the invocation's clock  Then it waits at most what the invocation
    # can spare
    assert invocation_round_trip_seconds(time_left, fallback) == expected


@pytest.mark.parametrize(
    ("time_left", "expected"),
    [
        (None, True),
        (30.0, True),
        (RESPONSE_RESERVE_SECONDS + SHORTEST_ROUND_TRIP_SECONDS, True),
        (2.4, False),
        (-1.0, False),
    ],
)
def test_a_round_trip_starts_only_with_time_for_its_shortest_try_and_the_reserve(
    time_left: float | None, expected: bool
) -> None:
    assert time_for_another_round_trip(time_left) is expected


def test_the_limit_comes_from_the_statement_timeout() -> None:
    # Given the worker's statement timeout  Then the client waits that long, plus the margin for the server's own answer
    settings = WorkerSettings.from_env(
        {"DATABASE_URL": "postgresql://x@localhost/db", "DB_STATEMENT_TIMEOUT_SECONDS": "7"}
    )
    assert settings.round_trip_limit_seconds == 7 + ROUND_TRIP_MARGIN_SECONDS


def connection_on(sock: socket.socket) -> SimpleNamespace:
    """What the deadline reads of a psycopg connection: its socket's descriptor."""
    return SimpleNamespace(pgconn=SimpleNamespace(socket=sock.fileno()))


def test_an_expired_deadline_wakes_a_reader_blocked_on_a_silent_peer() -> None:
    # Given a client blocked reading from a peer that never answers
    client, silent_peer = socket.socketpair()
    read: list[bytes] = []
    with client, silent_peer:
        # When the deadline passes while it waits
        with RoundTripDeadline(connection_on(client), 0.2) as deadline:
            reader = threading.Thread(target=lambda: read.append(client.recv(1)))
            reader.start()
            reader.join(10)  # a bound: without the deadline it would wait for ever
        # Then the read ended (end of stream) and the deadline says it expired
        assert not reader.is_alive() and read == [b""]
        assert deadline.expired


def test_a_round_trip_that_finished_in_time_keeps_its_connection() -> None:
    # Given a deadline that the round trip beat
    client, peer = socket.socketpair()
    with client, peer:
        with RoundTripDeadline(connection_on(client), 0.2) as deadline:
            pass
        # When its time would have passed
        threading.Event().wait(0.5)
        # Then the socket still carries data both ways
        peer.sendall(b"Z")
        client.sendall(b"Q")
        assert (client.recv(1), peer.recv(1), deadline.expired) == (b"Z", b"Q", False)

"""Database "outages" that still answer `SELECT 1`: the breaker and the page must see them too.

The probe asks `SELECT 1`; the worker calls an outage only a lost/refused connection (class 08, 57P0x,
53300). A database that answers but cannot take writes -- read-only after a failover, disk full (53100),
a table held by a long lock (55P03) -- passes the probe and fails every batch as "not an outage": no
DatabaseUnavailable (no page, no trip), max_receive_count receives later the leads are in the DLQ and
the DLQ alarm is the first page (prod: 5 receives x 181 s visibility = ~905 s, before the 900 s x 3 queue-age alarm).
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from functions.worker import handler as worker
from functions.worker.drain_switch import database_answers
from tests.events import emitted_metrics, sqs_event
from tests.functions.worker.conftest import make_envelope


def test_a_read_only_database_holds_the_drain_or_pages(
    own_server, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # Given the writer became read-only (failover to a replica / the old writer rejoined as a reader)
    with psycopg.connect(own_server.uri, autocommit=True) as admin:
        dbname = admin.info.dbname
        admin.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    monkeypatch.setenv("DATABASE_URL", own_server.uri)
    response = worker.lambda_handler(sqs_event([make_envelope("ro@example.com").to_message_body()]), lambda_context)
    metrics = emitted_metrics(capsys.readouterr().out)
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    probe_holds = not database_answers(own_server.uri, "leadpipe.leads")
    # A database outage costs time, never leads: the drain holds (probe) or the outage is counted (page + alarm).
    # Then both see it: the worker counts an outage (the page, and the alarm that triggers the probe)
    # and the probe holds the drain, so no receive is spent while it lasts
    assert metrics.get("DatabaseUnavailable") == 1.0, metrics
    assert probe_holds


def test_a_table_locked_for_long_holds_the_drain_or_pages(
    own_server, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # Given the DB owners run a long ALTER TABLE / VACUUM FULL / CREATE INDEX on the leads table
    monkeypatch.setenv("DATABASE_URL", own_server.uri)
    monkeypatch.setenv("DB_LOCK_TIMEOUT_SECONDS", "1")
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with psycopg.connect(own_server.uri) as admin:
            admin.execute("LOCK TABLE leadpipe.leads IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert locked.wait(10)
    try:
        response = worker.lambda_handler(
            sqs_event([make_envelope("lock@example.com").to_message_body()]), lambda_context
        )
        metrics = emitted_metrics(capsys.readouterr().out)
        probe_holds = not database_answers(own_server.uri, "leadpipe.leads")
    finally:
        release.set()
        holder.join(10)
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    # Then both see it: the worker counts an outage (the page, and the alarm that triggers the probe)
    # and the probe holds the drain, so no receive is spent while it lasts
    assert metrics.get("DatabaseUnavailable") == 1.0, metrics
    assert probe_holds

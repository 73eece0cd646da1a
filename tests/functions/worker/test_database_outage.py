"""A database outage costs time, never leads: the worker tells a real outage apart, pages, and rides it out.

Each test that takes a database down starts a PostgreSQL server of its own (the embedded one),
so stopping it touches no other test.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from functions.worker import handler as worker
from functions.worker.credentials import database_conninfo, session_timeouts
from functions.worker.repository import (
    ConnectionProvider,
    DatabaseUnavailable,
    LeadRepository,
    connect,
    is_database_unavailable,
)
from functions.worker.settings import WorkerSettings
from leadpipe.embedded_postgres import EmbeddedPostgres, start_embedded_postgres
from tests.conftest import LeadsDatabase
from tests.events import emitted_metrics, sqs_event
from tests.functions.worker.conftest import make_envelope, worker_summaries


def count_rows(uri: str, table: str = "leadpipe.leads") -> int:
    with psycopg.connect(uri, autocommit=True) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_a_stopped_database_emits_database_unavailable_and_the_batch_waits(
    own_server: EmbeddedPostgres, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # Given a worker that has stored a batch on its server, and keeps that connection
    monkeypatch.setenv("DATABASE_URL", own_server.uri)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT_SECONDS", "2")
    assert worker.lambda_handler(
        sqs_event([make_envelope("before@example.com").to_message_body()]), lambda_context
    ) == {"batchItemFailures": []}
    capsys.readouterr()
    # When the server is stopped (a real outage: its sessions end, new connections are refused)
    own_server.stop()
    batch = [make_envelope(f"during{i}@example.com").to_message_body() for i in range(3)]
    response = worker.lambda_handler(sqs_event(batch), lambda_context)
    # Then every record goes back to the queue, and the batch is counted as "database unavailable"
    assert response == {"batchItemFailures": [{"itemIdentifier": f"msg-{i}"} for i in range(3)]}
    output = capsys.readouterr().out
    metrics = emitted_metrics(output)
    assert metrics["DatabaseUnavailable"] == 1.0
    assert metrics["RecordsFailed"] == 3.0 and metrics["LeadsStored"] == 0.0
    [summary] = worker_summaries(output)
    assert summary["database_unavailable"] is True and summary["store_error"] == "DatabaseUnavailable"
    # When the server is back, the same execution environment stores the batch on a fresh connection
    restarted = start_embedded_postgres(own_server.data_dir)
    assert worker.lambda_handler(sqs_event(batch, receive_count=2), lambda_context) == {"batchItemFailures": []}
    assert "DatabaseUnavailable" not in emitted_metrics(capsys.readouterr().out)
    assert count_rows(restarted.uri) == 4


def test_a_closed_port_is_unavailable_too(lambda_context: Any, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # Given a worker pointed at a TCP port nothing listens on (connection refused)
    monkeypatch.setenv("DATABASE_URL", "postgresql://leadpipe@127.0.0.1:1/leads")
    # When a batch arrives
    response = worker.lambda_handler(
        sqs_event([make_envelope("refused@example.com").to_message_body()]), lambda_context
    )
    # Then it is retried later and counted as an outage
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert emitted_metrics(capsys.readouterr().out)["DatabaseUnavailable"] == 1.0


def test_a_row_the_database_refuses_is_not_an_outage(
    leads_db: LeadsDatabase, lambda_context: Any, monkeypatch, capsys
) -> None:
    # Given a table rule that refuses one lead of the batch
    monkeypatch.setenv("DATABASE_URL", leads_db.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    with leads_db.connect() as admin:
        admin.execute(f"ALTER TABLE {leads_db.leads_table} ADD CONSTRAINT no_blocked CHECK (campaign <> 'BLOCKED')")
    bodies = [
        make_envelope("ok@example.com").to_message_body(),
        make_envelope("no@example.com", campaign="BLOCKED").to_message_body(),
    ]
    # When the worker handles it
    response = worker.lambda_handler(sqs_event(bodies), lambda_context)
    # Then the refused row fails alone, as RecordsFailed, and nobody is paged for an outage
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["RecordsFailed"] == 1.0 and metrics["LeadsStored"] == 1.0
    assert "DatabaseUnavailable" not in metrics


def test_a_terminated_session_is_retried_once_on_a_fresh_connection(
    leads_db: LeadsDatabase, lambda_context: Any, monkeypatch, capsys
) -> None:
    # Given a worker whose connection is open after a first batch
    monkeypatch.setenv("DATABASE_URL", leads_db.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    with leads_db.connect() as admin:
        [(test_began,)] = admin.execute("SELECT clock_timestamp()").fetchall()
    assert worker.lambda_handler(sqs_event([make_envelope("first@example.com").to_message_body()]), lambda_context) == {
        "batchItemFailures": []
    }
    # When the server ends that session between batches (restart, failover, an idle timeout)
    with leads_db.connect() as admin:
        [(ended,)] = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            # this test's worker: the one worker session started since the test began (its last statement
            # may be a COMMIT, which names no table)
            " WHERE application_name = 'leadpipe-worker' AND backend_start >= %s",
            (test_began,),
        ).fetchall()
    assert ended == 1
    batch = [make_envelope(f"next{i}@example.com").to_message_body() for i in range(3)]
    response = worker.lambda_handler(sqs_event(batch), lambda_context)
    # Then the batch is stored, not failed, and no outage is reported
    assert response == {"batchItemFailures": []}
    assert leads_db.count_rows() == 4
    assert "DatabaseUnavailable" not in emitted_metrics(capsys.readouterr().out)


def test_the_session_carries_the_configured_timeouts(leads_db: LeadsDatabase) -> None:
    # Given the worker's settings for a direct connection
    settings = WorkerSettings.from_env(
        {
            "DATABASE_URL": leads_db.uri,
            "DB_STATEMENT_TIMEOUT_SECONDS": "7",
            "DB_LOCK_TIMEOUT_SECONDS": "3",
            "WORKER_TIMEOUT_SECONDS": "30",
        }
    )
    # When it connects as the worker does
    with connect(database_conninfo(settings)) as connection:
        shown = {
            name: connection.execute(f"SHOW {name}").fetchone()[0]
            for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "application_name")
        }
    # Then the server enforces them from the first statement on
    assert shown == {
        "statement_timeout": "7s",
        "lock_timeout": "3s",
        "idle_in_transaction_session_timeout": "30s",
        "application_name": "leadpipe-worker",
    }


@pytest.mark.parametrize("through_proxy", [False, True], ids=["direct", "per-transaction-as-through-rds-proxy"])
def test_an_insert_stuck_behind_a_migrations_lock_ends_before_the_function(
    leads_db: LeadsDatabase, through_proxy: bool
) -> None:
    # Given the worker's repository with a 1 s lock timeout, set at session start or per transaction
    settings = WorkerSettings.from_env(
        {"DATABASE_URL": leads_db.uri, "DB_LOCK_TIMEOUT_SECONDS": "1", "DB_STATEMENT_TIMEOUT_SECONDS": "20"}
    )
    if through_proxy:
        settings = settings.model_copy(update={"db_proxy_endpoint": "proxy.example"})
    connections = ConnectionProvider(lambda: connect(database_conninfo(settings), prepare_statements=not through_proxy))
    repository = LeadRepository(
        connections, leads_db.leads_table, transaction_timeouts=session_timeouts(settings) if through_proxy else None
    )
    # And a migration holding the table's lock
    migration = psycopg.connect(leads_db.uri)
    migration.execute(f"LOCK TABLE {leads_db.leads_table} IN ACCESS EXCLUSIVE MODE")
    outcome: list[BaseException] = []

    def store() -> None:
        try:
            repository.store_batch([make_envelope("stuck@example.com")])
        except Exception as error:
            outcome.append(error)

    # When a batch is stored meanwhile
    attempt = threading.Thread(target=store)
    attempt.start()
    attempt.join(15)  # a bound, not a timing assertion: without lock_timeout it would wait for the migration
    stuck = attempt.is_alive()
    migration.rollback()
    migration.close()
    attempt.join(15)
    # Then the INSERT gave up on its own and stored nothing. The lock timeout is no lost connection (no
    # retry at once), but every batch would fail alike: it is reported as the database being unavailable
    assert not stuck
    [error] = outcome
    assert isinstance(error, DatabaseUnavailable) and isinstance(error.__cause__, psycopg.errors.LockNotAvailable)
    assert not is_database_unavailable(error.__cause__)
    assert leads_db.count_rows() == 0
    # And no session state was left behind on the proxy path: the next transaction has the server defaults
    if through_proxy:
        assert connections.get().execute("SHOW lock_timeout").fetchone()[0] == "0"
        assert repository.store_batch([make_envelope("after@example.com")]).inserted == 1


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (psycopg.OperationalError("connection refused"), True),  # libpq's own failures carry no SQLSTATE
        (psycopg.errors.ConnectionTimeout("connect_timeout expired"), True),
        (psycopg.errors.AdminShutdown(), True),
        (psycopg.errors.ConnectionFailure(), True),  # SQLSTATE class 08
        (psycopg.errors.CannotConnectNow(), True),
        (psycopg.errors.TooManyConnections(), True),
        (psycopg.errors.QueryCanceled(), False),  # statement_timeout: the database answered
        (psycopg.errors.LockNotAvailable(), False),
        (psycopg.errors.CheckViolation(), False),
        (psycopg.errors.UndefinedTable(), False),
        (ValueError("not a database error"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_unavailability_is_told_by_error_type_and_sqlstate(error: BaseException, unavailable: bool) -> None:
    assert is_database_unavailable(error) is unavailable


def test_a_refused_connection_raises_database_unavailable_from_the_repository() -> None:
    # Given a repository whose database refuses connections
    repository = LeadRepository(
        ConnectionProvider(lambda: connect("postgresql://x@127.0.0.1:1/none?connect_timeout=2")), "leadpipe.leads"
    )
    # When a batch is stored, Then the cause is kept and the kind is clear
    with pytest.raises(DatabaseUnavailable) as caught:
        repository.store_batch([make_envelope("x@example.com")])
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)

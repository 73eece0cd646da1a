"""A database that takes logins, reads and locks but commits nothing fails every batch: the probe, which commits a
real write (the heartbeat row, migration 0003), holds the drain.

PostgreSQL's statement_timeout does not cover a commit that waits for a synchronous standby: "Queries being
stuck because of synchronous replication are already committed locally on the primary when they are waiting
for the standby ... So statement_timeout has no effect on in such situations" (Michael Paquier, pgsql-general,
"Synchronous Commit, WAL archiving and statement_timeout",
https://www.postgrespro.com/list/id/CAB7nPqQ=9dnJ7z69FbqSxQo6xJLLutkmmqoYJgrwTR4DwhQOdg@mail.gmail.com).
An RDS Multi-AZ DB cluster commits only once a reader has acknowledged ("Reader DB instances must acknowledge a
change from the writer DB instance before the change can be committed", RDS User Guide,
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/multi-az-db-clusters-create-instance-read-replica.html).

So the worker's client-side deadline is what ends every batch there: each fails as DatabaseNotAnswering and burns
one receive. A probe that never commits (SHOW transaction_read_only; LOCK TABLE ... NOWAIT; ROLLBACK, as it was)
never waits: it answered "running", the drain was never held, and after max_receive_count receives every lead of the
outage went to the DLQ. The same holds for a database out of disk (53100) or refusing writes near xid
wraparound (54000): reads and locks pass, every write fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from functions.worker import handler as worker
from functions.worker import probe_handler
from functions.worker.drain_switch import database_answers
from tests.conftest import LeadsDatabase
from tests.events import emitted_metrics, sqs_event
from tests.functions.worker.conftest import ShortLambdaContext, make_envelope, worker_summaries

JOIN_BOUND_SECONDS = 20  # a bound on the wait, not a timing assertion


def _set_standby(uri: str, names: str | None) -> None:
    with psycopg.connect(uri, autocommit=True) as connection:
        if names is None:
            connection.execute("ALTER SYSTEM RESET synchronous_standby_names")
        else:
            connection.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
        connection.execute("SELECT pg_reload_conf()")
    wanted = names or ""
    for _ in range(100):  # the reload reaches new sessions within moments
        with psycopg.connect(uri, autocommit=True) as connection:
            if connection.execute("SHOW synchronous_standby_names").fetchone()[0] == wanted:
                return
        time.sleep(0.05)
    raise AssertionError("synchronous_standby_names did not take effect")


@pytest.fixture
def standby_away(leads_db: LeadsDatabase) -> Iterator[None]:
    """The primary requires a synchronous standby that is not there: every commit waits for it."""
    _set_standby(leads_db.uri, "lost_standby")
    try:
        yield
    finally:
        _set_standby(leads_db.uri, None)  # releases the waiting commits too


def test_commits_that_never_finish_fail_the_batch_and_the_probe_holds_the_drain_until_they_do(
    deployed_mapping: Any,
    leads_db: LeadsDatabase,
    standby_away: None,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    monkeypatch.setenv("DATABASE_URL", leads_db.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_SECONDS", "1")  # the probe's round-trip limit: 1 s + 2 s
    monkeypatch.setenv("DB_LOCK_TIMEOUT_SECONDS", "1")
    # When the worker stores a batch while commits cannot finish, in an invocation with 3.5 s left (deadline: 3.5 s -
    # 2 s reserve)
    result: list[Any] = []
    batch = [make_envelope(f"waiting{i}@example.com").to_message_body() for i in range(3)]
    context = ShortLambdaContext(remaining_ms=3_500)
    thread = threading.Thread(
        target=lambda: result.append(worker.lambda_handler(sqs_event(batch), context)), daemon=True
    )
    thread.start()
    thread.join(JOIN_BOUND_SECONDS)
    assert not thread.is_alive(), "the worker waited past its own deadline"
    # Then the batch failed as an outage (each record burns a receive) ...
    assert result[0] == {"batchItemFailures": [{"itemIdentifier": f"msg-{i}"} for i in range(3)]}
    output = capsys.readouterr().out
    assert emitted_metrics(output)["DatabaseUnavailable"] == 1.0
    [summary] = worker_summaries(output)
    assert summary["store_error"] == "DatabaseNotAnswering"
    # ... and the breaker's probe, run on that DatabaseUnavailable alarm, must hold the drain: every batch would fail
    # the same way (with time enough left that only its own round-trip limit, 1 s + 2 s, ends its wait)
    answer = probe_handler.lambda_handler({"detail-type": "CloudWatch Alarm State Change"}, lambda_context)
    assert (answer["state"], deployed_mapping()) == ("held_by_breaker", "Disabled"), (
        "the probe reports a database whose commits never finish as answering: the drain keeps running and "
        "every lead of the outage burns receives into the DLQ"
    )
    # When commits finish again (the standby is back: here, none is required)
    _set_standby(leads_db.uri, None)
    # Then the next probe resumes the drain
    answer = probe_handler.lambda_handler({"detail-type": "Scheduled Event"}, lambda_context)
    assert (answer["state"], deployed_mapping()) == ("running", "Enabled")


@pytest.fixture
def writes_refused_as_disk_full(leads_db: LeadsDatabase) -> None:
    """Every write to the leads table and the heartbeat fails with 53100 (disk_full), as on a full volume; reads
    pass."""
    schema = leads_db.leads_table.split(".")[0]
    with leads_db.connect() as admin:
        admin.execute(
            f"CREATE FUNCTION {schema}.disk_full() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END $$"
        )
        for table in (leads_db.leads_table, f"{leads_db.leads_table}_heartbeat"):
            admin.execute(
                f"CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON {table} FOR EACH STATEMENT EXECUTE FUNCTION "
                f"{schema}.disk_full()"
            )


def test_a_database_out_of_disk_fails_the_batch_and_the_probe_holds_the_drain(
    deployed_mapping: Any,
    leads_db: LeadsDatabase,
    writes_refused_as_disk_full: None,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    # Given a database that takes logins, reads and locks but refuses every write with 53100 (disk full)
    monkeypatch.setenv("DATABASE_URL", leads_db.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    # When the worker stores a batch
    batch = [make_envelope(f"full{i}@example.com").to_message_body() for i in range(2)]
    response = worker.lambda_handler(sqs_event(batch), lambda_context)
    # Then it fails as an outage (retried, DatabaseUnavailable counted), not as poison
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-1"}]}
    output = capsys.readouterr().out
    assert emitted_metrics(output)["DatabaseUnavailable"] == 1.0
    # And the probe, whose heartbeat write is refused the same way, holds the drain
    answer = probe_handler.lambda_handler({"detail-type": "CloudWatch Alarm State Change"}, lambda_context)
    assert (answer["state"], deployed_mapping()) == ("held_by_breaker", "Disabled")


def test_a_healthy_probe_commits_its_heartbeat_row(leads_db: LeadsDatabase) -> None:
    # Given a migrated database (migration 0003 made the heartbeat table next to the leads table)
    heartbeat = f"{leads_db.leads_table}_heartbeat"
    # When the probe runs twice
    first = database_answers(leads_db.uri, leads_db.leads_table, answer_within_seconds=5.0)
    with leads_db.connect() as reader:
        [(first_at,)] = reader.execute(f"SELECT at FROM {heartbeat}").fetchall()
    second = database_answers(leads_db.uri, leads_db.leads_table, answer_within_seconds=5.0)
    # Then each answered by committing its write: still one row, whose time moved on (seen from another session)
    with leads_db.connect() as reader:
        rows = reader.execute(f"SELECT at FROM {heartbeat}").fetchall()
    assert (first, second, len(rows)) == (True, True, 1)
    assert rows[0][0] > first_at

"""Red team: a database whose commits hang (synchronous standby away) fails every batch, yet the probe says "running".

PostgreSQL's statement_timeout does not cover a commit that waits for a synchronous standby: "Queries being
stuck because of synchronous replication are already committed locally on the primary when they are waiting
for the standby ... So statement_timeout has no effect on in such situations" (Michael Paquier, pgsql-general,
"Synchronous Commit, WAL archiving and statement_timeout",
https://www.postgrespro.com/list/id/CAB7nPqQ=9dnJ7z69FbqSxQo6xJLLutkmmqoYJgrwTR4DwhQOdg@mail.gmail.com).
An RDS Multi-AZ DB cluster commits only once a reader has acknowledged ("Reader DB instances must acknowledge a
change from the writer DB instance before the change can be committed", RDS User Guide,
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/multi-az-db-clusters-create-instance-read-replica.html).

So the worker's new client-side deadline (statement timeout + 2 s) is what ends every batch there: each fails as
DatabaseNotAnswering and burns one receive. The probe's check (SHOW transaction_read_only; LOCK TABLE ... NOWAIT;
ROLLBACK) never commits, so it never waits: it answers "running", the drain is never held, and after
max_receive_count receives every lead of the outage goes to the DLQ. Invariant 8 ("while the database is away
the drain holds ... only poison goes to the DLQ") is broken.
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
from tests.conftest import LeadsDatabase
from tests.events import emitted_metrics, sqs_event
from tests.integration.test_database_outage import make_envelope, worker_summaries
from tests.unit.test_drain_breaker import deployed_mapping  # noqa: F401

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


def test_commits_that_never_finish_fail_every_batch_but_the_probe_keeps_the_drain_running(
    deployed_mapping: Any,  # noqa: F811
    leads_db: LeadsDatabase,
    standby_away: None,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    monkeypatch.setenv("DATABASE_URL", leads_db.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_SECONDS", "1")  # deadline 3 s
    monkeypatch.setenv("DB_LOCK_TIMEOUT_SECONDS", "1")
    # When the worker stores a batch while commits cannot finish
    result: list[Any] = []
    batch = [make_envelope(f"waiting{i}@example.com").to_message_body() for i in range(3)]
    thread = threading.Thread(target=lambda: result.append(worker.lambda_handler(sqs_event(batch), lambda_context)), daemon=True)
    thread.start()
    thread.join(JOIN_BOUND_SECONDS)
    assert not thread.is_alive(), "the worker waited past its own deadline"
    # Then the batch failed as an outage (each record burns a receive) ...
    assert result[0] == {"batchItemFailures": [{"itemIdentifier": f"msg-{i}"} for i in range(3)]}
    output = capsys.readouterr().out
    assert emitted_metrics(output)["DatabaseUnavailable"] == 1.0
    [summary] = worker_summaries(output)
    assert summary["store_error"] == "DatabaseNotAnswering"
    # ... and the breaker's probe, run on that DatabaseUnavailable alarm, must hold the drain: every batch would fail the same way
    answer = probe_handler.lambda_handler({"detail-type": "CloudWatch Alarm State Change"}, lambda_context)
    assert (answer["state"], deployed_mapping()) == ("held_by_breaker", "Disabled"), (
        "the probe reports a database whose commits never finish as answering: the drain keeps running and "
        "every lead of the outage burns receives into the DLQ"
    )

"""A healthy database behind a slow-to-borrow path stores the batch: the worker's deadline is the invocation's time
left.

Through RDS Proxy a client's transaction waits until the proxy can borrow a database connection: ConnectionBorrowTimeout
is "The number of seconds for a proxy to wait for a connection to become available in the connection pool. This
setting only applies when the proxy has opened its maximum number of connections and all connections are busy with
client sessions. Default: 120" (RDS API `ConnectionPoolConfiguration`; RDS User Guide, "RDS Proxy connection
considerations", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-connections.html) -- e.g. at peak,
when other clients share the proxy's pool. That wait is not part of the statement, so statement_timeout does not count
it. A
client-side deadline of statement timeout + 2 s did: a borrow wait of W seconds plus a healthy INSERT of S <
statement_timeout
seconds failed the batch as DatabaseNotAnswering whenever W + S > statement_timeout + 2, though the same batch commits
well
inside the function timeout. The probe's own check (SHOW, LOCK ... NOWAIT, ROLLBACK) takes W plus
milliseconds, passes, and keeps the drain running: every redelivery fails the same way, burns a receive and counts a
DatabaseUnavailable (a false page), and after max_receive_count the leads go to the DLQ although the database never
refused or lost anything (a database outage costs time, never leads). The worker's round trip now may take what the
invocation has left less the reserve to answer (functions/worker/round_trip_deadline.py).

Played here on 127.0.0.1: a proxy that forwards everything but holds the first statement of each session for
BORROW_WAIT seconds, and a statement-level trigger that makes the INSERT take INSERT_SECONDS (< statement_timeout).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from functions.worker import handler as worker
from functions.worker import probe_handler
from functions.worker.settings import WorkerSettings
from tests.conftest import LeadsDatabase
from tests.events import emitted_metrics, sqs_event
from tests.functions.worker.conftest import make_envelope, worker_summaries
from tests.stalling_proxy import StallingProxy, _Link

STATEMENT_TIMEOUT_SECONDS = 2  # the deadline: 2 + 2 = 4 s
INSERT_SECONDS = 1.5  # a healthy INSERT: well inside statement_timeout
BORROW_WAIT = 3.0  # the proxy borrowing a database connection for the session's first transaction


class BorrowWaitProxy(StallingProxy):
    """Forwards everything; the first client bytes after the login wait BORROW_WAIT seconds (a borrow)."""

    def __init__(self, postgres_uri: str) -> None:
        self._borrowed: set[int] = set()  # the links whose session already has its database connection
        super().__init__(postgres_uri)

    def before_forwarding(self, link: _Link) -> None:
        if id(link) not in self._borrowed:
            self._borrowed.add(id(link))
            time.sleep(BORROW_WAIT)


@pytest.fixture
def borrow_wait_path(leads_db: LeadsDatabase) -> Iterator[BorrowWaitProxy]:
    proxy = BorrowWaitProxy(leads_db.uri)
    yield proxy
    proxy.close()


@pytest.fixture
def slow_but_healthy_insert(leads_db: LeadsDatabase) -> None:
    schema = leads_db.leads_table.split(".")[0]
    with leads_db.connect() as admin:
        admin.execute(
            f"CREATE FUNCTION {schema}.busy() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN PERFORM pg_sleep({INSERT_SECONDS}); RETURN NULL; END $$"
        )
        admin.execute(
            f"CREATE TRIGGER busy BEFORE INSERT ON {leads_db.leads_table} FOR EACH STATEMENT EXECUTE FUNCTION "
            f"{schema}.busy()"
        )


def run_bounded(call: Any, bound: float = 30.0) -> Any:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(bound)
    assert not thread.is_alive(), "did not return within the bound"
    return result[0]


def test_a_healthy_database_behind_a_slow_borrow_stores_the_batch(
    leads_db: LeadsDatabase,
    borrow_wait_path: BorrowWaitProxy,
    slow_but_healthy_insert: None,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    monkeypatch.setenv("DATABASE_URL", borrow_wait_path.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_SECONDS", str(STATEMENT_TIMEOUT_SECONDS))
    monkeypatch.setenv("DB_LOCK_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("DB_PROXY_ENDPOINT", "proxy.example")  # as through RDS Proxy: timeouts per transaction
    # The probe, with the worker's settings on the same path, finds the database answering: the drain stays on
    worker_settings = WorkerSettings.from_env(
        {
            "DATABASE_URL": borrow_wait_path.uri,
            "LEADS_TABLE": leads_db.leads_table,
            "DB_STATEMENT_TIMEOUT_SECONDS": str(STATEMENT_TIMEOUT_SECONDS),
        }
    )
    assert run_bounded(lambda: probe_handler.probe_database(worker_settings, 30.0)) is True
    # When the worker stores a batch (the INSERT itself takes 1.5 s, inside its 2 s statement timeout)
    batch = [make_envelope(f"healthy{i}@example.com").to_message_body() for i in range(3)]
    response = run_bounded(lambda: worker.lambda_handler(sqs_event(batch), lambda_context))
    output = capsys.readouterr().out
    [summary] = worker_summaries(output)
    # Then it is stored: nothing refused it and nothing was lost; only the path was slow
    assert response == {"batchItemFailures": []}, (
        f"a healthy batch failed as {summary['store_error']} "
        f"(DatabaseUnavailable={emitted_metrics(output).get('DatabaseUnavailable')}) "
        "while the probe keeps the drain running: every redelivery fails the same way and burns a receive"
    )
    assert leads_db.count_rows() == 3 and "DatabaseUnavailable" not in emitted_metrics(output)

"""A database path that takes the connection and then answers nothing: on-call hears of it, no lead is lost.

Through RDS Proxy the proxy authenticates the worker itself, then waits up to ConnectionBorrowTimeout
(default 120 s: AWS RDS API reference, `ConnectionPoolConfiguration`; RDS User Guide, "RDS Proxy
connection considerations") to borrow a database connection for the first statement. statement_timeout
runs on the server and does not start; connect_timeout is long over. A half-open TCP path (a NAT or
security group dropping the flow) looks the same. Without a client-side deadline the worker waits until
Lambda ends it: the batch fails as a Lambda error, no DatabaseUnavailable is counted, nothing pages.
`StallingProxy` on 127.0.0.1 plays that path in front of the test PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from functions.worker import handler as worker
from functions.worker import probe_handler
from tests.conftest import LeadsDatabase
from tests.events import emitted_metrics, sqs_event
from tests.functions.worker.conftest import (
    ShortLambdaContext,
    make_envelope,
    worker_outage_datapoints,
    worker_summaries,
)
from tests.stalling_proxy import StallingProxy

# A bound on the wait, not a timing assertion: without a deadline the call would wait until the path recovers.
JOIN_BOUND_SECONDS = 20


@pytest.fixture
def stalling_path(leads_db: LeadsDatabase) -> Iterator[StallingProxy]:
    proxy = StallingProxy(leads_db.uri)
    yield proxy
    proxy.release()  # whatever a failed test left waiting ends too
    proxy.close()


def finishes_within_bound(call: Callable[[], Any]) -> tuple[bool, Any]:
    """Run `call` in a thread; (whether it returned within JOIN_BOUND_SECONDS, what it returned)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(JOIN_BOUND_SECONDS)
    return not thread.is_alive(), (result[0] if result else None)


@pytest.mark.parametrize("through_proxy", [False, True], ids=["direct", "per-transaction-as-through-rds-proxy"])
def test_a_stalled_database_path_fails_the_batch_as_unavailable_and_the_rerun_stores_it_once(
    leads_db: LeadsDatabase, stalling_path: StallingProxy, through_proxy: bool, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # Given a worker whose path to the database forwards the login, in invocations with 3.5 s left (deadline: 3.5 s -
    # 2 s reserve)
    lambda_context = ShortLambdaContext(remaining_ms=3_500)
    monkeypatch.setenv("DATABASE_URL", stalling_path.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("DB_LOCK_TIMEOUT_SECONDS", "1")
    if through_proxy:
        monkeypatch.setenv("DB_PROXY_ENDPOINT", "proxy.example")  # timeouts per transaction, as through RDS Proxy
    assert worker.lambda_handler(
        sqs_event([make_envelope("before@example.com").to_message_body()]), lambda_context
    ) == {"batchItemFailures": []}
    capsys.readouterr()
    # When the path stalls (a proxy waiting to borrow a connection) while the next batch is stored
    stalling_path.stall()
    batch = [make_envelope(f"stalled{i}@example.com").to_message_body() for i in range(3)]
    returned, response = finishes_within_bound(lambda: worker.lambda_handler(sqs_event(batch), lambda_context))
    # Then the worker gives up on its own, returns every record for a retry, and counts an outage (the page)
    assert returned, "the worker waited on a database path that answers nothing"
    assert response == {"batchItemFailures": [{"itemIdentifier": f"msg-{i}"} for i in range(3)]}
    output = capsys.readouterr().out
    metrics = emitted_metrics(output)
    assert metrics["DatabaseUnavailable"] == 1.0 and metrics["RecordsFailed"] == 3.0 and metrics["LeadsStored"] == 0.0
    [summary] = worker_summaries(output)
    assert summary["database_unavailable"] is True and summary["store_error"] == "DatabaseNotAnswering"
    # When the path recovers, what it held reaches the database after all, and the server ends that session
    assert stalling_path.wait_for_holding_clients_to_leave(JOIN_BOUND_SECONDS)
    stalling_path.release()
    assert stalling_path.wait_for_abandoned_sessions(JOIN_BOUND_SECONDS)
    late_rows = leads_db.count_rows() - 1
    if not through_proxy:
        # Direct, the batch goes by COPY in an explicit transaction: the path held its BEGIN, the COMMIT was never
        # sent, so nothing the worker gave up on commits late. (Through the proxy the whole INSERT may have been sent
        # and commit late: the rerun below stores it once either way.)
        assert late_rows == 0
    # And SQS delivers the batch again: nothing is stored twice, and no outage is counted
    assert worker.lambda_handler(sqs_event(batch, receive_count=2), lambda_context) == {"batchItemFailures": []}
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["LeadsStored"], metrics["DuplicatesSkipped"]) == (3.0 - late_rows, float(late_rows))
    assert "DatabaseUnavailable" not in metrics
    emails = [row["email"] for row in leads_db.rows()]
    assert emails == ["before@example.com", "stalled0@example.com", "stalled1@example.com", "stalled2@example.com"]


def test_the_deadline_never_outlasts_the_invocation(
    leads_db: LeadsDatabase, stalling_path: StallingProxy, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # Given a 60 s statement timeout (a 62 s deadline) but an invocation with 3.5 s left
    monkeypatch.setenv("DATABASE_URL", stalling_path.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_SECONDS", "60")
    context = ShortLambdaContext(remaining_ms=3_500)
    # When the path stalls as the batch is stored (here on the worker's first connection: the login still goes through)
    stalling_path.stall()
    returned, response = finishes_within_bound(
        lambda: worker.lambda_handler(sqs_event([make_envelope("late@example.com").to_message_body()]), context)
    )
    # Then the worker gives up inside what is left of the invocation (less a reserve to answer), and counts an outage
    assert returned, "the worker waited past the invocation's own end"
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert emitted_metrics(capsys.readouterr().out)["DatabaseUnavailable"] == 1.0


def test_the_probe_holds_the_drain_when_the_database_path_stalls(
    deployed_mapping: Any,
    leads_db: LeadsDatabase,
    stalling_path: StallingProxy,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given the breaker's probe, with the worker's settings, behind a path that forwards the login and then stalls
    monkeypatch.setenv("DATABASE_URL", stalling_path.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_SECONDS", "1")
    stalling_path.stall()
    # When the probe runs, with time enough left that only its own round-trip limit (1 s + 2 s) can end the wait
    returned, answer = finishes_within_bound(
        lambda: probe_handler.lambda_handler({"detail-type": "Scheduled Event"}, lambda_context)
    )
    # Then it reports the database as not answering instead of hanging: the drain is held and the outage counted
    assert returned, "the probe waited on a database path that answers nothing"
    assert (answer["state"], answer["switched"], deployed_mapping()) == ("held_by_breaker", True, "Disabled")
    printed = capsys.readouterr().out
    assert worker_outage_datapoints(printed) == [1.0]
    assert "database not answering" in [record.getMessage() for record in caplog.records]
    # When the path answers again, the next probe resumes the drain
    stalling_path.release()
    answer = probe_handler.lambda_handler({"detail-type": "Scheduled Event"}, lambda_context)
    assert (answer["state"], deployed_mapping()) == ("running", "Enabled")

"""The worker Lambda's batch answer for every mix of good and bad records, against a real PostgreSQL.

(These were unit tests with a fake store; the database in tests is now always a real one.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker import handler as worker
from functions.worker.logic import StoringBatchProcessor
from functions.worker.repository import ConnectionProvider, LeadRepository, StoreOutcome, connect
from tests.conftest import LeadsDatabase
from tests.events import emitted_metrics, sqs_event


def envelope_body(email: str = "a@example.com", **overrides: Any) -> str:
    envelope = LeadEnvelope(
        lead_id=uuid4(),
        received_at=datetime.now(UTC) - timedelta(seconds=30),
        source=Source(user_agent="test"),
        lead=Lead(email=email),
    )
    return json.dumps({**json.loads(envelope.to_message_body()), **overrides})


class StoreSpy:
    """Wraps the real repository's store_batch and records what each call was given."""

    def __init__(self, store_batch) -> None:
        self.calls: list[list[str]] = []
        self._store_batch = store_batch

    def __call__(self, envelopes: Sequence[LeadEnvelope], *, time_left=None) -> StoreOutcome:
        self.calls.append([e.lead.email for e in envelopes])
        return self._store_batch(envelopes, time_left=time_left)


@pytest.fixture
def store(leads_db: LeadsDatabase, monkeypatch: pytest.MonkeyPatch) -> StoreSpy:
    repository = LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table)
    spy = StoreSpy(repository.store_batch)
    processor = StoringBatchProcessor(spy)
    monkeypatch.setattr(worker, "get_processor", lambda: processor)
    return spy


def stored_emails(leads_db: LeadsDatabase) -> list[str]:
    return [row["email"] for row in leads_db.rows()]


def test_all_good_records_are_stored_in_one_call(store: StoreSpy, leads_db: LeadsDatabase, lambda_context: Any) -> None:
    # Given a batch of three valid envelopes
    bodies = [envelope_body(f"user{i}@example.com") for i in range(3)]
    # When the worker handles it
    response = worker.lambda_handler(sqs_event(bodies), lambda_context)
    # Then nothing failed, all three went to the store together, once, and are in the table
    assert response == {"batchItemFailures": []}
    assert store.calls == [["user0@example.com", "user1@example.com", "user2@example.com"]]
    assert stored_emails(leads_db) == ["user0@example.com", "user1@example.com", "user2@example.com"]


def test_bad_records_are_reported_and_good_ones_still_stored(
    store: StoreSpy, leads_db: LeadsDatabase, lambda_context: Any
) -> None:
    # Given good records mixed with every kind of poison
    bodies = [
        envelope_body("good1@example.com"),
        "this is not json",
        envelope_body("future@example.com", v=2),  # unknown envelope version
        envelope_body("good2@example.com"),
        envelope_body("bad@example.com", lead={"email": "not-an-email"}),
        json.dumps({"lead": "no version"}),
    ]
    # When the worker handles the batch
    response = worker.lambda_handler(sqs_event(bodies), lambda_context)
    # Then exactly the bad ones are reported, and the good ones were stored in one call
    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": "msg-1"},
            {"itemIdentifier": "msg-2"},
            {"itemIdentifier": "msg-4"},
            {"itemIdentifier": "msg-5"},
        ]
    }
    assert store.calls == [["good1@example.com", "good2@example.com"]]
    assert stored_emails(leads_db) == ["good1@example.com", "good2@example.com"]


def test_a_batch_of_only_poison_is_reported_whole_not_raised(
    store: StoreSpy, leads_db: LeadsDatabase, lambda_context: Any
) -> None:
    response = worker.lambda_handler(sqs_event(["{}", envelope_body(v=99)]), lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-1"}]}
    assert store.calls == []
    assert leads_db.count_rows() == 0


def test_an_unreachable_database_fails_every_record(lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a worker whose database refuses connections (a real closed port)
    monkeypatch.setenv("DATABASE_URL", "postgresql://leadpipe@127.0.0.1:1/leads")
    bodies = [envelope_body("a@example.com"), "poison", envelope_body("b@example.com")]
    # When the worker handles the batch
    response = worker.lambda_handler(sqs_event(bodies), lambda_context)
    # Then every record is reported failed, so SQS will deliver all of them again
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-1"}, {"itemIdentifier": "msg-2"}]
    }


def test_metrics_and_summary_per_batch(store: StoreSpy, lambda_context: Any, capsys) -> None:
    worker.lambda_handler(sqs_event([envelope_body("a@example.com"), "poison"]), lambda_context)
    output = capsys.readouterr().out
    metrics = emitted_metrics(output)
    assert (metrics["LeadsStored"], metrics["DuplicatesSkipped"], metrics["RecordsFailed"]) == (1.0, 0.0, 1.0)
    assert 30 <= metrics["IngestToStoreSeconds"] < 3600
    assert "DatabaseUnavailable" not in metrics
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [summary] = [line for line in lines if line.get("message") == "batch done"]
    assert (summary["received"], summary["inserted"], summary["database_unavailable"]) == (2, 1, False)
    assert summary["failed"][0]["message_id"] == "msg-1"
    assert "UnreadableEnvelope" in summary["failed"][0]["reason"]

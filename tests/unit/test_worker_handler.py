"""The worker Lambda's batch handling, with a recording fake in place of PostgreSQL.

The real database is exercised in tests/integration; here the point is the exact
`batchItemFailures` answer for every mix of good and bad records.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker import handler as worker
from functions.worker.logic import StoringBatchProcessor
from functions.worker.repository import StoreOutcome
from tests.conftest import REPO_ROOT
from tests.events import emitted_metrics, sqs_event


def envelope_body(email: str = "a@example.com", **overrides: Any) -> str:
    envelope = LeadEnvelope(
        lead_id=uuid4(),
        received_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        source=Source(user_agent="test"),
        lead=Lead(email=email),
    )
    return json.dumps({**json.loads(envelope.to_message_body()), **overrides})


class RecordingStore:
    """Stands in for LeadRepository.store_batch: records each call, can be told to fail."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[list[LeadEnvelope]] = []
        self.error = error

    def __call__(self, envelopes: Sequence[LeadEnvelope]) -> StoreOutcome:
        self.calls.append(list(envelopes))
        if self.error:
            raise self.error
        return StoreOutcome(inserted=len(envelopes), duplicates=0)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> RecordingStore:
    recording = RecordingStore()
    monkeypatch.setattr(worker, "get_processor", lambda: StoringBatchProcessor(recording))
    return recording


def test_all_good_records_are_stored_in_one_call(store: RecordingStore, lambda_context: Any) -> None:
    # Given a batch of three valid envelopes
    bodies = [envelope_body(f"user{i}@example.com") for i in range(3)]
    # When the worker handles it
    response = worker.lambda_handler(sqs_event(bodies), lambda_context)
    # Then nothing failed and all three went to the store together, once
    assert response == {"batchItemFailures": []}
    assert [[e.lead.email for e in call] for call in store.calls] == [
        ["user0@example.com", "user1@example.com", "user2@example.com"]
    ]


def test_bad_records_are_reported_and_good_ones_still_stored(store: RecordingStore, lambda_context: Any) -> None:
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
    assert [[e.lead.email for e in call] for call in store.calls] == [["good1@example.com", "good2@example.com"]]


def test_a_batch_of_only_poison_is_reported_whole_not_raised(store: RecordingStore, lambda_context: Any) -> None:
    response = worker.lambda_handler(sqs_event(["{}", envelope_body(v=99)]), lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-1"}]}
    assert store.calls == []


def test_store_failure_fails_every_good_record(store: RecordingStore, lambda_context: Any) -> None:
    # Given a database that refuses the transaction
    store.error = psycopg.OperationalError("connection refused")
    bodies = [envelope_body("a@example.com"), "poison", envelope_body("b@example.com")]
    # When the worker handles the batch
    response = worker.lambda_handler(sqs_event(bodies), lambda_context)
    # Then every record is reported failed, so SQS will deliver all of them again
    assert response == {
        "batchItemFailures": [{"itemIdentifier": "msg-1"}, {"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-2"}]
    }


def test_metrics_and_summary_per_batch(store: RecordingStore, lambda_context: Any, capsys) -> None:
    worker.lambda_handler(sqs_event([envelope_body("a@example.com"), "poison"]), lambda_context)
    output = capsys.readouterr().out
    metrics = emitted_metrics(output)
    assert (metrics["LeadsStored"], metrics["DuplicatesSkipped"], metrics["RecordsFailed"]) == (1.0, 0.0, 1.0)
    assert metrics["IngestToStoreSeconds"] > 0
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    [summary] = [line for line in lines if line.get("message") == "batch done"]
    assert (summary["received"], summary["inserted"]) == (2, 1)
    assert summary["failed"][0]["message_id"] == "msg-1"
    assert "UnreadableEnvelope" in summary["failed"][0]["reason"]


def test_worker_refuses_to_start_without_a_credential_source(lambda_context: Any) -> None:
    with pytest.raises(ValueError, match="exactly one of DATABASE_URL"):
        worker.lambda_handler(sqs_event([envelope_body()]), lambda_context)


def test_the_worker_freezes_what_its_cold_start_built() -> None:
    # In a fresh interpreter, as a new execution environment: nothing frozen before the import,
    # the handler module's objects (and its libraries') out of the collector's reach after it
    probe = (
        "import gc; before = gc.get_freeze_count(); import functions.worker.handler; "
        "print(before, gc.get_freeze_count())"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True)
    before, after = map(int, result.stdout.split())
    assert before == 0 and after > 10_000

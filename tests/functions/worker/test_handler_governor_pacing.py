"""In AWS the worker paces itself below 2 writers (AWS's least MaximumConcurrency), from the governor's record."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker import handler as worker
from functions.worker.governor_switch import worker_pause_seconds
from tests.conftest import TEST_REGION
from tests.events import sqs_event
from tests.moto_mock import mock_aws


def record(writers: float, cap: int) -> str:
    return json.dumps({"writers": writers, "baselines": [], "reason": "r", "cap": cap})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (record(0.25, 2), 0.7),  # a quarter writer of the mapping's 2: each busy an eighth of the time, 7x its batch
        (record(1.0, 2), 0.1),  # one writer's worth over 2: each busy half the time
        (record(2.0, 2), 0.0),  # at the cap: no pause
        (record(3.0, 6), 0.0),  # 3 writers: the mapping runs 3 at full speed
        (record(0.0, 2), 0.0),  # held by the breaker: nothing is received anyway
        ('{"writers": null}', 0.0),  # before the governor's first decision
        (None, 0.0),
    ],
)
def test_the_pause_is_the_writers_share_below_the_mappings_concurrency(text: str | None, expected: float) -> None:
    # Given a batch of 100 ms and 25 s left  When the pause is computed  Then it keeps the governor's share
    assert worker_pause_seconds(text, batch_seconds=0.1, seconds_left=25) == pytest.approx(expected)


def test_the_pause_never_runs_past_the_invocations_time_left() -> None:
    assert worker_pause_seconds(record(0.25, 2), batch_seconds=1.0, seconds_left=0.5) == 0.5
    assert worker_pause_seconds(record(0.25, 2), batch_seconds=1.0, seconds_left=-1) == 0.0


def test_the_worker_stores_the_batch_then_waits_its_share(
    leads_db: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    # Given a governed worker whose record allows a quarter writer (of the mapping's 2)
    with mock_aws():
        boto3.client("ssm", region_name=TEST_REGION).put_parameter(
            Name="/leadpipe/governor", Value=record(0.25, 2), Type="String"
        )
        monkeypatch.setenv("GOVERNOR_RECORD_PARAMETER", "/leadpipe/governor")
        monkeypatch.setenv("DATABASE_URL", leads_db.uri)
        monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
        pauses: list[float] = []
        monkeypatch.setattr(worker, "sleep", pauses.append)
        envelope = LeadEnvelope(
            lead_id=uuid.uuid4(), received_at=datetime.now(UTC), source=Source(), lead=Lead(email="a@example.com")
        )
        # When it handles a batch
        answer = worker.lambda_handler(sqs_event([envelope.to_message_body()]), lambda_context)
    # Then the lead is stored, and only then the worker waits: seven times the batch (an eighth duty)
    assert answer == {"batchItemFailures": []} and leads_db.count_rows() == 1
    assert len(pauses) == 1 and pauses[0] > 0

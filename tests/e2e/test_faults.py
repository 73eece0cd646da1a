"""Faults injected into the running local pipeline: every 2xx is stored exactly once or sits in the DLQ."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator

import pytest

from leadpipe.cli import main as leadpipe
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import (
    RunningPipeline,
    assert_logs_hold_no_personal_data,
    e2e_settings,
    http_request,
    start_pipeline,
    wait_for,
)


def post(pipeline: RunningPipeline, email: str) -> tuple[int, dict, dict]:
    answer = http_request(pipeline.info.api_url, "POST", json.dumps({"email": email, "campaign": "faults"}), {"Content-Type": "application/json"})
    return answer.status, answer.headers, answer.json()


@pytest.fixture
def patient_pipeline() -> Iterator[RunningPipeline]:
    """Visibility 3 s x 5 receives: a short outage must not send anything to the DLQ."""
    data_dir = REPO_ROOT / ".leadpipe" / "pytest" / f"faults-{uuid.uuid4().hex[:8]}"
    running = start_pipeline(data_dir, e2e_settings().model_copy(update={"visibility_timeout_seconds": 3, "max_receive_count": 5}))
    yield running
    running.pipeline.stop(drain_seconds=5)
    assert_logs_hold_no_personal_data(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


def test_queue_unavailable_answers_503_never_202_and_recovers(patient_pipeline: RunningPipeline) -> None:
    # Given SQS is down
    patient_pipeline.pipeline.stop_queue_service()
    answers = [post(patient_pipeline, f"sqs-down-{i}@example.com") for i in range(5)]
    # Then every request is told to retry later, and none is told it was accepted
    assert [status for status, _, _ in answers] == [503] * 5
    assert all(headers["retry-after"] == "5" for _, headers, _ in answers)
    assert {body["error"]["code"] for _, _, body in answers} == {"queue_unavailable"}
    # When SQS is back, the same ingest environments recover by themselves
    patient_pipeline.pipeline.start_queue_service()
    status, _, body = wait_for(lambda: (r := post(patient_pipeline, "sqs-back@example.com"))[0] == 202 and r, message="ingest recovered")
    wait_for(lambda: patient_pipeline.count("email = %s", ("sqs-back@example.com",)) == 1, message="stored after recovery")
    assert patient_pipeline.count("email LIKE %s", ("sqs-down-%",)) == 0  # refused leads were never half-stored


def test_short_database_outage_loses_nothing_duplicates_nothing_and_skips_the_dlq(patient_pipeline: RunningPipeline) -> None:
    # Given leads arriving while the database is down for a few seconds
    patient_pipeline.pipeline.stop_database()
    emails = [f"db-down-{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(200)]
    statuses = [post(patient_pipeline, email)[0] for email in emails]
    time.sleep(3)
    patient_pipeline.pipeline.start_database()
    # Then the form never noticed, and every lead is stored exactly once, none in the DLQ
    assert statuses == [202] * len(emails)
    wait_for(lambda: patient_pipeline.count("email LIKE %s", ("db-down-%",)) == len(emails), timeout=60, message="all stored")
    rows = patient_pipeline.rows("email LIKE %s", ("db-down-%",))
    assert len({r["email"] for r in rows}) == len(rows) == len(emails)
    assert patient_pipeline.queue_attribute(patient_pipeline.info.dead_letter_queue_url, "ApproximateNumberOfMessages") == 0


def test_long_outage_moves_leads_to_the_dlq_and_a_redrive_stores_each_once(local_pipeline: RunningPipeline, capsys) -> None:
    # Given the shared pipeline (visibility 1 s x 2 receives) and a database down far longer than that
    info = local_pipeline.info
    local_pipeline.pipeline.stop_database()
    try:
        emails = [f"long-{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(30)]
        assert [post(local_pipeline, email)[0] for email in emails] == [202] * len(emails)
        wait_for(lambda: local_pipeline.queue_attribute(info.dead_letter_queue_url, "ApproximateNumberOfMessages") >= len(emails),
                 timeout=60, message="leads in the DLQ")  # fmt: skip
    finally:
        local_pipeline.pipeline.start_database()
    assert local_pipeline.count("email LIKE %s", ("long-%",)) == 0
    # When ops redrive the DLQ once the database is back
    assert leadpipe(["dlq", "redrive", "--data-dir", info.data_dir]) == 0
    # Then every accepted lead is stored exactly once
    wait_for(lambda: local_pipeline.count("email LIKE %s", ("long-%",)) == len(emails), timeout=60, message="redriven leads stored")
    rows = local_pipeline.rows("email LIKE %s", ("long-%",))
    assert sorted(r["email"] for r in rows) == sorted(emails)

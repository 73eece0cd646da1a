"""The ingest's last line of defence (IngestRoutes.unexpected): a bug answers a plain 500, never a
traceback or internal detail, nothing is queued, and the form's origin can still read the answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from functions.ingest import handler as ingest
from functions.ingest.publisher import SqsLeadPublisher
from tests.events import api_event, emitted_metrics
from tests.moto_mock import mock_aws

ALLOWED_ORIGIN = "https://www.example.com"
INTERNAL_DETAIL = "bug at /var/task/functions/ingest/publisher.py line 7"


@pytest.fixture
def queue_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with mock_aws():
        url = boto3.client("sqs").create_queue(QueueName="leads")["QueueUrl"]
        monkeypatch.setenv("LEADS_QUEUE_URL", url)
        monkeypatch.setenv("ALLOWED_ORIGINS", ALLOWED_ORIGIN)
        yield url


def test_a_bug_answers_500_without_detail_and_queues_nothing(
    queue_url: str, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # Given a publisher with a bug: it raises something no handler expects (not an SQS error)
    def broken_publish(self: SqsLeadPublisher, envelope: Any) -> str:
        raise KeyError(INTERNAL_DETAIL)

    monkeypatch.setattr(SqsLeadPublisher, "publish", broken_publish)
    event = api_event(json.dumps({"email": "ada@example.com"}), headers={"Origin": ALLOWED_ORIGIN})
    # When a valid lead arrives
    response = ingest.lambda_handler(event, lambda_context)
    # Then the client gets a 500 with the documented error shape and nothing internal
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {
        "error": {"code": "internal_error", "message": "something went wrong; please retry", "fields": []}
    }
    assert INTERNAL_DETAIL not in response["body"] and "Traceback" not in response["body"]
    # And the allowed origin can read it (so the page can show "please retry")
    assert response["multiValueHeaders"]["Access-Control-Allow-Origin"] == [ALLOWED_ORIGIN]
    # And nothing reached the queue
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert messages == []
    # And on-call can see it: one internal-error metric, and the traceback in the log, without the address
    out = capsys.readouterr().out
    assert emitted_metrics(out) == {"Rejected_internal_error": 1.0}
    [logged] = [json.loads(line) for line in out.splitlines() if '"unexpected error"' in line]
    assert logged["level"] == "ERROR" and INTERNAL_DETAIL in logged["exception"]
    assert "ada@example.com" not in out

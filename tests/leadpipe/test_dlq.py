"""DLQ helpers: the AWS move task request, and how a dead letter is described."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import boto3
from botocore.stub import Stubber

from functions.contract import Lead, LeadEnvelope, Source
from leadpipe.dlq import describe, start_move_task

DLQ = "https://sqs.eu-west-1.amazonaws.com/123456789012/leads-dlq"
LEADS = "https://sqs.eu-west-1.amazonaws.com/123456789012/leads"


def test_redrive_in_aws_starts_a_rate_limited_message_move_task() -> None:
    sqs = boto3.client("sqs")
    with Stubber(sqs) as stub:
        for url in (DLQ, LEADS):
            arn = "arn:aws:sqs:eu-west-1:123456789012:" + url.rsplit("/", 1)[1]
            stub.add_response(
                "get_queue_attributes",
                {"Attributes": {"QueueArn": arn}},
                {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
            )
        stub.add_response(
            "start_message_move_task",
            {"TaskHandle": "task-1"},
            {
                "SourceArn": "arn:aws:sqs:eu-west-1:123456789012:leads-dlq",
                "DestinationArn": "arn:aws:sqs:eu-west-1:123456789012:leads",
                "MaxNumberOfMessagesPerSecond": 50,
            },
        )
        assert start_move_task(sqs, DLQ, LEADS, max_per_second=50) == "task-1"
        stub.assert_no_pending_responses()


def test_dead_letter_is_described_masked_with_the_reason_it_fails() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    sent = int((now - timedelta(minutes=5)).timestamp() * 1000)
    envelope = LeadEnvelope(
        lead_id=uuid4(), received_at=now, source=Source(), lead=Lead(email="grace@navy.example", campaign="x1")
    )
    good = describe(
        {
            "MessageId": "m1",
            "Body": envelope.to_message_body(),
            "Attributes": {"SentTimestamp": str(sent), "ApproximateReceiveCount": "5"},
        },
        now,
    )
    assert (good.age_seconds, good.receive_count, good.email, good.campaign) == (300.0, 5, "g***@navy.example", "X1")
    assert good.reason.startswith("parses now")
    future = describe(
        {"MessageId": "m2", "Body": json.dumps({"v": 2}), "Attributes": {"SentTimestamp": str(sent)}}, now
    )
    assert (future.lead_id, future.reason) == (None, "unknown envelope version 2")


class RefusingOneEntry:
    """The real client, except that SendMessageBatch reports the entry whose body is `refused` as Failed."""

    def __init__(self, sqs: object, refused: str) -> None:
        self._sqs, self._refused = sqs, refused

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        passing = [e for e in Entries if e["MessageBody"] != self._refused]
        answer = self._sqs.send_message_batch(QueueUrl=QueueUrl, Entries=passing) if passing else {}
        failed = [
            {"Id": e["Id"], "SenderFault": True, "Code": "InvalidMessageContents", "Message": "x"}
            for e in Entries
            if e not in passing
        ]
        return {"Successful": answer.get("Successful", []), "Failed": failed}

    def __getattr__(self, name: str) -> object:
        return getattr(self._sqs, name)


def test_local_redrive_deletes_only_what_the_leads_queue_accepted() -> None:
    from leadpipe.dlq import move_messages
    from tests.moto_mock import mock_aws

    with mock_aws():
        sqs = boto3.client("sqs")
        dead, leads = (sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("dead", "leads"))
        for body in ("one", "refused", "two"):
            sqs.send_message(QueueUrl=dead, MessageBody=body)
        # When the DLQ is redriven and the leads queue refuses one message
        moved = move_messages(RefusingOneEntry(sqs, "refused"), dead, leads)
        # Then the two accepted moved, and the refused one is still in the DLQ (not lost)
        assert moved == 2
        on_leads = sorted(m["Body"] for m in sqs.receive_message(QueueUrl=leads, MaxNumberOfMessages=10)["Messages"])
        left = sqs.get_queue_attributes(
            QueueUrl=dead, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )
        assert on_leads == ["one", "two"]
        assert sum(int(v) for v in left["Attributes"].values()) == 1


def test_dlq_list_masks_unicode_addresses_too() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    envelope = LeadEnvelope(lead_id=uuid4(), received_at=now, source=Source(), lead=Lead(email="jöhn@exämple.com"))
    described = describe({"MessageId": "m1", "Body": envelope.to_message_body(), "Attributes": {}}, now)
    assert described.email == "j***@exämple.com"

"""The local runtime loses nothing it answered 202 for: on Ctrl-C the queues, in-flight messages
included, go to a snapshot that the next start sends back; a poller outlives a failed delete."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from leadpipe.local.poller import EventSourceSettings, SqsEventSourcePoller
from leadpipe.local.queue_snapshot import make_visible, restore_queue_snapshot, save_queue_snapshot
from tests.moto_mock import mock_aws

ATTRIBUTES = {
    "envelope_version": {"DataType": "Number", "StringValue": "1"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
}


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs")


def everything_on(sqs: Any, url: str) -> list[tuple[str, dict]]:
    messages = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=600
    ).get("Messages"):
        messages += [(m["Body"], m.get("MessageAttributes", {})) for m in batch]
    return sorted(messages, key=lambda item: item[0])


def test_a_snapshot_keeps_visible_in_flight_and_dead_letters_and_restores_them(sqs: Any, tmp_path: Path) -> None:
    # Given a leads queue with a visible message and one in flight (received, failed, waiting
    # out a 10-minute visibility timeout), and a DLQ holding one message
    leads, dead = (sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("leads", "dead"))
    sqs.send_message(QueueUrl=leads, MessageBody='{"lead": "in flight"}', MessageAttributes=ATTRIBUTES)
    [in_flight] = sqs.receive_message(QueueUrl=leads, VisibilityTimeout=600)["Messages"]
    sqs.send_message(QueueUrl=leads, MessageBody='{"lead": "visible"}')
    sqs.send_message(QueueUrl=dead, MessageBody='{"lead": "dead"}')
    snapshot = tmp_path / "queue-snapshot.json"
    # When the runtime stops: the held message is made visible, then both queues are saved
    assert make_visible(sqs, leads, [in_flight["ReceiptHandle"], "a-handle-since-deleted"]) == 1
    assert save_queue_snapshot(sqs, snapshot, {"leads": leads, "dead_letters": dead}) == 3
    # And a new SQS (moto keeps nothing) starts with fresh queues
    for url in (leads, dead):
        sqs.delete_queue(QueueUrl=url)
    leads, dead = (sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("leads", "dead"))
    assert restore_queue_snapshot(sqs, snapshot, {"leads": leads, "dead_letters": dead}) == 3
    # Then every message is back on its queue, with its attributes, and the snapshot is gone
    assert everything_on(sqs, leads) == [('{"lead": "in flight"}', ATTRIBUTES), ('{"lead": "visible"}', {})]
    assert everything_on(sqs, dead) == [('{"lead": "dead"}', {})]
    assert not snapshot.exists()


def test_no_snapshot_file_when_the_queues_are_empty(sqs: Any, tmp_path: Path) -> None:
    url = sqs.create_queue(QueueName="leads")["QueueUrl"]
    assert save_queue_snapshot(sqs, tmp_path / "s.json", {"leads": url}) == 0
    assert not (tmp_path / "s.json").exists()
    assert restore_queue_snapshot(sqs, tmp_path / "s.json", {"leads": url}) == 0


class FlakyDeletes:
    """The real client, except that the first DeleteMessageBatch fails as if SQS were unreachable."""

    def __init__(self, sqs: Any) -> None:
        self._sqs, self.delete_calls = sqs, 0

    def delete_message_batch(self, **request: Any) -> Any:
        self.delete_calls += 1
        if self.delete_calls == 1:
            raise ConnectionError("SQS unreachable")
        return self._sqs.delete_message_batch(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


def wait_for(check: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_poller_survives_a_failed_delete_and_holds_what_it_did_not_delete(sqs: Any) -> None:
    # Given a poller whose first delete fails, and a worker that fails one lead and stores the rest
    url = sqs.create_queue(QueueName="leads", Attributes={"VisibilityTimeout": "600"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client, invoked, lock = FlakyDeletes(sqs), [], threading.Lock()

    def worker(event: dict[str, Any]) -> dict[str, Any]:
        with lock:
            invoked.extend(r["body"] for r in event["Records"])
        return {
            "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "poison"]
        }

    poller = SqsEventSourcePoller(client, EventSourceSettings(url, arn, "eu-west-1", 1, 0, 1), worker)
    poller.start()
    try:
        # When a first lead comes (its delete fails), then poison, then another lead
        for body in ("first", "poison", "second"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
            wait_for(lambda body=body: body in invoked)
        wait_for(lambda: client.delete_calls >= 2)
    finally:
        poller.stop()
    # Then the poller kept going after the failed delete, and holds exactly the two messages
    # still on the queue (the undeleted first and the poison), whose handles end their timeout
    assert invoked == ["first", "poison", "second"]
    held = poller.held_receipt_handles()
    assert len(held) == 2 and make_visible(sqs, url, held) == 2
    assert [body for body, _ in everything_on(sqs, url)] == ["first", "poison"]

"""The local SQS server's direct SendMessage answers exactly as moto's full path does, or not at all."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from leadpipe.local.sqs_app import (
    delete_messages_directly,
    moto_wsgi_app,
    receive_messages_directly,
    send_message_directly,
    sqs_wsgi_app,
)
from tests.moto_mock import mock_aws

AUTHORIZATION = "AWS4-HMAC-SHA256 Credential=local/20261123/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x"
ATTRIBUTES = {"envelope_version": {"DataType": "Number", "StringValue": "1"}}


def call(app: Any, target: str, params: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    body = json.dumps(params).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "9324",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-amz-json-1.0",
        "HTTP_X_AMZ_TARGET": f"AmazonSQS.{target}",
        "HTTP_AUTHORIZATION": AUTHORIZATION,
    }
    started: dict[str, Any] = {}
    chunks = app(environ, lambda status, headers, exc_info=None: started.update(status=status, headers=dict(headers)))
    payload = b"".join(chunks)
    return started["status"], {k.lower(): v for k, v in started["headers"].items()}, json.loads(payload or b"{}")


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")


@pytest.mark.parametrize("attributes", [None, ATTRIBUTES], ids=["plain", "with-attributes"])
def test_a_direct_send_answers_and_stores_what_moto_would(sqs: Any, attributes: dict | None) -> None:
    url = sqs.create_queue(QueueName="leads")["QueueUrl"]
    params = {"QueueUrl": url, "MessageBody": '{"v": 1, "lead": {"email": "ada@example.com"}}'}
    if attributes:
        params["MessageAttributes"] = attributes
    # Given the same SendMessage answered directly and by moto's full path
    direct_answer = send_message_directly(json.dumps(params).encode(), AUTHORIZATION)
    assert direct_answer is not None  # the direct path took it
    direct = json.loads(direct_answer)
    full_status, full_headers, full = call(moto_wsgi_app, "SendMessage", params)
    # Then both answer the same fields with the same checksums (ids are new each time)
    assert full_status == "200 OK"
    assert set(direct) == set(full) and direct["MessageId"] != full["MessageId"]
    assert {k: v for k, v in direct.items() if k != "MessageId"} == {k: v for k, v in full.items() if k != "MessageId"}
    # And the two messages queued are indistinguishable to a consumer
    received = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    )
    by_id = {m["MessageId"]: m for m in received["Messages"]}
    same = ("Body", "MD5OfBody", "MessageAttributes", "MD5OfMessageAttributes")
    assert [by_id[direct["MessageId"]].get(k) for k in same] == [by_id[full["MessageId"]].get(k) for k in same]


def test_the_app_answers_a_direct_send_with_moto_s_headers(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="leads")["QueueUrl"]
    params = {"QueueUrl": url, "MessageBody": "x"}
    (direct_status, direct_headers, _), (full_status, full_headers, _) = (
        call(app, "SendMessage", params) for app in (sqs_wsgi_app, moto_wsgi_app)
    )
    assert direct_status == full_status == "200 OK"
    assert direct_headers["content-type"] == full_headers["content-type"]
    assert "x-amzn-requestid" in direct_headers and "x-amzn-requestid" in full_headers
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"] == {
        "ApproximateNumberOfMessages": "2"
    }


@pytest.mark.parametrize(
    "change",
    [
        {"DelaySeconds": 5},
        {"MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1"}}},
        {"MessageAttributes": {"bad": {"DataType": "Nonsense", "StringValue": "1"}}},
        {"QueueUrl": "http://127.0.0.1:9324/123456789012/no-such-queue"},
    ],
    ids=["delay", "system-attributes", "invalid-attribute", "unknown-queue"],
)
def test_anything_else_is_left_to_moto(sqs: Any, change: dict[str, Any]) -> None:
    url = sqs.create_queue(QueueName="leads")["QueueUrl"]
    params = {"QueueUrl": url, "MessageBody": "x", **change}
    # Given a request the direct path does not cover, it declines, queueing nothing
    assert send_message_directly(json.dumps(params).encode(), AUTHORIZATION) is None
    # And the app still answers it, as moto does
    assert call(sqs_wsgi_app, "SendMessage", params)[:1] == call(moto_wsgi_app, "SendMessage", params)[:1]


def test_a_fifo_queue_is_left_to_moto(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="leads.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    assert send_message_directly(json.dumps({"QueueUrl": url, "MessageBody": "x"}).encode(), AUTHORIZATION) is None


def test_only_a_receive_or_a_query_protocol_request_may_wait_for_a_thread() -> None:
    from leadpipe.local.sqs_app import may_block

    assert may_block({"HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage", "CONTENT_TYPE": "application/x-amz-json-1.0"})
    assert may_block({"CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8"})
    assert not may_block({"HTTP_X_AMZ_TARGET": "AmazonSQS.SendMessage", "CONTENT_TYPE": "application/x-amz-json-1.0"})


# --- ReceiveMessage and DeleteMessageBatch, the poller's two calls ---------------------------------

MIXED_ATTRIBUTES = {
    "envelope_version": {"DataType": "Number", "StringValue": "1"},
    "origin": {"DataType": "String.url", "StringValue": "https://www.example.com/é"},
    "signature": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
}
RECEIVE_VARIANTS = {
    "everything": {"AttributeNames": ["All"], "MessageAttributeNames": ["All"]},
    "nothing-extra": {},
    "some-attributes": {
        "MessageSystemAttributeNames": ["SentTimestamp", "ApproximateReceiveCount"],
        "MessageAttributeNames": ["origin"],
    },
    "prefix": {"AttributeNames": ["SenderId"], "MessageAttributeNames": ["envelope.*", "signature"]},
    "poller": {
        "AttributeNames": ["All"],
        "MessageAttributeNames": ["All"],
        "WaitTimeSeconds": 0,
        "VisibilityTimeout": 30,
    },
}
VOLATILE = {"MessageId", "ReceiptHandle", "SentTimestamp", "ApproximateFirstReceiveTimestamp"}


def queue_with_messages(sqs: Any, name: str, **queue_attributes: str) -> str:
    url = sqs.create_queue(QueueName=name, Attributes=queue_attributes)["QueueUrl"]
    sqs.send_message(
        QueueUrl=url, MessageBody='{"v": 1, "lead": {"email": "ada@example.com"}}', MessageAttributes=MIXED_ATTRIBUTES
    )
    sqs.send_message(QueueUrl=url, MessageBody="plain, no attributes")
    return url


def without_volatile(answer: Any) -> Any:
    """The answer with what differs on every receive (ids, handles, clocks) blanked out."""
    if isinstance(answer, dict):
        return {k: "*" if k in VOLATILE else without_volatile(v) for k, v in answer.items()}
    if isinstance(answer, list):
        return [without_volatile(item) for item in answer]
    return answer


def visible(sqs: Any, url: str) -> int:
    return int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )


@pytest.mark.parametrize("variant", list(RECEIVE_VARIANTS), ids=list(RECEIVE_VARIANTS))
def test_a_direct_receive_answers_what_moto_would(sqs: Any, variant: str) -> None:
    # Given two queues holding the same messages, one received from directly, one through moto
    direct_url, full_url = queue_with_messages(sqs, "direct"), queue_with_messages(sqs, "full")
    params = {"MaxNumberOfMessages": 10, **RECEIVE_VARIANTS[variant]}
    direct_status, direct_headers, direct = call(sqs_wsgi_app, "ReceiveMessage", {"QueueUrl": direct_url, **params})
    full_status, _, full = call(moto_wsgi_app, "ReceiveMessage", {"QueueUrl": full_url, **params})
    # Then the JSON is the same but for ids, handles and clocks
    assert direct_status == full_status == "200 OK"
    assert direct_headers["content-type"] == "application/x-amz-json-1.0"
    assert len(direct["Messages"]) == 2
    assert without_volatile(direct) == without_volatile(full)
    # And the messages are in flight, as after moto's own receive
    assert visible(sqs, direct_url) == visible(sqs, full_url) == 0


def test_a_direct_receive_reads_back_through_boto3_and_counts_receives(sqs: Any) -> None:
    url = queue_with_messages(sqs, "leads", VisibilityTimeout="0")
    params = {"QueueUrl": url, "MaxNumberOfMessages": 10, "AttributeNames": ["All"], "MessageAttributeNames": ["All"]}
    call(sqs_wsgi_app, "ReceiveMessage", params)
    _, _, second = call(sqs_wsgi_app, "ReceiveMessage", params)
    # What boto3 reads from the same queue agrees with the direct answer: bodies, checksums, binary values
    received = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    )
    by_body = {m["Body"]: m for m in received["Messages"]}
    for message in second["Messages"]:
        seen_by_boto3 = by_body[message["Body"]]
        assert message["MD5OfBody"] == seen_by_boto3["MD5OfBody"]
        assert message.get("MD5OfMessageAttributes") == seen_by_boto3.get("MD5OfMessageAttributes")
        assert message["Attributes"]["ApproximateReceiveCount"] == "2"
        assert seen_by_boto3["Attributes"]["ApproximateReceiveCount"] == "3"
    assert (
        by_body['{"v": 1, "lead": {"email": "ada@example.com"}}']["MessageAttributes"]["signature"]["BinaryValue"]
        == b"\x00\x01\xff"
    )


def test_a_direct_receive_of_an_empty_queue_answers_no_messages(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="empty")["QueueUrl"]
    assert call(sqs_wsgi_app, "ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10})[2] == {}
    assert call(moto_wsgi_app, "ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10})[2] == {}


@pytest.mark.parametrize(
    "change",
    [
        {"MaxNumberOfMessages": 11},
        {"MaxNumberOfMessages": 0},
        {"WaitTimeSeconds": 21},
        {"VisibilityTimeout": 43201},
        {"ReceiveRequestAttemptId": "attempt-1"},
        {"MessageAttributeNames": "All"},
        {"QueueUrl": "http://127.0.0.1:9324/123456789012/no-such-queue"},
    ],
    ids=["too-many", "zero", "long-wait", "long-visibility", "fifo-parameter", "names-not-a-list", "unknown-queue"],
)
def test_a_receive_the_direct_path_does_not_cover_is_left_to_moto_untouched(sqs: Any, change: dict[str, Any]) -> None:
    url = queue_with_messages(sqs, "leads")
    params = {"QueueUrl": url, "MaxNumberOfMessages": 10, **change}
    # Given a receive the direct path declines, nothing was received by it
    assert receive_messages_directly(json.dumps(params).encode(), AUTHORIZATION) is None
    assert visible(sqs, url) == 2
    # And the app answers as moto does
    assert call(sqs_wsgi_app, "ReceiveMessage", params)[0] == call(moto_wsgi_app, "ReceiveMessage", params)[0]


def test_a_receive_from_a_fifo_queue_is_left_to_moto(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="leads.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    assert receive_messages_directly(json.dumps({"QueueUrl": url}).encode(), AUTHORIZATION) is None


def receipts(sqs: Any, url: str) -> list[str]:
    return [m["ReceiptHandle"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]


def test_a_direct_delete_batch_answers_what_moto_would(sqs: Any) -> None:
    # Given two queues, each with one message received and one handle that is not valid
    answers = {}
    for name, app in (("direct", sqs_wsgi_app), ("full", moto_wsgi_app)):
        url = queue_with_messages(sqs, name)
        good, _ = receipts(sqs, url)
        entries = [{"Id": "good", "ReceiptHandle": good}, {"Id": "bad", "ReceiptHandle": "not-a-handle"}]
        status, _, answers[name] = call(app, "DeleteMessageBatch", {"QueueUrl": url, "Entries": entries})
        assert status == "200 OK"
        # Then the good one is gone and the other still in flight
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
            "0",
            "1",
        )
    # And both paths answer the same
    assert answers["direct"] == answers["full"]
    assert (
        answers["direct"]["Successful"] == [{"Id": "good"}]
        and answers["direct"]["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    )


def test_deleting_the_same_message_twice_succeeds_both_times(sqs: Any) -> None:
    url = queue_with_messages(sqs, "leads")
    entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(receipts(sqs, url))]
    params = json.dumps({"QueueUrl": url, "Entries": entries}).encode()
    first, second = delete_messages_directly(params, AUTHORIZATION), delete_messages_directly(params, AUTHORIZATION)
    assert first is not None and second is not None
    assert json.loads(first) == json.loads(second) == {"Successful": [{"Id": "0"}, {"Id": "1"}], "Failed": []}


@pytest.mark.parametrize(
    "entries",
    [
        [],
        [{"Id": "a", "ReceiptHandle": "h"}, {"Id": "b", "ReceiptHandle": "h"}],
        [{"Id": str(i), "ReceiptHandle": str(i)} for i in range(11)],
        [{"Id": "a", "ReceiptHandle": "h", "Extra": 1}],
    ],
    ids=["empty", "repeated-handle", "eleven", "unknown-key"],
)
def test_a_delete_batch_the_direct_path_does_not_cover_is_left_to_moto(sqs: Any, entries: list[dict[str, Any]]) -> None:
    url = queue_with_messages(sqs, "leads")
    params = {"QueueUrl": url, "Entries": entries}
    assert delete_messages_directly(json.dumps(params).encode(), AUTHORIZATION) is None
    if len(entries) > 10:  # moto takes eleven; the app refuses them as SQS does (test_local_sqs_limits.py)
        assert call(sqs_wsgi_app, "DeleteMessageBatch", params)[0] == "400 Bad Request"
    else:
        assert (
            call(sqs_wsgi_app, "DeleteMessageBatch", params)[0] == call(moto_wsgi_app, "DeleteMessageBatch", params)[0]
        )

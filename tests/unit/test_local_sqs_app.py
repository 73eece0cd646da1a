"""The local SQS server's direct SendMessage answers exactly as moto's full path does, or not at all."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from leadpipe.local.sqs_app import moto_wsgi_app, send_message_directly, sqs_wsgi_app

AUTHORIZATION = "AWS4-HMAC-SHA256 Credential=local/20261123/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x"
ATTRIBUTES = {"envelope_version": {"DataType": "Number", "StringValue": "1"}}


def call(app: Any, target: str, params: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    body = json.dumps(params).encode()
    environ = {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": "/", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "9324", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/x-amz-json-1.0",
        "HTTP_X_AMZ_TARGET": f"AmazonSQS.{target}", "HTTP_AUTHORIZATION": AUTHORIZATION,
    }  # fmt: skip
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
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"])
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

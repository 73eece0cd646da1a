"""Calls real SQS refuses, made through boto3: what a client observes, as {case: outcome}.

Run on stock moto (lenient) and on the local runtime's SQS server (which must refuse like AWS),
by tests/leadpipe/local/test_sqs_server_limits.py.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

MIB = 1_048_576


def outcome(call: Any) -> Any:
    """The error code SQS answered (without the `AWS.SimpleQueueService.` prefix), or what was accepted."""
    try:
        answer = call()
    except ClientError as error:
        return error.response["Error"]["Code"].rsplit(".", 1)[-1]
    except Exception as error:
        return f"crashed: {type(error).__name__}"
    if "Successful" in answer or "Failed" in answer:
        return {
            "ok": sorted(e["Id"] for e in answer.get("Successful", [])),
            "failed": sorted((e["Id"], e["Code"]) for e in answer.get("Failed", [])),
        }
    return "accepted"


def observe(sqs: Any, url: str) -> dict[str, Any]:
    def send(body: str, **extra: Any) -> Any:
        return outcome(lambda: sqs.send_message(QueueUrl=url, MessageBody=body, **extra))

    def send_batch(entries: list[dict[str, Any]]) -> Any:
        return outcome(lambda: sqs.send_message_batch(QueueUrl=url, Entries=entries))

    seen: dict[str, Any] = {
        "u+ffff": send('{"first_name": "\uffff"}'),
        "u+fffe": send("\ufffe"),
        "nul": send("a\x00b"),
        "vertical-tab": send("a\x0bb"),
        "lone-surrogate": send("a\ud800b"),
        "allowed-edges": send("\t\n\r \ud7ff\ue000\ufffd\U00010000\U0010ffff"),
        "exactly-1-mib": send("x" * MIB),
        "1-mib-plus-one-byte": send("x" * (MIB + 1)),
        "half-a-mib-of-characters-over-1-mib-of-utf8": send("é" * (MIB // 2 + 1)),
        "body-plus-attributes-over-1-mib": send(
            "x" * (MIB - 10), MessageAttributes={"envelope_version": {"DataType": "Number", "StringValue": "1"}}
        ),
        "batch-of-11": send_batch([{"Id": str(i), "MessageBody": "m"} for i in range(11)]),
        "batch-over-1-mib-in-utf8": send_batch([{"Id": str(i), "MessageBody": "é" * 300_000} for i in range(2)]),
        "batch-one-bad-character": send_batch(
            [{"Id": "good", "MessageBody": "fine"}, {"Id": "bad", "MessageBody": "\uffff"}]
        ),
        "batch-all-bad": send_batch([{"Id": "bad", "MessageBody": "\x00"}]),
        "batch-empty": send_batch([]),
        "batch-ids-repeated": send_batch([{"Id": "a", "MessageBody": "1"}, {"Id": "a", "MessageBody": "2"}]),
    }
    handles = [
        m["ReceiptHandle"]
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=30)["Messages"]
    ]
    seen["delete-batch-of-11"] = outcome(
        lambda: sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": handles[0]} for i in range(11)]
        )
    )
    seen["delete-batch-ids-repeated"] = outcome(
        lambda: sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "a", "ReceiptHandle": h} for h in handles])
    )
    seen["visibility-batch-of-11"] = outcome(
        lambda: sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": handles[0], "VisibilityTimeout": 0} for i in range(11)],
        )
    )
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )
    seen["messages_queued"] = sum(int(v) for v in attributes["Attributes"].values())
    return seen

"""One SQS conversation, run on stock moto or on the local runtime's patched moto.

`python -m tests.leadpipe.local.moto_scenario [patched]` prints what a client observed, as JSON, so a
test can require the two to be identical.
"""

from __future__ import annotations

import json
import sys

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends


def observe() -> dict:
    sqs = boto3.client("sqs", region_name="us-east-1")
    seen: dict = {}
    dlq_url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url = sqs.create_queue(QueueName="leads", Attributes={"VisibilityTimeout": "30", "RedrivePolicy": redrive})[
        "QueueUrl"
    ]
    # Creating it again with the same attributes returns the same queue
    seen["same_url_again"] = (
        sqs.create_queue(QueueName="leads", Attributes={"VisibilityTimeout": "30", "RedrivePolicy": redrive})[
            "QueueUrl"
        ]
        == url
    )

    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)])
    for i in range(10, 25):
        sqs.send_message(
            QueueUrl=url, MessageBody=f"m{i}", MessageAttributes={"v": {"DataType": "Number", "StringValue": "1"}}
        )
    seen["after_send"] = counts(sqs, url)
    all_attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    seen["attribute_names"] = sorted(all_attributes)
    seen["retention"] = all_attributes["MessageRetentionPeriod"]

    first = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    seen["first_bodies"] = [m["Body"] for m in first]
    seen["first_receive_counts"] = [m["Attributes"]["ApproximateReceiveCount"] for m in first]
    seen["after_receive"] = counts(sqs, url)
    handles = [m["ReceiptHandle"] for m in first]
    seen["receipt_handles"] = {
        "distinct": len(set(handles)),
        "shapes": sorted({(len(h), h.isascii() and h.isalpha() and h.islower()) for h in handles}),
    }

    deleted = sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(first[:5])]
    )
    seen["deleted"] = sorted(e["Id"] for e in deleted.get("Successful", []))
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])  # twice is fine
    try:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
        seen["bogus_delete"] = "accepted"
    except ClientError as error:
        seen["bogus_delete"] = error.response["Error"]["Code"]
    seen["after_delete"] = counts(sqs, url)

    # Messages received and never deleted move to the DLQ after maxReceiveCount receives
    receives = 0
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        if not batch:
            break
        receives += 1
    seen["receives_until_empty"] = receives
    seen["dlq"] = counts(sqs, dlq_url)
    moved = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    seen["dlq_receive_counts"] = sorted({m["Attributes"]["ApproximateReceiveCount"] for m in moved})
    seen["long_poll_empty"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])

    # A message past its queue's retention period is never delivered (moto stops that receive there)
    short_url = sqs.create_queue(QueueName="short-lived", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=short_url, MessageBody="expired")
    sqs.send_message(QueueUrl=short_url, MessageBody="fresh")
    sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues["short-lived"]._messages[
        0
    ].sent_timestamp -= 61_000  # sent 61 s ago
    seen["past_retention"] = [
        [m["Body"] for m in sqs.receive_message(QueueUrl=short_url, MaxNumberOfMessages=10).get("Messages", [])]
        for _ in range(2)
    ]
    return seen


def counts(sqs, url: str) -> dict:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {k.removeprefix("ApproximateNumberOfMessages") or "Visible": int(v) for k, v in attributes.items()}


if __name__ == "__main__":
    if sys.argv[1:] == ["patched"]:
        from leadpipe.local.moto_speedups import apply_sqs_speedups

        apply_sqs_speedups()
    with mock_aws():
        print(json.dumps(observe()))

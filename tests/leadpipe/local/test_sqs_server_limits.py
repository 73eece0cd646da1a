"""The local runtime's SQS refuses what real SQS refuses, with SQS's own error codes.

Stock moto 5.2.5 lets most of these through; the local server (leadpipe/local/sqs_app.py,
`check_sqs_limits`) adds the checks. Each expected answer is AWS's documented behaviour:

* SendMessage: "A message can include only XML, JSON, and unformatted text. The following
  Unicode characters are allowed: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD |
  #x10000 to #x10FFFF. If a message contains characters outside the allowed set, Amazon SQS
  rejects the message and returns an InvalidMessageContents error." The maximum size is
  1 MiB (1,048,576 bytes); over it SQS answers InvalidParameterValue "Message must be shorter
  than 1048576 bytes". Message attributes count towards the size (name, type and value).
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
* SendMessageBatch: "The maximum allowed individual message size and the maximum total payload
  size (the sum of the individual lengths of all of the batched messages) are both 1 MiB
  (1,048,576 bytes)" (BatchRequestTooLong); the result of each message is reported
  individually (a refused entry is in `Failed`, the rest are sent); EmptyBatchRequest,
  BatchEntryIdsNotDistinct.
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
* TooManyEntriesInBatchRequest: "the maximum number of entries you can include in a single
  SendMessageBatch, DeleteMessageBatch, or ChangeMessageVisibilityBatch request is 10."
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from leadpipe.local.runtime import local_sqs_client
from leadpipe.local.sqs_server import LocalSqsServer
from tests.leadpipe.local.sqs_limits_scenario import observe
from tests.moto_mock import mock_aws

REFUSED_CHARACTERS = "InvalidMessageContents"
TOO_LARGE = "InvalidParameterValue"
AWS_DOCUMENTED = {
    "u+ffff": REFUSED_CHARACTERS,
    "u+fffe": REFUSED_CHARACTERS,
    "nul": REFUSED_CHARACTERS,
    "vertical-tab": REFUSED_CHARACTERS,
    "lone-surrogate": REFUSED_CHARACTERS,
    "allowed-edges": "accepted",
    "exactly-1-mib": "accepted",
    "1-mib-plus-one-byte": TOO_LARGE,
    "half-a-mib-of-characters-over-1-mib-of-utf8": TOO_LARGE,
    "body-plus-attributes-over-1-mib": TOO_LARGE,
    "batch-of-11": "TooManyEntriesInBatchRequest",
    "batch-over-1-mib-in-utf8": "BatchRequestTooLong",
    "batch-one-bad-character": {"ok": ["good"], "failed": [("bad", REFUSED_CHARACTERS)]},
    "batch-all-bad": {"ok": [], "failed": [("bad", REFUSED_CHARACTERS)]},
    "batch-empty": "EmptyBatchRequest",
    "batch-ids-repeated": "BatchEntryIdsNotDistinct",
    "delete-batch-of-11": "TooManyEntriesInBatchRequest",
    "delete-batch-ids-repeated": "BatchEntryIdsNotDistinct",
    "visibility-batch-of-11": "TooManyEntriesInBatchRequest",
    # allowed-edges, exactly-1-mib and the good entry of the mixed batch: nothing refused got in
    "messages_queued": 3,
}


@pytest.fixture(scope="module")
def local_sqs() -> Iterator[Any]:
    server = LocalSqsServer()
    try:
        yield local_sqs_client(server.start())
    finally:
        server.stop()


def test_the_local_sqs_refuses_exactly_what_aws_documents(local_sqs: Any) -> None:
    # Given the local runtime's SQS server, over real HTTP, and every limit probed through boto3
    url = local_sqs.create_queue(QueueName="limits")["QueueUrl"]
    # When the hostile calls are made
    seen = observe(local_sqs, url)
    # Then each gets AWS's documented answer, and nothing refused was queued
    assert seen == AWS_DOCUMENTED


def test_stock_moto_is_kinder_than_aws_which_is_why_the_local_server_checks() -> None:
    # Given the same calls on stock moto (the library the unit tests of the cloud code use)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        seen = observe(sqs, sqs.create_queue(QueueName="limits")["QueueUrl"])
    # Then moto lets through characters, sizes and repeated ids that AWS refuses
    lenient = {case for case, answer in seen.items() if answer != AWS_DOCUMENTED[case]}
    assert {
        "u+ffff",
        "nul",
        "lone-surrogate",
        "half-a-mib-of-characters-over-1-mib-of-utf8",
        "batch-over-1-mib-in-utf8",
        "batch-one-bad-character",
        "delete-batch-ids-repeated",
    } <= lenient

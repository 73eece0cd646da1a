"""The only code in the ingest that touches SQS."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.contract import LeadEnvelope
from functions.ingest.errors import QueueUnavailable


class SqsLeadPublisher:
    """Sends envelopes to the leads queue; raises `QueueUnavailable` when SQS does not take one."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    def publish(self, envelope: LeadEnvelope) -> str:
        """Return SQS's message id once SQS has accepted (and checksummed) the message."""
        try:
            response = self._sqs.send_message(
                QueueUrl=self._queue_url, MessageBody=envelope.to_message_body(), MessageAttributes=message_attributes(envelope)
            )
        except (BotoCoreError, ClientError) as error:
            # botocore verifies MD5OfMessageBody, so a corrupted send also lands here.
            raise QueueUnavailable("the lead could not be queued; please retry") from error
        return response["MessageId"]


def message_attributes(envelope: LeadEnvelope) -> dict[str, Any]:
    """The SQS message attributes every lead travels with."""
    return {"envelope_version": {"DataType": "Number", "StringValue": str(envelope.v)}}

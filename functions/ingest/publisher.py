"""The only code in the ingest that touches SQS."""

from __future__ import annotations

from dataclasses import dataclass
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
                QueueUrl=self._queue_url,
                MessageBody=envelope.to_message_body(),
                MessageAttributes=message_attributes(envelope),
            )
        except (BotoCoreError, ClientError) as error:
            # botocore verifies MD5OfMessageBody, so a corrupted send also lands here.
            raise QueueUnavailable("the lead could not be queued; please retry") from error
        return response["MessageId"]


# botocore's standard retry mode sleeps up to 2**0 = 1 s (random jitter) before its second attempt.
STANDARD_MODE_FIRST_BACKOFF_SECONDS = 1.0
MIN_SECONDS_PER_ATTEMPT = 0.5  # below this a second attempt is not worth its back-off


@dataclass(frozen=True)
class SqsCallBudget:
    """How long each SendMessage attempt may take, and how many, to answer within the timeout."""

    connect_timeout: float
    read_timeout: float
    attempts: int

    def worst_case_seconds(self) -> float:
        backoff = STANDARD_MODE_FIRST_BACKOFF_SECONDS * (self.attempts - 1)
        return self.attempts * (self.connect_timeout + self.read_timeout) + backoff


def sqs_call_budget(function_timeout_seconds: float) -> SqsCallBudget:
    """Timeouts and attempts whose worst case leaves a fifth of the function's time (at most 1 s)
    to answer 503 and flush metrics: a slow SQS must never become a Lambda timeout (a bare 502)."""
    available = function_timeout_seconds - min(1.0, function_timeout_seconds / 5)
    attempts = 2 if (available - STANDARD_MODE_FIRST_BACKOFF_SECONDS) / 2 >= MIN_SECONDS_PER_ATTEMPT else 1
    per_attempt = (available - STANDARD_MODE_FIRST_BACKOFF_SECONDS * (attempts - 1)) / attempts
    # A third to connect, the rest to read: a reachable SQS connects in milliseconds.
    return SqsCallBudget(connect_timeout=per_attempt / 3, read_timeout=per_attempt * 2 / 3, attempts=attempts)


def message_attributes(envelope: LeadEnvelope) -> dict[str, Any]:
    """The SQS message attributes every lead travels with."""
    return {"envelope_version": {"DataType": "Number", "StringValue": str(envelope.v)}}

"""Look into the dead-letter queue, move its messages back, or empty it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from functions.contract import UnreadableEnvelope, mask_email, parse_envelope
from leadpipe.queue_sweep import SQS_MAX_BATCH, peek_messages

PEEK_VISIBILITY_SECONDS = 30


@dataclass(frozen=True)
class DeadLetter:
    """One DLQ message as ops see it: never the raw e-mail address."""

    message_id: str
    age_seconds: float
    receive_count: int
    lead_id: str | None
    campaign: str | None
    email: str | None  # masked
    reason: str  # why the worker would refuse it today, or that it now parses fine

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(message: dict[str, Any], now: datetime) -> DeadLetter:
    attributes = message.get("Attributes", {})
    sent = datetime.fromtimestamp(int(attributes.get("SentTimestamp", "0")) / 1000, UTC)
    try:
        envelope = parse_envelope(message["Body"])
    except UnreadableEnvelope as error:
        lead_id = campaign = email = None
        reason = str(error)
    else:
        lead_id, campaign = str(envelope.lead_id), envelope.lead.campaign
        email = mask_email(envelope.lead.email)
        reason = "parses now: the failure was elsewhere (database?), see the worker's logs"
    return DeadLetter(
        message_id=message["MessageId"],
        age_seconds=max(0.0, (now - sent).total_seconds()),
        receive_count=int(attributes.get("ApproximateReceiveCount", "0")),
        lead_id=lead_id,
        campaign=campaign,
        email=email,
        reason=reason,
    )


def peek(sqs: Any, dead_letter_url: str, limit: int = 100) -> list[DeadLetter]:
    """Read up to `limit` messages and make them visible again at once: nothing is consumed."""
    messages = peek_messages(sqs, dead_letter_url, limit, PEEK_VISIBILITY_SECONDS, AttributeNames=["All"])
    now = datetime.now(UTC)
    return [describe(m, now) for m in messages]


def start_move_task(sqs: Any, dead_letter_url: str, leads_url: str, max_per_second: int | None) -> str:
    """In AWS: SQS's own message-move task, at an optional rate, from the DLQ to the leads queue."""
    arns = [
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for url in (dead_letter_url, leads_url)
    ]
    request: dict[str, Any] = {"SourceArn": arns[0], "DestinationArn": arns[1]}
    if max_per_second:
        request["MaxNumberOfMessagesPerSecond"] = max_per_second
    return sqs.start_message_move_task(**request)["TaskHandle"]


def move_messages(sqs: Any, dead_letter_url: str, leads_url: str, limit: int | None = None) -> int:
    """The local equivalent of a move task: send each message back, then delete it from the DLQ.

    Sent before deleted, so a crash in between can only duplicate a message, never lose it; a
    duplicate is harmless because the table keeps one row per lead_id. Only what the leads
    queue accepted is deleted: an entry SQS refused stays in the DLQ (visible again after the
    receive's visibility timeout). Returns how many were moved.
    """
    moved = 0
    while limit is None or moved < limit:
        batch = sqs.receive_message(
            QueueUrl=dead_letter_url, MaxNumberOfMessages=SQS_MAX_BATCH, VisibilityTimeout=60
        ).get("Messages", [])
        if not batch:
            break
        if limit is not None:
            batch = batch[: limit - moved]
        sent = sqs.send_message_batch(
            QueueUrl=leads_url, Entries=[{"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(batch)]
        )
        accepted = [batch[int(entry["Id"])] for entry in sent.get("Successful", [])]
        if accepted:
            sqs.delete_message_batch(
                QueueUrl=dead_letter_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(accepted)],
            )
        moved += len(accepted)
    return moved


def purge(sqs: Any, dead_letter_url: str) -> None:
    sqs.purge_queue(QueueUrl=dead_letter_url)

"""The events lane's dead-letter queues: each destination's, and the hand-off queue's.

A destination's DLQ holds events with EventBridge's ERROR_CODE and ERROR_MESSAGE attributes
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html); a redrive sends them as
`LeadStoredRedrive`, which only that destination's rule matches, since the others delivered them already.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from functions.contract import mask_email
from functions.worker.lead_events import EVENT_SOURCE
from infra.destinations import LEAD_STORED_REDRIVE
from leadpipe.dlq import SQS_MAX_BATCH, move_messages, start_move_task
from leadpipe.local.events_lane import local_client
from leadpipe.local.runtime import RuntimeInfo, local_sqs_client
from leadpipe.queue_sweep import delete_matching, peek_messages
from leadpipe.targets import TargetNotFound, stack_outputs

PEEK_VISIBILITY_SECONDS = 30


@dataclass(frozen=True)
class EventsDeadLetterQueue:
    """Where one of the lane's DLQs is, and what a redrive needs."""

    description: str
    sqs: Any
    url: str
    destination: str | None  # None: the hand-off DLQ
    events: Any | None = None  # EventBridge client (destination redrive)
    bus_name: str | None = None
    hand_off_url: str | None = None
    in_aws: bool = False


@dataclass(frozen=True)
class EventDeadLetter:
    """One dead-lettered event as on-call sees it: never the raw e-mail address."""

    message_id: str
    age_seconds: float
    lead_id: str | None
    campaign: str | None
    email: str | None  # masked
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve(stack: str | None, data_dir: Path, destination: str | None) -> EventsDeadLetterQueue:
    """The DLQ of `destination`, or the hand-off DLQ (None), of a stack or of the local runtime."""
    if stack is None:
        return _local(data_dir, destination)
    outputs = stack_outputs(boto3.client("cloudformation"), stack)
    if "EventBusName" not in outputs:
        raise TargetNotFound(f"stack {stack!r} has no events lane (events_enabled is off for its stage)")
    if destination is None:
        return EventsDeadLetterQueue(
            f"the events hand-off DLQ of stack {stack}",
            boto3.client("sqs"),
            outputs["EventsHandOffDeadLetterQueueUrl"],
            None,
            hand_off_url=outputs["EventsHandOffQueueUrl"],
            in_aws=True,
        )
    urls = json.loads(outputs["EventDestinationDeadLetterQueueUrls"])
    if destination not in urls:
        raise TargetNotFound(f"stack {stack!r} has no destination {destination!r}; it has: {', '.join(urls) or 'none'}")
    return EventsDeadLetterQueue(
        f"the DLQ of destination {destination} of stack {stack}",
        boto3.client("sqs"),
        urls[destination],
        destination,
        events=boto3.client("events"),
        bus_name=outputs["EventBusName"],
        in_aws=True,
    )


def _local(data_dir: Path, destination: str | None) -> EventsDeadLetterQueue:
    try:
        info = RuntimeInfo.load(data_dir)
    except FileNotFoundError as error:
        raise TargetNotFound(str(error)) from None
    lane = info.events
    if not lane:
        raise TargetNotFound("the local runtime runs no events lane (its stage has events_enabled off)")
    if destination is None:
        return EventsDeadLetterQueue(
            "the events hand-off DLQ of the local runtime",
            local_sqs_client(info.sqs_endpoint_url),
            lane["hand_off_dead_letter_url"],
            None,
            hand_off_url=lane["hand_off_url"],
        )
    urls = lane["destination_dead_letter_urls"]
    if destination not in urls:
        raise TargetNotFound(f"no destination {destination!r} in the local runtime; it has: {', '.join(urls)}")
    return EventsDeadLetterQueue(
        f"the DLQ of destination {destination} of the local runtime",
        local_client("sqs", lane["events_endpoint_url"]),
        urls[destination],
        destination,
        events=local_client("events", lane["events_endpoint_url"]),
        bus_name=lane["event_bus_name"],
    )


def describe(message: dict[str, Any], now: datetime) -> EventDeadLetter:
    attributes = message.get("MessageAttributes", {})
    sent = datetime.fromtimestamp(int(message.get("Attributes", {}).get("SentTimestamp", "0")) / 1000, UTC)
    detail = _detail(message["Body"])
    lead = (detail or {}).get("lead") or {}
    code = attributes.get("ERROR_CODE", {}).get("StringValue")
    text = attributes.get("ERROR_MESSAGE", {}).get("StringValue")
    return EventDeadLetter(
        message_id=message["MessageId"],
        age_seconds=max(0.0, (now - sent).total_seconds()),
        lead_id=(detail or {}).get("lead_id"),
        campaign=(detail or {}).get("campaign"),
        email=mask_email(lead["email"]) if lead.get("email") else None,
        reason=f"{code}: {text}" if code else "EventBridge did not take it after every relay attempt",
    )


def _detail(body: str) -> dict[str, Any] | None:
    """The LeadStored detail of a DLQ message: an event (destination DLQ) or a PutEvents entry (hand-off DLQ)."""
    try:
        message = json.loads(body)
        detail = message.get("detail") if "detail" in message else json.loads(message["Detail"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return detail if isinstance(detail, dict) else None


def peek(queue: EventsDeadLetterQueue, limit: int) -> list[EventDeadLetter]:
    """Read up to `limit` messages and make them visible again at once: nothing is consumed."""
    messages = peek_messages(
        queue.sqs, queue.url, limit, PEEK_VISIBILITY_SECONDS, AttributeNames=["All"], MessageAttributeNames=["All"]
    )
    now = datetime.now(UTC)
    return [describe(m, now) for m in messages]


def redrive(queue: EventsDeadLetterQueue, limit: int | None = None, max_per_second: int | None = None) -> str:
    """Send the dead letters on again; one line saying what was done."""
    if queue.destination is None:
        if queue.in_aws:
            task = start_move_task(queue.sqs, queue.url, queue.hand_off_url, max_per_second)
            return f"started an SQS message-move task to the events hand-off queue: {task}"
        moved = move_messages(queue.sqs, queue.url, queue.hand_off_url, limit)
        return f"moved {moved} event(s) back to the events hand-off queue"
    return f"put {_redrive_to_destination(queue, limit)} event(s) back on the bus for {queue.destination}"


def _redrive_to_destination(queue: EventsDeadLetterQueue, limit: int | None) -> int:
    """Each event goes back on the bus as LeadStoredRedrive for this destination only; deleted once EventBridge took
    it (a crash in between sends it twice: consumers dedupe by lead_id). What is unreadable stays."""
    moved = 0
    while limit is None or moved < limit:
        batch = queue.sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=SQS_MAX_BATCH, VisibilityTimeout=60)
        messages = batch.get("Messages", [])[: None if limit is None else limit - moved]
        readable = [(m, _detail(m["Body"])) for m in messages]
        readable = [(m, d) for m, d in readable if d is not None]
        if not readable:
            break
        entries = [
            {
                "Source": EVENT_SOURCE,
                "DetailType": LEAD_STORED_REDRIVE,
                "Detail": json.dumps({**detail, "redrive_to": queue.destination}, ensure_ascii=False),
                "EventBusName": queue.bus_name,
            }
            for _, detail in readable
        ]
        results = queue.events.put_events(Entries=entries)["Entries"]
        taken = [m for (m, _), result in zip(readable, results, strict=True) if not result.get("ErrorCode")]
        if taken:
            queue.sqs.delete_message_batch(
                QueueUrl=queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(taken)],
            )
        moved += len(taken)
        if len(taken) < len(readable):
            break
    return moved


def purge(queue: EventsDeadLetterQueue) -> None:
    queue.sqs.purge_queue(QueueUrl=queue.url)


def erase_from_events_lane(stack: str | None, data_dir: Path, email: str) -> str:
    """Delete the person's events from the lane's DLQs (hand-off and every destination's); one line saying
    what was done. The events already delivered are the destinations' to erase."""
    from leadpipe.erasure import normalised_address

    address = normalised_address(email)
    try:
        queues = [resolve(stack, data_dir, None)]
        names = _destination_names(stack, data_dir)
        queues += [resolve(stack, data_dir, name) for name in names]
    except TargetNotFound:
        return "events lane: none here (nothing to search)"
    removed = sum(erase_person_from(queue, address) for queue in queues)
    return (
        f"deleted {removed} event(s) of that person from the events lane's DLQs (hand-off, {', '.join(names) or '-'}); "
        "erase them in each destination (CRM, Slack) too"
    )


def _destination_names(stack: str | None, data_dir: Path) -> list[str]:
    if stack is None:
        return list((RuntimeInfo.load(data_dir).events or {}).get("destination_dead_letter_urls", {}))
    return list(json.loads(stack_outputs(boto3.client("cloudformation"), stack)["EventDestinationDeadLetterQueueUrls"]))


def erase_person_from(queue: EventsDeadLetterQueue, address: str) -> int:
    """Delete the messages whose lead is `address` (normalised); every other one is made visible again. How many."""

    def is_theirs(body: str) -> bool:
        return ((_detail(body) or {}).get("lead") or {}).get("email") == address

    return delete_matching(queue.sqs, queue.url, is_theirs, PEEK_VISIBILITY_SECONDS)

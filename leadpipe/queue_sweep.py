"""Reading a dead-letter queue without consuming it, and deleting only the messages that match."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SQS_MAX_BATCH = 10
# How long a sweep's receive waits for messages: long polling asks every SQS server, where a short poll may answer
# "empty" while messages remain. Tests against moto, which answers from one store, may set 0.
SWEEP_WAIT_SECONDS = 1


def peek_messages(sqs: Any, queue_url: str, limit: int, visibility_seconds: int, **receive: Any) -> list[dict]:
    """Up to `limit` distinct messages, each made visible again at once: nothing is consumed."""
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < limit:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(SQS_MAX_BATCH, limit - len(seen)),
            VisibilityTimeout=visibility_seconds,
            **receive,
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        seen.update((m["MessageId"], m) for m in fresh)
    messages = list(seen.values())
    make_visible(sqs, queue_url, messages)
    return messages


def delete_matching(sqs: Any, queue_url: str, matches: Callable[[str], bool], visibility_seconds: int) -> int:
    """Delete every message whose body `matches`; every other one is made visible again. How many were deleted."""
    seen: set[str] = set()
    keep: list[dict[str, Any]] = []
    deleted = 0
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=SQS_MAX_BATCH,
            VisibilityTimeout=visibility_seconds,
            WaitTimeSeconds=SWEEP_WAIT_SECONDS,
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        seen.update(m["MessageId"] for m in fresh)
        theirs = [m for m in fresh if matches(m["Body"])]
        keep.extend(m for m in fresh if m not in theirs)
        if theirs:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(theirs)],
            )
            deleted += len(theirs)
    make_visible(sqs, queue_url, keep)
    return deleted


def make_visible(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), SQS_MAX_BATCH):
        chunk = messages[start : start + SQS_MAX_BATCH]
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(chunk)
            ],
        )

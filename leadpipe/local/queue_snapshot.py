"""What the local queues hold survives a restart: moto keeps them in memory only.

On Ctrl-C the runtime makes the messages its pollers still hold (received, failed, waiting
for their visibility timeout) visible again, then writes every message of both queues to a
file; the next start sends them back.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SQS_MAX_BATCH = 10
SNAPSHOT_VISIBILITY_SECONDS = 600  # long enough that a message is never read into the file twice


def make_visible(sqs: Any, queue_url: str, receipt_handles: Iterable[str]) -> int:
    """End the visibility timeout of messages received earlier; returns how many SQS changed
    (a handle of a message since deleted or moved to the DLQ is refused, and skipped)."""
    handles, changed = list(receipt_handles), 0
    for start in range(0, len(handles), SQS_MAX_BATCH):
        chunk = handles[start : start + SQS_MAX_BATCH]
        response = sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0} for i, handle in enumerate(chunk)],
        )
        changed += len(response.get("Successful", []))
    return changed


def save_queue_snapshot(sqs: Any, path: Path, queue_urls: Mapping[str, str]) -> int:
    """Write every visible message of each named queue (body and attributes) to `path`."""
    saved = []
    for name, url in queue_urls.items():
        while True:
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=SQS_MAX_BATCH,
                VisibilityTimeout=SNAPSHOT_VISIBILITY_SECONDS,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            saved.extend(
                {"queue": name, "body": m["Body"], "attributes": _storable(m.get("MessageAttributes", {}))}
                for m in batch
            )
    if saved:
        path.write_text(json.dumps(saved))
    return len(saved)


def restore_queue_snapshot(sqs: Any, path: Path, queue_urls: Mapping[str, str]) -> int:
    """Send back what `save_queue_snapshot` wrote, then remove the file. Returns how many."""
    if not path.is_file():
        return 0
    items = json.loads(path.read_text())
    for item in items:
        request: dict[str, Any] = {"QueueUrl": queue_urls[item["queue"]], "MessageBody": item["body"]}
        if item.get("attributes"):
            request["MessageAttributes"] = _sendable(item["attributes"])
        sqs.send_message(**request)
    path.unlink()  # after every send: a crash in between duplicates (harmless), never loses
    return len(items)


def _storable(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: {
            "DataType": value["DataType"],
            **(
                {"BinaryValue": base64.b64encode(value["BinaryValue"]).decode()}
                if "BinaryValue" in value
                else {"StringValue": value["StringValue"]}
            ),
        }
        for name, value in attributes.items()
    }


def _sendable(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: {**value, "BinaryValue": base64.b64decode(value["BinaryValue"])}
        if "BinaryValue" in value
        else dict(value)
        for name, value in attributes.items()
    }

"""Lambda entry point of the event relay: the hand-off queue's events, put on the bus.

The worker hands an event to this queue when EventBridge did not take it after the commit. Each
message is one PutEvents entry; an entry EventBridge refuses again is reported in
`batchItemFailures` and comes back after the visibility timeout, until the queue's
`maxReceiveCount` parks it in the hand-off DLQ (alarmed; `leadpipe dlq redrive --hand-off`).
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from functions.contract import RedactingFormatter
from functions.contract.observability import METRICS_NAMESPACE, stage_dimension
from functions.worker.event_publisher import EventBusPublisher
from functions.worker.lead_events import EVENT_SOURCE, LEAD_STORED

EVENT_RELAY_SERVICE = "leadpipe-event-relay"
RELAY_TIMEOUT_SECONDS = 30
RELAY_BATCH_SIZE = 10  # one PutEvents request
logger = Logger(service=EVENT_RELAY_SERVICE, logger_formatter=RedactingFormatter())
metrics = Metrics(namespace=METRICS_NAMESPACE, service=EVENT_RELAY_SERVICE)
metrics.set_default_dimensions(**stage_dimension(os.environ))  # as the worker's: one identity per stage
# The relay holds no database slot: it may wait longer than the worker does, but every attempt together must end
# inside its invocation, or Lambda ends it before it answers and the whole batch comes back.
RELAY_CLIENT_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "total_max_attempts": 3},
    user_agent="leadpipe-relay",
)


class NotRelayed(Exception):
    """EventBridge did not take this entry (again): the message comes back after its visibility timeout."""


def parse_hand_off(body: str) -> dict[str, Any]:
    """One queued PutEvents entry; only LeadStored entries from our own source are relayed."""
    entry = json.loads(body)
    if not isinstance(entry, dict) or entry.get("Source") != EVENT_SOURCE or entry.get("DetailType") != LEAD_STORED:
        raise ValueError("not a LeadStored entry of the leadpipe source")
    if not isinstance(entry.get("Detail"), str) or not isinstance(entry.get("EventBusName"), str):
        raise ValueError("the entry has no Detail or EventBusName")
    return {key: entry[key] for key in ("Source", "DetailType", "Detail", "EventBusName")}


@cache
def get_bus() -> EventBusPublisher:
    # No pause between invocations: each batch is a fresh try, and SQS spaces the retries.
    return EventBusPublisher(boto3.client("events", config=RELAY_CLIENT_CONFIG), pause_seconds=0)


def relay(event: dict[str, Any], bus: EventBusPublisher, context: LambdaContext | None = None) -> dict[str, Any]:
    """Put every queued entry on the bus; the exact `batchItemFailures` for the ones it did not take."""
    records = [SQSRecord(raw) for raw in event.get("Records", [])]
    errors: dict[str, Exception] = {}
    entries: dict[str, dict[str, Any]] = {}
    for record in records:
        try:
            entries[record.message_id] = parse_hand_off(record.body)
        except ValueError as error:
            errors[record.message_id] = error
    failed, reason = bus.put_events(list(entries.values()))
    failed_ids = {id(entry) for entry in failed}
    for message_id, entry in entries.items():
        if id(entry) in failed_ids:
            errors[message_id] = NotRelayed(f"EventBridge did not take it: {reason}")
    metrics.add_metric(name="EventsRelayed", unit=MetricUnit.Count, value=len(entries) - len(failed))
    metrics.add_metric(name="EventsNotRelayed", unit=MetricUnit.Count, value=len(errors))
    logger.info("relay done", extra={"received": len(records), "relayed": len(entries) - len(failed), "error": reason})

    def settle(record: SQSRecord) -> None:
        if record.message_id in errors:
            raise errors[record.message_id]

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=settle, processor=processor, context=context)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return relay(event, get_bus(), context)


def reset_for_tests() -> None:
    get_bus.cache_clear()

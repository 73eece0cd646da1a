"""Lambda entry point of the worker: wiring only; the work is in logic.py and repository.py."""

from __future__ import annotations

import gc
import os
import time
from dataclasses import asdict
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.contract import RedactingFormatter
from functions.contract.observability import METRICS_NAMESPACE, WORKER_SERVICE, stage_dimension
from functions.worker.credentials import database_conninfo, session_timeouts
from functions.worker.event_publisher import (
    EVENTS_CLIENT_CONFIG,
    HAND_OFF_CLIENT_CONFIG,
    EventBusPublisher,
    HandOffQueue,
    LeadStoredPublisher,
)
from functions.worker.governor_switch import worker_pause_seconds
from functions.worker.logic import BatchSummary, StoringBatchProcessor
from functions.worker.repository import ConnectionProvider, LeadRepository, connect
from functions.worker.round_trip_deadline import RESPONSE_RESERVE_SECONDS
from functions.worker.settings import WorkerSettings
from functions.worker.stored_events import LeadStoredLane

logger = Logger(service=WORKER_SERVICE, logger_formatter=RedactingFormatter())
metrics = Metrics(namespace=METRICS_NAMESPACE, service=WORKER_SERVICE)
metrics.set_default_dimensions(**stage_dimension(os.environ))
# Active tracing without the X-Ray SDK, as in the ingest: it would trace no database call anyway.
GOVERNOR_RECORD_MAX_AGE_SECONDS = 20  # the probe rewrites the record once a minute at most
sleep = time.sleep  # the governor's pause; a test replaces it


@cache
def get_settings() -> WorkerSettings:
    return WorkerSettings.from_env(os.environ)


@cache
def get_governor_parameter() -> str | None:
    """The drain governor's record (SSM parameter name), given only to a governed worker in AWS."""
    return os.environ.get("GOVERNOR_RECORD_PARAMETER") or None


@cache
def get_processor() -> StoringBatchProcessor:
    """One processor, repository and (lazily opened) connection per execution environment."""
    settings = get_settings()
    connections = ConnectionProvider(
        lambda: connect(database_conninfo(settings), prepare_statements=settings.prepares_statements)
    )
    # Through RDS Proxy the timeouts are set per transaction; directly they ride in the startup options.
    per_transaction = session_timeouts(settings) if settings.through_proxy else None
    repository = LeadRepository(
        connections,
        settings.leads_table,
        transaction_timeouts=per_transaction,
        fallback_round_trip_seconds=settings.round_trip_limit_seconds,
    )
    lane = events_lane(settings, repository) if settings.event_bus_name else None
    return StoringBatchProcessor(repository.store_batch, after_commit=lane.after_commit if lane else None)


def events_lane(settings: WorkerSettings, repository: LeadRepository) -> LeadStoredLane:
    """The LeadStored publisher: EventBridge first, the hand-off queue for what it does not take."""
    hand_off = None
    if settings.events_hand_off_queue_url:
        hand_off = HandOffQueue(boto3.client("sqs", config=HAND_OFF_CLIENT_CONFIG), settings.events_hand_off_queue_url)
    bus = EventBusPublisher(boto3.client("events", config=EVENTS_CLIENT_CONFIG))
    return LeadStoredLane(LeadStoredPublisher(bus, hand_off), repository.stored_at_of, settings.event_bus_name)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    processor = get_processor()
    started = time.perf_counter()
    response = processor.handle(event, context)
    report_batch(processor.summary)
    pace_for_the_governor(time.perf_counter() - started, context)
    return response


def pace_for_the_governor(batch_seconds: float, context: LambdaContext) -> None:
    """Wait out this writer's share of the time the drain governor allows (AWS only; the pause is billed)."""
    parameter = get_governor_parameter()
    if parameter is None:
        return
    from aws_lambda_powertools.utilities import parameters

    try:
        record = parameters.get_parameter(parameter, max_age=GOVERNOR_RECORD_MAX_AGE_SECONDS)
    except Exception as error:
        logger.warning("drain governor record unreadable", extra={"error": type(error).__name__})
        return
    seconds_left = context.get_remaining_time_in_millis() / 1000 - RESPONSE_RESERVE_SECONDS
    pause = worker_pause_seconds(record, batch_seconds, seconds_left)
    if pause > 0:
        sleep(pause)


def report_batch(summary: BatchSummary) -> None:
    """One log line and a few metrics per batch; never the leads themselves."""
    metrics.add_metric(name="LeadsStored", unit=MetricUnit.Count, value=summary.inserted)
    metrics.add_metric(name="DuplicatesSkipped", unit=MetricUnit.Count, value=summary.duplicates)
    metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=len(summary.failed))
    if summary.database_unavailable:
        # What pages on-call (alarm DatabaseUnavailable): the failed records above are retried, not bad.
        metrics.add_metric(name="DatabaseUnavailable", unit=MetricUnit.Count, value=1)
    if summary.events is not None:
        metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=summary.events.published)
        metrics.add_metric(name="EventsHandedOff", unit=MetricUnit.Count, value=summary.events.handed_off)
        # What pages (alarm EventsNotHandedOff): stored leads whose records come back to publish again.
        metrics.add_metric(name="EventsNotHandedOff", unit=MetricUnit.Count, value=len(summary.events.not_handed_off))
    lag = summary.seconds_since_oldest_received(datetime.now(UTC))
    if lag is not None:
        metrics.add_metric(name="IngestToStoreSeconds", unit=MetricUnit.Seconds, value=lag)
    logger.info(
        "batch done",
        extra={
            "received": summary.received,
            "inserted": summary.inserted,
            "duplicates": summary.duplicates,
            "failed": [{"message_id": f.message_id, "reason": f.reason} for f in summary.failed],
            "store_error": summary.store_error,
            "database_unavailable": summary.database_unavailable,
            "events": None if summary.events is None else asdict(summary.events),
        },
    )


def reset_for_tests() -> None:
    """Forget cached settings and connections, as a new execution environment would."""
    get_settings.cache_clear()
    get_processor.cache_clear()
    get_governor_parameter.cache_clear()


# What the cold start built lives as long as the environment: frozen, no later garbage collection walks it.
gc.freeze()

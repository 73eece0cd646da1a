"""Lambda entry point of the ingest: wiring only; the work is in api.py and logic.py."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from functions.contract import RedactingFormatter
from functions.contract.observability import INGEST_SERVICE, METRICS_NAMESPACE
from functions.ingest.api import build_app
from functions.ingest.publisher import SqsLeadPublisher
from functions.ingest.settings import IngestSettings

logger = Logger(service=INGEST_SERVICE, logger_formatter=RedactingFormatter())
metrics = Metrics(namespace=METRICS_NAMESPACE, service=INGEST_SERVICE)
# No Powertools Tracer: Lambda's active tracing (set by the stack) already records every
# invocation, and the X-Ray SDK the Tracer imports cost ~130 ms of every cold start (make bench).


@cache
def get_settings() -> IngestSettings:
    return IngestSettings.from_env(os.environ)


@cache
def get_sqs_client() -> Any:
    """One client per execution environment, built on first use (after tests set up moto)."""
    timeout = get_settings().sqs_timeout_seconds
    # Short timeouts and few retries: the form must get a fast answer, a 503 beats a hang.
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"mode": "standard", "total_max_attempts": 2})
    return boto3.client("sqs", config=config)


@cache
def get_app() -> APIGatewayRestResolver:
    publisher = SqsLeadPublisher(get_sqs_client(), get_settings().queue_url)
    return build_app(get_settings(), publisher.publish, logger, metrics)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return get_app().resolve(event, context)


def reset_for_tests() -> None:
    """Forget cached settings and clients, as a new execution environment would."""
    for factory in (get_settings, get_sqs_client, get_app):
        factory.cache_clear()

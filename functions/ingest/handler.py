"""Lambda entry point of the ingest: wiring only; the work is in api.py and logic.py."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from functions.contract import RedactingFormatter
from functions.contract.observability import INGEST_SERVICE, METRICS_NAMESPACE
from functions.ingest.api import build_app
from functions.ingest.captcha import CaptchaPolicy, CaptchaVerifier
from functions.ingest.publisher import SqsLeadPublisher
from functions.ingest.settings import IngestSettings

logger = Logger(service=INGEST_SERVICE, logger_formatter=RedactingFormatter())
metrics = Metrics(namespace=METRICS_NAMESPACE, service=INGEST_SERVICE)
# No Powertools Tracer: Lambda's active tracing (set by the stack) already records every
# invocation, and the X-Ray SDK the Tracer imports cost ~130 ms of every cold start (make bench).


@cache
def get_settings() -> IngestSettings:
    return IngestSettings.from_env(os.environ)


def sqs_client_config(timeout_seconds: float) -> Config:
    # Short timeouts and few retries: the form must get a fast answer, a 503 beats a hang.
    # A fixed user agent: botocore otherwise rebuilds its default (OS, language, config and
    # feature metadata) and sanitises it character by character, twice per call. That was about
    # 30% of send_message's own CPU (`make bench`). botocore still appends its version, and
    # CloudTrail's userAgent says which function called.
    return Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"mode": "standard", "total_max_attempts": 2},
        user_agent=INGEST_SERVICE,
    )


@cache
def get_sqs_client() -> Any:
    """One client per execution environment, built on first use (after tests set up moto)."""
    return boto3.client("sqs", config=sqs_client_config(get_settings().sqs_timeout_seconds))


CAPTCHA_SECRET_MAX_AGE_SECONDS = 300  # a rotated secret is picked up within five minutes


@cache
def get_captcha_verifier() -> CaptchaVerifier | None:
    """The stage's captcha check, or None when it has none; the secret is read on first use and cached."""
    settings = get_settings()
    if settings.captcha_provider is None or settings.captcha_secret_arn is None:
        return None
    policy = CaptchaPolicy(
        provider=settings.captcha_provider,
        min_score=settings.captcha_min_score,
        fail_open=settings.captcha_fail_open,
        timeout_seconds=settings.captcha_timeout_seconds,
        verify_url=settings.captcha_verify_url,
    )
    secret_arn = settings.captcha_secret_arn
    return CaptchaVerifier(policy, lambda: str(parameters.get_secret(secret_arn, max_age=CAPTCHA_SECRET_MAX_AGE_SECONDS)))


@cache
def get_app() -> APIGatewayRestResolver:
    publisher = SqsLeadPublisher(get_sqs_client(), get_settings().queue_url)
    return build_app(get_settings(), publisher.publish, logger, metrics, get_captcha_verifier())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return get_app().resolve(event, context)


def reset_for_tests() -> None:
    """Forget cached settings and clients, as a new execution environment would."""
    for factory in (get_settings, get_sqs_client, get_captcha_verifier, get_app):
        factory.cache_clear()
    parameters.clear_caches()

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
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from functions.contract import RedactingFormatter
from functions.contract.observability import INGEST_SERVICE, METRICS_NAMESPACE, stage_dimension
from functions.ingest.api import build_app
from functions.ingest.captcha import CaptchaPolicy, CaptchaVerifier, SecretUnavailable
from functions.ingest.publisher import SqsLeadPublisher, sqs_call_budget
from functions.ingest.settings import IngestSettings

logger = Logger(service=INGEST_SERVICE, logger_formatter=RedactingFormatter())
metrics = Metrics(namespace=METRICS_NAMESPACE, service=INGEST_SERVICE)
metrics.set_default_dimensions(**stage_dimension(os.environ))
# No Powertools Tracer: Lambda's active tracing (set by the stack) already records every
# invocation, and the X-Ray SDK the Tracer imports slows every cold start (docs/performance.md).


@cache
def get_settings() -> IngestSettings:
    return IngestSettings.from_env(os.environ)


def sqs_client_config(function_timeout_seconds: float) -> Config:
    # Timeouts and retries fit in the function's own timeout: the form always gets our answer.
    # A fixed user agent: botocore otherwise rebuilds its default (OS, language, config and
    # feature metadata) and sanitises it character by character, twice per call (docs/performance.md).
    # botocore still appends its version, and
    # CloudTrail's userAgent says which function called.
    budget = sqs_call_budget(function_timeout_seconds)
    return Config(
        connect_timeout=budget.connect_timeout,
        read_timeout=budget.read_timeout,
        retries={"mode": "standard", "total_max_attempts": budget.attempts},
        user_agent=INGEST_SERVICE,
    )


@cache
def get_sqs_client() -> Any:
    """One client per execution environment, built on first use (after tests set up moto)."""
    return boto3.client("sqs", config=sqs_client_config(get_settings().sqs_budget_seconds))


CAPTCHA_SECRET_MAX_AGE_SECONDS = 300  # a rotated secret is picked up within five minutes


@cache
def get_captcha_secrets() -> parameters.SecretsProvider:
    """Secrets Manager within the captcha check's own time: one attempt, so a throttle or a hang is a quick 503."""
    half = get_settings().captcha_timeout_seconds / 2
    return parameters.SecretsProvider(
        boto_config=Config(
            connect_timeout=half,
            read_timeout=half,
            retries={"mode": "standard", "total_max_attempts": 1},
            user_agent=INGEST_SERVICE,
        )
    )


def read_captcha_secret(secret_arn: str) -> str:
    try:
        return str(get_captcha_secrets().get(secret_arn, max_age=CAPTCHA_SECRET_MAX_AGE_SECONDS))
    except GetParameterError as error:  # Powertools wraps every failure (throttle, timeout, denied) in this
        raise SecretUnavailable("the captcha secret could not be read") from error


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
    return CaptchaVerifier(policy, lambda: read_captcha_secret(secret_arn))


@cache
def get_app() -> APIGatewayRestResolver:
    publisher = SqsLeadPublisher(get_sqs_client(), get_settings().queue_url)
    return build_app(get_settings(), publisher.publish, logger, metrics, get_captcha_verifier())


# clear_state: keys appended for one request (its lead_id) must not label the next one's lines.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return get_app().resolve(event, context)


def reset_for_tests() -> None:
    """Forget cached settings and clients, as a new execution environment would."""
    for factory in (get_settings, get_sqs_client, get_captcha_secrets, get_captcha_verifier, get_app):
        factory.cache_clear()
    parameters.clear_caches()

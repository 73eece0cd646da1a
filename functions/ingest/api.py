"""The HTTP surface of the ingest: routes, CORS, and the one place errors become responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from http import HTTPStatus
from typing import Any
from uuid import UUID

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from functions.contract import LeadEnvelope, Source
from functions.ingest.captcha import PASS_HEADER, CaptchaOutcome, CaptchaVerifier, SecretUnavailable
from functions.ingest.errors import CaptchaUnavailable, FieldError, QueueUnavailable, SubmissionRefused
from functions.ingest.logic import (
    Submission,
    SubmissionPolicy,
    accept_submission,
    check_idempotency_key,
)
from functions.ingest.settings import IngestSettings

JSON = "application/json"
PASSED_LEAD = "captcha_passed_lead_id"  # request context: the lead this request proved human
# The headers a page may send; the stack's preflight (infra/api.py) allows exactly these.
CORS_ALLOW_HEADERS = ("Content-Type", "Idempotency-Key", PASS_HEADER)
CORS_MAX_AGE_SECONDS = 600  # how long a browser may reuse a preflight; the stack's preflight says the same


def build_app(
    settings: IngestSettings,
    publish: Callable[[LeadEnvelope], Any],
    logger: Logger,
    metrics: Metrics,
    captcha: CaptchaVerifier | None = None,
) -> APIGatewayRestResolver:
    """The ingest's resolver: `POST /leads`, CORS for the allowed origins, JSON errors."""
    app = APIGatewayRestResolver(cors=_cors(settings.allowed_origins))
    routes = IngestRoutes(app, settings, publish, logger, metrics, captcha)
    app.post("/leads", cors=True)(routes.submit_lead)
    app.exception_handler(SubmissionRefused)(routes.refuse)
    app.not_found(routes.not_found)
    app.exception_handler(Exception)(routes.unexpected)
    return app


class IngestRoutes:
    """The route and the error handlers of one resolver: each answer, its metric and its log line."""

    def __init__(
        self,
        app: APIGatewayRestResolver,
        settings: IngestSettings,
        publish: Callable[[LeadEnvelope], Any],
        logger: Logger,
        metrics: Metrics,
        captcha: CaptchaVerifier | None,
    ) -> None:
        self._app, self._settings, self._publish = app, settings, publish
        self._logger, self._metrics, self._captcha = logger, metrics, captcha
        self._policy = SubmissionPolicy(
            allowed_origins=settings.allowed_origins,
            max_body_bytes=settings.max_body_bytes,
            honeypot_field=settings.honeypot_field,
            captcha_field=captcha.policy.token_field if captcha else None,
        )
        self._tracked_campaigns = frozenset(settings.metric_campaigns)

    def submit_lead(self) -> Response:
        event = self._app.current_event
        submission = Submission(
            body=event.body,
            is_base64_encoded=event.is_base64_encoded,
            content_type=event.headers.get("content-type"),
            idempotency_key=check_idempotency_key(event.headers.get("idempotency-key")),
            source=Source(
                user_agent=_header(event, "user-agent"),
                origin=_header(event, "origin"),
                referer=_header(event, "referer"),
            ),
        )
        verify_captcha = self._verify_captcha if self._captcha is not None else None
        accepted = accept_submission(submission, self._policy, self._publish, verify_captcha=verify_captcha)
        self._logger.append_keys(lead_id=str(accepted.lead_id))
        if accepted.enqueued:
            self._count_queued(accepted.campaign, accepted.utm_source)
        else:
            self._metrics.add_metric(name="SpamDropped", unit=MetricUnit.Count, value=1)
            self._logger.info("honeypot filled; lead dropped")
        if accepted.redirect_to:
            return Response(HTTPStatus.SEE_OTHER, headers={"Location": accepted.redirect_to})
        body = {"lead_id": str(accepted.lead_id), "status": "queued"}
        return Response(HTTPStatus.ACCEPTED, JSON, json.dumps(body))

    def _count_queued(self, campaign: str | None, utm_source: str | None) -> None:
        self._metrics.add_metric(name="LeadsAccepted", unit=MetricUnit.Count, value=1)
        if campaign in self._tracked_campaigns:
            # A bounded allow-list: free-form codes as dimensions would explode metric costs.
            # A separate metric, so the total above keeps one dimension set for alarms.
            with single_metric(
                name="LeadsAcceptedByCampaign",
                unit=MetricUnit.Count,
                value=1,
                namespace=self._metrics.namespace,
                default_dimensions=self._metrics.default_dimensions,
            ) as campaign_metric:
                campaign_metric.add_dimension(name="campaign", value=campaign)
        self._logger.info("lead queued", extra={"campaign": campaign, "utm_source": utm_source})

    def _verify_captcha(self, token: object, lead_id: UUID) -> None:
        # What is left of the invocation, less what publishing may need (the SQS client's budget).
        context = self._app.lambda_context
        time_left = (
            context.get_remaining_time_in_millis() / 1000 - self._settings.sqs_budget_seconds if context else None
        )
        ticket = self._app.current_event.headers.get(PASS_HEADER)
        outcome = self._captcha.check(token, lead_id, ticket, time_left)
        if outcome is CaptchaOutcome.UNVERIFIED_FAIL_OPEN:
            self._metrics.add_metric(name="CaptchaUnverified", unit=MetricUnit.Count, value=1)
            self._logger.warning("captcha check unavailable; lead accepted unverified (fail-open)")
            return
        if outcome is CaptchaOutcome.PASSED_EARLIER:
            self._metrics.add_metric(name="CaptchaPassReused", unit=MetricUnit.Count, value=1)
        self._app.append_context(**{PASSED_LEAD: lead_id})

    def refuse(self, error: SubmissionRefused) -> Response:
        self._metrics.add_metric(name=f"Rejected_{error.code}", unit=MetricUnit.Count, value=1)
        self._logger.info("submission refused", extra={"reason": error.code, "fields": [f.field for f in error.fields]})
        headers = {}
        if isinstance(error, QueueUnavailable):
            self._metrics.add_metric(name="EnqueueFailures", unit=MetricUnit.Count, value=1)
            self._logger.warning("SQS refused the lead", exc_info=error.__cause__)
            headers["Retry-After"] = str(self._settings.retry_after_seconds)
            headers.update(_captcha_pass(self._captcha, self._app.context.get(PASSED_LEAD)))
        if isinstance(error, CaptchaUnavailable):
            self._logger.warning("captcha verifier unreachable; lead refused (fail-closed)", exc_info=error.__cause__)
            headers["Retry-After"] = str(self._settings.retry_after_seconds)
        return _error(error.status, error.code, error.message, error.fields, headers)

    def not_found(self, _: Exception) -> Response:
        return _error(HTTPStatus.NOT_FOUND, "not_found", "no such route; POST leads to /leads")

    def unexpected(self, error: Exception) -> Response:
        # Logged with its traceback for us; the client gets no internal detail.
        self._logger.exception("unexpected error")
        self._metrics.add_metric(name="Rejected_internal_error", unit=MetricUnit.Count, value=1)
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "something went wrong; please retry")


def _cors(allowed_origins: tuple[str, ...]) -> CORSConfig | None:
    if not allowed_origins:
        return None
    first, *others = allowed_origins
    config = CORSConfig(
        allow_origin=first,
        extra_origins=others,
        # Not CORS-safelisted: without them fetch() cannot read when to retry, nor keep its captcha pass.
        expose_headers=["Retry-After", PASS_HEADER],
        max_age=CORS_MAX_AGE_SECONDS,
    )
    # Powertools always adds Authorization, X-Api-Key, X-Amz-*: API Gateway's mock preflight allows none of them.
    config.allow_headers = set(CORS_ALLOW_HEADERS)
    return config


def _captcha_pass(captcha: CaptchaVerifier | None, lead_id: UUID | None) -> dict[str, str]:
    """A 503 after the captcha passed carries a ticket, so the retry the 503 asks for does not need the spent token."""
    if captcha is None or lead_id is None:
        return {}
    try:
        return {PASS_HEADER: captcha.pass_for(lead_id)}
    except SecretUnavailable:  # the secret was read moments ago; without it the retry falls back to the token
        return {}


def _header(event: Any, name: str) -> str | None:
    value = event.headers.get(name)
    return value[:1024] if value else None


def _error(
    status: int,
    code: str,
    message: str,
    fields: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"code": code, "message": message, "fields": [asdict(f) for f in fields or []]}}
    return Response(status, JSON, json.dumps(body), headers=headers or {})

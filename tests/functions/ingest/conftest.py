"""Shared by the tests in this folder."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from functions.ingest import handler as ingest
from tests.events import api_event
from tests.moto_mock import mock_aws
from tests.siteverify import SiteverifyStandIn

SECRET = "0x4AAAAAAA-test-secret"


GOOD_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"


ALLOWED_ORIGIN = "https://www.example.com"

# The captcha check's timeout where the stand-in answers: generous, so a loaded machine never turns an answer into
# a timeout (the settings' maximum; the function's timeout leaves SQS half). Tests of a verifier that does not
# answer in time set SLOW_VERIFIER_TIMEOUT.
ANSWERING_VERIFIER_TIMEOUT = "10"
FUNCTION_TIMEOUT = "20"
SLOW_VERIFIER_TIMEOUT = "0.3"  # the "slow" stand-in answers after 2 s


class VerifierStandIn(SiteverifyStandIn):
    """`mode`: "answer" (scores below), "slow" (never in time), "error" (HTTP 500)."""

    def __init__(self) -> None:
        self.mode = "answer"
        self.scores: dict[str, float] = {GOOD_TOKEN: 0.9}
        super().__init__()

    def answer(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any] | None]:
        if self.mode == "slow":
            time.sleep(2)
        if self.mode == "error":
            return 500, None
        token, secret = form.get("response", [""])[0], form.get("secret", [""])[0]
        known = secret == SECRET and token in self.scores
        answer: dict[str, Any] = {"success": known, "error-codes": [] if known else ["invalid-input-response"]}
        if known:
            answer["score"] = self.scores[token]
        return 200, answer


@pytest.fixture
def verifier_endpoint() -> Iterator[VerifierStandIn]:
    stand_in = VerifierStandIn()
    yield stand_in
    stand_in.close()


@pytest.fixture
def guarded_ingest(
    monkeypatch: pytest.MonkeyPatch, verifier_endpoint: VerifierStandIn
) -> Iterator[tuple[str, VerifierStandIn]]:
    """The ingest as the stack wires it for Turnstile: the secret in (moto's) Secrets Manager."""
    with mock_aws():
        queue_url = boto3.client("sqs").create_queue(QueueName="leads")["QueueUrl"]
        secret_arn = boto3.client("secretsmanager").create_secret(Name="leadpipe/turnstile", SecretString=SECRET)["ARN"]
        for name, value in {
            "LEADS_QUEUE_URL": queue_url,
            "ALLOWED_ORIGINS": ALLOWED_ORIGIN,
            "HONEYPOT_FIELD": "website",
            "CAPTCHA_PROVIDER": "turnstile",
            "CAPTCHA_SECRET_ARN": secret_arn,
            "CAPTCHA_VERIFY_URL": verifier_endpoint.url,
            "CAPTCHA_TIMEOUT_SECONDS": ANSWERING_VERIFIER_TIMEOUT,
            "INGEST_TIMEOUT_SECONDS": FUNCTION_TIMEOUT,
        }.items():
            monkeypatch.setenv(name, value)
        yield queue_url, verifier_endpoint


def queued(queue_url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def preflight(lambda_context: Any, requested_headers: str) -> dict[str, str]:
    """The ingest's answer to a browser asking, from the allowed origin, whether it may POST these headers."""
    event = api_event(
        None,
        None,
        method="OPTIONS",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": requested_headers,
        },
    )
    response = ingest.lambda_handler(event, lambda_context)
    return {name: ",".join(values) for name, values in response["multiValueHeaders"].items()}

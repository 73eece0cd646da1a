"""The captcha check, against a stand-in for the verification endpoint on 127.0.0.1 (tests/siteverify.py)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from functions.ingest import handler as ingest
from functions.ingest.captcha import CaptchaOutcome, CaptchaPolicy, CaptchaVerifier
from functions.ingest.errors import CaptchaInvalid, CaptchaMissing, CaptchaUnavailable
from tests.events import api_event
from tests.functions.ingest.conftest import (
    ALLOWED_ORIGIN,
    ANSWERING_VERIFIER_TIMEOUT,
    GOOD_TOKEN,
    SECRET,
    SLOW_VERIFIER_TIMEOUT,
    VerifierStandIn,
    queued,
)


def verifier(endpoint: VerifierStandIn, provider: str = "turnstile", **policy: Any) -> CaptchaVerifier:
    policy.setdefault("timeout_seconds", float(ANSWERING_VERIFIER_TIMEOUT))
    return CaptchaVerifier(CaptchaPolicy(provider=provider, verify_url=endpoint.url, **policy), lambda: SECRET)  # type: ignore[arg-type]


# --- the verifier -------------------------------------------------------------------------------


def test_a_good_turnstile_token_is_verified_with_the_secret(verifier_endpoint: VerifierStandIn) -> None:
    # When a token the verifier knows is checked
    outcome = verifier(verifier_endpoint).verify(GOOD_TOKEN)
    # Then it is verified, and the verifier got the secret and the token as a form
    assert outcome is CaptchaOutcome.VERIFIED
    assert verifier_endpoint.requests == [{"secret": [SECRET], "response": [GOOD_TOKEN]}]


def test_a_rejected_token_is_a_403_naming_the_widget_field(verifier_endpoint: VerifierStandIn) -> None:
    with pytest.raises(CaptchaInvalid) as refused:
        verifier(verifier_endpoint).verify("forged-token")
    assert refused.value.status == 403 and [f.field for f in refused.value.fields] == ["cf-turnstile-response"]


@pytest.mark.parametrize("token", [None, "", "   ", 42])
def test_a_missing_token_is_a_400_and_no_call_is_made(verifier_endpoint: VerifierStandIn, token: object) -> None:
    with pytest.raises(CaptchaMissing) as refused:
        verifier(verifier_endpoint, "recaptcha_v3").verify(token)
    assert refused.value.status == 400 and [f.field for f in refused.value.fields] == ["g-recaptcha-response"]
    assert verifier_endpoint.requests == []


def test_recaptcha_v3_scores_below_the_threshold_are_refused(verifier_endpoint: VerifierStandIn) -> None:
    # Given a threshold of 0.5 and three tokens scored around it
    verifier_endpoint.scores = {"human": 0.9, "edge": 0.5, "bot": 0.3}
    check = verifier(verifier_endpoint, "recaptcha_v3", min_score=0.5)
    # Then the threshold itself passes and a lower score is refused with its own code
    assert check.verify("human") is CaptchaOutcome.VERIFIED and check.verify("edge") is CaptchaOutcome.VERIFIED
    with pytest.raises(CaptchaInvalid) as refused:
        check.verify("bot")
    assert refused.value.fields[0].code == "low_score"


@pytest.mark.parametrize("mode", ["slow", "error"])
def test_an_unreachable_verifier_fails_closed_by_default(verifier_endpoint: VerifierStandIn, mode: str) -> None:
    # Given a verifier that does not answer in time (or answers 500)
    verifier_endpoint.mode = mode
    # When a token is checked with a 0.3 s timeout (the slow stand-in would say "success" after 2 s)
    # Then the lead is refused with a retryable 503
    with pytest.raises(CaptchaUnavailable) as refused:
        verifier(verifier_endpoint, timeout_seconds=float(SLOW_VERIFIER_TIMEOUT)).verify(GOOD_TOKEN)
    assert refused.value.status == 503


def test_fail_open_accepts_the_lead_unverified(verifier_endpoint: VerifierStandIn) -> None:
    verifier_endpoint.mode = "slow"
    outcome = verifier(verifier_endpoint, timeout_seconds=float(SLOW_VERIFIER_TIMEOUT), fail_open=True).verify(
        GOOD_TOKEN
    )
    assert outcome is CaptchaOutcome.UNVERIFIED_FAIL_OPEN


def test_the_check_never_outlasts_the_invocation(verifier_endpoint: VerifierStandIn) -> None:
    # Given an invocation with 50 ms left (after keeping the SQS publish's share)
    # When a token is checked; Then no call is made and the lead is refused as unverifiable
    with pytest.raises(CaptchaUnavailable):
        verifier(verifier_endpoint, timeout_seconds=2).verify(GOOD_TOKEN, time_left_seconds=0.05)
    assert verifier_endpoint.requests == []


# --- the ingest, with the check on --------------------------------------------------------------


def post_form(fields: dict[str, str], lambda_context: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
    event = api_event(urlencode(fields), "application/x-www-form-urlencoded", headers={"Origin": ALLOWED_ORIGIN})
    response = ingest.lambda_handler(event, lambda_context)
    headers = {name: ",".join(values) for name, values in response["multiValueHeaders"].items()}
    return response["statusCode"], headers, json.loads(response["body"])


def test_a_verified_form_is_queued_without_its_token(
    guarded_ingest: tuple[str, VerifierStandIn], lambda_context: Any
) -> None:
    queue_url, endpoint = guarded_ingest
    # When a form with a good Turnstile token is posted
    status, _, body = post_form({"email": "jane@example.com", "cf-turnstile-response": GOOD_TOKEN}, lambda_context)
    # Then 202, the verifier was asked with the secret from Secrets Manager, and the lead (not the token) is queued
    assert status == 202 and body["status"] == "queued"
    assert endpoint.requests == [{"secret": [SECRET], "response": [GOOD_TOKEN]}]
    [envelope] = queued(queue_url)
    assert envelope["lead"]["email"] == "jane@example.com" and GOOD_TOKEN not in json.dumps(envelope)


def test_a_forged_or_missing_token_is_a_clear_4xx_and_nothing_is_queued(
    guarded_ingest: tuple[str, VerifierStandIn], lambda_context: Any
) -> None:
    queue_url, _ = guarded_ingest
    status, _, body = post_form({"email": "jane@example.com", "cf-turnstile-response": "forged"}, lambda_context)
    assert (status, body["error"]["code"]) == (403, "captcha_invalid")
    status, _, body = post_form({"email": "jane@example.com"}, lambda_context)
    assert (status, body["error"]["code"]) == (400, "captcha_missing")
    assert body["error"]["fields"][0]["field"] == "cf-turnstile-response"
    assert queued(queue_url) == []


def test_an_invalid_lead_is_refused_before_its_token_is_spent(
    guarded_ingest: tuple[str, VerifierStandIn], lambda_context: Any
) -> None:
    # A token is single-use: a typo in the form must not burn it
    _, endpoint = guarded_ingest
    status, _, body = post_form({"email": "not-an-email", "cf-turnstile-response": GOOD_TOKEN}, lambda_context)
    assert status == 422 and endpoint.requests == []


def test_an_unreachable_verifier_is_a_503_with_retry_after(
    guarded_ingest: tuple[str, VerifierStandIn], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_url, endpoint = guarded_ingest
    endpoint.mode = "slow"
    monkeypatch.setenv("CAPTCHA_TIMEOUT_SECONDS", SLOW_VERIFIER_TIMEOUT)
    status, headers, body = post_form(
        {"email": "jane@example.com", "cf-turnstile-response": GOOD_TOKEN}, lambda_context
    )
    assert (status, body["error"]["code"]) == (503, "captcha_unavailable") and int(headers["Retry-After"]) >= 1
    # And a fetch() on the allowed origin may read it
    assert (
        headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
        and "Retry-After" in headers["Access-Control-Expose-Headers"]
    )
    assert queued(queue_url) == []


def test_fail_open_queues_the_lead_and_counts_it(
    guarded_ingest: tuple[str, VerifierStandIn],
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queue_url, endpoint = guarded_ingest
    monkeypatch.setenv("CAPTCHA_FAIL_OPEN", "true")
    endpoint.mode = "error"
    status, _, _ = post_form({"email": "jane@example.com", "cf-turnstile-response": GOOD_TOKEN}, lambda_context)
    assert status == 202 and len(queued(queue_url)) == 1
    assert '"CaptchaUnverified"' in capsys.readouterr().out


def test_honeypot_spam_is_dropped_without_asking_the_verifier(
    guarded_ingest: tuple[str, VerifierStandIn], lambda_context: Any
) -> None:
    queue_url, endpoint = guarded_ingest
    status, _, _ = post_form({"email": "bot@example.com", "website": "http://spam.example"}, lambda_context)
    assert status == 202 and endpoint.requests == [] and queued(queue_url) == []


def test_the_secret_is_read_once_per_environment(
    guarded_ingest: tuple[str, VerifierStandIn], lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a count of Secrets Manager reads
    reads: list[str] = []
    provider = ingest.get_captcha_secrets()
    original = provider._get
    monkeypatch.setattr(provider, "_get", lambda name, **kwargs: reads.append(name) or original(name, **kwargs))
    # When three forms are posted; Then the secret was fetched once (Powertools caches it)
    for index in range(3):
        assert (
            post_form({"email": f"jane{index}@example.com", "cf-turnstile-response": GOOD_TOKEN}, lambda_context)[0]
            == 202
        )
    assert len(reads) == 1

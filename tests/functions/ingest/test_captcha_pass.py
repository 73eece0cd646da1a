"""The captcha pass: a 503 after the captcha passed lets the retry of THAT lead skip siteverify, nothing more.

Turnstile and reCAPTCHA tokens verify once: a second siteverify answers `timeout-or-duplicate`
(https://developers.cloudflare.com/turnstile/get-started/server-side-validation/), and they expire
(Turnstile after 300 s, reCAPTCHA after two minutes). So the retry a 503 asks for cannot re-verify the
token; it sends the pass instead. And when the captcha secret cannot be read, the answer is a
retryable 503, never a 500.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from functions.contract import Lead
from functions.ingest import handler as ingest
from functions.ingest.captcha import PASS_HEADER, PASS_LIFETIME_SECONDS, CaptchaPass
from functions.ingest.logic import derive_lead_id
from tests.events import api_event
from tests.functions.ingest.conftest import ALLOWED_ORIGIN, GOOD_TOKEN, SECRET, preflight, queued

JANE = {"email": "jane@example.com", "cf-turnstile-response": GOOD_TOKEN}
KEY = "5b0e6d1c-key"


def post(
    fields: dict[str, str], lambda_context: Any, ticket: str | None = None, key: str = KEY
) -> tuple[int, dict[str, str], dict[str, Any]]:
    headers = {
        "Origin": ALLOWED_ORIGIN,
        "Idempotency-Key": key,
        **({PASS_HEADER: ticket} if ticket is not None else {}),
    }
    response = ingest.lambda_handler(
        api_event(urlencode(fields), "application/x-www-form-urlencoded", headers=headers), lambda_context
    )
    answer_headers = {name: ",".join(values) for name, values in response["multiValueHeaders"].items()}
    return response["statusCode"], answer_headers, json.loads(response["body"])


def lead_id_of(fields: dict[str, str], key: str = KEY) -> UUID:
    lead = Lead.model_validate({name: value for name, value in fields.items() if name != "cf-turnstile-response"})
    return derive_lead_id(lead, key, datetime.now(UTC))


def refuse_sqs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    sqs = ingest.get_sqs_client()
    original = sqs.send_message
    calls: list[int] = []

    def flaky(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "x"}}, "SendMessage")
        return original(**kwargs)

    monkeypatch.setattr(sqs, "send_message", flaky)


# --- the ticket itself --------------------------------------------------------------------------


def test_a_pass_admits_its_own_lead_until_it_expires() -> None:
    # Given a pass issued now for one lead
    clock = [1_800_000_000.0]
    passes = CaptchaPass(SECRET, now=lambda: clock[0])
    lead = UUID("11111111-1111-5111-8111-111111111111")
    ticket = passes.issue(lead)
    # Then it admits that lead, for its lifetime and not a second longer
    assert passes.admits(ticket, lead)
    clock[0] += PASS_LIFETIME_SECONDS - 1
    assert passes.admits(ticket, lead)
    clock[0] += 1
    assert not passes.admits(ticket, lead)


def test_a_pass_is_not_the_secret_and_does_not_reveal_it() -> None:
    ticket = CaptchaPass(SECRET).issue(UUID(int=1))
    assert SECRET not in ticket and len(ticket) <= 64


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda good, lead: CaptchaPass(SECRET).issue(UUID(int=2)), id="another-lead"),
        pytest.param(
            lambda good, lead: good[:-2] + ("AA" if not good.endswith("AA") else "BB"), id="tampered-signature"
        ),
        pytest.param(
            lambda good, lead: str(int(good.split(".")[0]) + 60) + "." + good.split(".")[1], id="extended-expiry"
        ),
        pytest.param(lambda good, lead: CaptchaPass("another-secret").issue(lead), id="another-secret"),
        pytest.param(
            lambda good, lead: CaptchaPass(SECRET, now=lambda: time.time() - PASS_LIFETIME_SECONDS - 1).issue(lead),
            id="expired",
        ),
        pytest.param(
            lambda good, lead: CaptchaPass(SECRET, lifetime_seconds=10 * PASS_LIFETIME_SECONDS).issue(lead),
            id="too-far-ahead",
        ),
        pytest.param(lambda good, lead: "", id="empty"),
        pytest.param(lambda good, lead: good + "." + good, id="junk"),
        pytest.param(lambda good, lead: "١٨٠٠٠٠٠٠٠٠." + good.split(".")[1], id="non-ascii-digits"),
    ],
)
def test_a_pass_for_anything_else_is_not_admitted(forge: Any) -> None:
    lead = UUID(int=1)
    good = CaptchaPass(SECRET).issue(lead)
    assert not CaptchaPass(SECRET).admits(forge(good, lead), lead)


# --- through the ingest -------------------------------------------------------------------------


def test_a_503_before_the_captcha_was_checked_carries_no_pass(guarded_ingest, lambda_context: Any) -> None:
    # Given a verifier that is down (fail-closed): the lead never passed the captcha
    _, endpoint = guarded_ingest
    endpoint.mode = "error"
    # When it is posted; Then a retryable 503 without a pass
    status, headers, body = post(JANE, lambda_context)
    assert (status, body["error"]["code"]) == (503, "captcha_unavailable") and PASS_HEADER not in headers


def test_a_503_after_a_fail_open_acceptance_carries_no_pass(
    guarded_ingest, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stage that fails open, a verifier that is down, and SQS refusing once
    _, endpoint = guarded_ingest
    monkeypatch.setenv("CAPTCHA_FAIL_OPEN", "true")
    endpoint.mode = "error"
    refuse_sqs_once(monkeypatch)
    # When the lead is accepted unverified and then cannot be queued
    status, headers, body = post(JANE, lambda_context)
    # Then 503, but no pass: the lead never proved anything
    assert (status, body["error"]["code"]) == (503, "queue_unavailable") and PASS_HEADER not in headers


def test_a_valid_pass_is_accepted_without_asking_siteverify(guarded_ingest, lambda_context: Any) -> None:
    # Given a pass for Jane's lead and a token the verifier would refuse (spent)
    queue_url, endpoint = guarded_ingest
    ticket = CaptchaPass(SECRET).issue(lead_id_of(JANE))
    # When the lead is posted with it
    status, _, body = post({**JANE, "cf-turnstile-response": "spent-token"}, lambda_context, ticket=ticket)
    # Then it is queued under the id the pass was issued for, and siteverify was not called
    assert status == 202 and body["lead_id"] == str(lead_id_of(JANE))
    assert endpoint.requests == [] and [e["lead"]["email"] for e in queued(queue_url)] == ["jane@example.com"]


@pytest.mark.parametrize(
    ("ticket_for", "posted", "key"),
    [
        pytest.param("another-lead", {**JANE, "email": "mallory@example.com"}, KEY, id="another-lead"),
        pytest.param("another-lead", JANE, "another-key", id="another-idempotency-key"),
        pytest.param("tampered", JANE, KEY, id="tampered"),
        pytest.param("expired", JANE, KEY, id="expired"),
        pytest.param("another-secret", JANE, KEY, id="another-secret"),
        # docs/openapi.json promises that a pass over 64 characters is ignored, not refused
        pytest.param("over-64-characters", JANE, KEY, id="over-64-characters"),
    ],
)
def test_a_pass_that_does_not_fit_falls_back_to_the_token(
    guarded_ingest,
    lambda_context: Any,
    ticket_for: str,
    posted: dict[str, str],
    key: str,
) -> None:
    # Given a pass that does not fit the posted lead, and a spent token
    queue_url, endpoint = guarded_ingest
    jane = lead_id_of(JANE)
    ticket = {
        "another-lead": CaptchaPass(SECRET).issue(jane),
        "tampered": CaptchaPass(SECRET).issue(jane)[:-4] + "AAAA",
        "expired": CaptchaPass(SECRET, now=lambda: time.time() - PASS_LIFETIME_SECONDS - 5).issue(jane),
        "another-secret": CaptchaPass("0x4AAAAAAA-rotated-away").issue(jane),
        "over-64-characters": CaptchaPass(SECRET).issue(jane) + "=" * 200,
    }[ticket_for]
    # When the lead is posted with it
    status, _, body = post({**posted, "cf-turnstile-response": "spent-token"}, lambda_context, ticket=ticket, key=key)
    # Then the token decides, as without a pass: 403, nothing queued
    assert (status, body["error"]["code"]) == (403, "captcha_invalid")
    assert [r["response"] for r in endpoint.requests] == [["spent-token"]] and queued(queue_url) == []


def test_a_pass_is_renewed_when_the_retry_meets_another_503(
    guarded_ingest, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a lead with a pass from an earlier 503, and SQS refusing once more
    _, endpoint = guarded_ingest
    refuse_sqs_once(monkeypatch)
    ticket = CaptchaPass(SECRET).issue(lead_id_of(JANE))
    # When the retry is refused by SQS too
    status, headers, _ = post(JANE, lambda_context, ticket=ticket)
    # Then its 503 carries a pass for the same lead again (the retry after that needs one too)
    assert (
        status == 503 and CaptchaPass(SECRET).admits(headers[PASS_HEADER], lead_id_of(JANE)) and endpoint.requests == []
    )


def test_the_preflight_lets_a_page_send_the_pass(guarded_ingest, lambda_context: Any) -> None:
    # When a browser asks whether it may send the pass header cross-origin
    headers = preflight(lambda_context, "content-type,idempotency-key,leadpipe-captcha-pass")
    # Then it may
    assert PASS_HEADER in headers["Access-Control-Allow-Headers"].split(",")


# --- the secret cannot be read ------------------------------------------------------------------


@pytest.mark.parametrize("code", ["ThrottlingException", "InternalServiceError"])
def test_an_unreadable_secret_is_a_503_with_retry_after(guarded_ingest, lambda_context: Any, code: str) -> None:
    # Given Secrets Manager refusing the read (throttled, or failing inside)
    queue_url, endpoint = guarded_ingest
    stub = Stubber(ingest.get_captcha_secrets().client)
    stub.add_client_error(
        "get_secret_value", service_error_code=code, http_status_code=400 if code.startswith("Throttling") else 500
    )
    with stub:
        # When a lead is posted
        status, headers, body = post(JANE, lambda_context)
    # Then a retryable 503 with Retry-After (not a 500), nothing queued, no token spent
    assert (status, body["error"]["code"]) == (503, "captcha_unavailable") and int(headers["Retry-After"]) >= 1
    assert queued(queue_url) == [] and endpoint.requests == []


def test_an_unreadable_secret_with_a_pass_is_a_503_too(guarded_ingest, lambda_context: Any) -> None:
    queue_url, _ = guarded_ingest
    stub = Stubber(ingest.get_captcha_secrets().client)
    stub.add_client_error("get_secret_value", service_error_code="ThrottlingException", http_status_code=400)
    with stub:
        status, headers, body = post(JANE, lambda_context, ticket=CaptchaPass(SECRET).issue(lead_id_of(JANE)))
    assert (status, body["error"]["code"]) == (503, "captcha_unavailable") and int(headers["Retry-After"]) >= 1
    assert queued(queue_url) == []


def test_an_unreadable_secret_on_a_fail_open_stage_queues_the_lead_unverified(
    guarded_ingest,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a stage that fails open, and Secrets Manager throttling
    queue_url, endpoint = guarded_ingest
    monkeypatch.setenv("CAPTCHA_FAIL_OPEN", "true")
    stub = Stubber(ingest.get_captcha_secrets().client)
    stub.add_client_error("get_secret_value", service_error_code="ThrottlingException", http_status_code=400)
    with stub:
        status, _, _ = post(JANE, lambda_context)
    # Then the lead is queued, counted as unverified, and the verifier was not asked
    assert status == 202 and len(queued(queue_url)) == 1 and endpoint.requests == []
    assert '"CaptchaUnverified"' in capsys.readouterr().out


def test_the_secret_read_fits_in_the_captcha_time_and_is_not_retried(
    guarded_ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the captcha check's 0.3 s (CAPTCHA_TIMEOUT_SECONDS)
    monkeypatch.setenv("CAPTCHA_TIMEOUT_SECONDS", "0.3")
    config = ingest.get_captcha_secrets().client.meta.config
    # Then a hanging Secrets Manager costs at most that, once: the form gets a 503, never a Lambda timeout
    assert config.connect_timeout + config.read_timeout <= 0.3 and config.retries["total_max_attempts"] == 1

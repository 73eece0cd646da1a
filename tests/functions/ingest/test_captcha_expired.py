"""A spent or expired captcha token gets its own answer, `403 captcha_expired`, apart from a refused one.

Both verifiers document the error code `timeout-or-duplicate` for a token that was verified before or is
too old: Cloudflare Turnstile ("The response parameter has already been validated before",
https://developers.cloudflare.com/turnstile/get-started/server-side-validation/) and Google reCAPTCHA
("The response is no longer valid: either is too old or has been used previously",
https://developers.google.com/recaptcha/docs/verify). Such a lead may go again with the widget's next
token; a forged token or a low reCAPTCHA v3 score may not, or leadpipe.js would loop.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from functions.ingest import handler as ingest
from functions.ingest.captcha import CaptchaPolicy, CaptchaVerifier
from functions.ingest.errors import CaptchaExpired, CaptchaInvalid
from leadpipe.openapi import openapi_document
from tests.events import api_event
from tests.functions.ingest.conftest import ALLOWED_ORIGIN, GOOD_TOKEN, SECRET, VerifierStandIn, queued

SPENT_TOKEN = "spent.TOKEN"


class SpendingStandIn(VerifierStandIn):
    """As siteverify: a known token verifies once; after that it answers `timeout-or-duplicate`."""

    def __init__(self) -> None:
        self.spent: set[str] = {SPENT_TOKEN}
        super().__init__()

    def answer(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any] | None]:
        token = form.get("response", [""])[0]
        if token in self.spent:
            return 200, {"success": False, "error-codes": ["timeout-or-duplicate"]}
        self.spent.add(token)
        return super().answer(form)


@pytest.fixture
def spending_endpoint() -> Any:
    stand_in = SpendingStandIn()
    yield stand_in
    stand_in.close()


def test_a_spent_token_is_captcha_expired_and_a_forged_one_stays_captcha_invalid(
    spending_endpoint: SpendingStandIn,
) -> None:
    check = CaptchaVerifier(CaptchaPolicy(provider="turnstile", verify_url=spending_endpoint.url), lambda: SECRET)
    # Given a good token that verified once
    check.verify(GOOD_TOKEN)
    # When it is sent again; Then it is refused as expired, naming the widget's field
    with pytest.raises(CaptchaExpired) as expired:
        check.verify(GOOD_TOKEN)
    assert (expired.value.status, expired.value.code) == (403, "captcha_expired")
    assert [(f.field, f.code) for f in expired.value.fields] == [("cf-turnstile-response", "expired")]
    # When a token siteverify never issued is sent; Then it is a plain refusal, not an expired one
    with pytest.raises(CaptchaInvalid) as refused:
        check.verify("forged-token")
    assert refused.value.code == "captcha_invalid" and not isinstance(refused.value, CaptchaExpired)


def test_a_low_recaptcha_score_is_captcha_invalid_not_expired(spending_endpoint: SpendingStandIn) -> None:
    # Given reCAPTCHA v3 scoring this visitor below the threshold (success: true, a score)
    spending_endpoint.scores = {"bot": 0.1}
    check = CaptchaVerifier(CaptchaPolicy(provider="recaptcha_v3", verify_url=spending_endpoint.url), lambda: SECRET)
    # Then the refusal is final: a fresh token from the same visitor would score the same
    with pytest.raises(CaptchaInvalid) as refused:
        check.verify("bot")
    assert refused.value.code == "captcha_invalid" and refused.value.fields[0].code == "low_score"


def test_the_ingest_answers_403_captcha_expired_and_queues_nothing(
    guarded_ingest: tuple[str, VerifierStandIn],
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue_url, endpoint = guarded_ingest
    # Given siteverify says the token was already verified
    monkeypatch.setattr(
        endpoint, "answer", lambda form: (200, {"success": False, "error-codes": ["timeout-or-duplicate"]})
    )
    # When a form with it is posted
    event = api_event(
        urlencode({"email": "jane@example.com", "cf-turnstile-response": SPENT_TOKEN}),
        "application/x-www-form-urlencoded",
        headers={"Origin": ALLOWED_ORIGIN},
    )
    response = ingest.lambda_handler(event, lambda_context)
    # Then 403 captcha_expired with the field named, and nothing reached the queue
    body = json.loads(response["body"])
    assert (response["statusCode"], body["error"]["code"]) == (403, "captcha_expired")
    assert body["error"]["fields"][0]["field"] == "cf-turnstile-response"
    assert queued(queue_url) == []
    # And the API's contract names the code
    assert "captcha_expired" in openapi_document()["paths"]["/leads"]["post"]["responses"]["403"]["description"]

"""Red team: a captcha token is single-use, but the 503s the ingest gives AFTER spending it invite a retry.

leadpipe.js keeps the form body (token included) in its outbox and resends it on any 5xx with the
same Idempotency-Key; on the 403 that followed it used to forget the lead. So one SQS hiccup after a
good captcha check lost a real lead, and a 503 promised it could be retried. The fix: the 503 carries
a captcha pass (`Leadpipe-Captcha-Pass`) for that lead, and the client sends it back on the retry.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.exceptions import ClientError

from functions.ingest import handler as ingest
from functions.ingest.captcha import PASS_HEADER
from tests.events import api_event
from tests.functions.ingest.conftest import ALLOWED_ORIGIN, GOOD_TOKEN, queued

FORM = {"email": "jane@example.com", "cf-turnstile-response": GOOD_TOKEN}


def post_with_key(
    fields: dict[str, str], key: str, lambda_context: Any, ticket: str | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    headers = {"Origin": ALLOWED_ORIGIN, "Idempotency-Key": key, **({PASS_HEADER: ticket} if ticket else {})}
    event = api_event(urlencode(fields), "application/x-www-form-urlencoded", headers=headers)
    response = ingest.lambda_handler(event, lambda_context)
    answer_headers = {name: ",".join(values) for name, values in response["multiValueHeaders"].items()}
    return response["statusCode"], answer_headers, json.loads(response["body"])


def test_a_503_after_the_captcha_passed_can_be_retried(
    guarded_ingest, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_url, endpoint = guarded_ingest
    ingest.reset_for_tests()
    # Given Turnstile/reCAPTCHA: a token verifies once; a second siteverify says timeout-or-duplicate.
    spent: set[str] = set()
    real_scores = dict(endpoint.scores)

    class SingleUse(dict):
        def __contains__(self, token: object) -> bool:
            if token in spent:
                return False
            spent.add(token)  # type: ignore[arg-type]
            return token in real_scores

    endpoint.scores = SingleUse(real_scores)
    sqs = ingest.get_sqs_client()
    original_send = sqs.send_message
    calls = {"n": 0}

    def flaky_send(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:  # one transient SQS failure
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "x"}}, "SendMessage")
        return original_send(**kwargs)

    monkeypatch.setattr(sqs, "send_message", flaky_send)
    # When the first POST passes the captcha (token spent) and SQS refuses it
    status, headers, body = post_with_key(FORM, "k-1", lambda_context)
    # Then a 503 with Retry-After, carrying a captcha pass a cross-origin fetch() may read
    assert status == 503, body
    assert int(headers["Retry-After"]) >= 1 and headers[PASS_HEADER]
    assert PASS_HEADER in headers["Access-Control-Expose-Headers"]
    # When leadpipe.js retries the same body with the same Idempotency-Key and the pass, as the 503 told it to
    status, _, body = post_with_key(FORM, "k-1", lambda_context, ticket=headers[PASS_HEADER])
    # Then the lead is queued, once, and the spent token was never sent to siteverify again
    assert status == 202, body
    assert len(queued(queue_url)) == 1
    assert len(endpoint.requests) == 1

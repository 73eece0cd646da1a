"""A real headless Chromium sends a captcha-protected form through the local pipeline: no lead is lost to a spent token.

Turnstile and reCAPTCHA tokens verify ONCE (a second siteverify answers `timeout-or-duplicate`) and
expire (Turnstile after 300 s, reCAPTCHA after two minutes):
https://developers.cloudflare.com/turnstile/get-started/server-side-validation/
https://developers.google.com/recaptcha/docs/verify
The stand-in for siteverify below is as strict. The page's widget is played by a hidden
`cf-turnstile-response` input in the form, where Turnstile puts its token.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.e2e.conftest import (
    OUTBOX_JS,
    OtherOrigin,
    RunningPipeline,
    SingleUseSiteverify,
    outbox,
    pump_until,
    record,
    set_retry_budget,
    turnstile_widget_gives,
    unique_email,
    wait_for,
    with_fast_client,
)

PASS_HEADER = "leadpipe-captcha-pass"  # as Playwright reports request headers: lower case


@pytest.mark.parametrize("cross_origin", [False, True], ids=["same-origin", "cross-origin"])
def test_a_503_after_the_captcha_passed_is_retried_with_the_pass_and_stored_once(
    browser: Browser,
    guarded_pipeline: RunningPipeline,
    siteverify: SingleUseSiteverify,
    other_origin: OtherOrigin,
    cross_origin: bool,
) -> None:
    info = guarded_pipeline.info
    page = browser.new_context().new_page()
    posts, answers = record(page, info.api_url)
    page.goto(other_origin.origin + "/" if cross_origin else info.landing_page_url)
    set_retry_budget(page, 120)
    token = siteverify.issue()
    turnstile_widget_gives(page, token)
    email = unique_email("captcha-503")
    # Given SQS is down, so the ingest spends the token on siteverify and then cannot queue the lead
    guarded_pipeline.pipeline.stop_queue_service()
    try:
        # When the visitor submits once
        page.fill("#signup-email", email)
        page.click("#signup-form button[type=submit]")
        first = pump_until(page, lambda: answers[:1], timeout=30, message="the first answer")[0]
    finally:
        # And SQS is back
        guarded_pipeline.pipeline.start_queue_service()
    # Then the first answer was a 503 carrying a captcha pass
    assert first.status == 503 and first.headers.get(PASS_HEADER)
    # Then the client's retry (same key, with the pass) is accepted and the visitor lands on the thank-you page
    page.wait_for_url(info.landing_page_url + "thanks", timeout=120_000)
    assert [answer.status for answer in answers][-1] == 202 and 403 not in [answer.status for answer in answers]
    assert len({request.headers["idempotency-key"] for request in posts}) == 1
    assert all(request.headers.get(PASS_HEADER) for request in posts[1:]) and len(posts) >= 2
    # And the token went to siteverify once; the lead is stored exactly once; nothing is left in the outbox
    assert siteverify.checked.count(token) == 1
    assert wait_for(lambda: guarded_pipeline.count("email = %s", (email,)) == 1, message="one row")
    assert page.evaluate(OUTBOX_JS) == []
    page.context.close()


def test_a_saved_lead_whose_token_expired_waits_for_a_fresh_token_then_is_stored_once(
    browser: Browser,
    guarded_pipeline: RunningPipeline,
    siteverify: SingleUseSiteverify,
) -> None:
    info = guarded_pipeline.info
    context = browser.new_context()
    with_fast_client(context, info.landing_page_url)
    page = context.new_page()
    posts, answers = record(page, info.api_url)
    # Given a lead saved in this browser on an earlier visit (the API asked for an hour's pause), with no pass
    page.route(info.api_url, lambda route: route.fulfill(status=503, headers={"Retry-After": "3600"}, body=""))
    page.goto(info.landing_page_url)
    old_token = siteverify.issue()
    turnstile_widget_gives(page, old_token)
    email = unique_email("captcha-outbox")
    page.fill("#signup-email", email)
    page.click("#signup-form button[type=submit]")
    page.wait_for_function("document.querySelector('#signup-status').textContent.startsWith('We could not reach')")
    # And by the next visit its token has expired (Turnstile: 300 s)
    siteverify.spent.add(old_token)
    page.unroute(info.api_url)
    # When the page is opened again and sends the saved lead before its widget has a token
    page.goto(info.landing_page_url)
    page.wait_for_function("document.querySelector('#signup-status').textContent.startsWith('Your details are saved')")
    # Then the 403 did not lose it: the lead is still in the outbox and the visitor is told what to do
    assert [answer.status for answer in answers][-1] == 403
    assert [entry["key"] for entry in outbox(page)] == [posts[0].headers["idempotency-key"]]
    assert guarded_pipeline.count("email = %s", (email,)) == 0
    # When the widget produces a fresh token
    fresh = siteverify.issue()
    turnstile_widget_gives(page, fresh)
    # Then the client sends the saved lead with it, under its first key, and it is stored exactly once
    page.wait_for_function(f"({OUTBOX_JS}).length === 0", timeout=30_000)
    assert page.locator("#signup-status").text_content() == "Your earlier sign-up has now been sent."
    assert [answer.status for answer in answers][-1] == 202
    assert {request.headers["idempotency-key"] for request in posts} == {posts[0].headers["idempotency-key"]}
    assert siteverify.checked[-1] == fresh
    assert wait_for(lambda: guarded_pipeline.count("email = %s", (email,)) == 1, message="one row")
    # When the visitor now signs up someone else while the widget still shows the token the saved lead just spent
    second = unique_email("captcha-after-outbox")
    page.fill("#signup-email", second)
    page.click("#signup-form button[type=submit]")
    # Then that lead is not refused for good: it waits in the outbox for the widget's next token
    page.wait_for_function("document.querySelector('#signup-status').textContent.startsWith('Your details are saved')")
    assert len(outbox(page)) == 1 and guarded_pipeline.count("email = %s", (second,)) == 0
    # And once the widget gives one, it is sent with it and stored exactly once
    newest = siteverify.issue()
    turnstile_widget_gives(page, newest)
    page.wait_for_function(f"({OUTBOX_JS}).length === 0", timeout=30_000)
    assert siteverify.checked[-1] == newest and siteverify.checked.count(fresh) == 1
    assert wait_for(lambda: guarded_pipeline.count("email = %s", (second,)) == 1, message="one row")
    context.close()

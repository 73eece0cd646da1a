"""Found by the red team, end to end: the two-rows case of test_captcha_client_sequences.py through the REAL local
pipeline
(ingest with its Turnstile check and captcha pass, SQS, worker, PostgreSQL), in a real headless Chromium.

Turnstile tokens verify once and expire after 300 s
(https://developers.cloudflare.com/turnstile/get-started/server-side-validation/); the widget refreshes
an expiring token by itself (`refresh-expired`, default `auto`,
https://developers.cloudflare.com/turnstile/get-started/client-side-rendering/), so the token in the form
changes while the visitor's details do not.
"""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.e2e.conftest import (
    OUTBOX_JS,
    RunningPipeline,
    SingleUseSiteverify,
    pump_until,
    record,
    set_retry_budget,
    turnstile_widget_gives,
    unique_email,
    wait_for,
)


def test_the_same_signup_clicked_again_after_a_token_refresh_is_two_rows(
    browser: Browser,
    guarded_pipeline: RunningPipeline,
    siteverify: SingleUseSiteverify,
) -> None:
    """Exactly one outcome per accepted lead ("a double-submitted form ... does not create a second row").

    leadpipe.js gives a resubmission the saved lead's Idempotency-Key only if the whole form body is equal,
    captcha token included. After the widget refreshed its token the same details are a "new" lead: a new key,
    a new lead_id (logic.derive_lead_id hashes the key), a second row once the saved one goes out too.
    """
    info = guarded_pipeline.info
    context = browser.new_context()
    page = context.new_page()
    posts, answers = record(page, info.api_url)
    page.goto(info.landing_page_url)
    set_retry_budget(page, 1)
    turnstile_widget_gives(page, siteverify.issue())
    email = unique_email("redteam-twice")
    # Given the token verified but SQS was down: 503 (with a captcha pass); the lead is saved in the browser
    guarded_pipeline.pipeline.stop_queue_service()
    try:
        page.fill("#signup-email", email)
        page.click("#signup-form button[type=submit]")
        page.wait_for_function(
            "document.querySelector('#signup-status').textContent.startsWith('We could not reach')", timeout=60_000
        )
    finally:
        guarded_pipeline.pipeline.start_queue_service()
    assert 503 in [answer.status for answer in answers]
    # The 1 s budget only made the outage's lead saved at once; from here the form retries as long as by default
    set_retry_budget(page, None)
    # And the widget refreshed its token meanwhile
    turnstile_widget_gives(page, siteverify.issue())
    # When the visitor clicks "Sign up" again on the unchanged form, and later opens the page again
    page.click("#signup-form button[type=submit]")
    page.wait_for_url(info.landing_page_url + "thanks", timeout=60_000)
    page.goto(info.landing_page_url)
    turnstile_widget_gives(page, siteverify.issue())  # the new page's widget solves
    page.wait_for_function(f"({OUTBOX_JS}).length === 0", timeout=60_000)
    # Then one sign-up is one row
    keys = {request.headers["idempotency-key"] for request in posts}
    wait_for(lambda: guarded_pipeline.count("email = %s", (email,)) >= 1, message="stored")
    if len(keys) > 1:  # give the worker time to store the second lead too
        pump_until(
            page,
            lambda: guarded_pipeline.count("email = %s", (email,)) >= 2,
            timeout=10,
            message="a second row (the break)",
        )
    assert guarded_pipeline.count("email = %s", (email,)) == 1, (
        f"one sign-up, {guarded_pipeline.count('email = %s', (email,))} rows, keys {keys}"
    )
    context.close()


def test_a_saved_lead_keeps_the_captcha_pass_its_last_503_carried(
    browser: Browser,
    guarded_pipeline: RunningPipeline,
    siteverify: SingleUseSiteverify,
) -> None:
    """docs/browser-client.md: the pass is kept "with the lead in localStorage" for "resends on later visits".

    The real ingest's 503 (Retry-After: 1 s in this stage, past this form's 1 s budget once the answer took any
    time) carries the pass; leadpipe.js puts it on the in-memory entry but stores the entry only before its next
    try, which never comes on this visit.
    """
    info = guarded_pipeline.info
    context = browser.new_context()
    page = context.new_page()
    posts, answers = record(page, info.api_url)
    page.goto(info.landing_page_url)
    set_retry_budget(page, 1)
    turnstile_widget_gives(page, siteverify.issue())
    guarded_pipeline.pipeline.stop_queue_service()
    try:
        page.fill("#signup-email", unique_email("redteam-pass"))
        page.click("#signup-form button[type=submit]")
        page.wait_for_function(
            "document.querySelector('#signup-status').textContent.startsWith('We could not reach')", timeout=60_000
        )
    finally:
        guarded_pipeline.pipeline.start_queue_service()
    # Given the API's last answer was a 503 carrying a captcha pass
    assert answers[-1].status == 503 and answers[-1].headers.get("leadpipe-captcha-pass")
    # Then the saved lead holds that pass for the next visit
    saved = page.evaluate(OUTBOX_JS)
    assert len(saved) == 1 and saved[0].get("pass") == answers[-1].headers["leadpipe-captcha-pass"], (
        f"outbox entry without the pass: {sorted(saved[0])}"
    )
    context.close()

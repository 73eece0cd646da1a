"""Red team: leadpipe.js against a captcha-protected API, in a real headless Chromium.

The API here is a stand-in answered by Playwright's `route` (no pipeline, no servers): it mirrors the
ingest's captcha rules exactly as functions/ingest/{logic,captcha,api}.py implement them:
- lead_id = hash(Idempotency-Key, lead content without the captcha token) (logic.derive_lead_id);
- a token verifies ONCE and expires: Turnstile tokens are single-use and valid for 300 s, a second
  siteverify answers `timeout-or-duplicate`
  (https://developers.cloudflare.com/turnstile/get-started/server-side-validation/);
- no token / an empty token is `400 captcha_missing` (captcha.CaptchaVerifier.verify), a spent one
  `403 captcha_expired` (siteverify's `timeout-or-duplicate`), any other refused one `403 captcha_invalid`;
- a 503 after the token verified carries `Leadpipe-Captcha-Pass`, which admits the same lead_id later;
- the table has `lead_id` as primary key: one row per lead_id.

The widget is played by the hidden `cf-turnstile-response` input Turnstile puts in the form. Turnstile
refreshes a token by itself before it expires (`refresh-expired: auto`, the default) and the input
holds "" until the visitor has solved the challenge:
https://developers.cloudflare.com/turnstile/get-started/client-side-rendering/
"""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser

from tests.e2e.conftest import (
    ORIGIN,
    OUTBOX_JS,
    CaptchaApi,
    give_up_soon,
    open_page,
    pump_until,
    status_text,
    submit,
    widget_gives,
)

API_URL = ORIGIN + "/leads"


def refused_for_score(api: CaptchaApi) -> int:
    return sum(1 for status, _, _ in api.answers if status == 403)


def test_a_refreshed_turnstile_token_makes_the_same_lead_a_second_row(browser: Browser) -> None:
    """Exactly one outcome per accepted lead: "A double-submitted form ... does not create a second row."

    leadpipe.js keys a resubmission by its whole body (`e.body === lead.body`), and that body includes the
    captcha token. Turnstile replaces the token by itself before it expires (and the docs tell pages to call
    turnstile.reset() on leadpipe:recheck), so the visitor's second click on the very same details no longer
    matches the saved lead: it goes out under a NEW Idempotency-Key, hence a new lead_id, while the saved lead
    keeps its own key and is delivered on the next visit (with its pass, or with the widget's next token).
    Two rows for one sign-up.
    """
    api = CaptchaApi()
    page = open_page(browser, api)
    email = f"twice-{uuid.uuid4().hex[:8]}@example.com"
    # Given the token verified but SQS was down: 503 + captcha pass + Retry-After past the budget -> saved
    api.queue_up = False
    widget_gives(page, api.issue())
    submit(page, email)
    pump_until(page, lambda: status_text(page).startswith("We could not reach"), timeout=20, message="saved")
    assert len(page.evaluate(OUTBOX_JS)) == 1
    # And the widget refreshed its token (Turnstile does so by itself; SQS is back meanwhile)
    api.queue_up = True
    widget_gives(page, api.issue())
    # When the visitor clicks "Sign up" again on the unchanged form
    submit(page)
    pump_until(page, lambda: status_text(page).startswith("Thanks"), timeout=20, message="sent")
    # And opens the page again later (the outbox is flushed on load; the widget solves and gives a token)
    page.goto(ORIGIN + "/")
    widget_gives(page, api.issue())
    pump_until(page, lambda: page.evaluate(OUTBOX_JS) == [], timeout=20, message="outbox flushed")
    # Then one sign-up is one row, sent under one Idempotency-Key
    keys = {key for status, _, key in api.answers if status == 202}
    assert api.rows_for(email) == 1, f"one sign-up became {api.rows_for(email)} rows under keys {keys}"
    page.context.close()


def test_a_lead_saved_before_the_widget_had_a_token_is_not_silently_dropped(browser: Browser) -> None:
    """No lead lost: "Your details are saved in this browser and will be sent when you next open this page."

    Offline, Turnstile cannot solve its challenge, so its input still holds "" when the visitor submits.
    The lead is saved (status 0). On the next visit leadpipe.js resends it from the outbox with the empty
    token, the API answers `400 captcha_missing`, and the client treats that 4xx as final: it forgets the lead
    without a word (flush() shows only 2xx and 'stale'), although the widget may well hold a fresh token by
    then. Only `403 captcha_invalid` is handled as "needs a fresh token"; `captcha_missing` for a token that
    never existed is the same situation.
    """
    api = CaptchaApi()
    page = open_page(browser, api)
    email = f"offline-{uuid.uuid4().hex[:8]}@example.com"
    # Given the visitor is offline, so the widget has no token yet, and submits: the lead is saved
    api.network_up = False
    give_up_soon(page)
    submit(page, email)
    pump_until(page, lambda: status_text(page).startswith("We could not reach"), timeout=20, message="saved")
    assert len(page.evaluate(OUTBOX_JS)) == 1
    # When the visitor is back online and opens the page again; the widget solves and fills its token
    api.network_up = True
    page.goto(ORIGIN + "/")
    widget_gives(page, api.issue())
    pump_until(page, lambda: api.answers, timeout=20, message="the resend")
    for _ in range(30):  # the recheck watcher looks every 0.1 s here (FAST_CLIENT): 30 looks, fewer once stored
        if api.rows_for(email) == 1:
            break
        page.wait_for_timeout(100)
    # Then the lead is stored, or at least still waits in the outbox for the token (never silently gone)
    left = page.evaluate(OUTBOX_JS)
    assert api.rows_for(email) == 1 or len(left) == 1, (
        f"lead dropped: answers {api.answers[-1:]}, outbox {left}, rows {api.rows_for(email)}"
    )
    page.context.close()


def test_the_captcha_pass_of_the_last_503_is_kept_with_the_saved_lead(browser: Browser) -> None:
    """docs/browser-client.md: the client "keeps it [the pass] with the lead in localStorage and sends it back on
    every later try of that lead (in-page retries and resends on later visits)"; captcha.py: the 24 h lifetime
    "covers the client's outbox: a lead saved during an outage is resent on the visitor's next page load".

    deliver() sets `entry.pass` after the answer but only calls store(entry) at the start of the NEXT try. When
    the 503 with the pass is the last try of this visit (its Retry-After reaches past the budget: RETRY_AFTER_SECONDS
    may be up to 3600; or earlier tries got no pass: network errors, 429s, captcha_unavailable), which is exactly
    when the lead is saved for the next visit, the pass never reaches localStorage. The next visit resends the
    spent token without the pass: 403, and the visitor is asked to do the captcha again.
    """
    api = CaptchaApi(queue_up=False)
    page = open_page(browser, api)
    email = f"pass-{uuid.uuid4().hex[:8]}@example.com"
    # Given the token verified and SQS is down: the API answers 503 with a captcha pass and Retry-After: 3600
    token = api.issue()
    widget_gives(page, token)
    submit(page, email)
    pump_until(page, lambda: status_text(page).startswith("We could not reach"), timeout=20, message="saved")
    assert [status for status, _, _ in api.answers] == [503]
    # When SQS is back and the visitor opens the page again (the widget has no token yet)
    api.queue_up = True
    page.goto(ORIGIN + "/")
    pump_until(page, lambda: len(api.answers) >= 2, timeout=20, message="the resend")
    # Then the saved lead went out with its pass and was stored, without a second captcha
    assert api.answers[-1][0] == 202 and api.rows_for(email) == 1, f"answers {api.answers}; the pass was not kept"
    page.context.close()


def test_a_token_refused_for_its_score_is_not_retried_forever(browser: Browser) -> None:
    """reCAPTCHA v3 answers `success: true` with a `score`; below the stage's min_score the ingest answers
    `403 captcha_invalid` (field code `low_score`): https://developers.google.com/recaptcha/docs/v3. That token
    was not spent or expired, it was judged; a fresh one from the same visitor scores the same.

    leadpipe.js treats every `403 captcha_invalid` of a lead already tried (posts > 1) or resent from the outbox
    as "spent": it marks the lead stale, fires leadpipe:recheck, and resends as soon as the input holds a new
    token. docs/browser-client.md tells pages to answer leadpipe:recheck with `grecaptcha.execute` and fill the
    input. So one network blip before a low-score verdict puts the page in an endless loop of execute -> POST ->
    403 -> recheck, once a second, for as long as the page is open (and again on every later visit), and the
    visitor is told "Please complete the spam check again" with nothing they can do.
    """
    api = CaptchaApi(low_score=True, drop_next=1, token_field="g-recaptcha-response")
    page = open_page(browser, api)
    # The page does what the docs say: on leadpipe:recheck, run grecaptcha.execute and fill the input
    page.evaluate(
        """() => document.addEventListener('leadpipe:recheck', () => setTimeout(() => {
             document.querySelector('#signup-form').elements['g-recaptcha-response'].value = 'execute-' + Math.random();
           }, 50))"""
    )
    widget_gives(page, api.issue(), "g-recaptcha-response")
    # When a visitor whose score is low submits, and the first POST is lost on the network
    submit(page, f"lowscore-{uuid.uuid4().hex[:8]}@example.com")
    # And the page settles on a verdict (a loop shows "complete the spam check again" and keeps posting instead)
    pump_until(
        page,
        lambda: (
            status_text(page) not in ("", "Sending…")
            and "spam check" not in status_text(page)
            or refused_for_score(api) > 2
        ),
        timeout=20,
        message="a verdict shown, or a third refusal",
    )
    page.wait_for_timeout(1000)  # the recheck watcher looks every 0.1 s here (FAST_CLIENT): a loop would post again
    refusals = [a for a in api.answers if a[0] == 403]
    # Then the client gives up on the judged token (a final refusal the visitor sees), it does not loop
    assert len(refusals) <= 2, (
        f"{len(refusals)} POSTs refused for their score, and counting: status {status_text(page)!r}"
    )
    page.context.close()

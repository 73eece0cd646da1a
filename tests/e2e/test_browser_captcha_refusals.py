"""leadpipe.js in a real headless Chromium: a captcha refusal ends in a message the visitor sees, never a loop
and never a lead forgotten without a word.

The API is the in-memory stand-in of tests.e2e.test_captcha_client_sequences.py (the ingest's captcha rules:
a spent token is `403 captcha_expired`, siteverify's `timeout-or-duplicate`,
https://developers.cloudflare.com/turnstile/get-started/server-side-validation/), answered by Playwright's `route`.
"""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser, Page, Route

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

# The stand-in's page runs leadpipe.js with FAST_CLIENT's waits: its recheck watcher looks every 0.1 s.
RECHECK_LOOKS_MS = 1_000  # ten looks of the watcher

DROPPED = "Your earlier sign-up could not be sent. Please fill in the form again."
MAX_RECHECKS = 3  # leadpipe.js: fresh tokens one lead may try after a captcha_expired


def answered(api: CaptchaApi) -> list[tuple[int, str, str]]:
    """The API's answers, without the posts lost on the network."""
    return [answer for answer in api.answers if answer[0]]


class ExpiringApi(CaptchaApi):
    """Every token arrives expired (say the visitor's widget keeps handing out stale ones): 403 captcha_expired."""

    def handle(self, route: Route) -> None:
        if route.request.method != "POST":
            super().handle(route)
            return
        key = route.request.headers.get("idempotency-key", "")
        self._answer(
            route,
            403,
            "captcha_expired",
            key,
            fields=[{"field": self.token_field, "code": "expired", "message": "expired"}],
        )


class RefusingApi(CaptchaApi):
    """Once `refuse` is set, every lead is refused for good: 422 naming the e-mail field."""

    refuse = False

    def handle(self, route: Route) -> None:
        if not (self.refuse and route.request.method == "POST"):
            super().handle(route)
            return
        key = route.request.headers.get("idempotency-key", "")
        self._answer(
            route, 422, "invalid_lead", key, fields=[{"field": "email", "code": "invalid", "message": "not accepted"}]
        )


def record_dropped(page: Page) -> None:
    """Every leadpipe:dropped in `window.dropped`: on this page, and on later loads before the client starts."""
    listen = "window.dropped = []; document.addEventListener('leadpipe:dropped', e => window.dropped.push(e.detail));"
    page.context.add_init_script(listen)
    page.evaluate(listen)


def test_a_token_that_keeps_expiring_gets_three_fresh_tries_then_a_refusal_the_visitor_sees(browser: Browser) -> None:
    api = ExpiringApi()
    page = open_page(browser, api)
    record_dropped(page)
    # Given a page that answers leadpipe:recheck with a fresh token, as docs/browser-client.md tells it to
    page.evaluate(
        """() => document.addEventListener('leadpipe:recheck', () => setTimeout(() => {
             document.querySelector('#signup-form').elements['cf-turnstile-response'].value = 'fresh-' + Math.random();
           }, 50))"""
    )
    widget_gives(page, api.issue())
    # When the visitor submits and the API calls every token expired
    submit(page, f"expiring-{uuid.uuid4().hex[:8]}@example.com")
    # Then the client tries the first token and three fresh ones, then tells the visitor and forgets the lead
    pump_until(page, lambda: status_text(page) == DROPPED, timeout=30, message="the refusal shown")
    assert [status for status, _, _ in api.answers] == [403] * (1 + MAX_RECHECKS)
    assert len({key for _, _, key in api.answers}) == 1
    assert page.evaluate(OUTBOX_JS) == []
    assert [(d["status"], d["error"]["code"]) for d in page.evaluate("window.dropped")] == [(403, "captcha_expired")]
    # And nothing more goes out, however many tokens the widget hands out
    page.wait_for_timeout(RECHECK_LOOKS_MS)
    assert len(api.answers) == 1 + MAX_RECHECKS
    page.context.close()


def test_a_saved_lead_refused_for_good_on_the_next_visit_is_not_forgotten_silently(browser: Browser) -> None:
    api = RefusingApi()
    page = open_page(browser, api)
    record_dropped(page)
    email = f"refused-{uuid.uuid4().hex[:8]}@example.com"
    # Given a lead saved in this browser while the network was down (its retries given up on soon)
    api.network_up = False
    give_up_soon(page)
    widget_gives(page, api.issue())
    submit(page, email)
    pump_until(page, lambda: status_text(page).startswith("We could not reach"), timeout=20, message="saved")
    assert len(page.evaluate(OUTBOX_JS)) == 1
    # When on the next visit the API refuses it for good (a 422: say the contract tightened meanwhile)
    api.network_up = True
    api.refuse = True
    page.goto(ORIGIN + "/")
    # Then the visitor is told that the earlier sign-up could not be sent, and the page hears of it
    pump_until(page, lambda: status_text(page) == DROPPED, timeout=20, message="the refusal shown")
    assert api.answers[-1][:2] == (422, "invalid_lead") and page.evaluate(OUTBOX_JS) == []
    assert [(d["status"], d["error"]["code"]) for d in page.evaluate("window.dropped")] == [(422, "invalid_lead")]
    page.context.close()


def test_a_lead_saved_before_the_widget_added_its_input_goes_out_with_the_next_token(browser: Browser) -> None:
    api = CaptchaApi()
    page = open_page(browser, api)
    email = f"no-input-{uuid.uuid4().hex[:8]}@example.com"
    # Given a widget that had not even added its hidden input (offline, its script never loaded) when the lead was saved
    page.evaluate("document.querySelector('#signup-form').elements['cf-turnstile-response'].remove()")
    api.network_up = False
    give_up_soon(page)
    submit(page, email)
    pump_until(page, lambda: status_text(page).startswith("We could not reach"), timeout=20, message="saved")
    [saved] = page.evaluate(OUTBOX_JS)
    assert "cf-turnstile-response" not in saved["body"]
    # When the next visit's widget has a token (the API answered the tokenless resend 400 captcha_missing)
    api.network_up = True
    page.goto(ORIGIN + "/")
    pump_until(page, lambda: answered(api), timeout=20, message="the resend")
    widget_gives(page, api.issue())
    # Then the saved lead goes out with that token added, under its first key, and is stored once
    pump_until(page, lambda: api.rows_for(email) == 1, timeout=20, message="the lead stored")
    assert [code for _, code, _ in answered(api)] == ["captcha_missing", ""]
    assert {key for _, _, key in answered(api)} == {saved["key"]}
    # And the client, once the 202 reaches it (the row is in before the answer is), empties its outbox
    pump_until(page, lambda: page.evaluate(OUTBOX_JS) == [], timeout=20, message="the outbox emptied")
    page.context.close()

"""leadpipe.js's own waits are options of its <script> tag (docs/browser-client.md): the first step of a retry's
back-off (`data-backoff-seconds`, 0.5 s) and how often a lead waiting for a fresh captcha token looks for one
(`data-recheck-seconds`, 1 s). A value the client cannot use leaves the production default.

In a real headless Chromium against the in-memory stand-in of tests.e2e.conftest.CaptchaApi (a spent token is
`403 captcha_expired`, siteverify's `timeout-or-duplicate`,
https://developers.cloudflare.com/turnstile/get-started/server-side-validation/).
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import CaptchaApi, open_page, pump_until, set_retry_budget, submit, widget_gives

# What the page sees of the client's waits: every leadpipe:retry's `wait` (public) and every interval it sets up.
# Math.random is pinned to 0.5, so a back-off step of s milliseconds is a wait of exactly s / 2.
OBSERVE = """
window.waits = [];
window.intervals = [];
document.addEventListener('leadpipe:retry', (event) => window.waits.push(event.detail.wait));
const setIntervalAsBefore = window.setInterval;
window.setInterval = (callback, ms, ...rest) => {
  window.intervals.push(ms);
  return setIntervalAsBefore(callback, ms, ...rest);
};
Math.random = () => 0.5;
"""

DEFAULT_BACKOFF_MS = 500
DEFAULT_RECHECK_MS = 1000


def offline_with_a_spent_token(page: Page, api: CaptchaApi) -> None:
    """The widget holds a token already spent, and the network is down: the client retries, then rechecks."""
    spent = api.issue()
    api.spent.add(spent)
    widget_gives(page, spent)
    api.network_up = False


def test_the_script_tags_back_off_and_recheck_interval_are_honoured(browser: Browser) -> None:
    api = CaptchaApi(client_options='data-backoff-seconds="0.05" data-recheck-seconds="0.1"')
    page = open_page(browser, api, OBSERVE)
    set_retry_budget(page, 10)
    email = f"options-{uuid.uuid4().hex[:8]}@example.com"
    # Given a token already spent, and the network down
    offline_with_a_spent_token(page, api)
    # When the visitor submits and the client retries six times
    submit(page, email)
    waits = pump_until(page, lambda: (w := page.evaluate("window.waits")) and len(w) >= 6 and w, 20, "six retries")
    # Then its back-off steps start at 0.05 s and double up to 16 times that (waits: half of each step)
    assert waits[:6] == pytest.approx([25, 50, 100, 200, 400, 400])
    # When the network is back and the API calls the token spent
    api.network_up = True
    pump_until(page, lambda: page.evaluate("window.intervals"), 20, "the recheck watcher")
    # Then the lead waits for a fresh token, looking for one every 0.1 s
    assert page.evaluate("window.intervals") == [100]
    # And once the widget has one, the lead goes out with it and is stored once
    widget_gives(page, api.issue())
    pump_until(page, lambda: api.rows_for(email) == 1, 20, "the lead stored")
    page.context.close()


# None: no attribute; "0": not positive; "soon": not a number; "1e9": not below 100000; "0.01": under the floors
# (0.05 s and 0.1 s), where a failing API would get a tight loop of retries and rechecks
@pytest.mark.parametrize("value", [None, "0", "soon", "1e9", "0.01"])
def test_a_missing_or_unusable_value_leaves_the_default(browser: Browser, value: str | None) -> None:
    options = "" if value is None else f'data-backoff-seconds="{value}" data-recheck-seconds="{value}"'
    api = CaptchaApi(client_options=options)
    page = open_page(browser, api, OBSERVE)
    # Given a token already spent, and the network down
    offline_with_a_spent_token(page, api)
    # When the visitor submits and the first try fails
    submit(page, f"default-{uuid.uuid4().hex[:8]}@example.com")
    waits = pump_until(page, lambda: page.evaluate("window.waits"), 20, "a retry")
    # Then the first back-off step is the default 0.5 s
    assert waits[0] == pytest.approx(DEFAULT_BACKOFF_MS / 2)
    # When the network is back and the API calls the token spent
    api.network_up = True
    intervals = pump_until(page, lambda: page.evaluate("window.intervals"), 20, "the recheck watcher")
    # Then the lead looks for a fresh token once a second
    assert intervals == [DEFAULT_RECHECK_MS]
    page.context.close()

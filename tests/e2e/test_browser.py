"""A real headless Chromium submits the sample landing page, with and without JavaScript.

With JavaScript on, the page's form is sent by `leadpipe.js`; these tests break the network,
SQS and the API on purpose and check that every lead still ends up as exactly one row.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Response, Route

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import (
    OUTBOX_JS,
    UNBATCHED,
    RunningPipeline,
    assert_logs_hold_no_personal_data,
    e2e_settings,
    http_request,
    leads_table_of_its_own,
    outbox,
    pump_until,
    start_pipeline,
    unique_email,
    wait_for,
    with_fast_client,
)

SAVED_MESSAGE = "We could not reach our server."


def new_page(browser: Browser, javascript: bool) -> Page:
    return browser.new_context(java_script_enabled=javascript).new_page()


def record_posts(target: Page | BrowserContext, api_url: str) -> list[Request]:
    """Every POST the page(s) make to the API, in order, whatever became of it."""
    posts: list[Request] = []
    target.on(
        "request",
        lambda request: posts.append(request) if request.url == api_url and request.method == "POST" else None,
    )
    return posts


def submit_lead(page: Page, email: str, phone: str = "") -> None:
    page.fill("#signup-email", email)
    page.fill("#signup-phone", phone)
    page.click("#signup-form button[type=submit]")


def wait_until_sent_or_saved(page: Page, thanks_url: str, timeout_ms: float = 120_000) -> str:
    """'sent' once the client followed the 202 to the thank-you page, 'saved' if it gave up for now."""
    page.wait_for_function(
        "([thanks, saved]) => location.href === thanks || (document.querySelector('#signup-status') || "
        "{}).textContent?.startsWith(saved)",
        arg=[thanks_url, SAVED_MESSAGE],
        timeout=timeout_ms,
    )
    return "sent" if page.url == thanks_url else "saved"


def open_pages(context: BrowserContext, url: str, count: int) -> list[Page]:
    """`count` tabs of one browser on `url`, loading side by side; returned once every client has started.
    (Tabs, not a browser each: they send their own leads alike, and open in a fraction of the time.)"""
    pages = [context.new_page() for _ in range(count)]
    for page in pages:
        page.goto(url, wait_until="commit")
    for page in pages:
        page.wait_for_function("window.Leadpipe !== undefined")
    return pages


def reopen_until_outbox_empty(page: Page, landing_url: str, timeout_ms: float = 60_000) -> None:
    """The next visit sends what an earlier one saved (the client flushes its outbox on load)."""
    page.goto(landing_url)
    page.wait_for_function(f"({OUTBOX_JS}).length === 0", timeout=timeout_ms)


# --- the plain form and the client's basic behaviour ---------------------------------------


def test_plain_form_without_javascript_lands_on_thank_you_page(
    browser: Browser, local_pipeline: RunningPipeline
) -> None:
    # Given the landing page in a browser with JavaScript switched off
    page = new_page(browser, javascript=False)
    page.goto(local_pipeline.info.landing_page_url)
    email = unique_email("browser")
    # When a visitor fills the plain form and submits it
    page.fill("#signup-email", email)
    page.fill("#signup-first-name", "Brow")
    page.check("#signup-form input[name=consent]")
    page.click("#signup-form button[type=submit]")
    # Then the browser follows the 303 to the thank-you page
    page.wait_for_selector("#thanks")
    assert page.url == local_pipeline.info.landing_page_url + "thanks"
    # And the lead is in PostgreSQL, once, with its campaign and consent
    rows = wait_for(lambda: local_pipeline.rows("email = %s", (email,)), message="browser lead stored")
    assert [(r["first_name"], r["campaign"], r["consent"]) for r in rows] == [("Brow", "SUMMERSALE20", True)]
    assert rows[0]["source"]["user_agent"]  # the browser's own user agent travelled along
    page.context.close()


def test_the_client_is_served_as_javascript_at_a_stable_path(local_pipeline: RunningPipeline) -> None:
    # When the page's script is fetched from the local runtime
    answer = http_request(local_pipeline.info.landing_page_url + "leadpipe.js")
    # Then it is the packaged file, byte for byte, as JavaScript
    packaged = resources.files("leadpipe.local").joinpath("landing_page", "leadpipe.js").read_bytes()
    assert answer.status == 200 and answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert answer.body == packaged
    # And the sample page loads it and marks its form for it
    page_html = http_request(local_pipeline.info.landing_page_url).body
    assert b'<script src="/leadpipe.js" defer></script>' in page_html and b"data-leadpipe" in page_html


def test_client_shows_field_errors_inline_then_sends_the_corrected_lead(
    browser: Browser, local_pipeline: RunningPipeline
) -> None:
    page = new_page(browser, javascript=True)
    posts = record_posts(page, local_pipeline.info.api_url)
    page.goto(local_pipeline.info.landing_page_url)
    email = unique_email("inline")
    # When a phone number the API refuses (422) is submitted
    submit_lead(page, email, phone="call me maybe")
    page.wait_for_function("document.querySelector('[data-error-for=phone]').textContent.length > 0")
    # Then the API's field error sits next to the input, the page stays put, nothing is kept to resend
    assert page.locator('[data-error-for="phone"]').text_content() == (
        "must be digits with an optional leading +, spaces, dots, dashes or parentheses"
    )
    assert page.get_attribute("#signup-phone", "aria-invalid") == "true"
    assert page.locator("#signup-status").text_content() == "Please check the highlighted fields."
    assert page.url == local_pipeline.info.landing_page_url and outbox(page) == []
    # When the visitor corrects it and submits again
    submit_lead(page, email, phone="+44 20 7946 0018")
    page.wait_for_url(local_pipeline.info.landing_page_url + "thanks")
    # Then it is stored once, and the new content went with a new Idempotency-Key
    rows = wait_for(lambda: local_pipeline.rows("email = %s", (email,)), message="corrected lead stored")
    assert [r["phone"] for r in rows] == ["+44 20 7946 0018"]
    keys = [request.headers["idempotency-key"] for request in posts]
    assert len(keys) == 2 and keys[0] != keys[1]
    page.context.close()


def test_two_submits_in_one_go_send_one_request(browser: Browser, local_pipeline: RunningPipeline) -> None:
    page = new_page(browser, javascript=True)
    posts = record_posts(page, local_pipeline.info.api_url)
    page.goto(local_pipeline.info.landing_page_url)
    email = unique_email("double")
    page.fill("#signup-email", email)
    # When the form is submitted twice before the first answer can arrive (a double click)
    page.evaluate(
        "() => { const form = document.querySelector('#signup-form'); form.requestSubmit(); form.requestSubmit(); }"
    )
    page.wait_for_url(local_pipeline.info.landing_page_url + "thanks")
    # Then one request went out and one row exists
    assert len(posts) == 1
    assert wait_for(lambda: local_pipeline.count("email = %s", (email,)) == 1, message="one row")
    page.context.close()


def test_throttles_and_bare_5xx_bodies_are_retried_with_one_key(
    browser: Browser, local_pipeline: RunningPipeline
) -> None:
    page = new_page(browser, javascript=True)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    posts = record_posts(page, local_pipeline.info.api_url)
    # Given an API that first throttles with a plain-text 429, then fails with an HTML 502
    refusals = [
        {"status": 429, "content_type": "text/plain", "body": "Too Many Requests"},
        {"status": 502, "content_type": "text/html", "body": "<html><body>Bad Gateway</body></html>"},
    ]

    def flaky_api(route: Route) -> None:
        if refusals:
            route.fulfill(**refusals.pop(0))
        else:
            route.continue_()

    page.route(local_pipeline.info.api_url, flaky_api)
    with_fast_client(page, local_pipeline.info.landing_page_url)
    page.goto(local_pipeline.info.landing_page_url)
    email = unique_email("flaky")
    # When the visitor submits once
    submit_lead(page, email)
    # Then the client retries through both, lands on the thank-you page, and never threw
    page.wait_for_url(local_pipeline.info.landing_page_url + "thanks", timeout=30_000)
    assert errors == [] and refusals == []
    keys = {request.headers["idempotency-key"] for request in posts}
    assert len(posts) == 3 and len(keys) == 1
    # And the lead is stored once, under the id its key gives
    assert wait_for(lambda: local_pipeline.count("email = %s", (email,)) == 1, message="one row")
    page.context.close()


def test_retry_after_beyond_the_budget_keeps_the_lead_for_the_next_visit(
    browser: Browser, local_pipeline: RunningPipeline
) -> None:
    page = new_page(browser, javascript=True)
    posts = record_posts(page, local_pipeline.info.api_url)
    # Given an API that asks for an hour's pause (longer than the client's 30 s retry budget)
    page.route(
        local_pipeline.info.api_url, lambda route: route.fulfill(status=503, headers={"Retry-After": "3600"}, body="")
    )
    page.goto(local_pipeline.info.landing_page_url)
    email = unique_email("later")
    # When the visitor submits
    submit_lead(page, email)
    # Then the client does not hammer the API: one request, the lead kept in this browser
    assert wait_until_sent_or_saved(page, local_pipeline.info.landing_page_url + "thanks", timeout_ms=10_000) == "saved"
    assert len(posts) == 1
    assert [entry["key"] for entry in outbox(page)] == [posts[0].headers["idempotency-key"]]
    # When the API is back and the visitor opens the page again
    page.unroute(local_pipeline.info.api_url)
    reopen_until_outbox_empty(page, local_pipeline.info.landing_page_url)
    # Then the saved lead went out with the same key and is stored once
    assert len(posts) == 2 and posts[1].headers["idempotency-key"] == posts[0].headers["idempotency-key"]
    assert wait_for(lambda: local_pipeline.count("email = %s", (email,)) == 1, message="saved lead stored")
    page.context.close()


def test_a_saved_lead_is_sent_by_one_tab_when_two_open_at_once(
    browser: Browser, local_pipeline: RunningPipeline
) -> None:
    api_url = local_pipeline.info.api_url
    context = browser.new_context()
    posts = record_posts(context, api_url)
    # Given a lead saved in this browser (the API asked for an hour's pause)
    context.route(api_url, lambda route: route.fulfill(status=503, headers={"Retry-After": "3600"}, body=""))
    first = context.new_page()
    first.goto(local_pipeline.info.landing_page_url)
    email = unique_email("two-tabs")
    submit_lead(first, email)
    assert (
        wait_until_sent_or_saved(first, local_pipeline.info.landing_page_url + "thanks", timeout_ms=10_000) == "saved"
    )
    first.close()
    # When two tabs open while the first one's resend is still on its way (held here, unanswered)
    held: list[Route] = []
    context.unroute(api_url)
    context.route(api_url, lambda route: held.append(route))
    tabs = [context.new_page(), context.new_page()]
    tabs[0].goto(local_pipeline.info.landing_page_url)
    pump_until(tabs[0], lambda: held, timeout=10, message="the first tab's resend")
    tabs[1].goto(local_pipeline.info.landing_page_url)
    tabs[1].wait_for_function("window.Leadpipe !== undefined")
    # And the second tab's try is over: a flush of its own, whose lock request queues behind its first one, returned
    # (were the lead not locked by the first tab, it would wait on the held route: bounded at 2 s)
    tabs[1].evaluate("() => Promise.race([window.Leadpipe.flush(), new Promise((done) => setTimeout(done, 2000))])")
    for route in held:
        route.continue_()
    tabs[0].wait_for_function(f"({OUTBOX_JS}).length === 0")
    # Then one tab sent it, once, and it is stored once
    assert len(posts) == 2 and len(held) == 1
    assert wait_for(lambda: local_pipeline.count("email = %s", (email,)) == 1, message="one row")
    context.close()


# --- the lead survives the network, SQS and the browser window -----------------------------


def test_a_lead_submitted_offline_is_sent_when_the_page_is_opened_again(
    browser: Browser, local_pipeline: RunningPipeline
) -> None:
    api_url = local_pipeline.info.api_url
    context = browser.new_context()
    posts = record_posts(context, api_url)
    # Given a page whose API cannot be reached (every request to it fails at the network level)
    context.route(api_url, lambda route: route.abort("internetdisconnected"))
    with_fast_client(context, local_pipeline.info.landing_page_url)
    page = context.new_page()
    page.goto(local_pipeline.info.landing_page_url)
    email = unique_email("offline")
    # When the visitor submits, the client retries, and the visitor closes the page mid-retry
    submit_lead(page, email)
    pump_until(page, lambda: len(posts) >= 2, timeout=30, message="a retry while offline")
    saved = outbox(page)
    page.close()
    # Then nothing reached the API, and the lead was in this browser's storage when the page closed
    assert local_pipeline.count("email = %s", (email,)) == 0
    assert [entry["key"] for entry in saved] == [posts[0].headers["idempotency-key"]]
    # When the API is reachable again and the visitor opens the page again
    context.unroute(api_url)
    reopened = context.new_page()
    reopen_until_outbox_empty(reopened, local_pipeline.info.landing_page_url)
    # Then the lead is sent, with the key of its first try, and stored exactly once
    assert {request.headers["idempotency-key"] for request in posts} == {saved[0]["key"]}
    assert wait_for(lambda: local_pipeline.count("email = %s", (email,)) == 1, message="offline lead stored")
    context.close()


def own_pipeline(postgres_uri: str, name: str, **settings: Any) -> Iterator[RunningPipeline]:
    """A pipeline with settings of its own, its table in a schema of its own on the session's PostgreSQL
    (no second embedded server to start)."""
    data_dir = REPO_ROOT / ".leadpipe" / "pytest" / f"{name}-{uuid.uuid4().hex[:8]}"
    with leads_table_of_its_own(postgres_uri, name) as leads_table:
        running = start_pipeline(
            data_dir,
            e2e_settings().model_copy(update={**UNBATCHED, **settings, "leads_table": leads_table}),
            database_url=postgres_uri,
            # The ingest's own setting (default 5 s): a 503's retry comes 1 s later, not 5.
            ingest_environment={"RETRY_AFTER_SECONDS": "1"},
        )
        yield running
        running.pipeline.stop(drain_seconds=5)
    assert_logs_hold_no_personal_data(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


# API Gateway's token bucket, hard for 10 pages posting at once: 10 requests/s, burst 5.
THROTTLE = {"throttle_rate_per_second": 10, "throttle_burst": 5}


@pytest.fixture(scope="module")
def throttled_pipeline(postgres_uri: str) -> Iterator[RunningPipeline]:
    """The SQS outage's and the throttle's pipeline (one start for both): the throttle above, and a visibility of
    3 s x 5 receives, so a short outage sends nothing to the DLQ."""
    yield from own_pipeline(
        postgres_uri, "browser-throttled", visibility_timeout_seconds=3, max_receive_count=5, **THROTTLE
    )


# Fewer pages than the throttle's burst, each posting at most once a second (the 503's Retry-After): the outage's
# answers are never a 429.
SQS_OUTAGE_PAGES = 4


def test_leads_submitted_while_sqs_is_down_are_stored_after_it(
    browser: Browser, throttled_pipeline: RunningPipeline
) -> None:
    info = throttled_pipeline.info
    thanks_url = info.landing_page_url + "thanks"
    context = browser.new_context()
    with_fast_client(context, info.landing_page_url)
    pages = open_pages(context, info.landing_page_url, SQS_OUTAGE_PAGES)
    statuses: list[int] = []
    per_page: list[list[int]] = [[] for _ in pages]

    def recorder(answered: list[int]) -> Callable[[Response], None]:
        def record(response: Response) -> None:
            if response.url == info.api_url:
                statuses.append(response.status)
                answered.append(response.status)

        return record

    for page, answered in zip(pages, per_page, strict=True):
        page.on("response", recorder(answered))
    emails = [unique_email("sqs-down") for _ in pages]
    # Given SQS is stopped
    throttled_pipeline.pipeline.stop_queue_service()
    stopped_at = time.monotonic()
    try:
        # When visitors submit during the stop
        for page, email in zip(pages, emails, strict=True):
            submit_lead(page, email)
        # And the stop lasts until every page has retried into it: its first try and a retry both answered
        # (well within the client's 30 s retry budget, so no page may have given up yet)
        pump_until(
            pages[0],
            lambda: all(len(answered) >= 2 for answered in per_page),
            timeout=20,
            message="every page's first try and a retry answered during the stop",
        )
        outage_seconds = time.monotonic() - stopped_at
        # Then during the stop every answer was a 503 (never a false 202), and no page gave up yet
        assert statuses and set(statuses) == {503}
        assert all(page.url == info.landing_page_url for page in pages)
    finally:
        # When SQS comes back (the throttle test runs on this pipeline next)
        throttled_pipeline.pipeline.start_queue_service()
    # Then every page's lead goes through (a page that ran out of retries sends it on its next load)
    outcomes = [wait_until_sent_or_saved(page, thanks_url) for page in pages]
    for page, outcome in zip(pages, outcomes, strict=True):
        if outcome == "saved":
            reopen_until_outbox_empty(page, info.landing_page_url)
    rows = wait_for(
        lambda: (
            (found := throttled_pipeline.rows("email LIKE %s", ("sqs-down-%",))) and len(found) >= len(emails) and found
        ),
        timeout=60,
        message="every lead of the outage stored",
    )
    assert sorted(r["email"] for r in rows) == sorted(emails)  # each exactly once, none missing
    print(
        f"SQS outage {outage_seconds:.1f} s: {len(emails)} leads, {len(statuses)} answers, outcomes {outcomes}, lost 0"
    )
    context.close()


# 10 pages posting at once are twice the burst, so their first wave alone is throttled; 3 leads a page (30:
# at least 2.5 s at the bucket's rate) keep every page posting, its refused leads retried beside the other
# pages' next ones, until the last lead is through. What it proves: every page retries its 429s until each of its
# leads is in, none twice. No page comes near its 30 s retry budget, so the next visit's resend below is only a
# fallback (test_retry_after_beyond_the_budget_keeps_the_lead_for_the_next_visit tests that path).
THROTTLED_PAGES = 10
THROTTLED_LEADS = 3 * THROTTLED_PAGES


# A visitor typing one lead after another into the page's form, waiting for each outcome before the next.
VISITOR_JS = """async (emails) => {
  const form = document.querySelector('#signup-form');
  const outcomes = [];
  for (const email of emails) {
    const outcome = new Promise((resolve) => ['sent', 'saved', 'invalid'].forEach(
      (name) => form.addEventListener('leadpipe:' + name, () => resolve(name), { once: true })));
    form.elements.email.value = email;
    form.requestSubmit();
    outcomes.push(await outcome);
  }
  return outcomes;
}"""


def test_every_lead_from_concurrent_pages_is_stored_once_through_a_hard_throttle(
    browser: Browser, throttled_pipeline: RunningPipeline
) -> None:
    info = throttled_pipeline.info
    statuses: list[int] = []
    context = browser.new_context()
    context.on("response", lambda response: statuses.append(response.status) if response.url == info.api_url else None)
    with_fast_client(context, info.landing_page_url)
    pages = open_pages(context, info.landing_page_url, THROTTLED_PAGES)
    emails = [unique_email("throttled") for _ in range(THROTTLED_LEADS)]
    per_page = [emails[i::THROTTLED_PAGES] for i in range(THROTTLED_PAGES)]
    # When 30 visitors submit from 10 pages at once, each page sending its next lead as soon as one is done
    # (without `_redirect` the form stays on the page, so a lead costs no page load; every page is loaded
    # before the first one sends, so they do post at once)
    for page in pages:
        page.evaluate("document.querySelector('#signup-form input[name=_redirect]').remove()")
    for page, its_emails in zip(pages, per_page, strict=True):
        page.evaluate(f"(emails) => {{ ({VISITOR_JS})(emails).then((done) => (window.outcomes = done)); }}", its_emails)
    outcomes = [
        outcome for page in pages for outcome in page.wait_for_function("window.outcomes", timeout=300_000).json_value()
    ]
    # And each page that kept a lead is opened again, which sends whatever ran out of retries the first time
    for page in pages:
        if outbox(page):
            reopen_until_outbox_empty(page, info.landing_page_url, timeout_ms=120_000)
    # Then the throttle did bite, and still every lead is in the table exactly once, none missing
    rows = wait_for(
        lambda: (
            (found := throttled_pipeline.rows("email LIKE %s", ("throttled-%",)))
            and len(found) >= len(emails)
            and found
        ),
        timeout=120,
        message="every throttled lead stored",
    )
    assert sorted(r["email"] for r in rows) == sorted(emails)
    assert "invalid" not in outcomes and statuses.count(429) > 0
    print(
        f"throttled 10/s burst 5: {len(emails)} leads from {len(pages)} pages, {len(statuses)} answers, "
        f"{statuses.count(429)} x 429, sent {outcomes.count('sent')}, saved for the next visit "
        f"{outcomes.count('saved')}, "
        f"lost {len(emails) - len(rows)}"
    )
    context.close()

"""A real headless Chromium submits the sample landing page, with and without JavaScript."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.conftest import RunningPipeline, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield launched
        launched.close()


def new_page(browser: Browser, javascript: bool) -> Page:
    return browser.new_context(java_script_enabled=javascript).new_page()


def test_plain_form_without_javascript_lands_on_thank_you_page(browser: Browser, local_pipeline: RunningPipeline) -> None:
    # Given the landing page in a browser with JavaScript switched off
    page = new_page(browser, javascript=False)
    page.goto(local_pipeline.info.landing_page_url)
    email = f"browser-{uuid.uuid4().hex[:8]}@example.com"
    # When a visitor fills the plain form and submits it
    page.fill("#plain-email", email)
    page.fill("#plain-first-name", "Brow")
    page.check("#plain-form input[name=consent]")
    page.click("#plain-form button[type=submit]")
    # Then the browser follows the 303 to the thank-you page
    page.wait_for_selector("#thanks")
    assert page.url == local_pipeline.info.landing_page_url + "thanks"
    # And the lead is in PostgreSQL, once, with its campaign and consent
    rows = wait_for(lambda: local_pipeline.rows("email = %s", (email,)), message="browser lead stored")
    assert [(r["first_name"], r["campaign"], r["consent"]) for r in rows] == [("Brow", "SUMMERSALE20", True)]
    assert rows[0]["source"]["user_agent"]  # the browser's own user agent travelled along
    page.context.close()


def test_fetch_form_shows_the_field_error_inline_without_navigating(browser: Browser, local_pipeline: RunningPipeline) -> None:
    page = new_page(browser, javascript=True)
    page.goto(local_pipeline.info.landing_page_url)
    # When an invalid e-mail is submitted through fetch()
    page.fill("#fetch-email", "not-an-email")
    page.click("#fetch-form button[type=submit]")
    # Then the API's field error is shown next to the input and the page stays put
    error = page.locator('[data-error-for="email"]')
    error.wait_for(state="visible")
    page.wait_for_function("document.querySelector('[data-error-for=email]').textContent.length > 0")
    assert error.text_content() == "An email address must have an @-sign."
    assert page.url == local_pipeline.info.landing_page_url
    assert page.locator("#fetch-result").text_content() == "Please check the highlighted fields."
    # And a valid one goes through
    email = f"fetch-{uuid.uuid4().hex[:8]}@example.com"
    page.fill("#fetch-email", email)
    page.click("#fetch-form button[type=submit]")
    page.wait_for_function("document.querySelector('#fetch-result').textContent.startsWith('Thanks')")
    assert wait_for(lambda: local_pipeline.count("email = %s", (email,)) == 1, message="fetch lead stored")
    page.context.close()

"""Attribution and consent captured by leadpipe.js itself, in a real Chromium, stored by the local pipeline.

The landing page's HTML has no UTM inputs: the client reads the URL and the referrer on every page load,
keeps the first and the last touch in localStorage, and sends both with the lead. Pages other than the
sample form are served on the same origin by Playwright. The browser's clock is moved with Playwright's
clock (https://playwright.dev/python/docs/clock): `Date` only, timers run as usual.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page

from tests.e2e.conftest import RunningPipeline, unique_email, wait_for

AD_CLICK = "?utm_source=google&utm_medium=cpc&utm_campaign=summer&utm_term=crm+tool&gclid=Cj0KCQiA-ad.click_1"
SEARCH_ENGINE = "https://www.google.com/search?q=lead+capture"
START = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
PLAIN_PAGE = "<!doctype html><title>{title}</title><p>{title}</p><script src='/leadpipe.js' defer></script>"


def open_context(browser: Browser, pipeline: RunningPipeline, at: datetime = START) -> BrowserContext:
    """A fresh visitor (empty localStorage) whose browser clock says `at`, with two more pages of the site."""
    context = browser.new_context()
    context.clock.set_system_time(at)
    for path in ("products", "pricing"):
        serve(context, f"{pipeline.info.landing_page_url}{path}*", PLAIN_PAGE.format(title=path))
    return context


def serve(context: BrowserContext, url_pattern: str, html: str) -> None:
    context.route(url_pattern, lambda route: route.fulfill(body=html, content_type="text/html"))


def visit(page: Page, url: str, referer: str | None = None) -> None:
    page.goto(url, referer=referer)
    page.wait_for_function("window.Leadpipe !== undefined")  # leadpipe.js ran: the visit is remembered (or not)


def sign_up(page: Page, pipeline: RunningPipeline, email: str, tick_consent: bool = True) -> dict[str, Any]:
    page.fill("#signup-email", email)
    if tick_consent:
        page.check("#signup-form input[name=consent]")
    page.click("#signup-form button[type=submit]")
    thanks = pipeline.info.landing_page_url + "thanks"
    # Sent (the client follows the 202 to the thank-you page), or refused: then the page says why
    page.wait_for_function(
        "thanks => location.href === thanks || /check|Sorry/.test(document.body.innerText)", arg=thanks, timeout=20_000
    )
    assert page.url == thanks, page.inner_text("body")
    [row] = wait_for(lambda: pipeline.rows("email = %s", (email,)), message="the lead stored")
    return row


def attribution(row: dict[str, Any]) -> dict[str, Any]:
    names = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "gclid", "referrer", "landing_page", "campaign")
    return {name: row[name] for name in names}


def test_an_ad_click_three_pages_before_the_sign_up_is_the_leads_first_and_last_touch(
    browser: Browser, local_pipeline: RunningPipeline
) -> None:
    base = local_pipeline.info.landing_page_url
    context = open_context(browser, local_pipeline)
    page = context.new_page()
    # Given a visitor who lands from a Google ad on a product page...
    visit(page, f"{base}products{AD_CLICK}", referer=SEARCH_ENGINE)
    # ...browses on to the pricing page and then the sign-up page, neither with UTMs in its URL
    visit(page, f"{base}pricing", referer=f"{base}products")
    visit(page, base)
    # When they sign up there, ticking the consent box
    email = unique_email("adclick")
    row = sign_up(page, local_pipeline, email)
    # Then the lead is attributed to the ad: its own fields, and both touches (the same visit)
    touch = {
        "touched_at": "2026-05-04T09:30:00Z",
        "landing_page": f"{base}products{AD_CLICK}",
        # As the browser gave it (a search engine's own referrer policy usually sends its origin only)
        "referrer": SEARCH_ENGINE,
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "summer",
        "utm_term": "crm tool",
        "gclid": "Cj0KCQiA-ad.click_1",
    }
    assert (
        row["first_touch"] | {"touched_at": touch["touched_at"]}
        == touch
        == row["last_touch"] | {"touched_at": touch["touched_at"]}
    )
    assert row["first_touch"]["touched_at"].startswith("2026-05-04T09:30")
    assert attribution(row) == {
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "summer",
        "utm_term": "crm tool",
        "gclid": "Cj0KCQiA-ad.click_1",
        "referrer": SEARCH_ENGINE,
        "landing_page": f"{base}products{AD_CLICK}",
        "campaign": "SUMMERSALE20",  # the page's own code, not utm_campaign
    }
    # And the consent record says which text was shown, what was agreed to, where and when
    assert (row["consent"], row["consent_text_id"], row["consent_text_version"], row["consent_purposes"]) == (
        True,
        "summer-offers",
        "3",
        ["offers", "newsletter"],
    )
    assert row["consent_page"] == base and row["consent_at"] == row["received_at"]
    print(
        "\nstored row:\n" + json.dumps({k: v for k, v in row.items() if v not in (None, {}, [])}, default=str, indent=2)
    )
    context.close()


def test_a_second_visit_weeks_later_updates_only_the_last_touch(
    browser: Browser, local_pipeline: RunningPipeline
) -> None:
    base = local_pipeline.info.landing_page_url
    context = open_context(browser, local_pipeline)
    page = context.new_page()
    # Given a visitor who came from the ad
    visit(page, f"{base}products{AD_CLICK}", referer=SEARCH_ENGINE)
    # When they come back three weeks later from the newsletter, then once more typing the address (a direct visit)
    context.clock.set_system_time(START + timedelta(weeks=3))
    visit(page, f"{base}?utm_source=newsletter&utm_medium=email&utm_campaign=june-digest")
    visit(page, base)
    row = sign_up(page, local_pipeline, unique_email("returning"), tick_consent=False)
    # Then the first touch is still the ad, the last is the newsletter, and the lead's fields are the last touch's
    assert (row["first_touch"]["utm_source"], row["first_touch"]["gclid"]) == ("google", "Cj0KCQiA-ad.click_1")
    assert row["first_touch"]["touched_at"].startswith("2026-05-04T09:30")
    assert row["last_touch"] == {
        "touched_at": row["last_touch"]["touched_at"],
        "landing_page": f"{base}?utm_source=newsletter&utm_medium=email&utm_campaign=june-digest",
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "june-digest",
    }
    assert row["last_touch"]["touched_at"].startswith("2026-05-25T09:30")
    assert (row["utm_source"], row["utm_campaign"], row["gclid"], row["referrer"]) == (
        "newsletter",
        "june-digest",
        None,
        None,
    )
    # And the unticked box is stored as no consent, with the text that was shown and no purpose
    assert (row["consent"], row["consent_text_id"], row["consent_purposes"], row["consent_at"]) == (
        False,
        "summer-offers",
        [],
        None,
    )
    context.close()


def test_touches_are_forgotten_ninety_days_after_the_last(browser: Browser, local_pipeline: RunningPipeline) -> None:
    base = local_pipeline.info.landing_page_url
    context = open_context(browser, local_pipeline)
    page = context.new_page()
    # Given a visitor who came from the ad
    visit(page, f"{base}products{AD_CLICK}", referer=SEARCH_ENGINE)
    # When they come back directly 91 days later and sign up
    context.clock.set_system_time(START + timedelta(days=91))
    visit(page, base)
    row = sign_up(page, local_pipeline, unique_email("expired"))
    # Then the lead carries no attribution at all
    assert (row["first_touch"], row["last_touch"]) == (None, None)
    assert attribution(row) == dict.fromkeys(attribution(row)) | {"campaign": "SUMMERSALE20"}
    context.close()


def test_a_page_with_its_own_utm_inputs_wins(browser: Browser, local_pipeline: RunningPipeline) -> None:
    base = local_pipeline.info.landing_page_url
    context = open_context(browser, local_pipeline)
    # Given a partner page whose form sets its own UTM fields
    partner_form = (
        f"<!doctype html><form id=signup-form method=post action='{local_pipeline.info.api_url}' data-leadpipe>"
        f"<input type=hidden name=_redirect value='{base}thanks'>"
        "<input type=hidden name=utm_source value=partner><input type=hidden name=utm_campaign value=co-op>"
        "<input id=signup-email name=email><input type=checkbox name=consent><button type=submit>Go</button></form>"
        "<script src='/leadpipe.js' defer></script>"
    )
    serve(context, f"{base}partner", partner_form)
    page = context.new_page()
    # And a visitor who came from the ad before
    visit(page, f"{base}products{AD_CLICK}", referer=SEARCH_ENGINE)
    # When they sign up on the partner page
    visit(page, f"{base}partner")
    row = sign_up(page, local_pipeline, unique_email("partner"), tick_consent=False)
    # Then the page's own values are the lead's, none of the ad's is mixed in, and the touches still travel
    assert attribution(row) == {
        "utm_source": "partner",
        "utm_medium": None,
        "utm_campaign": "co-op",
        "utm_term": None,
        "gclid": None,
        "referrer": None,
        "landing_page": None,
        "campaign": None,
    }
    assert row["last_touch"]["utm_source"] == "google" and row["first_touch"]["gclid"] == "Cj0KCQiA-ad.click_1"
    context.close()


def test_a_mangled_link_never_costs_the_lead(browser: Browser, local_pipeline: RunningPipeline) -> None:
    base = local_pipeline.info.landing_page_url
    context = open_context(browser, local_pipeline)
    page = context.new_page()
    # Given a link whose parameters the API would refuse (a NUL, a click id with a space, an over-long UTM)
    visit(page, f"{base}?utm_source=news%00letter&gclid=has%20space&utm_term={'x' * 201}&utm_campaign=spring")
    # When the visitor signs up
    row = sign_up(page, local_pipeline, unique_email("mangled"))
    # Then the lead is stored, with the parameters that were valid and without the others
    assert (row["utm_source"], row["gclid"], row["utm_term"], row["utm_campaign"]) == (None, None, None, "spring")
    assert row["last_touch"]["utm_campaign"] == "spring" and "utm_source" not in row["last_touch"]
    context.close()


def test_without_javascript_the_form_sends_its_consent_fields_and_no_attribution(
    browser: Browser, local_pipeline: RunningPipeline
) -> None:
    base = local_pipeline.info.landing_page_url
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    # Given the sample page opened from an ad, with JavaScript off
    page.goto(f"{base}{AD_CLICK}", referer=SEARCH_ENGINE)
    # When the visitor signs up, ticking the consent box (the browser posts the form and follows the 303)
    row = sign_up(page, local_pipeline, unique_email("nojs"))
    # Then the consent record comes from the form's hidden fields, dated by the ingest
    assert (row["consent"], row["consent_text_id"], row["consent_text_version"], row["consent_purposes"]) == (
        True,
        "summer-offers",
        "3",
        ["offers", "newsletter"],
    )
    assert row["consent_at"] == row["received_at"] and row["consent_page"] is None
    # And no attribution: the referring site never reaches the API, and the page's URL only as the browser's Referer
    # (whole here, where page and API share an origin; from a page on another origin, as in AWS, Chromium's default
    # strict-origin-when-cross-origin policy sends the origin only)
    assert (row["first_touch"], row["last_touch"], row["utm_source"], row["gclid"], row["referrer"]) == (None,) * 5
    assert row["source"]["referer"] == f"{base}{AD_CLICK}"
    context.close()


def test_attribution_that_would_overflow_the_body_limit_never_costs_the_lead(
    browser: Browser, local_pipeline: RunningPipeline
) -> None:
    base = local_pipeline.info.landing_page_url
    context = open_context(browser, local_pipeline)
    page = context.new_page()
    # Given a visitor from a link with long tracking parameters (each valid for the API on its own), referred by a
    # page with a long URL: sent as both touches and the lead's own fields, they exceed the ingest's 16 KiB body
    tracking = "%2F" * 600  # an e-mail tool's encoded token: every '%' is encoded again in the form body
    visit(
        page,
        f"{base}?utm_source=newsletter&utm_campaign=spring&fbclid={'F' * 500}&_hsenc={tracking}",
        referer=f"https://mail.example.net/read?{'m=%2F' * 390}",
    )
    # When the visitor signs up
    row = sign_up(page, local_pipeline, unique_email("overflow"))
    # Then the lead is stored with its own fields; the attribution that fits goes with it
    assert (row["consent"], row["campaign"]) == (True, "SUMMERSALE20")
    assert (row["utm_source"], row["utm_campaign"]) == ("newsletter", "spring")
    assert row["first_touch"]["utm_source"] == row["last_touch"]["utm_source"] == "newsletter"
    context.close()

"""A real headless Chromium sends a captcha-protected form through the local pipeline: no lead is lost to a spent token.

Turnstile and reCAPTCHA tokens verify ONCE (a second siteverify answers `timeout-or-duplicate`) and
expire (Turnstile after 300 s, reCAPTCHA after two minutes):
https://developers.cloudflare.com/turnstile/get-started/server-side-validation/
https://developers.google.com/recaptcha/docs/verify
The stand-in for siteverify below is as strict. The page's widget is played by a hidden
`cf-turnstile-response` input in the form, where Turnstile puts its token.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from playwright.sync_api import Browser, Page, Request, Response

from leadpipe.local.sqs_server import LOCAL_CREDENTIALS, LOCAL_REGION
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import (
    RunningPipeline,
    assert_logs_hold_no_personal_data,
    e2e_settings,
    http_request,
    start_pipeline,
    wait_for,
)
from tests.e2e.test_browser import OUTBOX_JS, browser, outbox, pump_until, unique_email  # noqa: F401 - browser is a fixture
from tests.siteverify import SiteverifyStandIn

SECRET = "0x4AAAAAAA-local-secret"
PASS_HEADER = "leadpipe-captcha-pass"  # as Playwright reports request headers: lower case


class SingleUseSiteverify(SiteverifyStandIn):
    """A token the widget issued verifies once; after that, or unknown, it fails."""

    def __init__(self) -> None:
        self.issued: set[str] = set()
        self.spent: set[str] = set()
        self.checked: list[str] = []
        super().__init__()

    def answer(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any] | None]:
        token = form.get("response", [""])[0]
        self.checked.append(token)
        success = form.get("secret") == [SECRET] and token in self.issued and token not in self.spent
        self.spent.add(token)
        return 200, {"success": success, "error-codes": [] if success else ["timeout-or-duplicate"]}

    def issue(self) -> str:
        token = f"turnstile-{uuid.uuid4().hex}"
        self.issued.add(token)
        return token


@pytest.fixture(scope="module")
def siteverify() -> Iterator[SingleUseSiteverify]:
    stand_in = SingleUseSiteverify()
    yield stand_in
    stand_in.close()


class OtherOrigin:
    """The sample page and leadpipe.js, copied from the local runtime, on http://localhost:<port>: another
    origin than the API's http://127.0.0.1:<port>, as in production, so the browser enforces CORS on every post."""

    def __init__(self) -> None:
        self.source = ""  # the local runtime's landing page URL, once it runs
        other = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                answer = http_request(other.source + self.path.lstrip("/"))
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.headers["content-type"])
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def other_origin() -> Iterator[OtherOrigin]:
    served = OtherOrigin()
    yield served
    served.close()


@pytest.fixture(scope="module")
def guarded_pipeline(siteverify: SingleUseSiteverify, other_origin: OtherOrigin) -> Iterator[RunningPipeline]:
    """The local pipeline with a Turnstile check: the secret in Secrets Manager (moto, on 127.0.0.1)."""
    secrets_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    secrets_server.start()
    host, port = secrets_server.get_host_and_port()
    secrets_url = f"http://{host}:{port}"
    # A unique name: moto keeps one Secrets Manager per process, and other test modules reuse this fixture.
    secret_arn = boto3.client(
        "secretsmanager",
        endpoint_url=secrets_url,
        region_name=LOCAL_REGION,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    ).create_secret(Name=f"leadpipe/local/turnstile-{uuid.uuid4().hex[:8]}", SecretString=SECRET)["ARN"]
    data_dir = REPO_ROOT / ".leadpipe" / "pytest" / f"browser-captcha-{uuid.uuid4().hex[:8]}"
    captcha = {
        "CAPTCHA_PROVIDER": "turnstile",
        "CAPTCHA_SECRET_ARN": secret_arn,
        "CAPTCHA_VERIFY_URL": siteverify.url,
        "CAPTCHA_TIMEOUT_SECONDS": "1",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets_url,
    }
    running = start_pipeline(
        data_dir, e2e_settings(), ingest_environment=captcha, extra_allowed_origins=[other_origin.origin]
    )
    other_origin.source = running.info.landing_page_url
    yield running
    running.pipeline.stop(drain_seconds=5)
    secrets_server.stop()
    assert_logs_hold_no_personal_data(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


def record(page: Page, api_url: str) -> tuple[list[Request], list[Response]]:
    posts: list[Request] = []
    answers: list[Response] = []
    page.on(
        "request",
        lambda request: posts.append(request) if request.url == api_url and request.method == "POST" else None,
    )
    page.on(
        "response",
        lambda response: (
            answers.append(response) if response.url == api_url and response.request.method == "POST" else None
        ),
    )
    return posts, answers


def widget_gives(page: Page, token: str) -> None:
    """What the Turnstile widget does: put its token in a hidden input of the form."""
    page.evaluate(
        """(token) => {
          const form = document.querySelector('#signup-form');
          const input = form.elements['cf-turnstile-response'] || form.appendChild(Object.assign(document.createElement('input'), {type: 'hidden', name: 'cf-turnstile-response'}));
          input.value = token;
        }""",
        token,
    )


@pytest.mark.parametrize("cross_origin", [False, True], ids=["same-origin", "cross-origin"])
def test_a_503_after_the_captcha_passed_is_retried_with_the_pass_and_stored_once(
    browser: Browser,
    guarded_pipeline: RunningPipeline,
    siteverify: SingleUseSiteverify,
    other_origin: OtherOrigin,
    cross_origin: bool,  # noqa: F811
) -> None:
    info = guarded_pipeline.info
    page = browser.new_context().new_page()
    posts, answers = record(page, info.api_url)
    page.goto(other_origin.origin + "/" if cross_origin else info.landing_page_url)
    page.evaluate("document.querySelector('#signup-form').setAttribute('data-leadpipe-retry-seconds', '120')")
    token = siteverify.issue()
    widget_gives(page, token)
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
    siteverify: SingleUseSiteverify,  # noqa: F811
) -> None:
    info = guarded_pipeline.info
    context = browser.new_context()
    page = context.new_page()
    posts, answers = record(page, info.api_url)
    # Given a lead saved in this browser on an earlier visit (the API asked for an hour's pause), with no pass
    page.route(info.api_url, lambda route: route.fulfill(status=503, headers={"Retry-After": "3600"}, body=""))
    page.goto(info.landing_page_url)
    old_token = siteverify.issue()
    widget_gives(page, old_token)
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
    widget_gives(page, fresh)
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
    widget_gives(page, newest)
    page.wait_for_function(f"({OUTBOX_JS}).length === 0", timeout=30_000)
    assert siteverify.checked[-1] == newest and siteverify.checked.count(fresh) == 1
    assert wait_for(lambda: guarded_pipeline.count("email = %s", (second,)) == 1, message="one row")
    context.close()

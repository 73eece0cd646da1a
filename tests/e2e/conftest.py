"""The local runtime, started by the test session on ephemeral ports with data of its own."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import psycopg
import pytest
from moto.server import ThreadedMotoServer
from playwright.sync_api import Browser, BrowserContext, Page, Request, Response, Route, sync_playwright

from infra.config import PipelineSettings, settings_from_file
from leadpipe.local.runtime import LocalPipeline, LocalPipelineOptions, RuntimeInfo, local_sqs_client
from leadpipe.local.sqs_server import LOCAL_CREDENTIALS, LOCAL_REGION
from tests.conftest import REPO_ROOT
from tests.events import without_json_escapes
from tests.siteverify import SiteverifyStandIn


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


# A hung ingest fails the test in seconds; a healthy one answers in milliseconds even on a busy machine.
HTTP_TIMEOUT_SECONDS = 10


def http_request(
    url: str, method: str = "GET", body: bytes | str | None = None, headers: dict[str, str] | None = None
) -> HttpAnswer:
    """One request, no redirect following (a 303 must be seen as a 303)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HTTP_TIMEOUT_SECONDS)
    try:
        connection.request(method, parts.path or "/", body=body, headers=headers or {})
        response = connection.getresponse()
        answer = HttpAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()
    if method == "POST" and answer.status == 202:
        record_accepted(url, answer.json()["lead_id"], body)
    return answer


def record_accepted(api_url: str, lead_id: str, body: bytes | str | None) -> None:
    """A 202 the session's end checks is a row; tests that post through another client record theirs here."""
    ACCEPTED_LEAD_IDS.setdefault(api_url, {})[lead_id] = _submitted_email(body)


# Every 202 an e2e test got (lead id -> e-mail sent), by API URL: at the end of the session each
# must be a row, unless ops erased that person on purpose (every 202 is a row). No e2e test fills the
# honeypot, whose 202 is deliberately not stored; Chromium's posts are not recorded here.
ACCEPTED_LEAD_IDS: dict[str, dict[str, str]] = {}
ERASED_EMAILS: set[str] = set()


def _submitted_email(body: bytes | str | None) -> str:
    text = body.decode() if isinstance(body, bytes) else body or ""
    try:
        fields = json.loads(text)
    except ValueError:
        fields = dict(parse_qsl(text))
    return str(fields.get("email", "")).strip().lower() if isinstance(fields, dict) else ""


@pytest.fixture(scope="session", autouse=True)
def erasures_are_recorded() -> Iterator[None]:
    """`leadpipe db erase` deletes rows on purpose: those leads are accounted for, not lost."""
    from leadpipe import erasure

    erase_person = erasure.erase_person

    def recording(database_url: str, leads_table: str, email: str) -> int:
        erased = erase_person(database_url, leads_table, email)
        ERASED_EMAILS.add(email.strip().lower())
        return erased

    erasure.erase_person = recording
    yield
    erasure.erase_person = erase_person


def assert_every_202_is_a_row(running: RunningPipeline, timeout: float = 60) -> int:
    """Wait (bounded) until every lead answered 202 by this pipeline is in its table (or was
    erased by ops); returns how many 202s were checked."""
    accepted = ACCEPTED_LEAD_IDS.get(running.info.api_url, {})

    def missing() -> dict[str, str]:
        stored = {str(r["lead_id"]) for r in running.rows("lead_id::text = ANY(%s)", (list(accepted),))}
        return {
            lead_id: email
            for lead_id, email in accepted.items()
            if lead_id not in stored and email not in ERASED_EMAILS
        }

    try:
        wait_for(lambda: not missing(), timeout=timeout, message=f"every 202 as a row ({len(accepted)} accepted)")
    except AssertionError:
        raise AssertionError(f"202 answered, no row: {missing()}") from None
    return len(accepted)


def wait_for(check: Callable[[], Any], timeout: float = 30, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def e2e_settings() -> PipelineSettings:
    """dev's settings, with a short visibility timeout so poison reaches the DLQ in seconds."""
    return settings_from_file("dev").model_copy(update={"visibility_timeout_seconds": 1, "max_receive_count": 2})


# AWS's own defaults for an SQS event source, no batching window: a lead is stored as soon as it is received
# (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html). For pipelines whose tests
# wait for single leads, not for batches.
UNBATCHED = {"batch_size": 10, "max_batching_window_seconds": 0}


class RunningPipeline:
    def __init__(self, info: RuntimeInfo, pipeline: LocalPipeline) -> None:
        self.info = info
        self.pipeline = pipeline
        self.sqs = local_sqs_client(info.sqs_endpoint_url)

    def rows(self, where: str = "true", params: tuple = ()) -> list[dict]:
        with (
            psycopg.connect(self.info.database_url, autocommit=True) as connection,
            connection.cursor(row_factory=psycopg.rows.dict_row) as cursor,
        ):
            return cursor.execute(f"SELECT * FROM {self.info.leads_table} WHERE {where}", params).fetchall()

    def count(self, where: str = "true", params: tuple = ()) -> int:
        return len(self.rows(where, params))

    def queue_attribute(self, url: str, name: str) -> int:
        return int(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name])["Attributes"][name])


@contextmanager
def leads_table_of_its_own(postgres_uri: str, name: str) -> Iterator[str]:
    """`<schema>.leads` in a new schema on the session's PostgreSQL, dropped afterwards: a pipeline with settings of
    its own keeps its table there instead of starting an embedded server of its own."""
    schema = f"{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    yield f"{schema}.leads"
    with psycopg.connect(postgres_uri, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


def start_pipeline(data_dir: Path, settings: PipelineSettings | None = None, **options: Any) -> RunningPipeline:
    pipeline = LocalPipeline(
        LocalPipelineOptions(settings=settings or e2e_settings(), data_dir=data_dir, port=0, **options)
    )
    return RunningPipeline(pipeline.start(), pipeline)


@pytest.fixture(scope="session")
def e2e_data_dir() -> Iterator[Path]:
    path = REPO_ROOT / ".leadpipe" / "pytest" / f"e2e-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


RAW_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+\.[\w.-]+")  # \w: any script, IDN domains too
RAW_PHONE = re.compile(
    r"\+\d[\d ().-]{6,}\d|\(\d{2,5}\) ?\d{3}[ -]?\d{4}|\b\d{3}-\d{3}-\d{4}\b|\b0\d{2,4}[ /-]\d{5,8}\b"
)


@pytest.fixture(scope="session")
def local_pipeline(e2e_data_dir: Path) -> Iterator[RunningPipeline]:
    """The session's pipeline: dev's settings without the batching window (its tests wait for single leads; the
    window itself is tested in tests/leadpipe/local/test_poller_batching.py and by make run's own test)."""
    running = start_pipeline(e2e_data_dir, e2e_settings().model_copy(update=UNBATCHED))
    yield running
    accepted = assert_every_202_is_a_row(running)
    print(f"\nevery 202 of the session is a row (or erased by ops): {accepted} checked")
    running.pipeline.stop(drain_seconds=5)
    # Every e2e test has run through this pipeline: not one raw e-mail or phone in any log it wrote.
    assert_logs_hold_no_personal_data(e2e_data_dir)


def assert_logs_hold_no_personal_data(data_dir: Path) -> None:
    logged = "".join(path.read_text() for path in (data_dir / "logs").glob("*.log"))
    assert logged, "the pipeline wrote no logs at all"
    logged += "\n" + without_json_escapes(logged)  # "j\\u00f6hn@..." in a JSON line is jöhn@... to a reader
    assert RAW_EMAIL.findall(logged) == [] and RAW_PHONE.findall(logged) == []


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


OUTBOX_JS = (
    "Object.keys(localStorage).filter(k => k.startsWith('leadpipe:outbox:'))"
    ".map(k => JSON.parse(localStorage.getItem(k)))"
)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield launched
        launched.close()


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def pump_until(page: Page, check: Callable[[], Any], timeout: float, message: str) -> Any:
    """`wait_for`, but letting Playwright run its event handlers (routes, request listeners) meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def outbox(page: Page) -> list[dict]:
    return page.evaluate(OUTBOX_JS)


ORIGIN = "http://localhost:8931"  # answered by page.route only; localhost is a secure context (Web Locks, randomUUID)


TOKEN_FIELD = "cf-turnstile-response"


PASS_HEADER = "Leadpipe-Captcha-Pass"


CLIENT_JS = (REPO_ROOT / "leadpipe" / "local" / "landing_page" / "leadpipe.js").read_text()


# The client's own waits, shortened for tests that wait on them: a retry's back-off (0.5 s, doubling) and the
# captcha recheck (1 s) in production (docs/browser-client.md). What happens when does not change, only how soon.
FAST_CLIENT = 'data-backoff-seconds="0.05" data-recheck-seconds="0.1"'
CLIENT_TAG = '<script src="/leadpipe.js"'


def with_fast_client(target: Page | BrowserContext, page_url: str) -> None:
    """Every load of `page_url` in `target` runs leadpipe.js with FAST_CLIENT's waits (its <script> tag's options).

    Only for a page on the API's own origin: Chromium gives a page answered by Playwright no address space, and its
    Local Network Access then blocks that page's cross-origin requests to 127.0.0.1."""

    def rewrite(route: Route) -> None:
        response = route.fetch()
        html = response.text()
        assert CLIENT_TAG in html, f"{page_url} does not load leadpipe.js"
        route.fulfill(response=response, body=html.replace(CLIENT_TAG, f"{CLIENT_TAG} {FAST_CLIENT}"))

    target.route(page_url, rewrite)


PAGE = """<!doctype html><html><body>
<form id="signup-form" method="post" action="/leads" data-leadpipe data-leadpipe-retry-seconds="2">
  <input type="hidden" name="campaign" value="SUMMERSALE20">
  <input id="signup-email" type="email" name="email" required>
  <input type="hidden" name="cf-turnstile-response" value="">
  <button type="submit">Sign up</button>
  <p id="signup-status" data-leadpipe-status role="status"></p>
</form>
<script src="/leadpipe.js" CLIENT_OPTIONS defer></script>
</body></html>"""


@dataclass
class CaptchaApi:
    """The ingest's captcha rules, the queue and the leads table, as one in-memory stand-in."""

    queue_up: bool = True
    network_up: bool = True
    drop_next: int = 0  # the next n POSTs are lost on the network (status 0 in fetch)
    low_score: bool = False  # reCAPTCHA v3: this visitor's every token scores below the threshold
    token_field: str = TOKEN_FIELD  # g-recaptcha-response for reCAPTCHA v3
    client_options: str = FAST_CLIENT  # the page's <script> tag options for leadpipe.js
    issued: set[str] = field(default_factory=set)
    spent: set[str] = field(default_factory=set)
    passes: dict[str, str] = field(default_factory=dict)  # pass -> the lead_id it was issued for
    rows: dict[str, str] = field(default_factory=dict)  # lead_id -> email (the table; lead_id is its primary key)
    answers: list[tuple[int, str, str]] = field(default_factory=list)  # (status, code, Idempotency-Key)

    def issue(self) -> str:
        token = f"turnstile-{uuid.uuid4().hex}"
        self.issued.add(token)
        return token

    def rows_for(self, email: str) -> int:
        return sum(1 for stored in self.rows.values() if stored == email)

    def handle(self, route: Route) -> None:
        request = route.request
        if request.url.endswith("/leadpipe.js"):
            route.fulfill(status=200, content_type="application/javascript", body=CLIENT_JS)
            return
        if request.method != "POST":
            page = PAGE.replace(TOKEN_FIELD, self.token_field).replace("CLIENT_OPTIONS", self.client_options)
            route.fulfill(status=200, content_type="text/html", body=page)
            return
        if not self.network_up or self.drop_next > 0:
            self.drop_next = max(0, self.drop_next - 1)
            self.answers.append((0, "network", request.headers.get("idempotency-key", "")))
            route.abort("internetdisconnected")
            return
        fields = dict(parse_qsl(request.post_data or "", keep_blank_values=True))
        token = fields.pop(self.token_field, None)
        key = request.headers.get("idempotency-key", "")
        lead_id = str(uuid.uuid5(uuid.NAMESPACE_URL, key + json.dumps(fields, sort_keys=True)))
        ticket = request.headers.get(PASS_HEADER.lower())
        if ticket is not None and self.passes.get(ticket) == lead_id:
            passed = True
        elif not token or not token.strip():
            self._answer(route, 400, "captcha_missing", key)
            return
        else:
            spent = token in self.spent  # siteverify: timeout-or-duplicate, which the ingest answers as captcha_expired
            passed = token in self.issued and not spent and not self.low_score
            self.spent.add(token)
            if not passed:
                code = "expired" if spent else "low_score" if self.low_score else "invalid"
                why = [{"field": self.token_field, "code": code, "message": "the captcha token was not accepted"}]
                self._answer(route, 403, "captcha_expired" if spent else "captcha_invalid", key, fields=why)
                return
        if not self.queue_up:
            ticket = f"pass-{uuid.uuid4().hex}"
            self.passes[ticket] = lead_id
            self._answer(route, 503, "queue_unavailable", key, {"Retry-After": "3600", PASS_HEADER: ticket})
            return
        self.rows.setdefault(lead_id, fields["email"])
        self._answer(route, 202, "", key, body={"lead_id": lead_id, "status": "queued"})

    def _answer(
        self,
        route: Route,
        status: int,
        code: str,
        key: str,
        headers: dict | None = None,
        body: dict | None = None,
        fields: list | None = None,
    ) -> None:
        self.answers.append((status, code, key))
        payload = body if body is not None else {"error": {"code": code, "message": code, "fields": fields or []}}
        route.fulfill(status=status, content_type="application/json", headers=headers or {}, body=json.dumps(payload))


def open_page(browser: Browser, api: CaptchaApi, init_script: str | None = None) -> Page:
    """A tab of a new browser on the stand-in's page; `init_script` runs before the page's own scripts."""
    context = browser.new_context()
    if init_script is not None:
        context.add_init_script(init_script)
    context.route(f"{ORIGIN}/**", api.handle)
    page = context.new_page()
    page.goto(ORIGIN + "/")
    return page


def widget_gives(page: Page, token: str, field: str = TOKEN_FIELD) -> None:
    page.evaluate("([t, f]) => { document.querySelector('#signup-form').elements[f].value = t; }", [token, field])


def set_retry_budget(page: Page, seconds: float | None) -> None:
    """This visit's form retries a lead for `seconds` (`data-leadpipe-retry-seconds`; None: the client's default)."""
    if seconds is None:
        page.evaluate("document.querySelector('#signup-form').removeAttribute('data-leadpipe-retry-seconds')")
    else:
        page.evaluate(
            "(s) => document.querySelector('#signup-form').setAttribute('data-leadpipe-retry-seconds', s)", str(seconds)
        )


def give_up_soon(page: Page) -> None:
    """This visit's form stops retrying after 0.2 s (its retry budget): a lead it cannot send is saved at once."""
    set_retry_budget(page, 0.2)


def status_text(page: Page) -> str:
    return page.locator("#signup-status").text_content() or ""


def submit(page: Page, email: str | None = None) -> None:
    if email is not None:
        page.fill("#signup-email", email)
    page.click("#signup-form button[type=submit]")


SECRET = "0x4AAAAAAA-local-secret"


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


@pytest.fixture(scope="session")
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
            def do_GET(self) -> None:
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


@pytest.fixture(scope="session")
def other_origin() -> Iterator[OtherOrigin]:
    served = OtherOrigin()
    yield served
    served.close()


@pytest.fixture(scope="session")
def guarded_pipeline(
    siteverify: SingleUseSiteverify, other_origin: OtherOrigin, postgres_uri: str
) -> Iterator[RunningPipeline]:
    """The local pipeline with a Turnstile check: the secret in Secrets Manager (moto, on 127.0.0.1); its table
    in a schema of its own on the session's PostgreSQL (no second embedded server to start)."""
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
        # Half the ingest's 5 s (the most it allows): a stand-in slowed by a busy machine must not look down.
        "CAPTCHA_TIMEOUT_SECONDS": "2.5",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": secrets_url,
        # The ingest's own setting (default 5 s): a 503's retry comes 1 s later, not 5.
        "RETRY_AFTER_SECONDS": "1",
    }
    with leads_table_of_its_own(postgres_uri, "browser-captcha") as leads_table:
        running = start_pipeline(
            data_dir,
            e2e_settings().model_copy(update={**UNBATCHED, "leads_table": leads_table}),
            database_url=postgres_uri,
            ingest_environment=captcha,
            extra_allowed_origins=[other_origin.origin],
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


def turnstile_widget_gives(page: Page, token: str) -> None:
    """What the Turnstile widget does: put its token in a hidden input of the form (added if the page has none)."""
    page.evaluate(
        """(token) => {
          const form = document.querySelector('#signup-form');
          const input = form.elements['cf-turnstile-response'] ||
            form.appendChild(Object.assign(document.createElement('input'),
              {type: 'hidden', name: 'cf-turnstile-response'}));
          input.value = token;
        }""",
        token,
    )

"""A local stand-in for API Gateway's REST proxy: HTTP in, the ingest's `lambda_handler` called.

What API Gateway answers by itself comes from the stack's own table (`infra/gateway_responses.py`), so local and
cloud agree. The sample landing page at `/` is a local extra.
"""

from __future__ import annotations

import base64
import json
import signal
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra.cors import PREFLIGHT_STATUS, preflight_headers
from infra.gateway_responses import (
    DEFAULT_5XX,
    INTEGRATION_TIMEOUT,
    NOT_FOUND,
    REQUEST_TOO_LARGE,
    THROTTLED,
    GatewayAnswer,
)
from leadpipe.local.asgi import read_body
from leadpipe.local.stage_throttle import StageThrottle

API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS = 29.0  # REST API's default integration timeout
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload quota, each way
LEADS_PATH = "/leads"
ROUTED_METHODS = (
    "POST",
    "OPTIONS",
)  # the methods the stack defines on /leads; OPTIONS is answered here, as API Gateway does
PAGES = {"/": "index.html", "/thanks": "thanks.html"}
SCRIPTS = {"/leadpipe.js": "leadpipe.js"}  # the browser client, served as is at a stable path

Answer = tuple[int, dict[str, str], bytes]


def to_proxy_event(
    method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, stage: str
) -> dict[str, Any]:
    """The API Gateway REST (v1) proxy event for one request."""
    parts = urlsplit(raw_path)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    query_multi = parse_qs(parts.query, keep_blank_values=True) or None
    try:
        text, is_base64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode("ascii"), True
    now = datetime.now(UTC)
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in query_multi.items()} if query_multi else None,
        "multiValueQueryStringParameters": query_multi,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": parts.path,
            "httpMethod": method,
            "path": f"/{stage}{parts.path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": single.get("User-Agent")},
        },
        "body": text if body else None,
        "isBase64Encoded": is_base64,
    }


def from_proxy_response(response: dict[str, Any]) -> Answer:
    """The HTTP answer API Gateway makes of the function's proxy response."""
    headers = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(values)
    payload = response.get("body") or ""
    data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
    return int(response["statusCode"]), headers, data


class InvocationTimedOut(BaseException):
    """Raised into the function when its time is up; a BaseException, so no `except Exception` in it can swallow it."""

    def __init__(self, by_integration: bool) -> None:
        super().__init__("integration timed out" if by_integration else "function timed out")
        self.by_integration = by_integration


def invoke_within(
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    event: dict[str, Any],
    function_timeout: float | None,
    integration_timeout: float | None,
) -> dict[str, Any]:
    """`invoke(event)`, stopped with `InvocationTimedOut` at whichever of the two timeouts comes first.

    Lambda stops a function at its timeout; API Gateway stops waiting at its integration timeout.
    A timer signal interrupts the function as Lambda would, so it needs the main thread.
    """
    limits = [(t, False) for t in [function_timeout] if t] + [(t, True) for t in [integration_timeout] if t]
    if not limits or threading.current_thread() is not threading.main_thread():
        return invoke(event)
    # On a tie API Gateway answers first: its 29 s include the invocation's own overhead.
    seconds, _timer.by_integration = min(limits, key=lambda limit: (limit[0], not limit[1]))
    if signal.getsignal(signal.SIGALRM) is not _time_is_up:  # installed once: two syscalls fewer per request
        signal.signal(signal.SIGALRM, _time_is_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return invoke(event)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class _Timer:
    by_integration = False


_timer = _Timer()


def _time_is_up(signum: int, frame: Any) -> None:
    raise InvocationTimedOut(_timer.by_integration)


def page(name: str, replacements: dict[str, str]) -> bytes:
    text = resources.files("leadpipe.local").joinpath("landing_page", name).read_text(encoding="utf-8")
    for key, value in replacements.items():
        text = text.replace("{{" + key + "}}", value)
    return text.encode("utf-8")


def gateway_answer(
    answer: GatewayAnswer, allowed_origins: tuple[str, ...], status: int | None = None, **extra_headers: str
) -> Answer:
    """The answer API Gateway sends for `answer`'s response type; `status` for the DEFAULT_* families."""
    code = answer.status or status
    if code is None:
        raise ValueError(f"{answer.response_type} keeps API Gateway's own status: pass it")
    headers = {"Content-Type": "application/json", **answer.headers(allowed_origins), **extra_headers}
    return code, headers, answer.body().encode()


class ApiGatewayApp:
    """ASGI app: the landing pages, API Gateway's own refusals, and `/leads` proxied to `invoke`.

    `invoke(event) -> response` runs on the event loop, so one server process makes one
    invocation at a time, as one Lambda execution environment does. `throttle` is the stage's
    token bucket (shared by every process serving the stage); `allowed_origins[0]` is the origin
    the gateway's own answers allow, as in the stack (default: the local page's).
    """

    def __init__(
        self,
        invoke: Callable[[dict[str, Any]], dict[str, Any]],
        stage: str,
        public_url: str,
        page_settings: dict[str, str] | None = None,
        *,
        allowed_origins: tuple[str, ...] | None = None,
        throttle: StageThrottle | None = None,
        function_timeout_seconds: float | None = None,
        integration_timeout_seconds: float | None = API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        self._invoke = invoke
        self._function_timeout = function_timeout_seconds
        self._integration_timeout = integration_timeout_seconds
        self._stage = stage
        self._origins = tuple(allowed_origins or (public_url,))
        self._throttle = throttle
        self._pages = {
            "API_URL": f"{public_url}{LEADS_PATH}",
            "THANKS_URL": f"{public_url}/thanks",
            **(page_settings or {}),
        }

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        status, headers, data = await self._answer(scope, receive)
        raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in headers.items()
            if k.lower() != "content-length"
        ]
        raw_headers.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else data})

    async def _answer(self, scope: dict[str, Any], receive: Callable[..., Any]) -> Answer:
        method, path = scope["method"], scope["path"]
        if method == "GET" and path in PAGES:
            return 200, {"Content-Type": "text/html; charset=utf-8"}, page(PAGES[path], self._pages)
        if method in ("GET", "HEAD") and path in SCRIPTS:
            return 200, {"Content-Type": "text/javascript; charset=utf-8"}, page(SCRIPTS[path], {})
        if self._throttle is not None and not self._throttle.try_acquire():
            return gateway_answer(THROTTLED, self._origins)
        if path != LEADS_PATH or method not in ROUTED_METHODS:
            # API Gateway's MISSING_AUTHENTICATION_TOKEN, which the stack turns into a 404.
            return gateway_answer(NOT_FOUND, self._origins)
        headers = [(k.decode("latin-1").title(), v.decode("latin-1")) for k, v in scope["headers"]]
        if method == "OPTIONS":  # the stack's mock integration: the function never sees a preflight
            return PREFLIGHT_STATUS, preflight_headers(self._origins, dict(headers).get("Origin")), b""
        if int(dict(headers).get("Content-Length") or 0) > API_GATEWAY_MAX_BODY_BYTES:
            return gateway_answer(REQUEST_TOO_LARGE, self._origins, Connection="close")
        body = await read_body(receive, API_GATEWAY_MAX_BODY_BYTES)
        if body is None:  # chunked, with no length announced, and too long
            return gateway_answer(REQUEST_TOO_LARGE, self._origins, Connection="close")
        target = path + (f"?{scope['query_string'].decode('latin-1')}" if scope["query_string"] else "")
        event = to_proxy_event(method, target, headers, body, self._stage)
        if _may_exceed(len(body)) and _json_size(event) > LAMBDA_SYNC_PAYLOAD_BYTES:
            # Lambda refuses the invocation; API Gateway answers 500 for a refused invocation.
            return gateway_answer(DEFAULT_5XX, self._origins, status=500)
        try:
            response = invoke_within(self._invoke, event, self._function_timeout, self._integration_timeout)
        except InvocationTimedOut as timed_out:
            if timed_out.by_integration:
                return gateway_answer(INTEGRATION_TIMEOUT, self._origins)
            return gateway_answer(DEFAULT_5XX, self._origins, status=502)
        except Exception:  # the function failed: API Gateway's 502, from its DEFAULT_5XX response
            return gateway_answer(DEFAULT_5XX, self._origins, status=502)
        try:
            if _may_exceed(len(str(response.get("body") or ""))) and _json_size(response) > LAMBDA_SYNC_PAYLOAD_BYTES:
                # Lambda fails an invocation whose answer is over its quota: a function error, so 502.
                return gateway_answer(DEFAULT_5XX, self._origins, status=502)
            return from_proxy_response(response)
        except (AttributeError, KeyError, TypeError, ValueError):  # not a proxy response: API Gateway's 502
            return gateway_answer(DEFAULT_5XX, self._origins, status=502)


def _may_exceed(body_length: int) -> bool:
    """Cheap pre-check: JSON escaping grows a body at most 6x; headers add well under 64 KiB."""
    return body_length * 6 + 65_536 > LAMBDA_SYNC_PAYLOAD_BYTES


def _json_size(value: dict[str, Any]) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())

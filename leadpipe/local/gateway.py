"""A local stand-in for API Gateway's REST proxy: HTTP in, the ingest's `lambda_handler` called.

Only `/leads` reaches the function, as in the deployed API; other paths get API Gateway's own
403. The sample landing page is served at `/` (a local extra, not part of the cloud stack).

`ApiGatewayApp` is an ASGI app. The runtime serves it inside each ingest environment (see
`ingest_environments.py`), so a request costs no hop to a separate gateway process.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from leadpipe.local.asgi import read_body

API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
LEADS_PATH = "/leads"
ROUTED_METHODS = ("POST", "OPTIONS")  # the methods the stack defines on /leads
PAGES = {"/": "index.html", "/thanks": "thanks.html"}
SCRIPTS = {"/leadpipe.js": "leadpipe.js"}  # the browser client, served as is at a stable path

Answer = tuple[int, dict[str, str], bytes]


def to_proxy_event(method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, stage: str) -> dict[str, Any]:
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


def page(name: str, replacements: dict[str, str]) -> bytes:
    text = resources.files("leadpipe.local").joinpath("landing_page", name).read_text(encoding="utf-8")
    for key, value in replacements.items():
        text = text.replace("{{" + key + "}}", value)
    return text.encode("utf-8")


def _json_answer(status: int, body: dict[str, Any], **headers: str) -> Answer:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()


class ApiGatewayApp:
    """ASGI app: the landing pages, API Gateway's own refusals, and `/leads` proxied to `invoke`.

    `invoke(event) -> response` runs on the event loop, so one server process makes one
    invocation at a time, as one Lambda execution environment does.
    """

    def __init__(self, invoke: Callable[[dict[str, Any]], dict[str, Any]], stage: str, public_url: str,
                 page_settings: dict[str, str] | None = None) -> None:  # fmt: skip
        self._invoke = invoke
        self._stage = stage
        self._pages = {"API_URL": f"{public_url}{LEADS_PATH}", "THANKS_URL": f"{public_url}/thanks", **(page_settings or {})}

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        status, headers, data = await self._answer(scope, receive)
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items() if k.lower() != "content-length"]
        raw_headers.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else data})

    async def _answer(self, scope: dict[str, Any], receive: Callable[..., Any]) -> Answer:
        method, path = scope["method"], scope["path"]
        if method == "GET" and path in PAGES:
            return 200, {"Content-Type": "text/html; charset=utf-8"}, page(PAGES[path], self._pages)
        if method in ("GET", "HEAD") and path in SCRIPTS:
            return 200, {"Content-Type": "text/javascript; charset=utf-8"}, page(SCRIPTS[path], {})
        if path != LEADS_PATH or method not in ROUTED_METHODS:
            # What API Gateway answers itself for a resource or method the API does not define.
            return _json_answer(403, {"message": "Missing Authentication Token"})
        headers = [(k.decode("latin-1").title(), v.decode("latin-1")) for k, v in scope["headers"]]
        if int(dict(headers).get("Content-Length") or 0) > API_GATEWAY_MAX_BODY_BYTES:
            return _json_answer(413, {"message": "Request Too Long"}, Connection="close")
        body = await read_body(receive, API_GATEWAY_MAX_BODY_BYTES)
        if body is None:  # chunked, with no length announced, and too long
            return _json_answer(413, {"message": "Request Too Long"}, Connection="close")
        target = path + (f"?{scope['query_string'].decode('latin-1')}" if scope["query_string"] else "")
        event = to_proxy_event(method, target, headers, body, self._stage)
        try:
            return from_proxy_response(self._invoke(event))
        except Exception:  # what API Gateway answers when the integration itself fails
            return _json_answer(502, {"message": "Internal server error"})

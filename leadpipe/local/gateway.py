"""A local stand-in for API Gateway's REST proxy: HTTP in, the ingest's `lambda_handler` called.

Only `/leads` reaches the function, as in the deployed API; other paths get API Gateway's own
403. The sample landing page is served at `/` (a local extra, not part of the cloud stack).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
LEADS_PATH = "/leads"
ROUTED_METHODS = ("POST", "OPTIONS")  # the methods the stack defines on /leads
PAGES = {"/": "index.html", "/thanks": "thanks.html"}


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


def page(name: str, replacements: dict[str, str]) -> bytes:
    text = resources.files("leadpipe.local").joinpath("landing_page", name).read_text(encoding="utf-8")
    for key, value in replacements.items():
        text = text.replace("{{" + key + "}}", value)
    return text.encode("utf-8")


class LocalApiGateway:
    """ThreadingHTTPServer on 127.0.0.1 that proxies `/leads` to `invoke(event) -> response`."""

    def __init__(
        self,
        invoke: Callable[[dict[str, Any]], dict[str, Any]],
        stage: str,
        port: int = 0,
        on_request: Callable[[int, float], None] | None = None,
        page_settings: dict[str, str] | None = None,
    ) -> None:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                gateway._handle(self)

            def __getattr__(self, name: str) -> Any:
                # Every method, even unusual ones (TRACE, QUERY...), gets API Gateway's answer.
                if name.startswith("do_"):
                    return self.do_GET
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # request lines would carry nothing useful and clutter the terminal

        self._invoke = invoke
        self._stage = stage
        self._on_request = on_request
        self._page_settings = page_settings or {}
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        started = time.perf_counter()
        status = self._respond(request)
        if self._on_request and urlsplit(request.path).path == LEADS_PATH:
            self._on_request(status, time.perf_counter() - started)

    def _respond(self, request: BaseHTTPRequestHandler) -> int:
        path = urlsplit(request.path).path
        if request.command == "GET" and path in PAGES:
            settings = {"API_URL": f"{self.url}{LEADS_PATH}", "THANKS_URL": f"{self.url}/thanks", **self._page_settings}
            return _send(request, 200, {"Content-Type": "text/html; charset=utf-8"}, page(PAGES[path], settings))
        if path != LEADS_PATH or request.command not in ROUTED_METHODS:
            # What API Gateway answers itself for a resource or method the API does not define.
            return _send_json(request, 403, {"message": "Missing Authentication Token"})
        length = int(request.headers.get("Content-Length") or 0)
        if length > API_GATEWAY_MAX_BODY_BYTES:
            request.close_connection = True
            return _send_json(request, 413, {"message": "Request Too Long"})
        body = request.rfile.read(length) if length else b""
        event = to_proxy_event(request.command, request.path, list(request.headers.items()), body, self._stage)
        try:
            response = self._invoke(event)
        except Exception:  # what API Gateway answers when the integration itself fails
            return _send_json(request, 502, {"message": "Internal server error"})
        headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
        return _send(request, int(response["statusCode"]), headers, data)


def _send_json(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> int:
    return _send(request, status, {"Content-Type": "application/json"}, json.dumps(body).encode())


def _send(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], data: bytes) -> int:
    request.send_response(status)
    for name, value in headers.items():
        if name.lower() != "content-length":
            request.send_header(name, value)
    request.send_header("Content-Length", str(len(data)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(data)
    return status

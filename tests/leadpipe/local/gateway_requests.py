"""Shared by the tests in this folder."""

from __future__ import annotations

import asyncio
from typing import Any

from leadpipe.local.gateway import ApiGatewayApp


def request(
    app: ApiGatewayApp,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    query: str = "",
) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, body_message = sent
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body_message["body"]


class RecordingFunction:
    def __init__(self, response: dict[str, Any] | Exception) -> None:
        self.response = response
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


ACCEPTED = {
    "statusCode": 202,
    "headers": {"Content-Type": "application/json"},
    "body": '{"status": "queued"}',
    "isBase64Encoded": False,
}

"""Builders for the events Lambda hands our functions, in the shapes AWS documents."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any


def api_event(
    body: str | bytes | None,
    content_type: str | None = "application/json",
    *,
    method: str = "POST",
    path: str = "/leads",
    headers: dict[str, str] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event."""
    all_headers = {
        "User-Agent": "pytest",
        **({"Content-Type": content_type} if content_type else {}),
        **(headers or {}),
    }
    if isinstance(body, bytes) or base64_body:
        raw = body if isinstance(body, bytes) else (body or "").encode()
        body, is_base64 = base64.b64encode(raw).decode(), True
    else:
        is_base64 = False
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "test",
            "httpMethod": method,
            "path": f"/test{path}",
            "resourcePath": path,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": all_headers.get("User-Agent")},
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def sqs_event(bodies: list[str], receive_count: int = 1) -> dict[str, Any]:
    """An SQS event as the event source mapping delivers it; message ids are msg-0, msg-1, ..."""
    return {"Records": [sqs_record(f"msg-{i}", body, receive_count) for i, body in enumerate(bodies)]}


def sqs_record(message_id: str, body: str, receive_count: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1732352400000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1732352400001",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:leads",
        "awsRegion": "eu-west-1",
    }


def emitted_metrics(stdout: str) -> dict[str, float]:
    """Sum of each metric in the CloudWatch EMF documents a function printed."""
    totals: dict[str, float] = {}
    for line in stdout.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                values = document[metric["Name"]]
                totals[metric["Name"]] = totals.get(metric["Name"], 0.0) + sum(
                    values if isinstance(values, list) else [values]
                )
    return totals


class RecordingQueue:
    """A stand-in publisher that keeps what the ingest would have sent to SQS."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def publish(self, envelope: Any) -> str:
        self.sent.append(envelope)
        return "message-id"


def without_json_escapes(output: str) -> str:
    """Log output with JSON's \\u escapes undone ("j\\u00f6hn@" reads jöhn@), so addresses can be searched for."""
    lines = []
    for line in output.splitlines():
        try:
            lines.append(json.dumps(json.loads(line), ensure_ascii=False))
        except ValueError:
            lines.append(line)
    return "\n".join(lines)

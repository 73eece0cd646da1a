"""moto's SQS as a bare WSGI app. Imported only in the local SQS server's own process.

This server hosts SQS and nothing else, so moto's Flask app and its per-request service
detection (`DomainDispatcherApplication`) cost without deciding anything: measured, they were
a third of the server's CPU per SendMessage.

SendMessage, the one call made per lead, also skips moto's generic request parsing and
response serialisation (~0.7 ms of its ~0.9 ms): `send_message_directly` makes the same backend
call `SQSResponse.send_message` makes and answers the same JSON. Anything it does not cover
(FIFO, delays, system attributes, errors) goes the full way through moto.
tests/unit/test_local_sqs_app.py compares both paths request for request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import io
import json
import re
import uuid

from botocore.exceptions import ClientError
from moto.core.request import Request
from moto.sqs.models import sqs_backends
from moto.sqs.responses import SQSResponse
from moto.sqs.utils import validate_message_attributes
from werkzeug.wrappers import Response

QUERY_PROTOCOL_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_PROTOCOL_CONTENT_TYPE = "application/x-amz-json-1.0"
SEND_MESSAGE_TARGET = "AmazonSQS.SendMessage"
DIRECT_SEND_PARAMETERS = frozenset({"QueueUrl", "MessageBody", "MessageAttributes"})
CREDENTIAL_REGION = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/sqs/")
QUEUE_URL = re.compile(r"^https?://[^/]+/(\d{12})/([\w.-]+)$")


class ServerRequest(Request):
    from_wsgi_server = True  # as moto's own server marks its requests


def sqs_wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("HTTP_X_AMZ_TARGET") == SEND_MESSAGE_TARGET:
        body = environ["wsgi.input"].read()
        answer = send_message_directly(body, environ.get("HTTP_AUTHORIZATION", ""))
        if answer is not None:
            headers = [("Content-Type", JSON_PROTOCOL_CONTENT_TYPE), ("x-amzn-RequestId", str(uuid.uuid4())),
                       ("Content-Length", str(len(answer)))]  # fmt: skip
            start_response("200 OK", headers)
            return [answer]
        environ["wsgi.input"] = io.BytesIO(body)
    return moto_wsgi_app(environ, start_response)


def send_message_directly(body: bytes, authorization: str) -> bytes | None:
    """The answer to a plain SendMessage to a standard queue, or None to let moto answer it."""
    try:
        params = json.loads(body)
        region, url = CREDENTIAL_REGION.search(authorization), QUEUE_URL.match(params.get("QueueUrl", ""))
        if not (region and url and set(params) <= DIRECT_SEND_PARAMETERS and isinstance(params.get("MessageBody"), str)):
            return None
        backend = sqs_backends[url.group(1)][region.group(1)]
        queue = backend.queues.get(url.group(2))
        if queue is None or queue.fifo_queue:
            return None
        attributes = params.get("MessageAttributes", {})
        validate_message_attributes(attributes)
        # moto's backend validates before it adds: if this raises, nothing was queued
        message = backend.send_message(queue.name, params["MessageBody"], message_attributes=attributes,
                                       delay_seconds=None, deduplication_id=None, group_id=None, system_attributes=None)  # fmt: skip
    except Exception:  # noqa: BLE001 - moto's full path will answer with the right error
        return None
    answer = {"MD5OfMessageBody": message.body_md5, "MessageId": message.id}
    if message.message_attributes:
        answer["MD5OfMessageAttributes"] = message.attribute_md5
    return json.dumps(answer).encode()


def moto_wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    request = ServerRequest(environ)
    try:
        status, headers, body = SQSResponse.dispatch(request, request.raw_url, dict(request.headers))
    except ClientError as error:  # what moto's Flask wrapper answers for the same error
        status, headers, body = 400, {}, error.response["Error"]["Message"]
    return Response(body, status, headers)(environ, start_response)


def may_block(environ: Mapping[str, Any]) -> bool:
    """Only ReceiveMessage can wait (long polling). The query protocol names its action in the
    body, so those requests are all treated as possibly waiting; boto3 speaks JSON."""
    return environ.get("HTTP_X_AMZ_TARGET") == "AmazonSQS.ReceiveMessage" or environ.get("CONTENT_TYPE", "").startswith(
        QUERY_PROTOCOL_CONTENT_TYPE
    )

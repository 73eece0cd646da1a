"""moto's SQS as a bare WSGI app. Imported only in the local SQS server's own process.

This server hosts SQS only, so moto's Flask app and per-request service detection decide nothing
(docs/performance.md). The three calls a lead costs are answered directly, with the same backend call and JSON as
moto's `SQSResponse`; anything else (FIFO, delays, unknown parameters, errors) is declined before the backend is
touched and goes moto's full path.
"""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from moto.core.request import Request
from moto.sqs.constants import DEFAULT_RECEIVED_MESSAGES, MAXIMUM_VISIBILITY_TIMEOUT
from moto.sqs.models import sqs_backends
from moto.sqs.responses import SQSResponse
from moto.sqs.utils import validate_message_attributes
from werkzeug.wrappers import Response

QUERY_PROTOCOL_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_PROTOCOL_CONTENT_TYPE = "application/x-amz-json-1.0"
CREDENTIAL_REGION = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/sqs/")
QUEUE_URL = re.compile(r"^https?://[^/]+/(\d{12})/([\w.-]+)$")
SQS_MAX_BATCH_ENTRIES = 10
# The message system attributes moto's ReceiveMessage can return, in its order.
RECEIVABLE_SYSTEM_ATTRIBUTES = (
    "AWSTraceHeader",
    "ApproximateFirstReceiveTimestamp",
    "ApproximateReceiveCount",
    "MessageDeduplicationId",
    "MessageGroupId",
    "SenderId",
    "SentTimestamp",
    "SequenceNumber",
)

# What each direct answer accepts; a request with any other parameter goes to moto.
SEND_PARAMETERS = frozenset({"QueueUrl", "MessageBody", "MessageAttributes"})
RECEIVE_PARAMETERS = frozenset(
    {
        "QueueUrl",
        "MaxNumberOfMessages",
        "WaitTimeSeconds",
        "VisibilityTimeout",
        "AttributeNames",
        "MessageSystemAttributeNames",
        "MessageAttributeNames",
    }
)
DELETE_BATCH_PARAMETERS = frozenset({"QueueUrl", "Entries"})


class ServerRequest(Request):
    from_wsgi_server = True  # as moto's own server marks its requests


class Declined(Exception):
    """The direct path does not cover this request; moto's full path will answer it."""


def sqs_wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target in LIMITED_ACTIONS:
        body = environ["wsgi.input"].read()
        checked = check_sqs_limits(target, body, environ.get("HTTP_AUTHORIZATION", ""))
        if checked.refusal is not None:
            return _answer(start_response, "400 Bad Request", _error_body(*checked.refusal), checked.refusal[0])
        if checked.failed and checked.body is None:  # every entry refused: nothing to send
            return _answer(start_response, "200 OK", json.dumps({"Successful": [], "Failed": checked.failed}).encode())
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = (
            io.BytesIO(checked.body or body),
            str(len(checked.body or body)),
        )
        if checked.failed:
            return _adding_failed_entries(environ, start_response, checked.failed)
    answer_directly = DIRECT_ANSWERS.get(target)
    if answer_directly is not None:
        body = environ["wsgi.input"].read()
        answer = answer_directly(body, environ.get("HTTP_AUTHORIZATION", ""))
        if answer is not None:
            headers = [
                ("Content-Type", JSON_PROTOCOL_CONTENT_TYPE),
                ("x-amzn-RequestId", str(uuid.uuid4())),
                ("Content-Length", str(len(answer))),
            ]
            start_response("200 OK", headers)
            return [answer]
        environ["wsgi.input"] = io.BytesIO(body)
    return moto_wsgi_app(environ, start_response)


# --- What real SQS refuses and moto 5.2.5 lets through -----------------------------------------
# Each is AWS's documented behaviour (tests/leadpipe/local/test_sqs_server_limits.py cites the docs):
# the message character set, the size of a message (body and attributes, in UTF-8 bytes) and of
# a batch, and 10 entries with distinct ids per batch call.

LIMITED_ACTIONS = frozenset(
    {
        "AmazonSQS.SendMessage",
        "AmazonSQS.SendMessageBatch",
        "AmazonSQS.DeleteMessageBatch",
        "AmazonSQS.ChangeMessageVisibilityBatch",
    }
)
SQS_MAX_BATCH_BYTES = 1_048_576  # 1 MiB, the sum of a SendMessageBatch's messages
_NOT_A_MESSAGE_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class CheckedRequest:
    """`refusal`: (code, message) refusing the whole call. `failed`: per-entry refusals of a
    batch, whose other entries travel on in `body` (None when no entry is left)."""

    refusal: tuple[str, str] | None = None
    failed: list[dict[str, Any]] = field(default_factory=list)
    body: bytes | None = None


def check_sqs_limits(target: str, body: bytes, authorization: str) -> CheckedRequest:
    """What SQS would refuse in this call; an empty `CheckedRequest` lets it through unchanged."""
    try:
        params = json.loads(body)
        queue = _queue_of(params, authorization)
    except Exception:
        return CheckedRequest()
    if target == "AmazonSQS.SendMessage":
        refusal = _message_refusal(
            params.get("MessageBody"), params.get("MessageAttributes"), queue.maximum_message_size
        )
        return CheckedRequest(refusal=refusal)
    entries = params.get("Entries")
    if not isinstance(entries, list) or not entries:
        return CheckedRequest()  # moto refuses an empty batch with SQS's code
    if len(entries) > SQS_MAX_BATCH_ENTRIES:
        return CheckedRequest(
            refusal=(
                "TooManyEntriesInBatchRequest",
                f"Maximum number of entries per request are {SQS_MAX_BATCH_ENTRIES}. You have sent {len(entries)}.",
            )
        )
    ids = [entry.get("Id") for entry in entries]
    repeated = next((entry_id for index, entry_id in enumerate(ids) if entry_id in ids[:index]), None)
    if repeated is not None:
        return CheckedRequest(refusal=("BatchEntryIdsNotDistinct", f"Id {repeated} repeated."))
    if target != "AmazonSQS.SendMessageBatch":
        return CheckedRequest()
    total = sum(_message_bytes(entry.get("MessageBody"), entry.get("MessageAttributes")) for entry in entries)
    if total > SQS_MAX_BATCH_BYTES:
        return CheckedRequest(
            refusal=(
                "BatchRequestTooLong",
                f"Batch requests cannot be longer than {SQS_MAX_BATCH_BYTES} bytes. You have sent {total} bytes.",
            )
        )
    failed, passing = [], []
    for entry in entries:
        refusal = _message_refusal(entry.get("MessageBody"), entry.get("MessageAttributes"), queue.maximum_message_size)
        if refusal is None:
            passing.append(entry)
        else:
            failed.append({"Id": entry.get("Id"), "SenderFault": True, "Code": refusal[0], "Message": refusal[1]})
    if not failed:
        return CheckedRequest()
    return CheckedRequest(failed=failed, body=json.dumps({**params, "Entries": passing}).encode() if passing else None)


def _message_refusal(message_body: Any, attributes: Any, maximum_size: int) -> tuple[str, str] | None:
    if not isinstance(message_body, str):
        return None  # moto refuses a missing body
    bad = _NOT_A_MESSAGE_CHARACTER.search(message_body)
    if bad:
        return (
            "InvalidMessageContents",
            f"Invalid binary character '#x{ord(bad.group()):X}' was found in the message body, the set "
            "of allowed characters is #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF",
        )
    if _message_bytes(message_body, attributes) > maximum_size:
        return (
            "InvalidParameterValue",
            f"One or more parameters are invalid. Reason: Message must be shorter than {maximum_size} bytes.",
        )
    return None


def _message_bytes(message_body: Any, attributes: Any) -> int:
    """A message's size as SQS counts it: the body and every attribute's name, type and value."""
    size = len(message_body.encode("utf-8", "surrogatepass")) if isinstance(message_body, str) else 0
    for name, value in (attributes or {}).items() if isinstance(attributes, dict) else ():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        size += len(str(value.get("StringValue", "")).encode("utf-8", "surrogatepass"))
        size += len(base64.b64decode(value["BinaryValue"])) if "BinaryValue" in value else 0
    return size


def _queue_of(params: dict[str, Any], authorization: str) -> Any:
    region, url = CREDENTIAL_REGION.search(authorization), QUEUE_URL.match(params.get("QueueUrl", ""))
    return sqs_backends[url.group(1)][region.group(1)].queues[url.group(2)]


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()


def _answer(start_response: Callable[..., Any], status: str, body: bytes, error_code: str | None = None) -> list[bytes]:
    headers = [
        ("Content-Type", JSON_PROTOCOL_CONTENT_TYPE),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("Content-Length", str(len(body))),
    ]
    if error_code:
        headers.append(("x-amzn-query-error", f"{error_code};Sender"))  # the code botocore reports
    start_response(status, headers)
    return [body]


def _adding_failed_entries(
    environ: dict[str, Any], start_response: Callable[..., Any], failed: list[dict[str, Any]]
) -> list[bytes]:
    """moto answers the entries that passed; the ones refused here join its `Failed` list."""
    started: dict[str, Any] = {}
    chunks = moto_wsgi_app(
        environ, lambda status, headers, exc_info=None: started.update(status=status, headers=headers)
    )
    answer = b"".join(chunks)
    if not started["status"].startswith("200"):
        start_response(started["status"], started["headers"])
        return [answer]
    merged = json.loads(answer)
    merged["Failed"] = [*merged.get("Failed", []), *failed]
    return _answer(start_response, started["status"], json.dumps(merged).encode())


def _standard_queue(body: bytes, authorization: str, accepted: frozenset[str]) -> tuple[dict[str, Any], Any, Any]:
    """The request's parameters, moto backend and queue; `Declined` unless it is a standard
    queue that exists, addressed with only the parameters this direct answer covers."""
    params = json.loads(body)
    region, url = CREDENTIAL_REGION.search(authorization), QUEUE_URL.match(params.get("QueueUrl", ""))
    if not (region and url and set(params) <= accepted):
        raise Declined
    backend = sqs_backends[url.group(1)][region.group(1)]
    queue = backend.queues.get(url.group(2))
    if queue is None or queue.fifo_queue:
        raise Declined
    return params, backend, queue


def _declining_on_error(answer: Callable[[bytes, str], dict[str, Any]]) -> Callable[[bytes, str], bytes | None]:
    """Any failure before the backend changed anything means: let moto answer (and word the error)."""

    def direct(body: bytes, authorization: str) -> bytes | None:
        try:
            return json.dumps(answer(body, authorization)).encode()
        except Exception:
            return None

    direct.__name__ = answer.__name__
    return direct


@_declining_on_error
def send_message_directly(body: bytes, authorization: str) -> dict[str, Any]:
    """A plain SendMessage to a standard queue, as `SQSResponse.send_message` answers it."""
    params, backend, queue = _standard_queue(body, authorization, SEND_PARAMETERS)
    if not isinstance(params.get("MessageBody"), str):
        raise Declined
    attributes = params.get("MessageAttributes", {})
    validate_message_attributes(attributes)
    # moto's backend validates before it adds: if this raises, nothing was queued
    message = backend.send_message(
        queue.name,
        params["MessageBody"],
        message_attributes=attributes,
        delay_seconds=None,
        deduplication_id=None,
        group_id=None,
        system_attributes=None,
    )
    answer = {"MD5OfMessageBody": message.body_md5, "MessageId": message.id}
    if message.message_attributes:
        answer["MD5OfMessageAttributes"] = message.attribute_md5
    return answer


def receive_messages_directly(body: bytes, authorization: str) -> bytes | None:
    """A ReceiveMessage from a standard queue, as `SQSResponse.receive_message` answers it.

    Everything that could make moto refuse the request is checked before the backend call,
    because the call itself changes state (the messages become in flight): after it, the
    answer is built here whatever happens, never declined into a second receive.
    """
    try:
        params, backend, queue = _standard_queue(body, authorization, RECEIVE_PARAMETERS)
        count = params.get("MaxNumberOfMessages", DEFAULT_RECEIVED_MESSAGES)
        wait = params.get("WaitTimeSeconds", queue.receive_message_wait_time_seconds)
        visibility = params.get("VisibilityTimeout", queue.visibility_timeout)
        wanted = set(params.get("AttributeNames", [])) | set(params.get("MessageSystemAttributeNames", []))
        attribute_names = params.get("MessageAttributeNames", [])
        if not (_whole(count, 1, 10) and _whole(wait, 0, 20) and _whole(visibility, 0, MAXIMUM_VISIBILITY_TIMEOUT)):
            raise Declined
        if not isinstance(attribute_names, list):
            raise Declined
    except Exception:
        return None
    messages = backend.receive_message(queue.name, count, wait, visibility, attribute_names)
    system_attributes = [name for name in RECEIVABLE_SYSTEM_ATTRIBUTES if "All" in wanted or name in wanted]
    answer = {"Messages": [_received_message(m, system_attributes) for m in messages]} if messages else {}
    return json.dumps(answer).encode()


@_declining_on_error
def delete_messages_directly(body: bytes, authorization: str) -> dict[str, Any]:
    """A DeleteMessageBatch on a standard queue, as `SQSResponse.delete_message_batch` answers it."""
    params, backend, queue = _standard_queue(body, authorization, DELETE_BATCH_PARAMETERS)
    entries = params.get("Entries")
    if not (isinstance(entries, list) and 0 < len(entries) <= SQS_MAX_BATCH_ENTRIES):
        raise Declined
    if any(set(e) != {"Id", "ReceiptHandle"} for e in entries):
        raise Declined
    if len({e["Id"] for e in entries}) != len(entries) or len({e["ReceiptHandle"] for e in entries}) != len(entries):
        raise Declined  # moto's error names the offending entry
    # Each entry either is deleted or lands in `failed`; deleting twice is allowed, so even a
    # later fallback to moto's path would be harmless.
    succeeded, failed = backend.delete_message_batch(queue.name, entries)
    return {"Successful": [{"Id": entry_id} for entry_id in succeeded], "Failed": failed}


def _whole(value: Any, lowest: int, highest: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lowest <= value <= highest


def _received_message(message: Any, system_attributes: list[str]) -> dict[str, Any]:
    """One received message in the JSON moto's serialiser writes for it."""
    answer: dict[str, Any] = {
        "MessageId": message.id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.body_md5,
        "Body": message.body,
    }
    if message.message_attributes:
        answer["MessageAttributes"] = {
            name: _attribute_value(value) for name, value in message.message_attributes.items()
        }
        answer["MD5OfMessageAttributes"] = message.attribute_md5
    if system_attributes:
        values = {
            "AWSTraceHeader": (message.system_attributes or {}).get("AWSTraceHeader", {}).get("StringValue"),
            "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
            "ApproximateReceiveCount": str(message.approximate_receive_count),
            "MessageDeduplicationId": message.deduplication_id,
            "MessageGroupId": message.group_id,
            "SenderId": message.sender_id,
            "SentTimestamp": str(message.sent_timestamp),
            "SequenceNumber": message.sequence_number,
        }
        answer["Attributes"] = {name: values[name] for name in system_attributes if values[name]}
    return answer


def _attribute_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """A stored message attribute as JSON: binary values travel base64-encoded."""
    return {key: base64.b64encode(item).decode() if isinstance(item, bytes) else item for key, item in value.items()}


DIRECT_ANSWERS: dict[str, Callable[[bytes, str], bytes | None]] = {
    "AmazonSQS.SendMessage": send_message_directly,
    "AmazonSQS.ReceiveMessage": receive_messages_directly,
    "AmazonSQS.DeleteMessageBatch": delete_messages_directly,
}


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

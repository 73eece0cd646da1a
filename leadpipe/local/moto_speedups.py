"""Make moto's SQS backend hold a spike: patches for the local runtime's SQS server only.

Stock moto works in proportion to the queue's depth on every call, so a spike's queue slows to a crawl; these
patches keep its behaviour and drop that cost (docs/performance.md). One lock around every backend call: moto's
threaded server could drop a message sent during a delete.

Why private internals: moto has no public hook into its SQS storage, and the public alternatives (ElasticMQ,
LocalStack, a real queue) need Java, Docker or an AWS account. So they live here only, for one pinned moto, and
`check_moto_internals` fails loudly (`MotoInternalsChanged`) on any other version. Cloud tests run on stock moto.
"""

from __future__ import annotations

import functools
import inspect
import json
import string
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import moto
from moto import backends as moto_backends
from moto.core import responses as moto_responses
from moto.moto_api._internal import mock_random
from moto.sqs import models as sqs_models
from moto.sqs import utils as sqs_utils

PINNED_MOTO_VERSION = "5.2.5"
COUNT_ATTRIBUTES = frozenset(
    {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible"}
)
# Backend calls that read or change messages; all run under one lock.
SERIALISED_CALLS = (
    "create_queue",
    "delete_queue",
    "get_queue_attributes",
    "set_queue_attributes",
    "purge_queue",
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
)
# Calls that need the queue's settings but never its message counts.
SETTINGS_ONLY_CALLS = ("send_message", "send_message_batch", "_validate_message")
RECEIVE_POLL_INTERVAL_SECONDS = 0.02
RECEIPT_HANDLE_LENGTH = 185  # as moto's generate_receipt_handle
# Byte -> letter, uniform: bytes at or above the largest multiple of 26 are dropped, not folded.
_LETTER_OF_BYTE = bytes(string.ascii_lowercase.encode()[b % 26] for b in range(256))
_BYTES_WITHOUT_A_FAIR_LETTER = bytes(range(256 - 256 % 26, 256))

# What this module relies on, checked before anything is patched.
EXPECTED_SIGNATURES = {
    "SQSBackend.receive_message": [
        "self",
        "queue_name",
        "count",
        "wait_seconds_timeout",
        "visibility_timeout",
        "message_attribute_names",
    ],
    "SQSBackend.send_message": [
        "self",
        "queue_name",
        "message_body",
        "message_attributes",
        "delay_seconds",
        "deduplication_id",
        "group_id",
        "system_attributes",
        "validate_group_id",
    ],
    "SQSBackend.delete_message": ["self", "queue_name", "receipt_handle"],
    "SQSBackend.is_message_valid_based_on_retention_period": ["self", "queue_name", "message"],
    "Queue.delete_message": ["self", "receipt_handle"],
    "Message.mark_received": ["self", "visibility_timeout"],
    "backends.list_of_moto_modules": [],
    "utils.generate_receipt_handle": [],
    "responses.method_names_from_class": ["clazz"],
}
EXPECTED_INSTANCE_FIELDS = {
    "Queue": (
        "_messages",
        "_pending_messages",
        "deleted_messages",
        "BASE_ATTRIBUTES",
        "FIFO_ATTRIBUTES",
        "KMS_ATTRIBUTES",
        "message_retention_period",
    ),
    "Message": ("visible_at", "delayed_until", "receipt_handle", "_old_receipt_handles", "sent_timestamp"),
}

_backend_lock = threading.RLock()
_settings_only = threading.local()
_message_by_handle: dict[str, Any] = {}
_applied = False


class MotoInternalsChanged(RuntimeError):
    """moto is not the version these patches were written and tested against."""


def apply_sqs_speedups() -> None:
    """Patch moto's SQS backend in this process. Idempotent; raises `MotoInternalsChanged`."""
    global _applied
    if _applied:
        return
    check_moto_internals()
    Queue, Message, Backend = sqs_models.Queue, sqs_models.Message, sqs_models.SQSBackend

    Queue.attributes = property(_queue_attributes)
    Queue.messages = property(lambda queue: VisibleMessages(queue._messages))
    Queue.delete_message = _delete_by_indexed_handle
    Message.visible = property(lambda message: time.time() * 1000 > message.visible_at)
    Message.delayed = property(lambda message: time.time() * 1000 < message.delayed_until)
    Message.mark_received = _indexing_mark_received(Message.mark_received)

    for name in SETTINGS_ONLY_CALLS:
        setattr(Backend, name, _without_message_counts(getattr(Backend, name)))
    for name in SERIALISED_CALLS:
        setattr(Backend, name, _serialised(getattr(Backend, name)))
    Backend.is_message_valid_based_on_retention_period = _within_retention_period
    Backend.receive_message = _polling_receive(_without_message_counts(Backend.receive_message))
    sqs_models.generate_receipt_handle = _receipt_handle
    service_folders = tuple(moto_backends.list_of_moto_modules())
    moto_backends.list_of_moto_modules = lambda: service_folders
    moto_responses.method_names_from_class = functools.cache(moto_responses.method_names_from_class)
    _applied = True


def check_moto_internals() -> None:
    """Fail loudly unless moto's SQS internals are exactly what the patches expect."""
    if moto.__version__ != PINNED_MOTO_VERSION:
        raise MotoInternalsChanged(
            f"leadpipe's SQS speedups are written for moto {PINNED_MOTO_VERSION}, found {moto.__version__}; "
            "re-check leadpipe/local/moto_speedups.py against the new moto before changing the pin"
        )
    for dotted, expected in EXPECTED_SIGNATURES.items():
        owner, attribute = dotted.split(".")
        namespace = {"backends": moto_backends, "responses": moto_responses, "utils": sqs_utils}.get(owner) or getattr(
            sqs_models, owner
        )
        actual = list(inspect.signature(getattr(namespace, attribute)).parameters)
        if actual != expected:
            raise MotoInternalsChanged(f"moto {dotted} now takes {actual}, expected {expected}")
    queue = sqs_models.Queue("leadpipe-internals-check", "us-east-1", "123456789012")
    message = sqs_models.Message("id", "body")
    for owner, fields in (("Queue", queue), ("Message", message)):
        missing = [f for f in EXPECTED_INSTANCE_FIELDS[owner] if not hasattr(fields, f)]
        if missing:
            raise MotoInternalsChanged(f"moto {owner} lost {missing}")
    if sqs_models.generate_receipt_handle is not sqs_utils.generate_receipt_handle:
        raise MotoInternalsChanged(
            "moto's Message no longer takes its receipt handles from sqs.utils.generate_receipt_handle"
        )
    if len(sqs_utils.generate_receipt_handle()) != RECEIPT_HANDLE_LENGTH:
        raise MotoInternalsChanged(f"moto's receipt handles are no longer {RECEIPT_HANDLE_LENGTH} characters")


class VisibleMessages:
    """Lazy stand-in for moto's `Queue.messages` list: iterate, count or test it as before."""

    def __init__(self, messages: list[Any]) -> None:
        self._messages = messages

    def __iter__(self) -> Iterator[Any]:
        now = time.time() * 1000
        return (m for m in self._messages if now > m.visible_at and not now < m.delayed_until)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return next(iter(self), None) is not None


def _queue_attributes(queue: Any) -> dict[str, Any]:
    """moto's attribute map; the O(n) message counts are left out for settings-only callers."""
    names = list(queue.BASE_ATTRIBUTES)
    if getattr(_settings_only, "active", 0):
        names = [n for n in names if n not in COUNT_ATTRIBUTES]
    if queue.fifo_queue:
        names += queue.FIFO_ATTRIBUTES
    if queue.kms_master_key_id:
        names += queue.KMS_ATTRIBUTES
    result = {name: getattr(queue, _attribute_field(name)) for name in names}
    if queue.policy:
        result["Policy"] = queue.policy
    if queue.redrive_policy:
        result["RedrivePolicy"] = json.dumps(queue.redrive_policy)
    return {k: str(v).lower() if isinstance(v, bool) else v for k, v in result.items()}


@functools.cache
def _attribute_field(name: str) -> str:
    return sqs_models.camelcase_to_underscores(name)


def _receipt_handle() -> str:
    letters = b""
    while len(letters) < RECEIPT_HANDLE_LENGTH:  # one round, all but never two: 225 bytes keep ~206 letters
        letters += mock_random.randbytes(RECEIPT_HANDLE_LENGTH + 40).translate(
            _LETTER_OF_BYTE, _BYTES_WITHOUT_A_FAIR_LETTER
        )
    return letters[:RECEIPT_HANDLE_LENGTH].decode("ascii")


def _within_retention_period(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's check, reading the one setting it needs (`get_queue` raises for an unknown queue)."""
    retention_seconds = backend.get_queue(queue_name).message_retention_period
    return retention_seconds + message.sent_timestamp / 1000 > time.time()


def _delete_by_indexed_handle(queue: Any, receipt_handle: str) -> None:
    if receipt_handle in queue.deleted_messages:
        return  # deleting twice is fine, as in SQS
    message = _message_by_handle.get(receipt_handle)
    if message is None or message not in queue._messages:  # identity comparison, at C speed
        raise sqs_models.ReceiptHandleIsInvalid()
    queue._messages.remove(message)
    queue.pending_messages.discard(message)
    handles = message.all_receipt_handles
    queue.deleted_messages.update(handles)
    for handle in handles:
        _message_by_handle.pop(handle, None)


def _indexing_mark_received(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def mark_received(message: Any, visibility_timeout: int | None = None) -> None:
        original(message, visibility_timeout)
        _message_by_handle[message.receipt_handle] = message

    return mark_received


def _without_message_counts(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def settings_only(*args: Any, **kwargs: Any) -> Any:
        _settings_only.active = getattr(_settings_only, "active", 0) + 1
        try:
            return original(*args, **kwargs)
        finally:
            _settings_only.active -= 1

    return settings_only


def _serialised(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _backend_lock:
            return original(*args, **kwargs)

    return locked


def _polling_receive(original: Callable[..., Any]) -> Callable[..., Any]:
    """Long polling without holding the lock: short receives until a message or the deadline."""

    @functools.wraps(original)
    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with _backend_lock:
                received = original(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            if received or time.monotonic() >= deadline:
                return received
            time.sleep(RECEIVE_POLL_INTERVAL_SECONDS)

    return receive_message

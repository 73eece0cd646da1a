"""Turn one HTTP submission into an accepted, enqueued lead, or a typed refusal.

No AWS, no environment: the caller passes the policy and the `publish` function, so tests can
hand in a moto-backed publisher or a fake.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID, uuid5

from pydantic import ValidationError

from functions.contract import Lead, LeadEnvelope, Source
from functions.ingest.errors import (
    FieldError,
    InvalidLead,
    MalformedBody,
    PayloadTooLarge,
    UnsupportedMediaType,
)

JSON_MEDIA_TYPE = "application/json"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
REDIRECT_FIELD = "_redirect"
MAX_FORM_FIELDS = 100
MAX_IDEMPOTENCY_KEY_LENGTH = 255
# Form names that hold an object (`custom[size]`, `first_touch[utm_source]`) or repeat (one checkbox each).
FORM_OBJECT_FIELDS = ("custom", "first_touch", "last_touch")
FORM_LIST_FIELDS = frozenset({"consent_purposes"})

# Fixed forever: changing it would give a resubmitted lead a new id, and so a second row.
LEAD_ID_NAMESPACE = UUID("6f1c2b1e-3f57-4c8e-9a51-0d6a4c1b7e42")


@dataclass(frozen=True)
class SubmissionPolicy:
    """The rules the ingest applies, taken from settings."""

    allowed_origins: tuple[str, ...]
    max_body_bytes: int
    honeypot_field: str
    captcha_field: str | None = None  # the widget's token field, when the stage checks a captcha


@dataclass(frozen=True)
class Submission:
    """An HTTP request as far as the ingest cares."""

    body: str | None
    is_base64_encoded: bool
    content_type: str | None
    idempotency_key: str | None
    source: Source


@dataclass(frozen=True)
class Acceptance:
    """The outcome of a successful submission. `enqueued` is False only for honeypot spam."""

    lead_id: UUID
    campaign: str | None
    redirect_to: str | None
    enqueued: bool
    utm_source: str | None = None  # with the campaign, what the dashboard counts leads by


def accept_submission(
    submission: Submission,
    policy: SubmissionPolicy,
    publish: Callable[[LeadEnvelope], Any],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    verify_captcha: Callable[[Any, UUID], Any] | None = None,
) -> Acceptance:
    """Validate and enqueue one submission.

    Returns only after `publish` returned, so a 2xx is never given for a lead SQS did not take.
    Raises a `SubmissionRefused` subclass for bad input (nothing enqueued), and lets the
    publisher's `QueueUnavailable` through. `verify_captcha(token, lead_id)` runs on a valid,
    non-spam lead just before publishing, and refuses by raising.
    """
    text = _decode_body(submission, policy.max_body_bytes)
    media_type = _media_type(submission.content_type)
    fields = _parse_json(text) if media_type == JSON_MEDIA_TYPE else _parse_form(text)

    is_spam = bool(str(fields.pop(policy.honeypot_field, "") or "").strip())
    redirect_target = fields.pop(REDIRECT_FIELD, None)
    captcha_token = fields.pop(policy.captcha_field, None) if policy.captcha_field else None

    errors: list[FieldError] = []
    redirect_to = None
    if redirect_target not in (None, ""):
        if media_type != FORM_MEDIA_TYPE:
            errors.append(FieldError(REDIRECT_FIELD, "not_allowed", "a redirect is only for form posts"))
        else:
            redirect_to = _allowed_redirect(redirect_target, policy.allowed_origins, errors)
    try:
        lead = Lead.model_validate(fields)
    except ValidationError as error:
        errors.extend(_field_errors(error))
    if errors:
        raise InvalidLead("the lead has invalid fields", errors)

    received_at = now()
    lead_id = derive_lead_id(lead, submission.idempotency_key, received_at)
    if not is_spam:
        if verify_captcha is not None:  # after validation: a token is single-use, a typo must not spend it
            verify_captcha(captcha_token, lead_id)
        publish(LeadEnvelope(lead_id=lead_id, received_at=received_at, source=submission.source, lead=lead))
    return Acceptance(
        lead_id=lead_id,
        campaign=lead.campaign,
        redirect_to=redirect_to,
        enqueued=not is_spam,
        utm_source=lead.utm_source,
    )


def derive_lead_id(lead: Lead, idempotency_key: str | None, received_at: datetime) -> UUID:
    """Stateless: the id is a hash, so a retry lands on the same row and nothing is looked up.

    With an Idempotency-Key: the key AND the lead's normalised content. A retry (same key, same
    lead) gets the same id; the same key sent with a different lead gets its own id, so a
    reused or colliding key never merges two people. Without a key: the content and the UTC
    day it arrived, so a double-submitted form is one row, and the same person signing up
    again weeks later is a new row (a return visit is news for sales, not a duplicate).
    """
    canonical = json.dumps(lead.identity_record(), sort_keys=True, separators=(",", ":"))
    if idempotency_key is not None:
        return uuid5(LEAD_ID_NAMESPACE, f"idempotency-key:{idempotency_key}:lead:{canonical}")
    return uuid5(LEAD_ID_NAMESPACE, f"day:{received_at.astimezone(UTC).date().isoformat()}:lead:{canonical}")


def check_idempotency_key(key: str | None) -> str | None:
    """Refuse keys that are empty, too long or not printable ASCII (they end up in logs)."""
    if key is None:
        return None
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise MalformedBody(
            "the Idempotency-Key header is invalid",
            [
                FieldError(
                    "Idempotency-Key", "invalid_header", f"1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters"
                )
            ],
        )
    return key


def _decode_body(submission: Submission, max_body_bytes: int) -> str:
    raw_body = submission.body or ""
    if submission.is_base64_encoded:
        # Base64 inflates by 4/3; refuse early so a huge body is never decoded.
        if len(raw_body) > (max_body_bytes * 4) // 3 + 4:
            raise _too_large(max_body_bytes)
        try:
            payload = base64.b64decode(raw_body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedBody("the body is not valid base64") from None
    else:
        payload = raw_body.encode("utf-8", errors="surrogatepass")
    if len(payload) > max_body_bytes:
        raise _too_large(max_body_bytes)
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("the body is not valid UTF-8") from None


def _too_large(max_body_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is larger than {max_body_bytes} bytes")


def _media_type(content_type: str | None) -> str:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in (JSON_MEDIA_TYPE, FORM_MEDIA_TYPE):
        raise UnsupportedMediaType(f"send {JSON_MEDIA_TYPE} or {FORM_MEDIA_TYPE}")
    return media_type


def _parse_json(text: str) -> dict[str, Any]:
    if not text.strip():
        raise MalformedBody("the body is empty")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedBody("the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise InvalidLead("the lead must be a JSON object", [FieldError("", "object_expected", "send a JSON object")])
    return document


def _parse_form(text: str) -> dict[str, Any]:
    """`a=1&custom[size]=XL&custom.colour=red` -> {"a": "1", "custom": {...}}; last value wins, but
    every value of a list field (`consent_purposes`, one checkbox each) is kept."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, errors="strict")
    except ValueError:
        raise MalformedBody(f"the form has more than {MAX_FORM_FIELDS} fields or is not valid") from None
    fields: dict[str, Any] = {}
    nested: dict[str, dict[str, str]] = {}
    for name, value in pairs:
        parent, key = _nested_key(name)
        if parent is None:
            if name in FORM_LIST_FIELDS:
                fields.setdefault(name, []).append(value)
            else:
                fields[name] = value
        elif value != "":
            nested.setdefault(parent, {})[key] = value
    fields.update(nested)
    return fields


def _nested_key(name: str) -> tuple[str | None, str]:
    """`custom[size]` or `custom.size` -> ("custom", "size"); the same for the touches."""
    for parent in FORM_OBJECT_FIELDS:
        if name.startswith(f"{parent}[") and name.endswith("]"):
            return parent, name[len(parent) + 1 : -1]
        if name.startswith(f"{parent}."):
            return parent, name[len(parent) + 1 :]
    return None, name


def _allowed_redirect(target: Any, allowed_origins: Iterable[str], errors: list[FieldError]) -> str | None:
    """Return `target` only if it is an absolute http(s) URL on an allow-listed origin."""
    refusal = FieldError(REDIRECT_FIELD, "redirect_not_allowed", "the redirect must be on an allowed origin")
    if not isinstance(target, str) or len(target) > 2048 or not target.isprintable() or "\\" in target:
        errors.append(refusal)
        return None
    try:
        parts = urlsplit(target)
        origin = _origin(parts.scheme, parts.hostname, parts.port)
    except ValueError:
        errors.append(refusal)
        return None
    if parts.username or parts.password or origin not in {_normalise_origin(o) for o in allowed_origins}:
        errors.append(refusal)
        return None
    return target


def _normalise_origin(origin: str) -> str | None:
    try:
        parts = urlsplit(origin.strip())
        return _origin(parts.scheme, parts.hostname, parts.port)
    except ValueError:
        return None


def _origin(scheme: str, hostname: str | None, port: int | None) -> str | None:
    if scheme not in ("http", "https") or not hostname:
        return None
    default_port = 443 if scheme == "https" else 80
    suffix = "" if port in (None, default_port) else f":{port}"
    return f"{scheme}://{hostname.lower()}{suffix}"


def _field_errors(error: ValidationError) -> list[FieldError]:
    # Never echo the input back: it is personal data, and could be huge.
    return [
        FieldError(
            ".".join(str(part) for part in detail["loc"]), detail["type"], detail["msg"].removeprefix("Value error, ")
        )
        for detail in error.errors(include_url=False, include_input=False)
    ]

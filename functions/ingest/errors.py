"""Every way a submission can be refused, each with its HTTP status.

The API turns these into responses in one place (`functions.ingest.api`), by type: no status
is ever chosen by matching an error's text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class FieldError:
    """One problem with one field; `field` is a dotted path such as `custom.size`."""

    field: str
    code: str
    message: str


@dataclass
class SubmissionRefused(Exception):
    """Base of every refusal. `message` is safe to show to the visitor: no internals, no input."""

    message: str
    fields: list[FieldError] = field(default_factory=list)

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __str__(self) -> str:
        return self.message


class MalformedBody(SubmissionRefused):
    status = 400
    code = "malformed_body"


class PayloadTooLarge(SubmissionRefused):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(SubmissionRefused):
    status = 415
    code = "unsupported_media_type"


class InvalidLead(SubmissionRefused):
    status = 422
    code = "invalid_lead"


class QueueUnavailable(SubmissionRefused):
    """SQS did not take the message; the client must retry (and was never told 2xx)."""

    status = 503
    code = "queue_unavailable"


class CaptchaMissing(SubmissionRefused):
    """The stage requires a captcha token and the form sent none."""

    status = 400
    code = "captcha_missing"


class CaptchaInvalid(SubmissionRefused):
    """The verifier rejected the token (or, for reCAPTCHA v3, scored it below the threshold)."""

    status = 403
    code = "captcha_invalid"


class CaptchaExpired(CaptchaInvalid):
    """The token was valid once but is spent or too old (siteverify's `timeout-or-duplicate`): a fresh token may
    pass."""

    code = "captcha_expired"


class CaptchaUnavailable(SubmissionRefused):
    """The verifier could not be reached and the stage fails closed; the client must retry."""

    status = 503
    code = "captcha_unavailable"

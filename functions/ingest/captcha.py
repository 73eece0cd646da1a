"""Server-side check of a Cloudflare Turnstile or Google reCAPTCHA v3 token: the only code that calls a verifier.

Both verifiers take a form POST of `secret` and `response` and answer JSON with `success`
(reCAPTCHA v3 adds `score`, 0.0 to 1.0) and `error-codes`, where both document `timeout-or-duplicate`
for a token already verified or too old:
https://developers.cloudflare.com/turnstile/get-started/server-side-validation/
https://developers.google.com/recaptcha/docs/verify
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Literal
from urllib.parse import urlencode
from uuid import UUID

from functions.ingest.errors import CaptchaExpired, CaptchaInvalid, CaptchaMissing, CaptchaUnavailable, FieldError

Provider = Literal["turnstile", "recaptcha_v3"]
VERIFY_URLS: dict[str, str] = {
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
    "recaptcha_v3": "https://www.google.com/recaptcha/api/siteverify",
}
# The form fields the widgets fill in.
TOKEN_FIELDS: dict[str, str] = {"turnstile": "cf-turnstile-response", "recaptcha_v3": "g-recaptcha-response"}
MAX_TOKEN_LENGTH = 2048  # Turnstile documents 2048 characters; a longer value is not a token
MAX_ANSWER_BYTES = 65_536
MIN_USEFUL_TIMEOUT_SECONDS = 0.1
SPENT_OR_EXPIRED = "timeout-or-duplicate"  # siteverify's error code for a token verified before or too old


class CaptchaOutcome(Enum):
    VERIFIED = "verified"
    PASSED_EARLIER = "passed_earlier"  # a pass ticket from an earlier 503 for this very lead
    UNVERIFIED_FAIL_OPEN = "unverified_fail_open"  # the verifier was unreachable and the stage fails open


@dataclass(frozen=True)
class CaptchaPolicy:
    provider: Provider
    min_score: float = 0.5  # reCAPTCHA v3 only
    fail_open: bool = False
    timeout_seconds: float = 1.5
    verify_url: str | None = None  # None: the provider's own endpoint

    @property
    def token_field(self) -> str:
        return TOKEN_FIELDS[self.provider]

    @property
    def url(self) -> str:
        return self.verify_url or VERIFY_URLS[self.provider]


class VerifierUnreachable(Exception):
    """No usable answer from the verifier: a timeout, a network error, a 5xx, or not JSON."""


class SecretUnavailable(Exception):
    """The captcha secret could not be read (Secrets Manager throttled, timed out or unreachable)."""


PASS_HEADER = "Leadpipe-Captcha-Pass"
# Covers the client's outbox: a lead saved during an outage is resent on the visitor's next page
# load, commonly the same day; past that the page's fresh captcha token takes over.
PASS_LIFETIME_SECONDS = 24 * 3600
MAX_PASS_LENGTH = 64  # "<10-digit expiry>.<43 base64url characters>" is 54
_PASS_KEY_LABEL = b"leadpipe captcha pass v1"


class CaptchaPass:
    """A stateless ticket saying "this lead already passed the captcha": `<expiry>.<base64url HMAC-SHA256>`.

    It is signed over (lead_id, expiry) with a key derived from the captcha secret, never the secret
    itself. lead_id comes from the Idempotency-Key and the lead's content, so a ticket only ever
    re-sends the same lead, which lands on the same row. Rotating the secret voids every ticket.
    """

    def __init__(
        self, secret: str, lifetime_seconds: int = PASS_LIFETIME_SECONDS, now: Callable[[], float] = time.time
    ) -> None:
        self._key = hmac.new(secret.encode(), _PASS_KEY_LABEL, hashlib.sha256).digest()
        self._lifetime = lifetime_seconds
        self._now = now

    def issue(self, lead_id: UUID) -> str:
        expiry = int(self._now()) + self._lifetime
        return f"{expiry}.{self._signature(lead_id, expiry)}"

    def admits(self, ticket: object, lead_id: UUID) -> bool:
        """True only for an unexpired ticket this key issued for this lead_id."""
        if not isinstance(ticket, str) or len(ticket) > MAX_PASS_LENGTH:
            return False
        expiry_text, _, signature = ticket.partition(".")
        if not expiry_text.isascii() or not expiry_text.isdigit():
            return False
        expiry = int(expiry_text)
        now = self._now()
        # Never more than one lifetime ahead: a ticket of a longer-lived key version buys nothing extra.
        if not now < expiry <= now + self._lifetime:
            return False
        return hmac.compare_digest(signature.encode(), self._signature(lead_id, expiry).encode())

    def _signature(self, lead_id: UUID, expiry: int) -> str:
        digest = hmac.new(self._key, f"{lead_id}.{expiry}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


PostForm = Callable[[str, bytes, float], bytes]


def post_form(url: str, body: bytes, timeout_seconds: float) -> bytes:
    """POST a form and return the answer's body; raises VerifierUnreachable for anything but a 2xx."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as answer:
            return answer.read(MAX_ANSWER_BYTES)
    except (urllib.error.URLError, OSError, ValueError) as error:  # HTTPError is a URLError; timeouts are OSErrors
        raise VerifierUnreachable(type(error).__name__) from error


class CaptchaVerifier:
    """Checks one token per lead. `secret()` is called per check (Powertools caches it) and raises
    SecretUnavailable when it cannot be read."""

    def __init__(self, policy: CaptchaPolicy, secret: Callable[[], str], post: PostForm = post_form) -> None:
        self.policy = policy
        self._secret = secret
        self._post = post

    def check(
        self, token: object, lead_id: UUID, ticket: object = None, time_left_seconds: float | None = None
    ) -> CaptchaOutcome:
        """PASSED_EARLIER for a valid pass ticket of this lead (no verifier call); otherwise `verify(token)`.

        A ticket that is invalid, expired or for another lead is ignored: the token decides.
        """
        if ticket is not None:
            try:
                if CaptchaPass(self._secret()).admits(ticket, lead_id):
                    return CaptchaOutcome.PASSED_EARLIER
            except SecretUnavailable as error:
                return self._unreachable(error)
        return self.verify(token, time_left_seconds)

    def pass_for(self, lead_id: UUID) -> str:
        """A ticket that lets this lead skip the check on a retry (raises SecretUnavailable)."""
        return CaptchaPass(self._secret()).issue(lead_id)

    def verify(self, token: object, time_left_seconds: float | None = None) -> CaptchaOutcome:
        """VERIFIED, or UNVERIFIED_FAIL_OPEN; raises CaptchaMissing, CaptchaInvalid (CaptchaExpired for a spent or
        expired token) or CaptchaUnavailable.

        `time_left_seconds` is what the invocation can spend here; the check never waits longer.
        """
        field = self.policy.token_field
        if not isinstance(token, str) or not token.strip():
            raise CaptchaMissing(
                "the spam check is missing; reload the page and submit again",
                [FieldError(field, "missing", "the captcha token is required")],
            )
        if len(token) > MAX_TOKEN_LENGTH:
            raise _invalid(field, "invalid")
        started = time.monotonic()
        try:
            secret = self._secret()  # usually cached; a fresh read counts against the same time
            timeout = self.policy.timeout_seconds
            if time_left_seconds is not None:
                timeout = min(timeout, time_left_seconds - (time.monotonic() - started))
            if timeout < MIN_USEFUL_TIMEOUT_SECONDS:
                raise VerifierUnreachable("no time left in the invocation")
            answer = self._post(self.policy.url, urlencode({"secret": secret, "response": token}).encode(), timeout)
            verdict = json.loads(answer)
            if not isinstance(verdict, dict) or not isinstance(verdict.get("success"), bool):
                raise VerifierUnreachable("not a verifier answer")
        except (VerifierUnreachable, SecretUnavailable, ValueError) as error:
            return self._unreachable(error)
        if not verdict["success"]:
            codes = verdict.get("error-codes")
            if isinstance(codes, list) and SPENT_OR_EXPIRED in codes:
                # Not a judgement on the visitor: the client may send the same lead with the widget's next token.
                raise CaptchaExpired(
                    "the spam check has expired; please complete it again",
                    [FieldError(field, "expired", "the captcha token was already used or has expired")],
                )
            raise _invalid(field, "invalid")
        if self.policy.provider == "recaptcha_v3":
            score = verdict.get("score")
            if not isinstance(score, int | float) or score < self.policy.min_score:
                raise _invalid(field, "low_score")
        return CaptchaOutcome.VERIFIED

    def _unreachable(self, error: Exception) -> CaptchaOutcome:
        # The secret and the verifier alike: without either the check cannot be made, and the stage's choice applies.
        if self.policy.fail_open:
            return CaptchaOutcome.UNVERIFIED_FAIL_OPEN
        raise CaptchaUnavailable("the spam check is unavailable; please retry") from error


def _invalid(field: str, code: str) -> CaptchaInvalid:
    return CaptchaInvalid(
        "the spam check failed; reload the page and submit again",
        [FieldError(field, code, "the captcha token was not accepted")],
    )

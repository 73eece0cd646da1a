"""Server-side check of a Cloudflare Turnstile or Google reCAPTCHA v3 token: the only code that calls a verifier.

Both verifiers take a form POST of `secret` and `response` and answer JSON with `success`
(reCAPTCHA v3 adds `score`, 0.0 to 1.0):
https://developers.cloudflare.com/turnstile/get-started/server-side-validation/
https://developers.google.com/recaptcha/docs/verify
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Literal
from urllib.parse import urlencode

from functions.ingest.errors import CaptchaInvalid, CaptchaMissing, CaptchaUnavailable, FieldError

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


class CaptchaOutcome(Enum):
    VERIFIED = "verified"
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


PostForm = Callable[[str, bytes, float], bytes]


def post_form(url: str, body: bytes, timeout_seconds: float) -> bytes:
    """POST a form and return the answer's body; raises VerifierUnreachable for anything but a 2xx."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as answer:  # noqa: S310 - https URL from settings
            return answer.read(MAX_ANSWER_BYTES)
    except (urllib.error.URLError, OSError, ValueError) as error:  # HTTPError is a URLError; timeouts are OSErrors
        raise VerifierUnreachable(type(error).__name__) from error


class CaptchaVerifier:
    """Checks one token per lead. `secret()` is called per check (Powertools caches it)."""

    def __init__(self, policy: CaptchaPolicy, secret: Callable[[], str], post: PostForm = post_form) -> None:
        self.policy = policy
        self._secret = secret
        self._post = post

    def verify(self, token: object, time_left_seconds: float | None = None) -> CaptchaOutcome:
        """VERIFIED, or UNVERIFIED_FAIL_OPEN; raises CaptchaMissing, CaptchaInvalid or CaptchaUnavailable.

        `time_left_seconds` is what the invocation can spend here; the check never waits longer.
        """
        field = self.policy.token_field
        if not isinstance(token, str) or not token.strip():
            raise CaptchaMissing("the spam check is missing; reload the page and submit again",
                                 [FieldError(field, "missing", "the captcha token is required")])  # fmt: skip
        if len(token) > MAX_TOKEN_LENGTH:
            raise _invalid(field, "invalid")
        timeout = self.policy.timeout_seconds if time_left_seconds is None else min(self.policy.timeout_seconds, time_left_seconds)
        try:
            if timeout < MIN_USEFUL_TIMEOUT_SECONDS:
                raise VerifierUnreachable("no time left in the invocation")
            answer = self._post(self.policy.url, urlencode({"secret": self._secret(), "response": token}).encode(), timeout)
            verdict = json.loads(answer)
            if not isinstance(verdict, dict) or not isinstance(verdict.get("success"), bool):
                raise VerifierUnreachable("not a verifier answer")
        except (VerifierUnreachable, ValueError) as error:
            if self.policy.fail_open:
                return CaptchaOutcome.UNVERIFIED_FAIL_OPEN
            raise CaptchaUnavailable("the spam check is unavailable; please retry") from error
        if not verdict["success"]:
            raise _invalid(field, "invalid")
        if self.policy.provider == "recaptcha_v3":
            score = verdict.get("score")
            if not isinstance(score, int | float) or score < self.policy.min_score:
                raise _invalid(field, "low_score")
        return CaptchaOutcome.VERIFIED


def _invalid(field: str, code: str) -> CaptchaInvalid:
    return CaptchaInvalid("the spam check failed; reload the page and submit again",
                          [FieldError(field, code, "the captcha token was not accepted")])  # fmt: skip

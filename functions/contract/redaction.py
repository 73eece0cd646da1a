"""Keep e-mail addresses and phone numbers out of logs: the safety net under code that should not log them.

Both functions' log formatter masks anything that looks like one, in any field.
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

# Any character but a delimiter: `\w` misses the combining marks of Indic scripts (नमस्ते@), which the contract accepts.
_DELIMITERS = r"\s@<>()\[\]{},;:\"\\/|"  # not "'": o'neil@ is an address
_LOCAL_CHARACTER = f"[^{_DELIMITERS}]"
_LABEL = f"[^{_DELIMITERS}.]+"  # one domain label: a dot ends it
_EMAIL = re.compile(rf"({_LOCAL_CHARACTER}){_LOCAL_CHARACTER}*@((?:{_LABEL}\.)+{_LABEL})")
# The same address inside a URL (a landing page's or referrer's query string): "@" written as %40.
_URL_ENCODED_EMAIL = re.compile(rf"({_LOCAL_CHARACTER}){_LOCAL_CHARACTER}*?%40((?:{_LABEL}\.)+{_LABEL})", re.IGNORECASE)
_INTERNATIONAL_PHONE = re.compile(r"(?<!\w)(?:\+|00)\d[\d ().-]{6,}\d")
# National formats: (202) 555-0143, 202-555-0143 / 202.555.0143, and trunk-prefixed 030 1234567,
# 07700 900123. Bare digit runs without a leading 0 are left alone: ids and epoch timestamps.
_NATIONAL_PHONE = re.compile(
    r"\(\d{1,5}\)[ .-]?\d[\d .-]{3,}\d"
    r"|(?<![\w.-])\d{3}[ .-]\d{3}[ .-]\d{4}(?![\w-])"
    r"|(?<![\w.-])0\d{1,5}[ /.-]?\d[\d ./-]{3,}\d(?![\w-])"
)
_SENSITIVE_KEYS = frozenset({"email", "phone", "password", "first_name", "last_name"})


def mask_email(address: str) -> str:
    """`jane.doe@example.com` -> `j***@example.com`: the domain stays useful for debugging."""
    if "@" not in address:
        return "***"
    return f"{address[:1]}***@{address.rsplit('@', 1)[1]}"


def redact_text(text: str) -> str:
    """Mask every e-mail address and phone number (international or national) in free text."""
    text = _EMAIL.sub(r"\1***@\2", text)
    if "%40" in text:  # the encoded form is rare: most lines skip its scan
        text = _URL_ENCODED_EMAIL.sub(r"\1***%40\2", text)
    return _NATIONAL_PHONE.sub("***", _INTERNATIONAL_PHONE.sub("+***", text))


def redact_fields(value: Any) -> Any:
    """Replace the values of personal fields (email, phone, names) at any depth, and mask
    addresses and numbers in every other string, before JSON escapes non-ASCII letters."""
    if isinstance(value, dict):
        return {k: "***" if k in _SENSITIVE_KEYS and v else redact_fields(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_fields(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _redacted_default(value: Any) -> str:
    # Objects the JSON encoder does not know are logged as their str(): mask that too.
    return redact_text(str(value))


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log format, with personal data masked in the final line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("json_default", _redacted_default)
        super().__init__(*args, **kwargs)

    def serialize(self, log: dict[str, Any]) -> str:
        return redact_text(super().serialize(redact_fields(log)))

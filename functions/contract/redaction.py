"""Keep e-mail addresses and phone numbers out of logs, whoever writes the log line.

Code should not log personal data in the first place; this is the safety net under it: the
log formatter of both functions masks anything that looks like one, in any field.
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)")
# International numbers always start with "+"; bare digit runs are left alone (ids, timestamps).
_PHONE = re.compile(r"\+\d[\d ().\-]{6,}\d")
_SENSITIVE_KEYS = frozenset({"email", "phone", "password", "first_name", "last_name"})


def mask_email(address: str) -> str:
    """`jane.doe@example.com` -> `j***@example.com`: the domain stays useful for debugging."""
    return _EMAIL.sub(r"\1***@\2", address)


def redact_text(text: str) -> str:
    """Mask every e-mail address and international phone number inside free text."""
    return _PHONE.sub("+***", _EMAIL.sub(r"\1***@\2", text))


def redact_fields(value: Any) -> Any:
    """Replace the values of personal fields (email, phone, names) at any depth."""
    if isinstance(value, dict):
        return {k: "***" if k in _SENSITIVE_KEYS and v else redact_fields(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_fields(v) for v in value]
    return value


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log format, with personal data masked in the final line."""

    def serialize(self, log: dict[str, Any]) -> str:
        return redact_text(super().serialize(redact_fields(log)))

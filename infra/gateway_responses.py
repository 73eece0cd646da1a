"""What API Gateway answers by itself, in the project's error shape: one table for the stack and the local API.

A gateway response's header is static or copied from the request, and copying `Origin` would allow every site:
so these answers name the FIRST allowed origin, and the busiest page's origin belongs first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

CORS_EXPOSED_HEADERS = "Retry-After"  # not CORS-safelisted: without this, fetch() cannot read it


@dataclass(frozen=True)
class GatewayAnswer:
    """One gateway response. `status` None keeps API Gateway's own status (the DEFAULT_* families)."""

    response_type: str
    status: int | None
    code: str
    message: str
    retry_after_seconds: int | None = None

    def body(self) -> str:
        return json.dumps({"error": {"code": self.code, "message": self.message, "fields": []}})

    def headers(self, allowed_origins: tuple[str, ...] | list[str]) -> dict[str, str]:
        """Every header the answer carries besides Content-Type (always application/json)."""
        headers = {
            "Access-Control-Allow-Origin": allowed_origins[0],
            "Access-Control-Expose-Headers": CORS_EXPOSED_HEADERS,
            "Vary": "Origin",
        }
        if self.retry_after_seconds is not None:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers


DEFAULT_4XX = GatewayAnswer("DEFAULT_4XX", None, "request_refused", "the API refused this request")
# Covers 500, 502 (the function failed, timed out or answered too much), 503 and 504; a static header
# cannot tell them apart, and a retry is the right advice for each.
DEFAULT_5XX = GatewayAnswer(
    "DEFAULT_5XX", None, "upstream_error", "the API could not process this request; please retry", 5
)
THROTTLED = GatewayAnswer("THROTTLED", 429, "throttled", "too many requests; please retry after a moment", 1)
# Usage-plan quotas count per day/week/month; this stack sets none, so this is the safe fallback.
QUOTA_EXCEEDED = GatewayAnswer(
    "QUOTA_EXCEEDED", 429, "quota_exceeded", "request quota exceeded; please retry later", 60
)
# API Gateway's own answer for an undefined path or method: 403 "Missing Authentication Token".
NOT_FOUND = GatewayAnswer("MISSING_AUTHENTICATION_TOKEN", 404, "not_found", "no such route; POST leads to /leads")
RESOURCE_NOT_FOUND = GatewayAnswer("RESOURCE_NOT_FOUND", 404, "not_found", "no such route; POST leads to /leads")
WAF_FILTERED = GatewayAnswer("WAF_FILTERED", 403, "forbidden", "the request was blocked by the firewall")
REQUEST_TOO_LARGE = GatewayAnswer("REQUEST_TOO_LARGE", 413, "payload_too_large", "the request body is too large")
INTEGRATION_TIMEOUT = GatewayAnswer(
    "INTEGRATION_TIMEOUT", 504, "timeout", "the API did not answer in time; please retry", 5
)
INTEGRATION_FAILURE = GatewayAnswer(
    "INTEGRATION_FAILURE", 504, "upstream_error", "the API could not process this request; please retry", 5
)

# Not API Gateway's own: the WAF per-IP rate rule's custom Block response (it takes precedence over the
# WAF_FILTERED gateway response). A 429 with Retry-After, not a 403: visitors behind one office NAT
# share an address, and a form client retries a 429 but must treat a 403 as final.
WAF_RATE_LIMITED = GatewayAnswer(
    "WAF_RATE_LIMITED", 429, "throttled", "too many requests from your network; please retry later", 60
)

GATEWAY_ANSWERS: tuple[GatewayAnswer, ...] = (
    DEFAULT_4XX,
    DEFAULT_5XX,
    THROTTLED,
    QUOTA_EXCEEDED,
    NOT_FOUND,
    RESOURCE_NOT_FOUND,
    WAF_FILTERED,
    REQUEST_TOO_LARGE,
    INTEGRATION_TIMEOUT,
    INTEGRATION_FAILURE,
)

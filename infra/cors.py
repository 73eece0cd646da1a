"""The CORS preflight API Gateway answers itself, never the function: one definition for the stack and the local
gateway (https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-cors.html). No CDK import."""

from __future__ import annotations

from collections.abc import Sequence

from functions.ingest.api import CORS_ALLOW_HEADERS, CORS_MAX_AGE_SECONDS

CORS_HEADERS = list(CORS_ALLOW_HEADERS)  # the function's own CORS answers allow the same: local = AWS
CORS_METHODS = ["POST", "OPTIONS"]
PREFLIGHT_STATUS = 204  # CDK's default for the mock integration's answer


def preflight_headers(allowed_origins: Sequence[str], origin: str | None) -> dict[str, str]:
    """The preflight's headers as CDK's mock integration builds them: the first allowed origin, or the request's
    own when it is one of the others."""
    first, *others = allowed_origins
    return {
        "Access-Control-Allow-Headers": ",".join(CORS_HEADERS),
        "Access-Control-Allow-Origin": origin if origin in others else first,
        "Vary": "Origin",
        "Access-Control-Allow-Methods": ",".join(CORS_METHODS),
        "Access-Control-Max-Age": str(CORS_MAX_AGE_SECONDS),
    }

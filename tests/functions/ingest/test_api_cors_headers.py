"""Red team, "The local runtime is never kinder than AWS" for the captcha pass's CORS preflight.

In AWS the preflight never reaches the function: `default_cors_preflight_options` in infra/api.py makes
API Gateway answer OPTIONS from a MOCK integration with the static Access-Control-Allow-Headers it was given
(https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-cors.html: "create an OPTIONS method
with a mock integration" whose 200 response carries Access-Control-Allow-Headers), which is exactly
infra.api.CORS_HEADERS (tests/infra/test_stack.py holds the template to it).

Found by the red team: the local gateway used to route OPTIONS /leads to the ingest function, where the
Powertools CORSConfig answered and added its own defaults (Authorization, X-Amz-Date, X-Api-Key,
X-Amz-Security-Token) to `allow_headers`, so a page that sent any of them worked against `make run` and
was blocked by every browser in the cloud. The local gateway now answers the preflight itself.
"""

from __future__ import annotations

from typing import Any

from infra.api import CORS_HEADERS
from tests.functions.ingest.conftest import preflight


def test_the_local_preflight_allows_no_header_the_stack_preflight_refuses(guarded_ingest, lambda_context: Any) -> None:
    # When a browser asks the local runtime (OPTIONS goes to the function) which headers it may send
    headers = preflight(lambda_context, "content-type,x-api-key")
    allowed_locally = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    # Then it allows what API Gateway's mock preflight allows, and nothing more
    allowed_in_aws = {h.lower() for h in CORS_HEADERS}
    assert allowed_locally <= allowed_in_aws, f"kinder than AWS: {sorted(allowed_locally - allowed_in_aws)}"

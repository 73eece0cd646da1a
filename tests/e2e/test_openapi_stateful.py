"""Stateful API fuzzing: schemathesis chains calls through an OpenAPI link that replays the
Idempotency-Key and the lead, as a client retrying a timed-out submission does, and every retry that is
accepted must get the lead_id of the first acceptance (one lead, one row).

Only valid requests here, with addresses the contract accepts (the schema says only "a string" for the
e-mail, so drawn ones are almost never accepted and no retry would ever be of an accepted lead); invalid
requests and every other check are test_openapi_contract.py's."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance, unsupported_method
from schemathesis.generation.stateful import run_state_machine_as_test

from leadpipe.openapi import openapi_document
from tests.conftest import HYPOTHESIS_PROFILE
from tests.e2e.conftest import RunningPipeline, record_accepted

# Each example is a chain of up to 6 calls through the local pipeline: make test tries fewer chains than the
# profile's count (enough to catch a retry given a second lead_id); make fuzz keeps its profile's.
CI_CHAINS = 30

RETRY_LINK = {
    "RetrySameKey": {
        "operationId": None,  # filled below from the document
        "description": "A client retry: the same lead with the same Idempotency-Key again",
        "parameters": {"header.Idempotency-Key": "$request.header.Idempotency-Key"},
        "requestBody": "$request.body",
    }
}


def document_with_retry_link() -> dict[str, Any]:
    """The served document plus a test-only link: 202 on POST /leads -> POST /leads with the same key."""
    document = copy.deepcopy(openapi_document())
    operation = document["paths"]["/leads"]["post"]
    link = copy.deepcopy(RETRY_LINK)
    link["RetrySameKey"]["operationId"] = operation["operationId"]
    operation["responses"]["202"]["links"] = link
    return document


schema = schemathesis.openapi.from_dict(document_with_retry_link())
schema.config.generation.update(modes=[GenerationMode.POSITIVE])


@schema.hook
def map_body(context: Any, body: Any) -> Any:
    """A drawn lead with an address the contract accepts, made from the drawn one (so Hypothesis still shrinks it)."""
    if isinstance(body, dict) and isinstance(body.get("email"), str):
        local = "".join(c for c in body["email"].lower() if c.isascii() and c.isalnum())[:30] or "x"
        body = {**body, "email": f"{local}@example.com"}
    return body


@pytest.mark.timeout(900)  # a failure is shrunk by replaying HTTP scenarios: slow on a busy machine
def test_retries_with_the_same_key_get_the_same_lead_id(local_pipeline: RunningPipeline) -> None:
    base_url = local_pipeline.info.landing_page_url.rstrip("/")
    honeypot = local_pipeline.pipeline.settings.honeypot_field

    class RetryingClient(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Per scenario, so Hypothesis can replay and shrink one deterministically.
            self.first_lead_id: dict[tuple[str, str], str] = {}

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": base_url}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            # The same checks as the stateless contract test (see test_openapi_contract.py for the two left out)
            case.validate_response(
                response,
                excluded_checks=[unsupported_method, positive_data_acceptance],
                transport_kwargs=kwargs or None,
            )
            key = (case.headers or {}).get("Idempotency-Key")
            if response.status_code == 202 and key is not None:
                # The same key with another lead rightly gets its own id (docs/openapi.json): a retry is both again.
                lead_id = response.json()["lead_id"]
                if not str(case.body.get(honeypot) or "").strip():  # a filled honeypot's 202 is never stored
                    record_accepted(local_pipeline.info.api_url, lead_id, json.dumps(case.body))
                submission = (key, json.dumps(case.body, sort_keys=True))
                assert self.first_lead_id.setdefault(submission, lead_id) == lead_id, (
                    f"a retry with key {key!r} and the same lead got a second lead_id"
                )

    # Given the running pipeline  When schemathesis chains submissions and retries (examples: CI_CHAINS or the
    # profile's)  Then every answer is as documented and no retry of a lead with its key gets a second lead_id
    examples = CI_CHAINS if HYPOTHESIS_PROFILE == "ci" else settings.default.max_examples
    run_state_machine_as_test(
        RetryingClient,
        settings=settings(suppress_health_check=list(HealthCheck), stateful_step_count=6, max_examples=examples),
    )

"""Stateful API fuzzing: schemathesis chains calls through an OpenAPI link that replays the
Idempotency-Key, as a client retrying a timed-out submission does, and every retry that is
accepted must get the lead_id of the first acceptance (one lead, one row)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance, unsupported_method
from schemathesis.generation.stateful import run_state_machine_as_test

from leadpipe.openapi import openapi_document
from tests.e2e.conftest import RunningPipeline

RETRY_LINK = {
    "RetrySameKey": {
        "operationId": None,  # filled below from the document
        "description": "A client retry: the same Idempotency-Key again",
        "parameters": {"header.Idempotency-Key": "$request.header.Idempotency-Key"},
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
schema.config.checks.negative_data_rejection.expected_statuses = [
    *schema.config.checks.negative_data_rejection.expected_statuses,
    "413",
]


@pytest.mark.timeout(900)  # a failure is shrunk by replaying HTTP scenarios: slow on a busy machine
def test_retries_with_the_same_key_get_the_same_lead_id(local_pipeline: RunningPipeline) -> None:
    base_url = local_pipeline.info.landing_page_url.rstrip("/")

    class RetryingClient(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Per scenario, so Hypothesis can replay and shrink one deterministically.
            self.first_lead_id: dict[str, str] = {}

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
                lead_id = response.json()["lead_id"]
                assert self.first_lead_id.setdefault(key, lead_id) == lead_id, (
                    f"a retry with key {key!r} got a second lead_id"
                )

    # Given the running pipeline  When schemathesis chains submissions and retries (examples: the profile)
    # Then every answer is as documented and no key ever maps to two leads
    run_state_machine_as_test(
        RetryingClient, settings=settings(suppress_health_check=list(HealthCheck), stateful_step_count=6)
    )

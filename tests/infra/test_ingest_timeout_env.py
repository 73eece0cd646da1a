"""The ingest learns its own timeout from the stack, so its SQS client answers within it."""

from __future__ import annotations

from aws_cdk.assertions import Template

from functions.ingest.publisher import sqs_call_budget
from functions.ingest.settings import IngestSettings
from infra.config import PipelineSettings
from tests.infra.template_queries import INGEST_HANDLER, function_by_handler


def test_the_ingest_env_carries_its_function_timeout(prod: Template, prod_settings: PipelineSettings) -> None:
    # Given the synthesized ingest function
    _, ingest = function_by_handler(prod, INGEST_HANDLER)
    env = ingest["Properties"]["Environment"]["Variables"]
    # Then INGEST_TIMEOUT_SECONDS is the function's own Timeout
    assert (
        env["INGEST_TIMEOUT_SECONDS"]
        == str(ingest["Properties"]["Timeout"])
        == str(prod_settings.ingest_timeout_seconds)
    )
    # And the SQS client the ingest derives from it gives up before Lambda would stop it
    settings = IngestSettings.from_env({**env, "LEADS_QUEUE_URL": "https://sqs.invalid/q"})
    assert sqs_call_budget(settings.function_timeout_seconds).worst_case_seconds() < ingest["Properties"]["Timeout"]

"""A deploy updates the worker before the ingest: the old worker's `Lead` refuses fields it does not know, so a
lead the new ingest queued with new fields would fail on it until the DLQ.

CloudFormation updates resources without a dependency in parallel, and a resource after those it depends on
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-dependson.html).
"""

from __future__ import annotations

from aws_cdk.assertions import Template

from tests.infra.template_queries import INGEST_HANDLER, WORKER_HANDLER, created_after, function_by_handler


def test_the_ingest_is_updated_only_after_the_worker_and_the_migrations(prod: Template) -> None:
    # Given the prod stack: the migration trigger, the worker and the ingest
    [trigger_id] = prod.find_resources("Custom::Trigger")
    worker_id, _ = function_by_handler(prod, WORKER_HANDLER)
    ingest_id, _ = function_by_handler(prod, INGEST_HANDLER)
    # When CloudFormation orders the deploy
    before_ingest = created_after(prod.to_json()["Resources"], ingest_id)
    # Then the worker's new code (and the migration it writes to) is in place before the ingest queues a new field
    assert {worker_id, trigger_id} <= before_ingest

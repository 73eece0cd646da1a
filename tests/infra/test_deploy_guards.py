"""What stops a bad deploy: migrations run before the worker changes, and cdk-nag stops synth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.config import PipelineSettings
from infra.stack import LeadpipeStack

WORKER_HANDLER = "functions.worker.handler.lambda_handler"


def depends_on(resource: dict[str, Any]) -> set[str]:
    value = resource.get("DependsOn", [])
    return {value} if isinstance(value, str) else set(value)


def test_the_worker_and_its_event_source_wait_for_the_migration_trigger(prod: Template) -> None:
    # Given the prod stack, where a CDK trigger runs the migrations on deploy
    [trigger_id] = prod.find_resources("Custom::Trigger")
    # When CloudFormation orders the deploy
    [(worker_id, worker)] = prod.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": WORKER_HANDLER}}).items()
    [(_, mapping)] = prod.find_resources("AWS::Lambda::EventSourceMapping").items()
    # Then the new worker code, and the mapping that feeds it messages, are created or updated only after it
    assert trigger_id in depends_on(worker), worker.get("DependsOn")
    assert trigger_id in depends_on(mapping), mapping.get("DependsOn")
    assert mapping["Properties"]["FunctionName"] == {"Ref": worker_id}


def synth_with_nag(settings: PipelineSettings, outdir: Path, violate: bool) -> None:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []}, outdir=str(outdir))
    stack = LeadpipeStack(app, "Leadpipe-nag", settings=settings, env=cdk.Environment(account="123456789012", region="eu-west-1"))
    if violate:
        # A queue without a DLQ, encryption policy or TLS-only policy: AwsSolutions-SQS3 and -SQS4.
        sqs.Queue(stack, "CarelessQueue", encryption=sqs.QueueEncryption.UNENCRYPTED)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))  # as app.py does
    app.synth()


def test_a_cdk_nag_violation_stops_synth(prod_settings: PipelineSettings, tmp_path: Path) -> None:
    # Given the prod stack plus one resource that breaks the AWS Solutions rules
    # When it is synthesized the way app.py does it
    with pytest.raises(Exception) as stopped:
        synth_with_nag(prod_settings, tmp_path / "bad", violate=True)
    # Then synth fails, naming the rule that was broken
    assert "AwsSolutions-SQS4" in str(stopped.value)
    # And the same stack without the violation synthesizes (so the failure was the violation's)
    synth_with_nag(prod_settings, tmp_path / "good", violate=False)

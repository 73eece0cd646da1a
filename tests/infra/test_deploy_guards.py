"""What stops a bad deploy: migrations run before the worker changes, and cdk-nag stops synth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

import app as app_py
from infra.config import REPO_ROOT
from infra.stack import LeadpipeStack
from tests.infra.template_queries import WORKER_HANDLER

REAL_APP = cdk.App


def depends_on(resource: dict[str, Any]) -> set[str]:
    value = resource.get("DependsOn", [])
    return {value} if isinstance(value, str) else set(value)


def test_the_worker_and_its_event_source_wait_for_the_migration_trigger(prod: Template) -> None:
    # Given the prod stack, where a CDK trigger runs the migrations on deploy
    [trigger_id] = prod.find_resources("Custom::Trigger")
    # When CloudFormation orders the deploy
    [(worker_id, worker)] = prod.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": WORKER_HANDLER}}
    ).items()
    [(_, mapping)] = prod.find_resources("AWS::Lambda::EventSourceMapping").items()
    # Then the new worker code, and the mapping that feeds it messages, are created or updated only after it
    assert trigger_id in depends_on(worker), worker.get("DependsOn")
    assert trigger_id in depends_on(mapping), mapping.get("DependsOn")
    assert mapping["Properties"]["FunctionName"] == {"Ref": worker_id}


class StackWithACarelessQueue(LeadpipeStack):
    """The real stack plus a queue without DLQ or TLS-only policy: AwsSolutions-SQS3 and -SQS4."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        sqs.Queue(self, "CarelessQueue", encryption=sqs.QueueEncryption.UNENCRYPTED)


def run_app_py(monkeypatch: pytest.MonkeyPatch, outdir: Path, stack_class: type[LeadpipeStack]) -> None:
    """app.py's own main(), with the context the CDK CLI would pass for prod (bundling skipped)."""
    context = {
        **json.loads((REPO_ROOT / "cdk.json").read_text())["context"],
        "stage": "prod",
        "aws:cdk:bundling-stacks": [],
    }
    # In-process, the CLI's environment variables would not reach jsii's already running node: pass them directly.
    monkeypatch.setattr(cdk, "App", lambda: REAL_APP(context=context, outdir=str(outdir)))
    monkeypatch.setattr(app_py, "LeadpipeStack", stack_class)
    app_py.main()


def test_a_cdk_nag_violation_stops_synth(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given app.py, whose stack gains one resource that breaks the AWS Solutions rules
    # When it synthesizes
    with pytest.raises(Exception) as stopped:
        run_app_py(monkeypatch, tmp_path / "bad", StackWithACarelessQueue)
    # Then synth raises, naming the rule that was broken (app.py exits non-zero, so `cdk deploy` stops)
    assert "AwsSolutions-SQS4" in str(stopped.value)
    # And the real stack synthesizes through the same path (so the failure was the violation's)
    run_app_py(monkeypatch, tmp_path / "good", LeadpipeStack)
    assert (tmp_path / "good" / "Leadpipe-prod.template.json").is_file()

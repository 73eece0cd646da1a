"""Synthesize the stack once per settings variant, offline, with cdk-nag attached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.config import CONTEXT_KEY, REPO_ROOT, PipelineSettings, settings_from_file
from infra.stack import LeadpipeStack

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/prod/db-AbCdEf"
PROD_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"  # cdk.json's prod


@dataclass(frozen=True)
class SynthesizedStack:
    stack: LeadpipeStack
    template: Template


def synthesize_stack(settings: PipelineSettings, outdir: str) -> SynthesizedStack:
    """The stack for `settings` and its template; raises if cdk-nag finds an unacknowledged error."""
    # Bundling is skipped here for speed; tests/infra/test_lint_and_bundling.py builds the real assets.
    app = cdk.App(context={"aws:cdk:bundling-stacks": []}, outdir=outdir)
    stack = LeadpipeStack(
        app,
        f"Leadpipe-{settings.stage}",
        settings=settings,
        env=cdk.Environment(account="123456789012", region="eu-west-1"),
    )
    # The rule packs app.py runs, plus ServerlessChecks: an unacknowledged error in either stops synth.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    app.synth()
    return SynthesizedStack(stack, Template.from_stack(stack))


def synthesize(settings: PipelineSettings, outdir: str) -> tuple[dict[str, Any], Template]:
    """The template of the stack for `settings`, as JSON and for assertions."""
    template = synthesize_stack(settings, outdir).template
    return template.to_json(), template


# Every stage shape cdk.json defines: dev (no VPC), prod (VPC, RDS Proxy, CMK secret, WAF, captcha, alarm e-mail),
# staging (VPC, direct connection, NAT declared).
STAGES = tuple(json.loads((REPO_ROOT / "cdk.json").read_text())["context"][CONTEXT_KEY]["stages"])
ACCOUNT, REGION = "123456789012", "eu-west-1"


@dataclass(frozen=True)
class SynthesizedStage:
    """One stage of cdk.json, synthesized once per test session; its template also written to `template_path`."""

    settings: PipelineSettings
    template: Template
    template_path: Path
    stack: LeadpipeStack  # for logical ids of the constructs (the alarm table)
    template_text: str = field(repr=False)  # the template as JSON, read once from jsii (each read is a round trip)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        """A fresh copy each time: a test that edits it cannot change what the next one reads."""
        return json.loads(self.template_text)["Resources"]


@pytest.fixture(scope="session")
def stages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthesizedStage]:
    """Every stage of cdk.json, synthesized with both cdk-nag packs (each at most once per session)."""
    synthesized = {}
    templates = tmp_path_factory.mktemp("templates")
    for stage in STAGES:
        settings = settings_from_file(stage)
        built = synthesize_stack(settings, str(tmp_path_factory.mktemp(stage)))
        path = templates / f"Leadpipe-{stage}.template.json"
        text = json.dumps(built.template.to_json(), indent=1)
        path.write_text(text)
        synthesized[stage] = SynthesizedStage(settings, built.template, path, built.stack, text)
    return synthesized


CFN_LINT_TIMEOUT_SECONDS = 240


def cfn_lint_serverless(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    """cfn-lint (installed beside the interpreter running the tests) with its own rules plus the serverless ones."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("cfn-lint")),
            "--append-rules",
            "cfn_lint_serverless.rules",
            "--format",
            "parseable",
            "--regions",
            "eu-west-1",
            "--",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=CFN_LINT_TIMEOUT_SECONDS,
    )


@pytest.fixture(scope="session")
def cfn_lint_of_every_stage(stages: dict[str, SynthesizedStage]) -> subprocess.CompletedProcess[str]:
    """One cfn-lint run over every stage's template, for every test that reads it (each start takes seconds)."""
    return cfn_lint_serverless([stage.template_path for stage in stages.values()])


@pytest.fixture(params=STAGES)
def stage(request: pytest.FixtureRequest, stages: dict[str, SynthesizedStage]) -> SynthesizedStage:
    """Each stage shape in turn."""
    return stages[request.param]


@pytest.fixture(scope="session")
def prod_settings() -> PipelineSettings:
    return settings_from_file("prod")


@pytest.fixture(scope="session")
def prod(stages: dict[str, SynthesizedStage]) -> Template:
    return stages["prod"].template


@pytest.fixture(scope="session")
def dev(stages: dict[str, SynthesizedStage]) -> Template:
    return stages["dev"].template


@pytest.fixture(scope="session")
def in_vpc(prod_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory) -> Template:
    settings = prod_settings.model_copy(
        update={
            "stage": "vpc",
            "vpc_id": "vpc-0abc",
            "vpc_subnet_ids": ["subnet-0aaa", "subnet-0bbb"],
            "vpc_availability_zones": ["eu-west-1a", "eu-west-1b"],
            "vpc_security_group_ids": ["sg-0ccc"],
            "db_proxy_endpoint": "leadpipe.proxy-abc.eu-west-1.rds.amazonaws.com",
            # Short made-up ids that the stack's own endpoint security group could not reference: the NAT shape.
            "vpc_aws_api_access": "nat",
        }
    )
    return synthesize(settings, str(tmp_path_factory.mktemp("vpc")))[1]

"""Synthesize the stack once per settings variant, offline, with cdk-nag attached."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.config import PipelineSettings, settings_from_file
from infra.stack import LeadpipeStack

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/prod/db-AbCdEf"


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
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    return SynthesizedStack(stack, Template.from_stack(stack))


def synthesize(settings: PipelineSettings, outdir: str) -> tuple[dict[str, Any], Template]:
    """The template of the stack for `settings`, as JSON and for assertions."""
    template = synthesize_stack(settings, outdir).template
    return template.to_json(), template


@pytest.fixture(scope="session")
def prod_settings() -> PipelineSettings:
    return settings_from_file("prod")


@pytest.fixture(scope="session")
def prod_stack(prod_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    """prod, synthesized once for the session (its template and the stack object, for logical ids)."""
    return synthesize_stack(prod_settings, str(tmp_path_factory.mktemp("prod")))


@pytest.fixture(scope="session")
def prod(prod_stack: SynthesizedStack) -> Template:
    return prod_stack.template


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return synthesize(settings_from_file("dev"), str(tmp_path_factory.mktemp("dev")))[1]


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
        }
    )
    return synthesize(settings, str(tmp_path_factory.mktemp("vpc")))[1]

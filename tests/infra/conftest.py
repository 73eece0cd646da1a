"""Synthesize the stack once per settings variant, offline, with cdk-nag attached."""

from __future__ import annotations

import os
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.config import PipelineSettings, settings_from_file
from infra.stack import LeadpipeStack

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/prod/db-AbCdEf"
PROD_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"  # cdk.json's prod


def synthesize(settings: PipelineSettings, outdir: str) -> tuple[dict[str, Any], Template]:
    """The template of the stack for `settings`; raises if cdk-nag finds an unacknowledged error."""
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
    template = Template.from_stack(stack)
    return template.to_json(), template


@pytest.fixture(scope="session")
def prod_settings() -> PipelineSettings:
    return settings_from_file("prod")


@pytest.fixture(scope="session")
def prod(prod_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory) -> Template:
    return synthesize(prod_settings, str(tmp_path_factory.mktemp("prod")))[1]


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
            # Short made-up ids that the stack's own endpoint security group could not reference: the NAT shape.
            "vpc_aws_api_access": "nat",
        }
    )
    return synthesize(settings, str(tmp_path_factory.mktemp("vpc")))[1]

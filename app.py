#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth -c stage=dev` (see README, "Deploy to AWS")."""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.config import CONTEXT_KEY, SettingsError, settings_from_context
from infra.stack import LeadpipeStack


def main() -> None:
    app = cdk.App()
    try:
        settings = settings_from_context(app.node.try_get_context(CONTEXT_KEY), app.node.try_get_context("stage"))
    except SettingsError as error:
        sys.exit(f"leadpipe: {error}")
    LeadpipeStack(
        app,
        f"Leadpipe-{settings.stage}",
        settings=settings,
        description=f"Leadpipe lead ingestion ({settings.stage})",
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    app.synth()


if __name__ == "__main__":
    main()

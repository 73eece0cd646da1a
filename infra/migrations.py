"""Run the SQL migrations against the database as part of every deploy that changes them."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import triggers
from constructs import Construct

from infra.config import PipelineSettings
from infra.function import PipelineFunction, PipelineFunctionProps
from infra.worker import LeadWorker


class SchemaMigrations(Construct):
    """A CDK trigger that invokes the migration function during `cdk deploy`.

    The trigger re-runs whenever the function's asset changes, and the asset hash covers
    every file in `functions/worker/migrations/`, so a new migration always runs before the
    new worker code gets any message. The runner itself is idempotent.

    Public attributes: `function` (a PipelineFunction), `trigger`.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineSettings, worker: LeadWorker) -> None:
        super().__init__(scope, construct_id)
        self.function = PipelineFunction(
            self,
            "Migrate",
            props=PipelineFunctionProps(
                code_folder="worker",
                handler="functions.worker.migrate_handler.lambda_handler",
                service_name="leadpipe-migrations",
                description="Applies the leads table's SQL migrations",
                memory_mb=256,
                timeout=cdk.Duration.minutes(5),
                log_retention_days=settings.log_retention_days,
                environment=worker.environment,
                vpc_placement=worker.vpc_placement,
            ),
        )
        if worker.database_secret:
            worker.database_secret.grant_read(self.function.role)
        self.trigger = triggers.Trigger(
            self,
            "RunOnDeploy",
            handler=self.function.function,
            execute_on_handler_change=True,
            execute_before=[worker],
            timeout=cdk.Duration.minutes(5),
        )

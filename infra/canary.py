"""The canary check `leadpipe verify` invokes: confirms its canary lead was stored, then erases it."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from functions.worker.canary_handler import CANARY_CHECK_SERVICE
from infra.config import PipelineSettings
from infra.function import PipelineFunction, PipelineFunctionProps
from infra.worker import LeadWorker

# `leadpipe verify --stack` finds the function by this output.
CANARY_OUTPUT = "CanaryCheckFunctionName"


class CanaryCheck(Construct):
    """A function with the worker's network placement and credentials (read on the database secret only),
    so the operator running `leadpipe verify` needs no network path to the database.

    Invoked only by `leadpipe verify` (synchronously): no schedule, no reserved concurrency.
    Public attributes: `function` (a PipelineFunction).
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineSettings, worker: LeadWorker) -> None:
        super().__init__(scope, construct_id)
        if worker.database_secret is None:
            raise ValueError("the canary check reads the worker's database: it needs db_secret_arn")
        self.function = PipelineFunction(
            self,
            "Check",
            props=PipelineFunctionProps(
                code_folder="worker",  # the worker's own credentials and connect code
                handler="functions.worker.canary_handler.lambda_handler",
                service_name=CANARY_CHECK_SERVICE,
                description="leadpipe verify: confirms the canary lead was stored, then erases it",
                memory_mb=256,
                timeout=cdk.Duration.seconds(settings.worker_timeout_seconds),
                log_retention_days=settings.log_retention_days,
                environment=worker.environment,
                vpc_placement=worker.vpc_placement,
            ),
        )
        worker.database_secret.grant_read(self.function.role)
        output = cdk.CfnOutput(self, "FunctionName", value=self.function.function.function_name)
        output.override_logical_id(CANARY_OUTPUT)

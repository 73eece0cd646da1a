"""Run the SQL migrations against the database as part of every deploy that changes them."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import triggers
from constructs import Construct

from infra.config import PipelineSettings
from infra.function import PipelineFunction, PipelineFunctionProps, retention_days
from infra.worker import LeadWorker

# The stack-wide provider that `triggers.Trigger` creates (aws-cdk-lib's TriggerCustomResourceProvider).
TRIGGER_PROVIDER_ID = "AWSCDK.TriggerCustomResourceProviderCustomResourceProvider"
# CloudFormation waits an hour for a custom resource's answer: an older event has no one waiting for it.
CUSTOM_RESOURCE_TIMEOUT_SECONDS = 3600


class SchemaMigrations(Construct):
    """A CDK trigger that invokes the migration function during `cdk deploy`.

    The asset hash covers every migration file, so a new migration runs before the new worker
    code gets any message. The runner itself is idempotent.
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
        self.provider_logs, provider_async_config = _bound_trigger_provider(self, settings)
        self.trigger.node.add_dependency(self.provider_logs)  # exists before the provider's first line is logged
        # CloudFormation would otherwise create both at once: the first invocation would get Lambda's 2 retries.
        self.trigger.node.add_dependency(provider_async_config)


def _bound_trigger_provider(
    scope: Construct, settings: PipelineSettings
) -> tuple[logs.LogGroup, lambda_.CfnEventInvokeConfig]:
    """Retention and bounded retries for CDK's own trigger function, which CDK gives neither.

    Lambda would create its log group on first use, kept forever. CloudFormation invokes it asynchronously,
    so Lambda's defaults (2 retries, events kept 6 hours) would run a failed migration again after
    CloudFormation was told it failed.
    """
    provider = cdk.Stack.of(scope).node.find_child(TRIGGER_PROVIDER_ID)
    handler = provider.node.find_child("Handler")
    assert isinstance(handler, cdk.CfnResource), type(handler)
    function_name = handler.ref
    log_group = logs.LogGroup(
        scope,
        "TriggerProviderLogs",
        log_group_name=f"/aws/lambda/{function_name}",
        retention=retention_days(settings.log_retention_days),
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    async_config = lambda_.CfnEventInvokeConfig(
        scope,
        "TriggerProviderAsyncInvoke",
        function_name=function_name,
        qualifier="$LATEST",
        maximum_retry_attempts=0,
        maximum_event_age_in_seconds=CUSTOM_RESOURCE_TIMEOUT_SECONDS,
    )
    return log_group, async_config

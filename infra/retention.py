"""The retention: a function, run every hour, that deletes leads and erasure tombstones past their retention."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from constructs import Construct

from functions.worker.retention import RETENTION_TIMEOUT_SECONDS
from functions.worker.retention_handler import RETENTION_SERVICE
from infra.config import RETENTION_RESERVED_CONCURRENCY, PipelineSettings
from infra.function import PipelineFunction, PipelineFunctionProps
from infra.monitoring import PipelineMonitoring
from infra.worker import LeadWorker

# Every hour: each run deletes what aged past the limit since the last one, a small amount.
RETENTION_PERIOD = cdk.Duration.hours(1)
RETENTION_SCHEDULE = events.Schedule.rate(RETENTION_PERIOD)


class DataRetention(Construct):
    """Deletes, every hour, leads older than `lead_retention_days` and tombstones older than
    `erasure_tombstone_retention_days`, with the worker's credentials and network path
    (functions/worker/retention.py: small batches, statement and lock timeouts). One run at a time.
    A failed run, or none for hours, pages on-call through `monitoring`.

    Public attributes: `function` (a PipelineFunction), `schedule` (the EventBridge rule).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PipelineSettings,
        worker: LeadWorker,
        monitoring: PipelineMonitoring,
    ) -> None:
        super().__init__(scope, construct_id)
        if worker.database_secret is None:
            raise ValueError("the retention deletes from the worker's database: it needs db_secret_arn")
        self.function = PipelineFunction(
            self,
            "Function",
            props=PipelineFunctionProps(
                code_folder="worker",  # the worker's own credentials and connect code
                handler="functions.worker.retention_handler.lambda_handler",
                service_name=RETENTION_SERVICE,
                description="Retention: deletes leads and erasure tombstones past their retention, in small batches",
                memory_mb=256,
                timeout=cdk.Duration.seconds(RETENTION_TIMEOUT_SECONDS),
                log_retention_days=settings.log_retention_days,
                environment={**worker.environment, **settings.retention_environment()},
                reserved_concurrency=RETENTION_RESERVED_CONCURRENCY,  # one database session, whatever the schedule does
                vpc_placement=worker.vpc_placement,
            ),
        )
        worker.database_secret.grant_read(self.function.role)
        # A failed or throttled run is not retried behind the next one: the next hour's run is the retry.
        self.function.function.configure_async_invoke(retry_attempts=0, max_event_age=RETENTION_PERIOD)
        self.schedule = events.Rule(
            self,
            "Hourly",
            schedule=RETENTION_SCHEDULE,
            targets=[events_targets.LambdaFunction(self.function.function, retry_attempts=0)],  # the next hour retries
            description="Leadpipe retention: delete leads and tombstones past their retention",
        )
        # The bounded async config exists before the rule can invoke: else Lambda's defaults apply meanwhile.
        self.schedule.node.add_dependency(self.function.function.node.find_child("EventInvokeConfig"))
        monitoring.watch_retention(self.function.function)

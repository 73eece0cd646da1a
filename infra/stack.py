"""The Leadpipe stack: composes one construct per concern, nothing else."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra.api import LeadApi
from infra.aws_api_endpoints import (
    CANARY_CHECK_AWS_SERVICES,
    MIGRATE_AWS_SERVICES,
    PROBE_AWS_SERVICES,
    RETENTION_AWS_SERVICES,
    WORKER_AWS_SERVICES,
    WORKER_EVENTS_AWS_SERVICES,
    AwsApiEndpoints,
)
from infra.breaker import DrainBreaker
from infra.campaign_numbers import CampaignNumbers
from infra.canary import CanaryCheck
from infra.config import LAMBDA_UNRESERVED_MINIMUM, PipelineSettings
from infra.events import LeadEvents
from infra.governor import DrainGovernor
from infra.migrations import SchemaMigrations
from infra.monitoring import MonitoredResources, PipelineMonitoring
from infra.queue import LeadQueue
from infra.retention import DataRetention
from infra.rule_acknowledgements import acknowledge_rule_findings
from infra.worker import LeadWorker

VPC_AWS_SERVICES = (
    WORKER_AWS_SERVICES | MIGRATE_AWS_SERVICES | PROBE_AWS_SERVICES | RETENTION_AWS_SERVICES | CANARY_CHECK_AWS_SERVICES
)


class LeadpipeStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: PipelineSettings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        queue = self._queue(settings)
        api = LeadApi(self, "LeadApi", settings=settings, queue=queue.queue)
        worker = LeadWorker(self, "LeadWorker", settings=settings, queue=queue.queue)
        self._schema_migrations(settings, worker, endpoints=self._aws_api_endpoints(settings, worker))
        # The worker's new code (after its migration) before the ingest's: an old worker refuses a lead's new fields.
        api.ingest.function.node.add_dependency(worker.function.function)
        monitoring = self._monitoring(settings, queue, api, worker)

        CampaignNumbers(
            self, "CampaignNumbers", settings=settings, dashboard=monitoring.dashboard, ingest_logs=api.ingest.log_group
        )

        if settings.events_enabled:
            LeadEvents(self, "LeadEvents", settings=settings, worker=worker, monitoring=monitoring)
        if settings.has_database:
            self._drain_control(settings, worker, monitoring)
        self._outputs(settings, queue, api, monitoring)
        self._note_reserved_concurrency(settings)
        acknowledge_rule_findings(self)  # last: every resource exists by now

    def _queue(self, settings: PipelineSettings) -> LeadQueue:
        return LeadQueue(
            self,
            "LeadQueue",
            visibility_timeout=cdk.Duration.seconds(settings.queue_visibility_timeout_seconds),
            max_receive_count=settings.max_receive_count,
            retention=cdk.Duration.days(settings.retention_days),
        )

    def _aws_api_endpoints(self, settings: PipelineSettings, worker: LeadWorker) -> AwsApiEndpoints | None:
        """The VPC's interface endpoints to the AWS APIs, when the stage reaches them that way."""
        if not (
            worker.vpc_placement and settings.has_database and settings.vpc_aws_api_access == "interface_endpoints"
        ):
            return None
        return AwsApiEndpoints(
            self,
            "AwsApiEndpoints",
            settings=settings,
            vpc=worker.vpc_placement.vpc,
            services=VPC_AWS_SERVICES | (WORKER_EVENTS_AWS_SERVICES if settings.events_enabled else set()),
        )

    def _schema_migrations(
        self, settings: PipelineSettings, worker: LeadWorker, *, endpoints: AwsApiEndpoints | None
    ) -> None:
        if settings.has_database:
            migrations = SchemaMigrations(self, "SchemaMigrations", settings=settings, worker=worker)
            if endpoints:
                migrations.trigger.node.add_dependency(endpoints)  # the migration reads its secret through them
        else:
            cdk.Annotations.of(self).add_warning_v2(
                "leadpipe:no-database",
                f"No database configured (leadpipe.stages.{settings.stage}.db_secret_arn): the worker's event source "
                "is "
                "disabled and leads wait in the queue (up to its retention) until one is set.",
            )

    def _monitoring(
        self, settings: PipelineSettings, queue: LeadQueue, api: LeadApi, worker: LeadWorker
    ) -> PipelineMonitoring:
        return PipelineMonitoring(
            self,
            "Monitoring",
            settings=settings,
            resources=MonitoredResources(
                rest_api=api.rest_api,
                ingest=api.ingest.function,
                worker=worker.function.function,
                queue=queue.queue,
                dead_letter_queue=queue.dead_letter_queue,
            ),
        )

    def _drain_control(self, settings: PipelineSettings, worker: LeadWorker, monitoring: PipelineMonitoring) -> None:
        """The breaker (and governor) on the worker's drain, the retention and the canary: a stage with a database."""
        # Built after monitoring: the DatabaseUnavailable alarm (when there) trips it at once.
        alarms = getattr(monitoring, "alarms", {})
        breaker = DrainBreaker(
            self,
            "DrainBreaker",
            settings=settings,
            worker=worker,
            trip_alarms=[alarms[name] for name in ("DatabaseUnavailable",) if name in alarms],
        )
        monitoring.watch_drain_probe(breaker.function.function)  # a breaker that cannot run pages too
        if settings.governor_enabled:
            governor = DrainGovernor(self, "DrainGovernor", settings=settings, breaker=breaker, worker=worker)
            monitoring.watch_drain_writers(settings.max_concurrency, settings.stage)
            cdk.CfnOutput(self, "DrainGovernorParameterName", value=governor.record.parameter_name)
        DataRetention(self, "DataRetention", settings=settings, worker=worker, monitoring=monitoring)
        # `leadpipe drain pause | resume | status --stack` finds the breaker by these.
        cdk.CfnOutput(self, "WorkerEventSourceMappingId", value=worker.event_source.event_source_mapping_id)
        cdk.CfnOutput(self, "DrainPauseParameterName", value=breaker.pause_record.parameter_name)
        cdk.CfnOutput(self, "DrainProbeFunctionName", value=breaker.function.function.function_name)
        CanaryCheck(self, "CanaryCheck", settings=settings, worker=worker)  # `leadpipe verify` asks it

    def _outputs(
        self, settings: PipelineSettings, queue: LeadQueue, api: LeadApi, monitoring: PipelineMonitoring
    ) -> None:
        cdk.CfnOutput(self, "LeadsEndpoint", value=api.leads_url, description="Point landing-page forms here (POST)")
        cdk.CfnOutput(self, "QueueUrl", value=queue.queue.queue_url)
        cdk.CfnOutput(self, "DeadLetterQueueUrl", value=queue.dead_letter_queue.queue_url)
        cdk.CfnOutput(self, "LeadsTable", value=settings.leads_table)  # what `leadpipe status --stack` reads
        cdk.CfnOutput(
            self,
            "DashboardUrl",
            value=f"https://{self.region}.console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#dashboards:name={monitoring.dashboard.dashboard_name}",
        )
        cdk.CfnOutput(self, "AlarmTopicArn", value=monitoring.alarm_topic.topic_arn)

    def _note_reserved_concurrency(self, settings: PipelineSettings) -> None:
        reserved = settings.reserved_concurrency_total
        cdk.Annotations.of(self).add_info(
            f"Reserves {reserved} of the account's Lambda concurrency: the Region's quota must be at least "
            f"{reserved + LAMBDA_UNRESERVED_MINIMUM} plus every other reservation (declared: "
            f"account_concurrency_limit={settings.account_concurrency_limit}; `leadpipe preflight` reads the real one)."
        )

"""The drain breaker: holds the worker's event source while the database does not answer."""

from __future__ import annotations

import math
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from functions.worker.aws_clients import AWS_CALL_SECONDS
from functions.worker.drain import NOT_PAUSED
from functions.worker.probe_handler import DRAIN_PROBE_SERVICE
from functions.worker.round_trip_deadline import RESPONSE_RESERVE_SECONDS, ROUND_TRIP_MARGIN_SECONDS
from infra.config import PROBE_RESERVED_CONCURRENCY, PipelineSettings
from infra.function import PipelineFunction, PipelineFunctionProps
from infra.imported_secret import ImportedSecret
from infra.worker import LeadWorker

# EventBridge's finest schedule: the resume comes within 60 s of the database's return (docs/design.md).
PROBE_SCHEDULE_SECONDS = 60
PROBE_SCHEDULE = events.Schedule.rate(cdk.Duration.seconds(PROBE_SCHEDULE_SECONDS))
# Only lambda:GetEventSourceMapping and UpdateEventSourceMapping, on the one mapping's ARN: no grant_* exists for them.
MAPPING_ACTIONS = ["lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"]
# The probe's calls besides the database (the secret, the pause record twice, the mapping read and set), each
# bounded by its client's timeouts (functions/worker/aws_clients.py): tens of ms each when AWS is well.
PROBE_API_CALLS = 5
PROBE_API_CALLS_SECONDS = PROBE_API_CALLS * AWS_CALL_SECONDS
# What the probe had before its timeout followed the settings: a shorter one saves nothing.
PROBE_SHORTEST_TIMEOUT_SECONDS = 30


def probe_timeout_seconds(settings: PipelineSettings) -> int:
    """The probe's Lambda timeout: its connect, one round trip of the worker's limit (statement timeout + margin),
    the reserve to answer and its API calls, and never under 30 s. Shorter, a slow path ends the probe before it
    decides: it neither holds nor resumes the drain."""
    database = settings.db_connect_timeout_seconds + settings.db_statement_timeout_seconds + ROUND_TRIP_MARGIN_SECONDS
    return max(PROBE_SHORTEST_TIMEOUT_SECONDS, math.ceil(database + RESPONSE_RESERVE_SECONDS + PROBE_API_CALLS_SECONDS))


def trip_seconds(settings: PipelineSettings) -> int:
    """The longest from a database going away to the held drain: the wait for the next probe, plus the probe.
    A failed message must stay invisible longer than that."""
    return PROBE_SCHEDULE_SECONDS + probe_timeout_seconds(settings)


class DrainBreaker(Construct):
    """A probe, every minute and on the database alarm's changes, that switches the worker's event source mapping
    (docs/drain-breaker.md). A disabled mapping, not reserved concurrency 0 whose throttled receives still count,
    costs a waiting lead no receive. The probe never re-enables a drain an operator paused (`pause_record`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PipelineSettings,
        worker: LeadWorker,
        trip_alarms: Sequence[cloudwatch.IAlarm] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        if worker.database_secret is None:
            raise ValueError("the drain breaker probes the worker's database: it needs db_secret_arn")
        self._warn_if_slower_than_visibility(settings)
        self.pause_record = ssm.StringParameter(
            self,
            "PauseRecord",
            string_value=NOT_PAUSED,
            description="Leadpipe drain: the operator's pause (who, why, since), written by `leadpipe drain pause`",
        )
        self.function = self._probe(settings, worker)
        self._grant_probe(worker, worker.database_secret)
        self._schedule_probe(trip_alarms)

    def _warn_if_slower_than_visibility(self, settings: PipelineSettings) -> None:
        if settings.queue_visibility_timeout_seconds < trip_seconds(settings):
            cdk.Annotations.of(self).add_warning_v2(
                "leadpipe:breaker-slower-than-visibility",
                f"The visibility timeout ({settings.queue_visibility_timeout_seconds} s) is shorter than the breaker's "
                f"{trip_seconds(settings)} s to trip: an outage may cost a message two receives. Raise "
                "worker_timeout_seconds "
                f"(the visibility timeout is at least 6x it) or visibility_timeout_seconds.",
            )

    def _probe(self, settings: PipelineSettings, worker: LeadWorker) -> PipelineFunction:
        return PipelineFunction(
            self,
            "Probe",
            props=PipelineFunctionProps(
                code_folder="worker",  # the worker's own credentials and connect code
                handler="functions.worker.probe_handler.lambda_handler",
                service_name=DRAIN_PROBE_SERVICE,
                description="Drain breaker: enables the worker's event source only while the database answers",
                memory_mb=256,
                timeout=cdk.Duration.seconds(probe_timeout_seconds(settings)),
                log_retention_days=settings.log_retention_days,
                environment={
                    **worker.environment,
                    "EVENT_SOURCE_MAPPING_ID": worker.event_source.event_source_mapping_id,
                    "DRAIN_PAUSE_PARAMETER": self.pause_record.parameter_name,
                },
                # One probe at a time: two could not disagree for long, but there is no reason to let them.
                reserved_concurrency=PROBE_RESERVED_CONCURRENCY,
                vpc_placement=worker.vpc_placement,
            ),
        )

    def _grant_probe(self, worker: LeadWorker, database_secret: ImportedSecret) -> None:
        role = self.function.role
        database_secret.grant_read(role)
        self.pause_record.grant_read(role)
        role.add_to_policy(
            iam.PolicyStatement(actions=MAPPING_ACTIONS, resources=[worker.event_source.event_source_mapping_arn])
        )

    def _schedule_probe(self, trip_alarms: Sequence[cloudwatch.IAlarm]) -> None:
        """Every minute, and at once on each trip alarm's state change."""
        # EventBridge invokes asynchronously: Lambda's own defaults (2 retries, events kept 6 hours) would queue stale
        # probes behind the one reserved instance. The next minute's run is the retry.
        self.function.function.configure_async_invoke(
            retry_attempts=0, max_event_age=cdk.Duration.seconds(PROBE_SCHEDULE_SECONDS)
        )
        target = events_targets.LambdaFunction(self.function.function, retry_attempts=0)  # the next minute is the retry
        self.schedule = events.Rule(
            self,
            "EveryMinute",
            schedule=PROBE_SCHEDULE,
            targets=[target],
            description="Leadpipe drain breaker: probe the database every minute",
        )
        # Rules created before the config would have their first events retried with Lambda's defaults.
        self.schedule.node.add_dependency(self._async_invoke_config())
        self.alarm_trigger = None
        if trip_alarms:
            # Trip (and resume) without waiting for the minute: the alarm says batches found the database away.
            self.alarm_trigger = events.Rule(
                self,
                "OnDatabaseAlarm",
                event_pattern=events.EventPattern(
                    source=["aws.cloudwatch"],
                    detail_type=["CloudWatch Alarm State Change"],
                    resources=[alarm.alarm_arn for alarm in trip_alarms],
                ),
                targets=[target],
                description="Leadpipe drain breaker: probe at once when the database alarm changes state",
            )
            self.alarm_trigger.node.add_dependency(self._async_invoke_config())

    def _async_invoke_config(self) -> Construct:
        """The probe's EventInvokeConfig, which `configure_async_invoke` adds under the function."""
        return self.function.function.node.find_child("EventInvokeConfig")

"""What on-call ops watch: alarms on backlog, age, DLQ, worker health and the API, and one dashboard."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.contract.observability import (
    INGEST_SERVICE,
    METRICS_NAMESPACE,
    STAGE_VARIABLE,
    WORKER_SERVICE,
    stage_dimension,
)
from functions.worker.probe_handler import DRAIN_PROBE_SERVICE
from infra.alarm_topic import let_cloudwatch_alarms_publish
from infra.config import PipelineSettings

ONE_MINUTE = cdk.Duration.minutes(1)
FIVE_MINUTES = cdk.Duration.minutes(5)
# The probe runs every minute: failing in each of three minutes is a breaker that has stopped, not a blip.
PROBE_FAILED_MINUTES = 3
# The probe runs every minute, but EventBridge may shift a run into the next minute: five empty ones is a stop.
PROBE_SILENT_MINUTES = 5
ONE_HOUR = cdk.Duration.hours(1)
# The retention runs every hour: three hours without a run is a stopped schedule, not a late one.
RETENTION_SILENT_HOURS = 3


def emf_metric(name: str, service: str, stage: str, statistic: str = "Sum") -> cloudwatch.Metric:
    """A metric a function emits (EMF) under its service and this stage's identity, per minute."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service, **stage_dimension({STAGE_VARIABLE: stage})},
        statistic=statistic,
        period=ONE_MINUTE,
    )


@dataclass(frozen=True)
class MonitoredResources:
    rest_api: apigw.RestApi
    ingest: lambda_.IFunction
    worker: lambda_.IFunction
    queue: sqs.IQueue
    dead_letter_queue: sqs.IQueue


@dataclass(frozen=True)
class ScheduledFunctionWatch:
    """The alarms and widgets of a function run on a schedule: named `failed_alarm` and `<name>Silent`."""

    name: str
    failed_alarm: str
    failed_description: str
    silent_description: str
    period: cdk.Duration
    failed_periods: int
    silent_periods: int
    graph_title: str
    status_title: str


class PipelineMonitoring(Construct):
    """Alarms (alarm and OK actions to one SNS topic) and a dashboard. Thresholds come from settings.

    Public attributes: `alarm_topic`, `alarms` (by name), `dashboard`. `watch_drain_probe` adds the
    drain breaker's own alarm once the breaker exists (it is built after this construct: it trips on
    this construct's DatabaseUnavailable alarm).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: PipelineSettings, resources: MonitoredResources
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarm_topic = sns.Topic(
            self, "AlarmTopic", display_name=f"Leadpipe {settings.stage} alarms", enforce_ssl=True
        )
        let_cloudwatch_alarms_publish(self.alarm_topic)
        if settings.alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))

        self.alarms: dict[str, cloudwatch.Alarm] = {}
        # In this order: the dashboard's alarm status widget lists them so.
        self._queue_alarms(settings, resources)
        self._worker_alarms(settings, resources)
        self._api_alarms(settings, resources)
        self.dashboard = self._dashboard(settings, resources)

    def _queue_alarms(self, settings: PipelineSettings, r: MonitoredResources) -> None:
        self._alarm(
            "QueueAge",
            r.queue.metric_approximate_age_of_oldest_message(period=ONE_MINUTE, statistic="Maximum"),
            settings.alarm_queue_age_seconds,
            "The oldest lead has waited this long (seconds): the worker is stalled or too slow.",
            evaluation_periods=3,
        )
        self._alarm(
            "QueueDepth",
            r.queue.metric_approximate_number_of_messages_visible(period=ONE_MINUTE, statistic="Maximum"),
            settings.alarm_queue_depth,
            "The backlog of leads waiting to be stored is this deep.",
            evaluation_periods=3,
        )
        self._alarm(
            "DeadLetters",
            r.dead_letter_queue.metric_approximate_number_of_messages_visible(period=ONE_MINUTE, statistic="Maximum"),
            1,
            "Leads are in the DLQ: inspect with `leadpipe dlq list`, fix, then `leadpipe dlq redrive`.",
        )

    def _worker_alarms(self, settings: PipelineSettings, r: MonitoredResources) -> None:
        self._alarm(
            "DatabaseUnavailable",
            self.database_unavailable_metric(settings.stage),
            1,
            "Batches could not be stored because the database could not be reached (refused, lost, timed out, "
            "shutting down); the leads wait in the queue. Check the database, then `leadpipe status`.",
            evaluation_periods=settings.alarm_db_unavailable_minutes,
            # Every minute of the window must have failed batches: one blip does not page.
            datapoints_to_alarm=settings.alarm_db_unavailable_minutes,
        )
        self._alarm(
            "WorkerErrors",
            r.worker.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
            settings.alarm_worker_errors,
            "The worker function failed whole invocations.",
        )
        self._alarm(
            "WorkerThrottles",
            r.worker.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
            settings.alarm_worker_throttles,
            "The worker was throttled: reserved_concurrency is below what the event source asks for.",
        )

    def _api_alarms(self, settings: PipelineSettings, r: MonitoredResources) -> None:
        self._alarm(
            "Api5xxRate",
            cloudwatch.MathExpression(
                expression="IF(requests > 0, 100 * errors / requests, 0)",
                using_metrics={
                    "errors": r.rest_api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
                    "requests": r.rest_api.metric_count(period=FIVE_MINUTES, statistic="SampleCount"),
                },
                label="API 5XX %",
                period=FIVE_MINUTES,
            ),
            settings.alarm_api_5xx_percent,
            "This percentage of form posts got a 5XX (a 503 means SQS refused leads; clients were told to retry).",
        )
        self._alarm(
            "IngestLatencyP99",
            r.ingest.metric_duration(period=FIVE_MINUTES, statistic="p99"),
            settings.alarm_ingest_p99_ms,
            "The ingest's p99 duration (ms) is this slow: forms wait.",
            evaluation_periods=3,
        )

    def watch_drain_probe(self, probe: lambda_.IFunction) -> cloudwatch.Alarm:
        """Page when the drain breaker's probe fails in each of PROBE_FAILED_MINUTES minutes, or does not run for
        PROBE_SILENT_MINUTES: a probe that cannot run neither holds nor resumes the drain. Throttles are not
        watched: Lambda retries a throttled asynchronous invocation on its own."""
        return self._watch_scheduled_function(
            probe,
            ScheduledFunctionWatch(
                name="DrainProbe",
                failed_alarm="DrainProbeErrors",
                failed_description="The drain breaker's probe failed (error or timeout) every minute: the breaker "
                "neither holds nor resumes the drain. Read the probe's log; check its route to the Lambda and SSM "
                "APIs and its role; `leadpipe drain status`.",
                silent_description="The drain breaker's probe has not run for minutes (its schedule rule disabled or "
                "deleted?): the breaker neither holds nor resumes the drain. Check the probe's EventBridge rule; "
                "`leadpipe drain status`.",
                period=ONE_MINUTE,
                failed_periods=PROBE_FAILED_MINUTES,
                silent_periods=PROBE_SILENT_MINUTES,
                graph_title="Drain breaker probe (per minute)",
                status_title="Drain breaker",
            ),
        )

    def watch_drain_writers(self, cap: int, stage: str) -> None:
        """The drain governor's writers against the DB owner's cap, on the dashboard (the probe emits both); pages
        when the governor decides nothing for PROBE_SILENT_MINUTES."""

        def probe_metric(name: str) -> cloudwatch.Metric:
            return emf_metric(name, DRAIN_PROBE_SERVICE, stage, statistic="Maximum")

        # The probe swallows the governor's errors (the breaker's decision stands): a governor failing every run leaves
        # the writers where they were, possibly at the floor, and only its missing DrainWriters datapoints tell.
        self._alarm(
            "DrainGovernorSilent",
            probe_metric("DrainWriters").with_(statistic="SampleCount"),
            1,
            "The drain governor has decided nothing for minutes (the probe logs 'drain governor failed' with the error "
            "class): the mapping's MaximumConcurrency and the workers' pacing stay where they were, possibly at the "
            "floor. Read the probe's log; `leadpipe status --stack` shows the governor's last record.",
            evaluation_periods=PROBE_SILENT_MINUTES,
            datapoints_to_alarm=PROBE_SILENT_MINUTES,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing_data=cloudwatch.TreatMissingData.BREACHING,  # a failed run emits no datapoint at all
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Drain writers (governor) vs the cap (max_concurrency)",
                left=[probe_metric("DrainWriters"), probe_metric("DrainWriterCap")],
                left_y_axis=cloudwatch.YAxisProps(min=0),
                left_annotations=[cloudwatch.HorizontalAnnotation(value=cap, label="max_concurrency")],
            )
        )

    def watch_retention(self, retention: lambda_.IFunction) -> None:
        """Page when a retention run fails (error or timeout), or when none has run for RETENTION_SILENT_HOURS."""
        self._watch_scheduled_function(
            retention,
            ScheduledFunctionWatch(
                name="Retention",
                failed_alarm="RetentionFailed",
                failed_description="A retention run failed: leads or tombstones past their retention may still be "
                "stored. Read the retention function's log; `leadpipe status` shows the last run and its error.",
                silent_description="The retention has not run for hours (its schedule rule disabled or deleted?): "
                "nothing past its retention is being deleted. Check the retention's EventBridge rule; `leadpipe "
                "status`.",
                period=ONE_HOUR,
                failed_periods=1,
                silent_periods=RETENTION_SILENT_HOURS,
                graph_title="Retention runs (per hour)",
                status_title="Retention",
            ),
        )

    def _watch_scheduled_function(self, function: lambda_.IFunction, watch: ScheduledFunctionWatch) -> cloudwatch.Alarm:
        """A failed alarm and a silent one (a function whose schedule rule is disabled or deleted fails nothing), a
        graph of its runs and errors, and the two alarms' status; returns the failed alarm."""
        self._alarm(
            watch.failed_alarm,
            function.metric_errors(period=watch.period, statistic="Sum"),
            1,
            watch.failed_description,
            evaluation_periods=watch.failed_periods,
            # For one period, CloudWatch's default datapoints to alarm: left unset.
            datapoints_to_alarm=watch.failed_periods if watch.failed_periods > 1 else None,
        )
        self._alarm(
            f"{watch.name}Silent",
            function.metric_invocations(period=watch.period, statistic="Sum"),
            1,
            watch.silent_description,
            evaluation_periods=watch.silent_periods,
            datapoints_to_alarm=watch.silent_periods,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing_data=cloudwatch.TreatMissingData.BREACHING,  # a function never invoked reports no datapoint at all
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=watch.graph_title,
                left=[
                    function.metric_invocations(period=watch.period, statistic="Sum"),
                    function.metric_errors(period=watch.period, statistic="Sum"),
                ],
            ),
            cloudwatch.AlarmStatusWidget(
                title=watch.status_title,
                alarms=[self.alarms[watch.failed_alarm], self.alarms[f"{watch.name}Silent"]],
            ),
        )
        return self.alarms[watch.failed_alarm]

    @staticmethod
    def database_unavailable_metric(stage: str) -> cloudwatch.Metric:
        """Batches per minute the worker could not store because the database was unreachable (EMF)."""
        return emf_metric("DatabaseUnavailable", WORKER_SERVICE, stage)

    @staticmethod
    def worker_metric(name: str, stage: str) -> cloudwatch.Metric:
        """A count the worker emits (EMF) under this stage's identity, summed per minute."""
        return emf_metric(name, WORKER_SERVICE, stage)

    def add_alarm(
        self, name: str, metric: cloudwatch.IMetric, threshold: float, description: str, evaluation_periods: int = 1
    ) -> cloudwatch.Alarm:
        """An alarm of another construct (the events lane's) on the same topic, and on the dashboard."""
        self._alarm(name, metric, threshold, description, evaluation_periods=evaluation_periods)
        self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title=name, alarms=[self.alarms[name]], height=2))
        return self.alarms[name]

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            comparison_operator=comparison,
            treat_missing_data=missing_data,
            alarm_description=description,
        )
        action = cloudwatch_actions.SnsAction(self.alarm_topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms[name] = alarm

    def _dashboard(self, settings: PipelineSettings, r: MonitoredResources) -> cloudwatch.Dashboard:
        # Dashboard names are account-global: the region keeps one stage deployed in two regions apart.
        dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"leadpipe-{settings.stage}-{cdk.Aws.REGION}"
        )
        dashboard.add_widgets(*self._flow_widgets(settings.stage, r))
        dashboard.add_widgets(*self._health_widgets(settings, r))
        dashboard.add_widgets(self._database_widget(settings))
        return dashboard

    @staticmethod
    def _flow_widgets(stage: str, r: MonitoredResources) -> list[cloudwatch.IWidget]:
        """Leads in (the API), waiting (the queue) and stored (the worker)."""

        def custom(name: str, service: str) -> cloudwatch.Metric:
            return emf_metric(name, service, stage)

        return [
            cloudwatch.GraphWidget(
                title="Ingest rate (per minute)",
                left=[
                    r.rest_api.metric_count(period=ONE_MINUTE, statistic="SampleCount"),
                    custom("LeadsAccepted", INGEST_SERVICE),
                ],
                right=[
                    r.rest_api.metric_server_error(period=ONE_MINUTE),
                    r.rest_api.metric_client_error(period=ONE_MINUTE),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Queue depth and age",
                left=[r.queue.metric_approximate_number_of_messages_visible(period=ONE_MINUTE, statistic="Maximum")],
                right=[r.queue.metric_approximate_age_of_oldest_message(period=ONE_MINUTE, statistic="Maximum")],
            ),
            cloudwatch.GraphWidget(
                title="Stored rate (per minute)",
                left=[custom("LeadsStored", WORKER_SERVICE), custom("DuplicatesSkipped", WORKER_SERVICE)],
                right=[custom("RecordsFailed", WORKER_SERVICE)],
            ),
        ]

    def _health_widgets(self, settings: PipelineSettings, r: MonitoredResources) -> list[cloudwatch.IWidget]:
        """The DLQ, the database writers against their cap, and every alarm's state."""
        return [
            cloudwatch.GraphWidget(
                title="DLQ depth",
                left=[
                    r.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=ONE_MINUTE, statistic="Maximum"
                    )
                ],
            ),
            cloudwatch.GraphWidget(
                title=f"Worker concurrency (DB writers, cap {settings.max_concurrency})",
                left=[r.worker.metric("ConcurrentExecutions", period=ONE_MINUTE, statistic="Maximum")],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=settings.max_concurrency, label="max_concurrency")
                ],
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values())),
        ]

    def _database_widget(self, settings: PipelineSettings) -> cloudwatch.IWidget:
        return cloudwatch.GraphWidget(
            title="Database unreachable (batches per minute)",
            left=[self.database_unavailable_metric(settings.stage)],
            left_annotations=[
                cloudwatch.HorizontalAnnotation(
                    value=1, label=f"pages after {settings.alarm_db_unavailable_minutes} min"
                )
            ],
        )

"""Leads per campaign and per utm_source on the dashboard, at a bounded metric cost."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.contract.observability import INGEST_SERVICE, METRICS_NAMESPACE, STAGE_VARIABLE, stage_dimension
from infra.config import PipelineSettings

LEADS_QUEUED_MESSAGE = "lead queued"  # the ingest's log line for each lead it queued (functions/ingest/api.py)
# Every campaign and source, from the ingest's own log lines: Logs Insights bills the data a view scans, not a metric.
CAMPAIGN_AND_SOURCE_QUERY = [
    f'filter message = "{LEADS_QUEUED_MESSAGE}"',
    "stats count(*) as leads by campaign, utm_source",
    "sort leads desc",
    "limit 50",
]


class CampaignNumbers(Construct):
    """Adds to `dashboard`: the tracked campaigns (`metric_campaigns`) per hour and over the last day, from their
    metric; and every campaign and utm_source over the dashboard's time range, from the ingest's logs. Only
    tracked campaigns get a metric of their own, so the metric bill grows with that list, never with traffic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PipelineSettings,
        dashboard: cloudwatch.Dashboard,
        ingest_logs: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        widgets: list[cloudwatch.IWidget] = []
        if settings.metric_campaigns:
            widgets += [
                cloudwatch.GraphWidget(
                    title="Leads accepted per hour, tracked campaigns",
                    left=[
                        self.campaign_metric(settings.stage, code, cdk.Duration.hours(1))
                        for code in settings.metric_campaigns
                    ],
                    stacked=True,
                ),
                cloudwatch.SingleValueWidget(
                    title="Leads accepted in the last day, tracked campaigns",
                    metrics=[
                        self.campaign_metric(settings.stage, code, cdk.Duration.days(1))
                        for code in settings.metric_campaigns
                    ],
                ),
            ]
        widgets.append(
            cloudwatch.LogQueryWidget(
                title="Leads queued per campaign and utm_source (dashboard time range, from the ingest's logs)",
                log_group_names=[ingest_logs.log_group_name],
                query_lines=CAMPAIGN_AND_SOURCE_QUERY,
                view=cloudwatch.LogQueryVisualizationType.TABLE,
                width=24,
            )
        )
        dashboard.add_widgets(*widgets)

    @staticmethod
    def campaign_metric(stage: str, code: str, period: cdk.Duration) -> cloudwatch.Metric:
        """The ingest's LeadsAcceptedByCampaign for one tracked campaign (EMF dimensions: service, stage, campaign)."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name="LeadsAcceptedByCampaign",
            dimensions_map={"service": INGEST_SERVICE, **stage_dimension({STAGE_VARIABLE: stage}), "campaign": code},
            statistic="Sum",
            period=period,
            label=code,
        )

"""A database outage costs time, never leads: on-call is paged within minutes, by the worker's own metric.

The worker reports a batch it could not store as failures (it does not raise), so Lambda's Errors
metric stays quiet; SQS's ApproximateAgeOfOldestMessage skips messages received three times or
more. The page therefore comes from the EMF metric `DatabaseUnavailable` the worker emits.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from functions.contract.observability import METRICS_NAMESPACE, WORKER_SERVICE
from infra.config import PipelineSettings
from tests.infra.conftest import synthesize
from tests.infra.template_queries import only, resources


def database_unavailable_alarm(template: Template) -> dict[str, Any]:
    [alarm] = [
        a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "DatabaseUnavailable"
    ]
    return alarm


def test_the_alarm_watches_the_workers_metric_as_agreed(prod: Template, prod_settings: PipelineSettings) -> None:
    # Given prod's template (alarm_db_unavailable_minutes left at its default)
    alarm = database_unavailable_alarm(prod)
    # Then it sums the worker's EMF metric per minute and fires on any failed batch in every minute of the window
    assert (alarm["Namespace"], alarm["MetricName"]) == (METRICS_NAMESPACE, "DatabaseUnavailable")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": WORKER_SERVICE}, {"Name": "stage", "Value": "prod"}]
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 60)
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == prod_settings.alarm_db_unavailable_minutes == 2
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["TreatMissingData"] == "notBreaching"
    # And it pages on-call through the alarm topic, and says when it is over
    topic_id, _ = only(prod, "AWS::SNS::Topic")
    assert alarm["AlarmActions"] == [{"Ref": topic_id}] and alarm["OKActions"] == [{"Ref": topic_id}]


@pytest.mark.parametrize("minutes", [1, 5])
def test_the_window_follows_the_setting_and_pages_within_five_minutes(
    minutes: int, prod_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Given a stage that chose how many minutes of failed batches page
    settings = prod_settings.model_validate({**prod_settings.model_dump(), "alarm_db_unavailable_minutes": minutes})
    # When it is synthesized
    _, template = synthesize(settings, str(tmp_path_factory.mktemp(f"db-outage-{minutes}")))
    # Then the alarm needs exactly that many breaching one-minute periods: at most 5 minutes after the first failure
    alarm = database_unavailable_alarm(template)
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == minutes
    assert alarm["Period"] * alarm["EvaluationPeriods"] <= 5 * 60


def dashboard_widgets(template: Template) -> list[dict[str, Any]]:
    """The dashboard's widgets, its body's CloudFormation tokens (region, ids) replaced by TOKEN."""
    _, dashboard = only(template, "AWS::CloudWatch::Dashboard")
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    return json.loads("".join(part if isinstance(part, str) else "TOKEN" for part in parts))["widgets"]


def test_the_dashboard_graphs_the_metric(prod: Template, prod_settings: PipelineSettings) -> None:
    [widget] = [
        w
        for w in dashboard_widgets(prod)
        if w["properties"].get("title") == "Database unreachable (batches per minute)"
    ]
    [metric] = widget["properties"]["metrics"]
    assert metric == [
        METRICS_NAMESPACE,
        "DatabaseUnavailable",
        "service",
        WORKER_SERVICE,
        "stage",
        "prod",
        {"period": 60, "stat": "Sum"},
    ]
    [line] = widget["properties"]["annotations"]["horizontal"]
    assert (line["value"], line["label"]) == (1, f"pages after {prod_settings.alarm_db_unavailable_minutes} min")


def test_the_worker_gets_its_database_limits_from_the_settings(prod: Template, prod_settings: PipelineSettings) -> None:
    [worker] = [
        f
        for f in resources(prod, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "functions.worker.handler.lambda_handler"
    ]
    env = worker["Properties"]["Environment"]["Variables"]
    assert {
        k: env[k]
        for k in (
            "DB_CONNECT_TIMEOUT_SECONDS",
            "DB_STATEMENT_TIMEOUT_SECONDS",
            "DB_LOCK_TIMEOUT_SECONDS",
            "WORKER_TIMEOUT_SECONDS",
        )
    } == {
        "DB_CONNECT_TIMEOUT_SECONDS": str(prod_settings.db_connect_timeout_seconds),
        "DB_STATEMENT_TIMEOUT_SECONDS": str(prod_settings.db_statement_timeout_seconds),
        "DB_LOCK_TIMEOUT_SECONDS": str(prod_settings.db_lock_timeout_seconds),
        "WORKER_TIMEOUT_SECONDS": str(worker["Properties"]["Timeout"]),
    }

"""Two stages in one account and region page on their own database only.

cdk.json deploys prod and staging side by side (staging uses `api_gateway_cloudwatch_role: existing`, i.e.
prod's account and region). CloudWatch identifies a metric by its namespace, name and dimensions within an
account and region ("a dimension is part of the unique identifier for a metric",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Dimension). If both
stages publish `DatabaseUnavailable` under the same identity, staging's held drain keeps prod's alarm in ALARM,
and an alarm acts only on a state transition ("the actions happen only on state transitions, and are not
performed again if the condition persists",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-actions.html): prod's own outage then
pages nobody and does not wake prod's drain breaker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from functions.contract.observability import METRICS_NAMESPACE
from infra.config import REPO_ROOT
from tests.infra.conftest import SynthesizedStage
from tests.infra.template_queries import INGEST_HANDLER, PROBE_HANDLER, WORKER_HANDLER, resources


def outage_alarm_metric(stage: SynthesizedStage) -> tuple[str, str, frozenset[tuple[str, str]]]:
    [alarm] = [
        a["Properties"]
        for a in resources(stage.template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "DatabaseUnavailable"
    ]
    dimensions = frozenset((d["Name"], d["Value"]) for d in alarm["Dimensions"])
    return alarm["Namespace"], alarm["MetricName"], dimensions


def literal_environment(stage: SynthesizedStage, handler: str) -> dict[str, str]:
    """The function's environment variables whose values the template states (not Refs)."""
    [function] = [
        f["Properties"]
        for f in resources(stage.template, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == handler
    ]
    return {k: v for k, v in function["Environment"]["Variables"].items() if isinstance(v, str)}


# A cold start of the function with its deployed environment: report one batch that found the database away,
# or one probe run that held the drain, and print the EMF documents it writes.
EMIT_OUTAGE = {
    WORKER_HANDLER: """
from functions.worker import handler
from functions.worker.logic import BatchSummary
handler.report_batch(BatchSummary(received=1, database_unavailable=True))
handler.metrics.flush_metrics()
""",
    PROBE_HANDLER: """
from functions.worker import probe_handler
probe_handler.report_worker_outage()
""",
    INGEST_HANDLER: """
from functions.ingest import handler
handler.metrics.add_metric(name="LeadsAccepted", unit="Count", value=1)
handler.metrics.flush_metrics()
""",
}


def emitted_metrics(
    environment: dict[str, str], handler: str, metric_name: str = "DatabaseUnavailable"
) -> list[tuple[str, frozenset[tuple[str, str]]]]:
    run = subprocess.run(
        [sys.executable, "-c", EMIT_OUTAGE[handler]],
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(REPO_ROOT),
            "AWS_DEFAULT_REGION": "eu-west-1",
            **environment,
        },
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    found = []
    for line in run.stdout.splitlines():
        if not line.startswith("{"):
            continue
        document: dict[str, Any] = json.loads(line)
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            if any(m["Name"] == metric_name for m in directive["Metrics"]):
                for dimension_set in directive["Dimensions"]:
                    found.append((directive["Namespace"], frozenset((k, document[k]) for k in dimension_set)))
    return found


def test_prod_and_staging_alarm_on_different_metrics(stages: dict[str, SynthesizedStage]) -> None:
    # Given the two stages of cdk.json that have a database, deployed in one account and region
    prod, staging = stages["prod"], stages["staging"]
    # Then their DatabaseUnavailable alarms watch two different CloudWatch metrics
    assert outage_alarm_metric(prod) != outage_alarm_metric(staging)


@pytest.mark.parametrize("handler", [WORKER_HANDLER, PROBE_HANDLER])
@pytest.mark.parametrize("stage_name", ["prod", "staging"])
def test_the_function_publishes_the_metric_its_own_stages_alarm_watches(
    stages: dict[str, SynthesizedStage], stage_name: str, handler: str
) -> None:
    # Given a stage's function, started with the environment its template gives it
    stage = stages[stage_name]
    environment = literal_environment(stage, handler)
    # When it reports that the database did not answer
    emitted = emitted_metrics(environment, handler)
    # Then the datapoint lands on exactly the metric that stage's alarm watches
    namespace, _, dimensions = outage_alarm_metric(stage)
    assert emitted == [(namespace, dimensions)]


def dashboard_metric(stage: SynthesizedStage, metric_name: str) -> tuple[str, frozenset[tuple[str, str]]]:
    """Namespace and dimensions of the dashboard's graph of a custom metric (tokens in the body read TOKEN)."""
    [dashboard] = resources(stage.template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    widgets = json.loads("".join(part if isinstance(part, str) else "TOKEN" for part in parts))["widgets"]
    [line] = [
        line
        for widget in widgets
        for line in widget["properties"].get("metrics", [])
        if line[:2] == [METRICS_NAMESPACE, metric_name]
    ]
    names_and_values = [item for item in line[2:] if isinstance(item, str)]
    return line[0], frozenset(zip(names_and_values[::2], names_and_values[1::2], strict=True))


@pytest.mark.parametrize("stage_name", ["prod", "staging"])
def test_the_ingest_publishes_the_accepted_leads_its_stages_dashboard_graphs(
    stages: dict[str, SynthesizedStage], stage_name: str
) -> None:
    # Given a stage's ingest, started with the environment its template gives it
    stage = stages[stage_name]
    environment = literal_environment(stage, INGEST_HANDLER)
    # When it counts an accepted lead
    emitted = emitted_metrics(environment, INGEST_HANDLER, "LeadsAccepted")
    # Then the datapoint lands on the metric that stage's dashboard graphs, not on another stage's
    assert emitted == [dashboard_metric(stage, "LeadsAccepted")]

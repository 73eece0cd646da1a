"""The dashboard's per-campaign numbers read exactly what the ingest writes: its EMF metric for tracked
campaigns, and its "lead queued" log lines (campaign, utm_source) for every campaign and source."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from functions.contract.observability import stage_dimension
from functions.ingest import handler as ingest
from functions.ingest.api import build_app
from functions.ingest.settings import IngestSettings
from infra.config import PipelineSettings
from tests.events import RecordingQueue, api_event
from tests.infra.conftest import synthesize
from tests.infra.template_queries import INGEST_HANDLER, function_by_handler, only, ref_id


def dashboard_body(template: Template) -> tuple[dict[str, Any], list[Any]]:
    """The dashboard's JSON, with each CloudFormation token (a log group's name, the Region) as "<token n>"."""
    _, dashboard = only(template, "AWS::CloudWatch::Dashboard")
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    tokens = [p for p in parts if not isinstance(p, str)]
    text = "".join(p if isinstance(p, str) else f"<token {tokens.index(p)}>" for p in parts)
    return json.loads(text), tokens


def what_the_ingest_writes(
    template: Template, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The EMF document and the log line the real ingest prints for a lead of a tracked campaign, with the
    Powertools settings the stack gives the function (its service name is a dimension of the metric)."""
    _, function = function_by_handler(template, INGEST_HANDLER)
    environment = function["Properties"]["Environment"]["Variables"]
    for name, value in environment.items():
        if name.startswith("POWERTOOLS_") and isinstance(value, str):
            monkeypatch.setenv(name, value)
    # The handler module sets its stage dimension when Lambda imports it, from the same environment
    ingest.metrics.set_default_dimensions(**stage_dimension(environment))
    config = IngestSettings(LEADS_QUEUE_URL="https://sqs.invalid/q", METRIC_CAMPAIGNS="summersale20")
    app = build_app(config, RecordingQueue().publish, ingest.logger, ingest.metrics)
    lead = {"email": "ada@example.com", "campaign": "SummerSale20", "utm_source": "newsletter"}
    try:
        assert app.resolve(api_event(json.dumps(lead)), None)["statusCode"] == 202
        ingest.metrics.flush_metrics()
    finally:
        ingest.metrics.clear_default_dimensions()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [emf] = [line for line in lines if "LeadsAcceptedByCampaign" in line]
    [queued] = [line for line in lines if line.get("message") == "lead queued"]
    return emf, queued


@pytest.fixture(scope="module")
def tracked(prod_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory) -> Template:
    settings = prod_settings.model_copy(update={"metric_campaigns": ["SUMMERSALE20", "WINTER"]})
    return synthesize(settings, str(tmp_path_factory.mktemp("tracked")))[1]


def test_the_tracked_campaigns_graph_reads_the_ingests_own_metric(tracked: Template, monkeypatch, capsys) -> None:
    # Given what the ingest emits for a lead of a tracked campaign, configured as the stack configures it
    emf, _ = what_the_ingest_writes(tracked, monkeypatch, capsys)
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    emitted = [directive["Namespace"], "LeadsAcceptedByCampaign"] + sorted(
        f"{name}={emf[name]}" for name in directive["Dimensions"][0]
    )
    # When the dashboard's metrics are listed (CloudWatch matches a metric by namespace, name and every dimension:
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Dimension)
    body, _ = dashboard_body(tracked)
    graphed = [
        [m[0], m[1]] + sorted(f"{m[i]}={m[i + 1]}" for i in range(2, len(m) - 1, 2) if isinstance(m[i], str))
        for widget in body["widgets"]
        for m in widget["properties"].get("metrics", [])
        if m[1] == "LeadsAcceptedByCampaign"
    ]
    # Then the per-hour graph and the last-day figures plot exactly that metric, once per tracked campaign
    assert emitted in graphed
    assert {next(p for p in m if p.startswith("campaign=")) for m in graphed} == {
        "campaign=SUMMERSALE20",
        "campaign=WINTER",
    }
    assert len(graphed) == 4


def test_every_campaign_and_source_is_counted_from_the_ingests_log_lines(
    tracked: Template, monkeypatch, capsys
) -> None:
    # Given the ingest's log line for a queued lead
    _, queued = what_the_ingest_writes(tracked, monkeypatch, capsys)
    assert (queued["campaign"], queued["utm_source"]) == ("SUMMERSALE20", "newsletter")
    # Then the dashboard's log query filters those lines in the ingest's own log group, and counts by both fields
    body, tokens = dashboard_body(tracked)
    [widget] = [w for w in body["widgets"] if w["type"] == "log"]
    query = widget["properties"]["query"]
    assert query.startswith("SOURCE '<token ") and 'filter message = "lead queued"' in query
    assert "stats count(*) as leads by campaign, utm_source" in query
    source = tokens[int(query.split("<token ")[1].split(">")[0])]
    ingest_id, ingest_function = function_by_handler(tracked, INGEST_HANDLER)
    assert ref_id(source) == ref_id(ingest_function["Properties"]["LoggingConfig"]["LogGroup"])


def test_without_tracked_campaigns_no_campaign_metric_is_graphed(prod: Template) -> None:
    body, _ = dashboard_body(prod)
    metrics = [m for w in body["widgets"] for m in w["properties"].get("metrics", [])]
    assert [m for m in metrics if "LeadsAcceptedByCampaign" in m] == []
    assert [w["type"] for w in body["widgets"]].count("log") == 1

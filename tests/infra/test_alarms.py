"""Every alarm, as a table keyed by its name: which metric of which resource, how it is aggregated
and for how long, the threshold, and who is told. An alarm that watches the wrong queue, the wrong
function or the wrong window looks fine in the console and never pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk.assertions import Template

from functions.contract.observability import METRICS_NAMESPACE, WORKER_SERVICE
from functions.worker.probe_handler import DRAIN_PROBE_SERVICE
from infra.config import PipelineSettings
from infra.monitoring import PipelineMonitoring
from tests.infra.conftest import SynthesizedStage
from tests.infra.template_queries import INGEST_HANDLER, PROBE_HANDLER, RETENTION_HANDLER, WORKER_HANDLER


@dataclass(frozen=True)
class Watched:
    """Logical ids (or names) of what the prod stack's alarms can watch."""

    leads_queue: str
    dead_letter_queue: str
    worker: str
    ingest: str
    probe: str
    retention: str
    api_name: str
    topic: str


@dataclass(frozen=True)
class ExpectedAlarm:
    namespace: str
    metric: str
    dimensions: Callable[[Watched], dict[str, Any]]
    statistic: str
    period_seconds: int
    evaluation_periods: Callable[[PipelineSettings], int]
    threshold: Callable[[PipelineSettings], float]
    datapoints_to_alarm: Callable[[PipelineSettings], int] | None = None
    comparison: str = "GreaterThanOrEqualToThreshold"
    missing_data: str = "notBreaching"


def queue_name(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "QueueName"]}


def fixed(value: float) -> Callable[[PipelineSettings], float]:
    return lambda _: value


EXPECTED: dict[str, ExpectedAlarm] = {
    "QueueAge": ExpectedAlarm(
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        lambda w: {"QueueName": queue_name(w.leads_queue)},
        "Maximum",
        60,
        fixed(3),
        lambda s: s.alarm_queue_age_seconds,
    ),
    "QueueDepth": ExpectedAlarm(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        lambda w: {"QueueName": queue_name(w.leads_queue)},
        "Maximum",
        60,
        fixed(3),
        lambda s: s.alarm_queue_depth,
    ),
    "DeadLetters": ExpectedAlarm(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        lambda w: {"QueueName": queue_name(w.dead_letter_queue)},
        "Maximum",
        60,
        fixed(1),
        fixed(1),
    ),
    "WorkerErrors": ExpectedAlarm(
        "AWS/Lambda",
        "Errors",
        lambda w: {"FunctionName": {"Ref": w.worker}},
        "Sum",
        300,
        fixed(1),
        lambda s: s.alarm_worker_errors,
    ),
    "WorkerThrottles": ExpectedAlarm(
        "AWS/Lambda",
        "Throttles",
        lambda w: {"FunctionName": {"Ref": w.worker}},
        "Sum",
        300,
        fixed(1),
        lambda s: s.alarm_worker_throttles,
    ),
    "IngestLatencyP99": ExpectedAlarm(
        "AWS/Lambda",
        "Duration",
        lambda w: {"FunctionName": {"Ref": w.ingest}},
        "p99",
        300,
        fixed(3),
        lambda s: s.alarm_ingest_p99_ms,
    ),
    # The agreed interface with the worker: one DatabaseUnavailable datapoint per batch the database refused.
    "DatabaseUnavailable": ExpectedAlarm(
        METRICS_NAMESPACE,
        "DatabaseUnavailable",
        lambda w: {"service": WORKER_SERVICE, "stage": "prod"},  # each stage its own metric
        "Sum",
        60,
        lambda s: s.alarm_db_unavailable_minutes,
        fixed(1),
        datapoints_to_alarm=lambda s: s.alarm_db_unavailable_minutes,
    ),
    # A drain breaker whose probe cannot run holds nothing and says nothing: failed in each of 3 minutes, it pages.
    "DrainProbeErrors": ExpectedAlarm(
        "AWS/Lambda",
        "Errors",
        lambda w: {"FunctionName": {"Ref": w.probe}},
        "Sum",
        60,
        fixed(3),
        fixed(1),
        datapoints_to_alarm=fixed(3),
    ),
    # ... and one that is never invoked (schedule rule disabled) fails nothing: no run in 5 minutes pages.
    # Lambda publishes no Invocations datapoint for a minute without runs, so missing data must breach.
    "DrainProbeSilent": ExpectedAlarm(
        "AWS/Lambda",
        "Invocations",
        lambda w: {"FunctionName": {"Ref": w.probe}},
        "Sum",
        60,
        fixed(5),
        fixed(1),
        datapoints_to_alarm=fixed(5),
        comparison="LessThanThreshold",
        missing_data="breaching",
    ),
    # A governor that fails every run (its record refused, the mapping's API denied) leaves the writers where they
    # were, possibly at the floor, and the probe swallows its error: no DrainWriters datapoint in 5 minutes pages.
    "DrainGovernorSilent": ExpectedAlarm(
        METRICS_NAMESPACE,
        "DrainWriters",
        lambda w: {"service": DRAIN_PROBE_SERVICE, "stage": "prod"},
        "SampleCount",
        60,
        fixed(5),
        fixed(1),
        datapoints_to_alarm=fixed(5),
        comparison="LessThanThreshold",
        missing_data="breaching",
    ),
    # The hourly retention: a run that fails (Lambda counts a timeout as an error) pages within the hour...
    "RetentionFailed": ExpectedAlarm(
        "AWS/Lambda", "Errors", lambda w: {"FunctionName": {"Ref": w.retention}}, "Sum", 3600, fixed(1), fixed(1)
    ),
    # ... and a schedule that stopped (no invocation, so no datapoint at all) pages after three empty hours.
    "RetentionSilent": ExpectedAlarm(
        "AWS/Lambda",
        "Invocations",
        lambda w: {"FunctionName": {"Ref": w.retention}},
        "Sum",
        3600,
        fixed(3),
        fixed(1),
        datapoints_to_alarm=fixed(3),
        comparison="LessThanThreshold",
        missing_data="breaching",
    ),
}
# The API's 5XX rate is a metric-math alarm: errors over requests, both of this API, over five minutes.
API_5XX_RATE = "Api5xxRate"


def only_one(template: Template, kind: str, **props: Any) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(kind, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {kind} with {props}, found {list(found)}"
    return next(iter(found.items()))


def watched(template: Template) -> Watched:
    queues = template.find_resources("AWS::SQS::Queue")
    [leads] = [k for k, v in queues.items() if "RedrivePolicy" in v["Properties"]]
    [dlq] = [k for k, v in queues.items() if "RedrivePolicy" not in v["Properties"]]
    _, api = only_one(template, "AWS::ApiGateway::RestApi")
    return Watched(
        leads_queue=leads,
        dead_letter_queue=dlq,
        worker=only_one(template, "AWS::Lambda::Function", Handler=WORKER_HANDLER)[0],
        ingest=only_one(template, "AWS::Lambda::Function", Handler=INGEST_HANDLER)[0],
        probe=only_one(template, "AWS::Lambda::Function", Handler=PROBE_HANDLER)[0],
        retention=only_one(template, "AWS::Lambda::Function", Handler=RETENTION_HANDLER)[0],
        api_name=api["Properties"]["Name"],
        topic=only_one(template, "AWS::SNS::Topic")[0],
    )


@dataclass(frozen=True)
class SynthesizedAlarms:
    template: Template
    by_name: dict[str, dict[str, Any]]  # PipelineMonitoring.alarms' keys -> the alarm's template properties
    unnamed: set[str]  # logical ids of alarms that are not in PipelineMonitoring.alarms


@pytest.fixture(scope="module")
def prod_alarms(stages: dict[str, SynthesizedStage]) -> SynthesizedAlarms:
    """The prod stack, with each alarm found through PipelineMonitoring.alarms (the agreed names)."""
    stack = stages["prod"].stack
    [monitoring] = [child for child in stack.node.children if isinstance(child, PipelineMonitoring)]
    logical_ids = {
        name: stack.resolve(alarm.node.default_child.logical_id) for name, alarm in monitoring.alarms.items()
    }
    template = stages["prod"].template
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    return SynthesizedAlarms(
        template=template,
        by_name={name: alarms[logical_id]["Properties"] for name, logical_id in logical_ids.items()},
        unnamed=set(alarms) - set(logical_ids.values()),
    )


def assert_pages_on_call(
    props: dict[str, Any],
    topic_id: str,
    comparison: str = "GreaterThanOrEqualToThreshold",
    missing_data: str = "notBreaching",
) -> None:
    assert props["AlarmActions"] == [{"Ref": topic_id}]
    assert props["OKActions"] == [{"Ref": topic_id}]
    assert props["ComparisonOperator"] == comparison
    assert props["TreatMissingData"] == missing_data


def test_every_alarm_in_the_stack_is_in_the_table(prod_alarms: SynthesizedAlarms) -> None:
    # Given the prod stack  When its alarms are listed by name  Then each one is specified below
    # (a row the stack lacks fails in the per-alarm test, naming the alarm)
    assert prod_alarms.unnamed == set(), "an alarm outside PipelineMonitoring.alarms"
    assert set(prod_alarms.by_name) <= {*EXPECTED, API_5XX_RATE}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_alarm_watches_the_right_metric_of_the_right_resource(
    name: str, prod_alarms: SynthesizedAlarms, prod_settings: PipelineSettings
) -> None:
    # Given the row of the table for this alarm, and the resources of the prod stack
    expected = EXPECTED[name]
    resources = watched(prod_alarms.template)
    # When the alarm is read from the synthesized template
    props = prod_alarms.by_name.get(name)
    assert props is not None, f"no alarm named {name} in PipelineMonitoring"
    # Then it watches that metric of exactly that resource, aggregated and timed as specified
    assert (props["Namespace"], props["MetricName"]) == (expected.namespace, expected.metric)
    assert {d["Name"]: d["Value"] for d in props["Dimensions"]} == expected.dimensions(resources)
    statistic = props.get("ExtendedStatistic") or props.get("Statistic")
    assert statistic == expected.statistic
    assert props["Period"] == expected.period_seconds
    assert props["EvaluationPeriods"] == expected.evaluation_periods(prod_settings)
    assert props["Threshold"] == expected.threshold(prod_settings)
    if expected.datapoints_to_alarm is not None:
        assert props["DatapointsToAlarm"] == expected.datapoints_to_alarm(prod_settings)
    else:
        assert props.get("DatapointsToAlarm", props["EvaluationPeriods"]) == props["EvaluationPeriods"]
    # And it pages on-call through the alarm topic, and says when it is over
    assert_pages_on_call(props, resources.topic, expected.comparison, expected.missing_data)


def test_api_5xx_rate_divides_this_apis_errors_by_its_requests(
    prod_alarms: SynthesizedAlarms, prod_settings: PipelineSettings
) -> None:
    # Given the prod stack's API
    resources = watched(prod_alarms.template)
    # When the 5XX-rate alarm is read
    props = prod_alarms.by_name[API_5XX_RATE]
    # Then its expression is a percentage of requests, over this API's own two metrics, five minutes each
    [expression] = [m for m in props["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "IF(requests > 0, 100 * errors / requests, 0)"
    assert expression.get("ReturnData", True) is True
    stats = {m["Id"]: m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m}
    assert set(stats) == {"errors", "requests"}
    for metric_id, (metric_name, statistic) in {
        "errors": ("5XXError", "Sum"),
        "requests": ("Count", "SampleCount"),
    }.items():
        stat = stats[metric_id]
        assert stat["Metric"]["Namespace"] == "AWS/ApiGateway"
        assert stat["Metric"]["MetricName"] == metric_name
        assert stat["Metric"]["Dimensions"] == [{"Name": "ApiName", "Value": resources.api_name}]
        assert (stat["Stat"], stat["Period"]) == (statistic, 300)
    assert props["EvaluationPeriods"] == 1
    assert props["Threshold"] == prod_settings.alarm_api_5xx_percent
    assert_pages_on_call(props, resources.topic)


def test_the_drain_governor_runs_in_the_probe_whose_schedule_and_alarms_the_table_holds(
    prod_alarms: SynthesizedAlarms,
) -> None:
    # Given the prod stack (governor on by default)
    template = prod_alarms.template
    resources = watched(template)
    # When the function that runs the governor (the one given its limits; the worker only reads its record) is found
    governors = [
        logical_id
        for logical_id, function in template.find_resources("AWS::Lambda::Function").items()
        if "GOVERNOR_FLOOR_WRITERS" in function["Properties"].get("Environment", {}).get("Variables", {})
    ]
    # Then it is the probe: its every-minute schedule and the table's DrainProbeErrors / DrainProbeSilent rows watch it
    assert governors == [resources.probe]
    schedules = [
        r["Properties"]
        for r in template.find_resources("AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
        and [t["Arn"]["Fn::GetAtt"][0] for t in r["Properties"]["Targets"]] == [resources.probe]
    ]
    assert [rule["ScheduleExpression"] for rule in schedules] == ["rate(1 minute)"]
    for name in ("DrainProbeErrors", "DrainProbeSilent"):
        assert EXPECTED[name].dimensions(resources) == {"FunctionName": {"Ref": resources.probe}}
        assert {d["Name"]: d["Value"] for d in prod_alarms.by_name[name]["Dimensions"]} == {
            "FunctionName": {"Ref": resources.probe}
        }

"""The drain breaker in the template: least privilege on the one mapping, every minute, the worker's credentials."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.breaker import DrainBreaker
from infra.config import PipelineSettings
from infra.imported_secret import secret_resource_arns
from infra.queue import LeadQueue
from infra.worker import LeadWorker
from tests.infra.template_queries import (
    PROBE_HANDLER,
    WORKER_HANDLER,
    actions,
    function_by_handler,
    only,
    policy_statements_of_role,
    ref_id,
    resources,
    ssm_parameter,
)


def probe(template: Template) -> tuple[str, dict[str, Any]]:
    return function_by_handler(template, PROBE_HANDLER)


def pause_record(template: Template) -> tuple[str, dict[str, Any]]:
    """The operator's pause record (the drain governor keeps a record of its own beside it)."""
    return ssm_parameter(template, "Leadpipe drain: the operator's pause")


def mapping_id(template: Template) -> str:
    return only(template, "AWS::Lambda::EventSourceMapping")[0]


def test_probe_may_get_and_update_only_the_workers_mapping(prod: Template) -> None:
    # Given the prod stack
    _, function = probe(prod)
    statements = policy_statements_of_role(prod, ref_id(function["Properties"]["Role"]))
    # Then exactly one statement touches event source mappings: the two actions, on that mapping's ARN
    # (AWS's sample policy for pausing a mapping scopes them the same way:
    #  https://docs.aws.amazon.com/r53recovery/latest/dg/security_iam_region_switch_lambda_esm.html)
    [statement] = [s for s in statements if any(a.startswith("lambda:") for a in actions(s))]
    assert statement["Effect"] == "Allow"
    assert sorted(actions(statement)) == ["lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"]
    resource = json.dumps(statement["Resource"])
    assert ":event-source-mapping/" not in resource and ":event-source-mapping:" in resource
    assert json.dumps({"Ref": mapping_id(prod)}) in resource and "*" not in resource
    # And no role of the stack may switch any other mapping
    for policy in resources(prod, "AWS::IAM::Policy").values():
        for other in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "lambda:UpdateEventSourceMapping" in actions(other):
                assert json.dumps(other["Resource"]) == resource


def test_probe_reads_the_workers_secret_and_the_pause_record_only(
    prod: Template, prod_settings: PipelineSettings
) -> None:
    _, function = probe(prod)
    statements = policy_statements_of_role(prod, ref_id(function["Properties"]["Role"]))
    secret_reads = [s for s in statements if "secretsmanager:GetSecretValue" in actions(s)]
    # The ARN as given and with Secrets Manager's random suffix: it may be complete or partial (imported_secret.py)
    assert [s["Resource"] for s in secret_reads] == [secret_resource_arns(prod_settings.db_secret_arn)]
    parameter_id = pause_record(prod)[0]
    [parameter_read] = [
        s
        for s in statements
        if any(a.startswith("ssm:") for a in actions(s))
        and json.dumps({"Ref": parameter_id}) in json.dumps(s["Resource"])
    ]
    assert "ssm:PutParameter" not in actions(parameter_read)  # only `leadpipe drain pause`, as the operator, writes it
    assert json.dumps({"Ref": parameter_id}) in json.dumps(parameter_read["Resource"])


def test_probe_runs_every_minute_with_the_workers_environment(prod: Template) -> None:
    probe_id, function = probe(prod)
    _, worker = function_by_handler(prod, WORKER_HANDLER)
    # Every minute: the resume comes within 60 s of the database answering (A database outage costs time, never leads)
    schedules = [r for r in resources(prod, "AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]
    [rule] = [r for r in schedules if probe_id in json.dumps(r["Properties"]["Targets"])]  # the retention has its own
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert [ref_id(t["Arn"]) for t in rule["Properties"]["Targets"]] == [probe_id]
    environment = function["Properties"]["Environment"]["Variables"]
    assert environment["EVENT_SOURCE_MAPPING_ID"] == {"Ref": mapping_id(prod)}
    assert environment["DRAIN_PAUSE_PARAMETER"] == {"Ref": pause_record(prod)[0]}
    for name in ("DB_SECRET_ARN", "LEADS_TABLE", "DB_SSLMODE"):
        assert environment[name] == worker["Properties"]["Environment"]["Variables"][name]
    assert "DATABASE_URL" not in environment
    assert function["Properties"]["ReservedConcurrentExecutions"] == 1
    # The pause record starts as "not paused"
    assert json.loads(pause_record(prod)[1]["Properties"]["Value"]) == {"paused": False}


def test_the_worker_does_not_depend_on_the_probe(prod: Template) -> None:
    # The probe references the mapping; the worker and its mapping must not reference the probe (no cycle)
    probe_id, _ = probe(prod)
    worker_id, worker = function_by_handler(prod, WORKER_HANDLER)
    _, mapping = only(prod, "AWS::Lambda::EventSourceMapping")
    assert probe_id not in json.dumps(worker) and probe_id not in json.dumps(mapping)
    assert ref_id(mapping["Properties"]["FunctionName"]) == worker_id


def test_probe_lives_where_the_worker_does(in_vpc: Template) -> None:
    _, function = probe(in_vpc)
    _, worker = function_by_handler(in_vpc, WORKER_HANDLER)
    assert function["Properties"]["VpcConfig"] == worker["Properties"]["VpcConfig"]


def test_no_breaker_without_a_database(dev: Template) -> None:
    # dev has no db_secret_arn: its event source is created disabled and nothing may enable it
    assert resources(dev, "AWS::Lambda::Function") and not any(
        f["Properties"].get("Handler") == PROBE_HANDLER for f in resources(dev, "AWS::Lambda::Function").values()
    )
    assert not any(k.startswith("Drain") for k in dev.find_outputs("*"))


def test_stack_outputs_name_what_leadpipe_drain_needs(prod: Template) -> None:
    outputs = prod.find_outputs("*")
    assert outputs["WorkerEventSourceMappingId"]["Value"] == {"Ref": mapping_id(prod)}
    assert outputs["DrainPauseParameterName"]["Value"] == {"Ref": pause_record(prod)[0]}
    assert outputs["DrainProbeFunctionName"]["Value"] == {"Ref": probe(prod)[0]}


def test_a_trip_alarm_invokes_the_probe_on_every_state_change(prod_settings: PipelineSettings, tmp_path) -> None:
    # Given a breaker with the agreed DatabaseUnavailable alarm as its trip alarm (cdk-nag attached)
    app = cdk.App(context={"aws:cdk:bundling-stacks": []}, outdir=str(tmp_path))
    stack = cdk.Stack(app, "BreakerOnly", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    queue = LeadQueue(
        stack, "Queue", visibility_timeout=cdk.Duration.minutes(3), max_receive_count=5, retention=cdk.Duration.days(14)
    )
    worker = LeadWorker(stack, "Worker", settings=prod_settings, queue=queue.queue)
    metric = cloudwatch.Metric(
        namespace="Leadpipe", metric_name="DatabaseUnavailable", dimensions_map={"service": "leadpipe-worker"}
    )
    alarm = cloudwatch.Alarm(stack, "DatabaseUnavailable", metric=metric, threshold=1, evaluation_periods=2)
    DrainBreaker(stack, "DrainBreaker", settings=prod_settings, worker=worker, trip_alarms=[alarm])
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    template = Template.from_stack(stack)
    # Then a rule sends that alarm's state changes to the probe
    [rule] = [r for r in resources(template, "AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.cloudwatch"] and pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert [ref_id(r) for r in pattern["resources"]] == [only(template, "AWS::CloudWatch::Alarm")[0]]
    assert [ref_id(t["Arn"]) for t in rule["Properties"]["Targets"]] == [probe(template)[0]]


def test_synth_warns_when_a_failed_message_would_come_back_before_the_breaker_trips(
    prod_settings: PipelineSettings, tmp_path
) -> None:
    # Given a worker timeout of 10 s: visibility 6 x 10 s + the 1 s window = 61 s, shorter than a minute's schedule
    # plus the probe
    settings = prod_settings.model_copy(update={"worker_timeout_seconds": 10})
    app = cdk.App(context={"aws:cdk:bundling-stacks": []}, outdir=str(tmp_path))
    stack = cdk.Stack(app, "ShortVisibility", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    queue = LeadQueue(
        stack,
        "Queue",
        visibility_timeout=cdk.Duration.seconds(settings.queue_visibility_timeout_seconds),
        max_receive_count=5,
        retention=cdk.Duration.days(14),
    )
    DrainBreaker(
        stack,
        "DrainBreaker",
        settings=settings,
        worker=LeadWorker(stack, "Worker", settings=settings, queue=queue.queue),
    )
    # Then synth says what an outage may cost and what to change
    warnings = [str(w.entry.data) for w in Annotations.from_stack(stack).find_warning("*", Match.any_value())]
    assert settings.queue_visibility_timeout_seconds == 61
    assert any(
        "(61 s) is shorter than the breaker's 90 s to trip" in w and "worker_timeout_seconds" in w for w in warnings
    ), warnings

"""The retention in the template: hourly, one at a time, the worker's secret and network path, nothing more."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from infra.config import PipelineSettings
from tests.infra.template_queries import (
    RETENTION_HANDLER,
    WORKER_HANDLER,
    actions,
    function_by_handler,
    policy_statements_of_role,
    ref_id,
    resources,
)


def retention(template: Template) -> tuple[str, dict[str, Any]]:
    return function_by_handler(template, RETENTION_HANDLER)


def test_the_retention_runs_every_hour_one_run_at_a_time(prod: Template) -> None:
    # Given the prod stack
    function_id, function = retention(prod)
    # Then one EventBridge rule invokes it every hour
    # (rate expressions: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html)
    [rule] = [
        r
        for r in resources(prod, "AWS::Events::Rule").values()
        if function_id in json.dumps(r["Properties"].get("Targets", []))
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    assert rule["Properties"]["State"] == "ENABLED"
    # And EventBridge may invoke it: a rule's target needs the function's resource policy to allow events.amazonaws.com
    # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-lambda-permissions)
    permissions = [
        p["Properties"]
        for p in resources(prod, "AWS::Lambda::Permission").values()
        if ref_id(p["Properties"]["FunctionName"]) == function_id
    ]
    assert [(p["Principal"], p["Action"]) for p in permissions] == [("events.amazonaws.com", "lambda:InvokeFunction")]
    # And reserved concurrency 1 caps it at one database session: a run that outlasts the hour never overlaps the next
    # (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html)
    assert function["Properties"]["ReservedConcurrentExecutions"] == 1


def test_the_retention_gets_its_policy_and_the_workers_database_settings(
    prod: Template, prod_settings: PipelineSettings
) -> None:
    _, function = retention(prod)
    _, worker = function_by_handler(prod, WORKER_HANDLER)
    environment = function["Properties"]["Environment"]["Variables"]
    worker_environment = worker["Properties"]["Environment"]["Variables"]
    # The worker's database settings, so it connects as and where the worker does, with the same limits
    for name in ("DB_SECRET_ARN", "LEADS_TABLE", "DB_STATEMENT_TIMEOUT_SECONDS", "DB_LOCK_TIMEOUT_SECONDS"):
        assert environment[name] == worker_environment[name]
    # prod keeps leads (no lead_retention_days), and tombstones for the default 30 days
    assert "LEAD_RETENTION_DAYS" not in environment
    assert (
        environment["ERASURE_TOMBSTONE_RETENTION_DAYS"] == str(prod_settings.erasure_tombstone_retention_days) == "30"
    )


def test_in_a_vpc_the_retention_takes_the_workers_network_path(in_vpc: Template) -> None:
    # Given a stage whose database is reachable only inside its VPC
    _, function = retention(in_vpc)
    _, worker = function_by_handler(in_vpc, WORKER_HANDLER)
    # Then the retention is placed in the worker's subnets and security groups
    assert function["Properties"]["VpcConfig"] == worker["Properties"]["VpcConfig"]


def test_the_retention_may_read_the_database_secret_and_nothing_else(
    prod: Template, prod_settings: PipelineSettings
) -> None:
    _, function = retention(prod)
    statements = policy_statements_of_role(prod, ref_id(function["Properties"]["Role"]))
    granted = sorted({action for statement in statements for action in actions(statement)})
    # Its own logs and traces, and the secret: no queue, no SSM, no Lambda API
    assert not [a for a in granted if a.split(":")[0] in ("sqs", "ssm", "lambda")]
    # And the secret it may read is the worker's, granted the same way
    _, worker = function_by_handler(prod, WORKER_HANDLER)
    worker_statements = policy_statements_of_role(prod, ref_id(worker["Properties"]["Role"]))
    secret_reads = [s["Resource"] for s in statements if "secretsmanager:GetSecretValue" in actions(s)]
    assert secret_reads == [s["Resource"] for s in worker_statements if "secretsmanager:GetSecretValue" in actions(s)]
    assert prod_settings.db_secret_arn in json.dumps(secret_reads)


def test_a_stack_without_a_database_has_no_retention(dev: Template) -> None:
    # dev names no database: there is nothing to delete from
    assert [
        f for f in resources(dev, "AWS::Lambda::Function").values() if f["Properties"]["Handler"] == RETENTION_HANDLER
    ] == []

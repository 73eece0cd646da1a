"""The canary check in the template: the worker's network placement and credentials, read on its secret only."""

from __future__ import annotations

from aws_cdk.assertions import Template

from infra.canary import CANARY_OUTPUT
from tests.infra.template_queries import (
    CANARY_HANDLER,
    WORKER_HANDLER,
    actions,
    function_by_handler,
    policy_statements_of_role,
    ref_id,
)


def test_the_canary_check_sits_where_the_worker_sits_with_its_database_settings(in_vpc: Template) -> None:
    # Given a stage in a VPC
    _, canary = function_by_handler(in_vpc, CANARY_HANDLER)
    _, worker = function_by_handler(in_vpc, WORKER_HANDLER)
    # Then the canary check has the worker's subnets and security groups (so it reaches the database the worker
    # reaches) and the worker's database environment (table, secret, proxy, TLS, timeouts)
    assert canary["Properties"]["VpcConfig"] == worker["Properties"]["VpcConfig"]
    worker_environment = worker["Properties"]["Environment"]["Variables"]
    canary_environment = canary["Properties"]["Environment"]["Variables"]
    for name in ("LEADS_TABLE", "DB_SECRET_ARN", "DB_PROXY_ENDPOINT", "DB_SSLMODE", "DB_STATEMENT_TIMEOUT_SECONDS"):
        assert canary_environment[name] == worker_environment[name], name
    # And it reserves no concurrency: it runs only when `leadpipe verify` invokes it
    assert "ReservedConcurrentExecutions" not in canary["Properties"]


def test_the_canary_check_may_read_the_database_secret_and_nothing_else(in_vpc: Template) -> None:
    # Given the canary check's role
    _, canary = function_by_handler(in_vpc, CANARY_HANDLER)
    statements = policy_statements_of_role(in_vpc, ref_id(canary["Properties"]["Role"]))
    granted = sorted({a for s in statements for a in actions(s)})
    # Then beyond its logs and traces it may only read the secret: no SQS, no Lambda, no SSM
    # (Secrets Manager's read actions, as grant_read gives them:
    #  https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html)
    assert [a for a in granted if a.split(":")[0] not in ("logs", "xray", "ec2", "kms")] == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
    ]


def test_verify_finds_the_canary_check_by_a_stable_output_name(prod: Template) -> None:
    # Given the prod stack  Then its outputs name the canary check function under CANARY_OUTPUT
    [output] = prod.find_outputs(CANARY_OUTPUT).values()
    canary_id, _ = function_by_handler(prod, CANARY_HANDLER)
    assert output["Value"] == {"Ref": canary_id}

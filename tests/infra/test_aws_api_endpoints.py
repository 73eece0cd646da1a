"""Every AWS API a function's code calls is allowed by its role and reachable from where it runs, in every stage.

The calls come from the code itself (tests/infra/aws_call_inventory.py reads `functions/`), never from a list
we keep beside it. AWS's rules applied here:
- A function connected to a VPC has no route to the internet, and so to no public AWS endpoint, unless the
  subnets route through a NAT gateway; one not connected to a VPC runs in a Lambda-managed network that has:
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html
- An interface VPC endpoint with private DNS answers the service's default DNS name inside the VPC, and its
  security group must allow HTTPS (443) from the clients:
  https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html
  https://docs.aws.amazon.com/vpc/latest/privatelink/aws-services-privatelink-support.html (service names)
- An identity-based policy must allow the action (an implicit deny otherwise):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.aws_api_endpoints import (
    CANARY_CHECK_AWS_SERVICES,
    MIGRATE_AWS_SERVICES,
    PROBE_AWS_SERVICES,
    RETENTION_AWS_SERVICES,
    WORKER_AWS_SERVICES,
    WORKER_EVENTS_AWS_SERVICES,
)
from tests.infra.aws_call_inventory import inventory
from tests.infra.conftest import SynthesizedStage
from tests.infra.iam_evaluation import REGION, as_list, role_statements, wildcard_matches

HTTPS = 443
# What infra/aws_api_endpoints.py declares per function, by handler module: the code must not call more.
DECLARED = {
    "functions.worker.handler": WORKER_AWS_SERVICES | WORKER_EVENTS_AWS_SERVICES,
    "functions.worker.migrate_handler": MIGRATE_AWS_SERVICES,
    "functions.worker.probe_handler": PROBE_AWS_SERVICES,
    "functions.worker.canary_handler": CANARY_CHECK_AWS_SERVICES,
    "functions.worker.retention_handler": RETENTION_AWS_SERVICES,
}


def our_functions(stage: SynthesizedStage) -> list[tuple[str, dict[str, Any], str]]:
    """(logical id, properties, handler module) of every function built from `functions/`."""
    found = []
    for logical_id, resource in stage.resources.items():
        handler = resource["Properties"].get("Handler", "") if resource["Type"] == "AWS::Lambda::Function" else ""
        if handler.startswith("functions."):
            found.append((logical_id, resource["Properties"], handler.rsplit(".", 1)[0]))
    return found


def endpoint_reaches(stage: SynthesizedStage, service: str, function: dict[str, Any]) -> bool:
    """An interface endpoint for `service` with private DNS in the stage's VPC that takes HTTPS from every one of
    the function's security groups."""
    resources = stage.resources
    for endpoint in resources.values():
        props = endpoint["Properties"]
        if (
            endpoint["Type"] != "AWS::EC2::VPCEndpoint"
            or props.get("ServiceName") != f"com.amazonaws.{REGION}.{service}"
        ):
            continue
        if props.get("VpcEndpointType") != "Interface" or props.get("PrivateDnsEnabled") is not True:
            continue
        if props.get("VpcId") != stage.settings.vpc_id:
            continue
        rules = [
            rule
            for group in props.get("SecurityGroupIds", [])
            for rule in resources[group["Fn::GetAtt"][0]]["Properties"].get("SecurityGroupIngress", [])
        ]
        sources = {
            rule.get("SourceSecurityGroupId")
            for rule in rules
            if rule["IpProtocol"] in ("tcp", "-1") and rule.get("FromPort", 0) <= HTTPS <= rule.get("ToPort", 65535)
        }
        if set(function["VpcConfig"]["SecurityGroupIds"]) <= sources:
            return True
    return False


def test_the_inventory_reads_the_calls_of_each_function() -> None:
    # Given the functions' code  When it is read  Then it finds what each function calls (guards the reader itself)
    assert inventory("functions.ingest.handler").actions == {"sqs:SendMessage", "secretsmanager:GetSecretValue"}
    assert inventory("functions.worker.probe_handler").actions == {
        "secretsmanager:GetSecretValue",
        "ssm:GetParameter",
        "ssm:PutParameter",  # the drain governor keeps its record
        "lambda:GetEventSourceMapping",
        "lambda:UpdateEventSourceMapping",
    }


def test_every_call_a_functions_code_makes_is_allowed_by_its_role(stage: SynthesizedStage) -> None:
    # Given each stage and each of our functions in it
    for logical_id, function, module in our_functions(stage):
        statements = role_statements(stage.resources, function["Role"]["Fn::GetAtt"][0])
        allowed = [a for s in statements if s["Effect"] == "Allow" for a in as_list(s["Action"])]
        # When the code's AWS calls are listed
        calls = inventory(module).actions
        # Then the role allows each one (a stage without a database has no secret to read: the worker never calls)
        if not stage.settings.has_database and module == "functions.worker.handler":
            continue
        if not stage.settings.captcha_provider and module == "functions.ingest.handler":
            calls = calls - {"secretsmanager:GetSecretValue"}  # the captcha secret is read only with a provider
        if not stage.settings.events_enabled and module == "functions.worker.handler":
            calls = calls - {"events:PutEvents", "sqs:SendMessageBatch"}  # the events lane's, only when enabled
        missing = sorted(c for c in calls if not any(wildcard_matches(a, c, case_sensitive=False) for a in allowed))
        assert missing == [], f"{stage.settings.stage}: {logical_id} ({module}) may not call {missing}"


def test_every_service_a_vpc_function_calls_is_reachable_from_its_subnets(stage: SynthesizedStage) -> None:
    # Given each function of the stage that runs in the VPC
    in_vpc = [(i, f, m) for i, f, m in our_functions(stage) if "VpcConfig" in f]
    assert bool(in_vpc) == stage.settings.in_vpc
    for logical_id, function, module in in_vpc:
        services = inventory(module).services
        if not stage.settings.events_enabled and module == "functions.worker.handler":
            services = services - WORKER_EVENTS_AWS_SERVICES  # the events lane's, only when enabled
        # Then the code calls no service the stack does not know it calls
        assert services <= DECLARED[module], f"{module} calls {services - DECLARED[module]}: declare it"
        # And each one is reachable: through an endpoint of the stack, or through the NAT the operator declared
        if stage.settings.vpc_aws_api_access == "nat":
            continue
        unreachable = sorted(s for s in services if not endpoint_reaches(stage, s, function))
        assert unreachable == [], f"{stage.settings.stage}: {logical_id} cannot reach {unreachable}"


def test_endpoints_sit_in_one_subnet_per_zone_and_open_only_to_the_functions(
    stages: dict[str, SynthesizedStage],
) -> None:
    # Given prod, which asks the stack for interface endpoints
    prod = stages["prod"]
    endpoints = [r["Properties"] for r in prod.resources.values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    # Then there is one per service the VPC functions call, no more
    assert sorted(e["ServiceName"] for e in endpoints) == sorted(
        f"com.amazonaws.{REGION}.{s}"
        for s in WORKER_AWS_SERVICES | MIGRATE_AWS_SERVICES | PROBE_AWS_SERVICES | RETENTION_AWS_SERVICES
    )
    # And each is in the functions' subnets, one per Availability Zone (an endpoint takes at most one per zone)
    zones = dict(zip(prod.settings.vpc_subnet_ids, prod.settings.vpc_availability_zones, strict=True))
    for endpoint in endpoints:
        assert sorted(zones[s] for s in endpoint["SubnetIds"]) == sorted(set(zones.values()))
    # And its security group takes nothing but HTTPS from the functions' groups, and opens no connection itself
    [group] = [r["Properties"] for r in prod.resources.values() if r["Type"] == "AWS::EC2::SecurityGroup"]
    assert {
        (r["IpProtocol"], r["FromPort"], r["ToPort"], r["SourceSecurityGroupId"]) for r in group["SecurityGroupIngress"]
    } == {("tcp", HTTPS, HTTPS, g) for g in prod.settings.vpc_security_group_ids}
    assert all(rule["CidrIp"] == "255.255.255.255/32" for rule in group["SecurityGroupEgress"])  # CDK's "no egress"


@pytest.mark.parametrize("name", ["dev", "staging"])
def test_stages_without_endpoints_get_none(stages: dict[str, SynthesizedStage], name: str) -> None:
    # Given dev (no VPC) and staging (the operator declares a NAT route)  Then the stack makes no endpoint
    assert not [r for r in stages[name].resources.values() if r["Type"] == "AWS::EC2::VPCEndpoint"]


def test_the_migration_waits_for_the_endpoints(stages: dict[str, SynthesizedStage]) -> None:
    # Given prod, whose migration reads its secret through an endpoint during the deploy
    resources = stages["prod"].resources
    [trigger] = [r for r in resources.values() if r["Type"] == "Custom::Trigger"]
    endpoints = {i for i, r in resources.items() if r["Type"] == "AWS::EC2::VPCEndpoint"}
    # Then CloudFormation runs it only once the endpoints exist (a VPC endpoint is usable when created)
    assert endpoints <= set(as_list(trigger.get("DependsOn", [])))

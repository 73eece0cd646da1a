"""Shared by the tests in this folder."""

from __future__ import annotations

import copy
from typing import Any

from aws_cdk.assertions import Template

INGEST_HANDLER = "functions.ingest.handler.lambda_handler"
WORKER_HANDLER = "functions.worker.handler.lambda_handler"
PROBE_HANDLER = "functions.worker.probe_handler.lambda_handler"
MIGRATE_HANDLER = "functions.worker.migrate_handler.lambda_handler"
RETENTION_HANDLER = "functions.worker.retention_handler.lambda_handler"
CANARY_HANDLER = "functions.worker.canary_handler.lambda_handler"
RELAY_HANDLER = "functions.worker.event_relay_handler.lambda_handler"


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return template.find_resources(kind)


def only(template: Template, kind: str, **props: Any) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(kind, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {kind} with {props}, found {list(found)}"
    return next(iter(found.items()))


def function_by_handler(template: Template, handler: str) -> tuple[str, dict[str, Any]]:
    return only(template, "AWS::Lambda::Function", Handler=handler)


def ssm_parameter(template: Template, description_prefix: str) -> tuple[str, dict[str, Any]]:
    """The one SSM parameter whose description starts with `description_prefix`."""
    [found] = [
        (logical_id, parameter)
        for logical_id, parameter in resources(template, "AWS::SSM::Parameter").items()
        if parameter["Properties"]["Description"].startswith(description_prefix)
    ]
    return found


def ref_id(value: Any) -> str:
    """The logical id behind a Ref or Fn::GetAtt."""
    if "Ref" in value:
        return value["Ref"]
    return value["Fn::GetAtt"][0]


def policy_statements_of_role(template: Template, role_id: str) -> list[dict[str, Any]]:
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else value


BASE: dict[str, Any] = {
    "defaults": {"allowed_origins": ["https://www.example.com"]},
    "stages": {"dev": {}, "prod": {"db_secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"}},
}


def with_stage(stage: str = "dev", **overrides: Any) -> dict[str, Any]:
    context = copy.deepcopy(BASE)
    context["stages"].setdefault(stage, {}).update(overrides)
    return context


def references(value: Any) -> set[str]:
    """Logical ids a property value points at (Ref, Fn::GetAtt), at any depth."""
    if isinstance(value, dict):
        found = set()
        if isinstance(value.get("Ref"), str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        for inner in value.values():
            found |= references(inner)
        return found
    if isinstance(value, list):
        return set().union(*(references(inner) for inner in value)) if value else set()
    return set()


def created_after(resources: dict[str, dict[str, Any]], logical_id: str) -> set[str]:
    """Every resource CloudFormation must create or update before `logical_id` (DependsOn and references,
    transitively)."""
    seen: set[str] = set()
    pending = [logical_id]
    while pending:
        resource = resources.get(pending.pop(), {})
        depends = resource.get("DependsOn", [])
        for before in ({depends} if isinstance(depends, str) else set(depends)) | references(
            resource.get("Properties", {})
        ):
            if before in resources and before not in seen:
                seen.add(before)
                pending.append(before)
    return seen

"""Shared by the tests in this folder."""

from __future__ import annotations

import copy
from typing import Any

from aws_cdk.assertions import Template

INGEST_HANDLER = "functions.ingest.handler.lambda_handler"


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return template.find_resources(kind)


def only(template: Template, kind: str, **props: Any) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(kind, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {kind} with {props}, found {list(found)}"
    return next(iter(found.items()))


def function_by_handler(template: Template, handler: str) -> tuple[str, dict[str, Any]]:
    return only(template, "AWS::Lambda::Function", Handler=handler)


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


PROBE_HANDLER = "functions.worker.probe_handler.lambda_handler"

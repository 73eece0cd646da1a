"""The probe's new code commits to the heartbeat table (migration 0003): CloudFormation must update it only after the
migration trigger has run, or a deploy's first probes find no table, hold the drain and page until the next minute."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from tests.infra.template_queries import PROBE_HANDLER, function_by_handler


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


def test_the_probe_is_updated_only_after_the_migrations_ran(prod: Template) -> None:
    # Given the prod stack: a migration trigger and the drain breaker's probe
    [trigger_id] = prod.find_resources("Custom::Trigger")
    probe_id, _ = function_by_handler(prod, PROBE_HANDLER)
    # When CloudFormation orders the deploy
    resources = prod.to_json()["Resources"]
    # Then the probe waits for the trigger (through the worker's event source mapping, whose id it is given)
    assert trigger_id in created_after(resources, probe_id)

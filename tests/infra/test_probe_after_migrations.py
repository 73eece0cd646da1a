"""The probe's new code commits to the heartbeat table (migration 0003): CloudFormation must update it only after the
migration trigger has run, or a deploy's first probes find no table, hold the drain and page until the next minute."""

from __future__ import annotations

from aws_cdk.assertions import Template

from tests.infra.template_queries import PROBE_HANDLER, created_after, function_by_handler


def test_the_probe_is_updated_only_after_the_migrations_ran(prod: Template) -> None:
    # Given the prod stack: a migration trigger and the drain breaker's probe
    [trigger_id] = prod.find_resources("Custom::Trigger")
    probe_id, _ = function_by_handler(prod, PROBE_HANDLER)
    # When CloudFormation orders the deploy
    resources = prod.to_json()["Resources"]
    # Then the probe waits for the trigger (through the worker's event source mapping, whose id it is given)
    assert trigger_id in created_after(resources, probe_id)

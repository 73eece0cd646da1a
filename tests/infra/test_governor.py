"""The drain governor in the template: its record, its rights (that one mapping, that one parameter), its settings,
and the dashboard's writers-vs-cap graph."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.config import PipelineSettings, settings_from_file
from tests.infra.conftest import synthesize
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


def governor_record(template: Template) -> tuple[str, dict[str, Any]]:
    return ssm_parameter(template, "Leadpipe drain governor")


def test_the_governor_may_update_only_the_workers_mapping_and_write_only_its_record(prod: Template) -> None:
    # Given the prod stack, whose probe runs the governor
    _, probe = function_by_handler(prod, PROBE_HANDLER)
    statements = policy_statements_of_role(prod, ref_id(probe["Properties"]["Role"]))
    mapping_id = only(prod, "AWS::Lambda::EventSourceMapping")[0]
    record_id, _ = governor_record(prod)
    # Then UpdateEventSourceMapping (which sets ScalingConfig.MaximumConcurrency) is granted on that one mapping's ARN:
    # Lambda authorizes it per event-source-mapping resource
    # (https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html)
    [mapping_statement] = [s for s in statements if "lambda:UpdateEventSourceMapping" in actions(s)]
    resource = json.dumps(mapping_statement["Resource"])
    assert json.dumps({"Ref": mapping_id}) in resource and "*" not in resource
    # And the only SSM write is PutParameter on the governor's own record
    writes = [s for s in statements if "ssm:PutParameter" in actions(s)]
    assert len(writes) == 1 and actions(writes[0]) == ["ssm:PutParameter"]
    assert json.dumps({"Ref": record_id}) in json.dumps(writes[0]["Resource"])
    assert "*" not in json.dumps(writes[0]["Resource"]).replace('"*"', "")
    # And the worker may only read the record (to pace itself below 2 writers), never write it or touch the mapping
    _, worker = function_by_handler(prod, WORKER_HANDLER)
    worker_statements = policy_statements_of_role(prod, ref_id(worker["Properties"]["Role"]))
    on_record = [s for s in worker_statements if json.dumps({"Ref": record_id}) in json.dumps(s["Resource"])]
    assert on_record and all(not a.startswith("ssm:Put") for s in on_record for a in actions(s))
    assert "UpdateEventSourceMapping" not in json.dumps(worker_statements)
    assert worker["Properties"]["Environment"]["Variables"]["GOVERNOR_RECORD_PARAMETER"] == {"Ref": record_id}


def test_the_probe_gets_the_governors_settings_and_the_mapping_starts_at_the_cap(
    prod: Template, prod_settings: PipelineSettings
) -> None:
    # Given the prod stack
    _, probe = function_by_handler(prod, PROBE_HANDLER)
    environment = probe["Properties"]["Environment"]["Variables"]
    # Then the probe knows the record, the cap and the DB owner's terms
    assert environment["GOVERNOR_RECORD_PARAMETER"] == {"Ref": governor_record(prod)[0]}
    assert environment["MAX_CONCURRENCY"] == str(prod_settings.max_concurrency)
    assert environment["GOVERNOR_FLOOR_WRITERS"] == str(prod_settings.governor_floor_writers)
    assert environment["GOVERNOR_BUSY_SESSIONS"] == str(prod_settings.governor_busy_sessions)
    assert environment["GOVERNOR_LATENCY_TOLERANCE_PERCENT"] == str(prod_settings.governor_latency_tolerance_percent)
    # And the mapping is deployed at the cap, AWS's own limit on concurrent batches: MaximumConcurrency, 2 to 1000
    # (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-lambda-eventsourcemapping-scalingconfig.html)
    _, mapping = only(prod, "AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": prod_settings.max_concurrency}


def test_the_dashboard_shows_the_writers_against_the_cap(prod: Template, prod_settings: PipelineSettings) -> None:
    # Given the prod stack's dashboard
    _, dashboard = only(prod, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    # Then one graph plots the probe's DrainWriters and DrainWriterCap, with the cap as a line
    assert "Drain writers (governor) vs the cap (max_concurrency)" in body
    assert "DrainWriters" in body and "DrainWriterCap" in body
    assert f'\\"value\\":{prod_settings.max_concurrency},\\"label\\":\\"max_concurrency\\"' in body


@pytest.fixture(scope="module")
def governor_off(tmp_path_factory: pytest.TempPathFactory) -> Template:
    settings = settings_from_file("prod").model_copy(update={"governor_enabled": False})
    return synthesize(settings, str(tmp_path_factory.mktemp("governor-off")))[1]


def test_with_the_governor_off_the_probe_only_breaks(governor_off: Template) -> None:
    # Given the governor turned off  Then no record exists and the probe is not told of one
    _, probe = function_by_handler(governor_off, PROBE_HANDLER)
    assert "GOVERNOR_RECORD_PARAMETER" not in probe["Properties"]["Environment"]["Variables"]
    descriptions = [p["Properties"]["Description"] for p in resources(governor_off, "AWS::SSM::Parameter").values()]
    assert not any(d.startswith("Leadpipe drain governor") for d in descriptions)

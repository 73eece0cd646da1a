"""Every log the stack writes expires, in every stage: none is kept forever by default.

- CloudWatch Logs keeps a log group's events indefinitely unless it has a retention:
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/Working-with-log-groups-and-streams.html#SettingLogRetention
- A function logs to /aws/lambda/<function name>, which Lambda creates on first use (no retention), unless
  its LoggingConfig names another group:
  https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-loggroups.html
- API Gateway's execution logs go to API-Gateway-Execution-Logs_{rest-api-id}/{stage_name}, created by API
  Gateway on first use: https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html
- AWS WAF logs only to a group whose name starts with aws-waf-logs-, given by its ARN without ":*":
  https://docs.aws.amazon.com/waf/latest/developerguide/logging-cw-logs.html
"""

from __future__ import annotations

from typing import Any

from infra.waf_logging import REDACTED_HEADERS, WAF_LOG_GROUP_PREFIX
from tests.infra.conftest import SynthesizedStage
from tests.infra.iam_evaluation import ACCOUNT, REGION, as_list, resolve

FUNCTION_LOG_PREFIX = "/aws/lambda/"


def log_groups(stage: SynthesizedStage) -> dict[str, dict[str, Any]]:
    return {i: r for i, r in stage.resources.items() if r["Type"] == "AWS::Logs::LogGroup"}


def group_named(stage: SynthesizedStage, name: str) -> tuple[str, dict[str, Any]] | None:
    for logical_id, group in log_groups(stage).items():
        if resolve(group["Properties"].get("LogGroupName"), stage.resources) == name:
            return logical_id, group
    return None


def test_every_log_group_of_the_stack_expires(stage: SynthesizedStage) -> None:
    # Given every log group the stage creates  Then each has a retention, the stage's setting
    for logical_id, group in log_groups(stage).items():
        assert group["Properties"].get("RetentionInDays") == stage.settings.log_retention_days, logical_id


def test_every_function_logs_to_a_group_that_expires(stage: SynthesizedStage) -> None:
    # Given every function of the stage, ours and CDK's own
    for function_id, function in stage.resources.items():
        if function["Type"] != "AWS::Lambda::Function":
            continue
        # When it writes its first line
        configured = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
        name = resolve(configured, stage.resources) if configured else f"{FUNCTION_LOG_PREFIX}{function_id}"
        # Then the group it writes to is one of the stack's, with a retention, made before the function runs
        found = group_named(stage, name) or (configured and (configured["Ref"], stage.resources[configured["Ref"]]))
        assert found, f"{stage.settings.stage}: {function_id} logs to {name}, which Lambda would keep forever"
        group_id, group = found
        assert group["Properties"]["RetentionInDays"] == stage.settings.log_retention_days


def test_api_gateway_execution_logs_expire(stage: SynthesizedStage) -> None:
    # Given the API stage, which logs errors (LoggingLevel ERROR) to its execution log group
    [(stage_id, api_stage)] = [(i, r) for i, r in stage.resources.items() if r["Type"] == "AWS::ApiGateway::Stage"]
    assert {m["LoggingLevel"] for m in api_stage["Properties"]["MethodSettings"]} == {"ERROR"}
    rest_api_id = api_stage["Properties"]["RestApiId"]["Ref"]
    name = f"API-Gateway-Execution-Logs_{rest_api_id}/{api_stage['Properties']['StageName']}"
    # Then the stack owns that group, with a retention, and creates it before the stage can log anything
    found = group_named(stage, name)
    assert found, f"{name} would be created by API Gateway and kept forever"
    assert found[0] in as_list(api_stage.get("DependsOn", []))


def test_waf_keeps_blocked_requests_for_the_retention(stages: dict[str, SynthesizedStage]) -> None:
    # Given prod, which has a web ACL
    prod = stages["prod"]
    [(acl_id, _)] = [(i, r) for i, r in prod.resources.items() if r["Type"] == "AWS::WAFv2::WebACL"]
    [logging] = [r["Properties"] for r in prod.resources.values() if r["Type"] == "AWS::WAFv2::LoggingConfiguration"]
    # Then the web ACL logs, to a group WAF accepts: the aws-waf-logs- prefix, its ARN without ":*"
    assert logging["ResourceArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    [destination] = [resolve(d, prod.resources) for d in logging["LogDestinationConfigs"]]
    name = destination.split(":log-group:", 1)[1]
    assert destination == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}" and not destination.endswith(":*")
    assert name.startswith(WAF_LOG_GROUP_PREFIX)
    assert group_named(prod, name)[1]["Properties"]["RetentionInDays"] == prod.settings.log_retention_days
    # And only blocked requests, without cookies or credentials (an allowed visitor's IP is never kept)
    assert logging["LoggingFilter"]["DefaultBehavior"] == "DROP"
    [keep] = logging["LoggingFilter"]["Filters"]
    assert keep["Behavior"] == "KEEP" and keep["Conditions"] == [{"ActionCondition": {"Action": "BLOCK"}}]
    assert [f["SingleHeader"]["Name"] for f in logging["RedactedFields"]] == list(REDACTED_HEADERS)


def test_stages_without_a_web_acl_log_nothing_of_waf(stages: dict[str, SynthesizedStage]) -> None:
    for name in ("dev", "staging"):
        assert not [r for r in stages[name].resources.values() if r["Type"].startswith("AWS::WAFv2::")]

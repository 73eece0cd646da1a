"""Properties of the synthesized stack: what a reviewer of the CloudFormation would check."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.config import PipelineSettings
from infra.imported_secret import SECRET_READ_ACTIONS, secret_resource_arns
from tests.infra.conftest import PROD_KEY_ARN, SECRET_ARN
from tests.infra.template_queries import (
    INGEST_HANDLER,
    MIGRATE_HANDLER,
    WORKER_HANDLER,
    actions,
    function_by_handler,
    only,
    policy_statements_of_role,
    ref_id,
    resources,
)


def queues(template: Template) -> tuple[tuple[str, dict], tuple[str, dict]]:
    """(leads queue, dead-letter queue), each as (logical id, resource)."""
    all_queues = resources(template, "AWS::SQS::Queue")
    [leads] = [(k, v) for k, v in all_queues.items() if "RedrivePolicy" in v["Properties"]]
    [dlq] = [(k, v) for k, v in all_queues.items() if "RedrivePolicy" not in v["Properties"]]
    return leads, dlq


# --- Queue -----------------------------------------------------------------------------------


def test_queues_are_encrypted_tls_only_and_keep_messages_14_days(prod: Template) -> None:
    (leads_id, leads), (dlq_id, dlq) = queues(prod)
    for queue in (leads, dlq):
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    for queue_id in (leads_id, dlq_id):
        prod.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": queue_id}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "sqs:*",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_redrive_after_max_receive_count_and_visibility_covers_6x_worker_timeout(
    prod: Template, prod_settings: PipelineSettings
) -> None:
    (_, leads), (dlq_id, _) = queues(prod)
    redrive = leads["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == prod_settings.max_receive_count
    assert ref_id(redrive["deadLetterTargetArn"]) == dlq_id
    _, worker = function_by_handler(prod, WORKER_HANDLER)
    assert leads["Properties"]["VisibilityTimeout"] >= 6 * worker["Properties"]["Timeout"]


# --- Worker and its event source ---------------------------------------------------------------


def test_event_source_caps_db_writers_and_reports_partial_failures(
    prod: Template, prod_settings: PipelineSettings
) -> None:
    worker_id, _ = function_by_handler(prod, WORKER_HANDLER)
    (leads_id, _), _ = queues(prod)
    _, mapping = only(prod, "AWS::Lambda::EventSourceMapping")
    props = mapping["Properties"]
    assert ref_id(props["FunctionName"]) == worker_id
    assert ref_id(props["EventSourceArn"]) == leads_id
    assert props["BatchSize"] == prod_settings.batch_size
    assert props["MaximumBatchingWindowInSeconds"] == prod_settings.max_batching_window_seconds
    assert props["ScalingConfig"] == {"MaximumConcurrency": prod_settings.max_concurrency}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props.get("Enabled", True) is True


def test_worker_reserved_concurrency_is_at_least_the_cap(prod: Template, prod_settings: PipelineSettings) -> None:
    _, worker = function_by_handler(prod, WORKER_HANDLER)
    reserved = worker["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == prod_settings.reserved_concurrency >= prod_settings.max_concurrency


def test_without_a_database_the_event_source_is_disabled_and_no_migration_runs(dev: Template) -> None:
    worker_id, worker = function_by_handler(dev, WORKER_HANDLER)
    _, mapping = only(dev, "AWS::Lambda::EventSourceMapping", FunctionName={"Ref": worker_id})
    assert mapping["Properties"]["Enabled"] is False
    assert dev.find_resources("Custom::Trigger") == {}
    assert "DB_SECRET_ARN" not in worker["Properties"]["Environment"]["Variables"]


def test_worker_reads_its_secret_and_table_from_env_never_a_password(prod: Template) -> None:
    _, worker = function_by_handler(prod, WORKER_HANDLER)
    env = worker["Properties"]["Environment"]["Variables"]
    assert env["DB_SECRET_ARN"] == SECRET_ARN
    assert env["LEADS_TABLE"] == "leadpipe.leads"
    # prod verifies the server against the CA bundle shipped with the worker
    assert (env["DB_SSLMODE"], env["DB_CA_BUNDLE"]) == ("verify-full", "aws-rds-global")
    for function in resources(prod, "AWS::Lambda::Function").values():
        variables = json.dumps(function["Properties"].get("Environment", {})).lower()
        assert "database_url" not in variables and "password" not in variables


def test_migrations_run_on_deploy_with_the_worker_code(prod: Template) -> None:
    migrate_id, migrate = function_by_handler(prod, MIGRATE_HANDLER)
    _, worker = function_by_handler(prod, WORKER_HANDLER)
    assert migrate["Properties"]["Code"] == worker["Properties"]["Code"]
    assert migrate["Properties"]["Environment"]["Variables"]["DB_SECRET_ARN"] == SECRET_ARN
    [trigger] = prod.find_resources("Custom::Trigger").values()
    # The trigger invokes a published version, so a change of code (or migrations) re-runs it
    version_id = ref_id(trigger["Properties"]["HandlerArn"])
    version = prod.find_resources("AWS::Lambda::Version")[version_id]
    assert ref_id(version["Properties"]["FunctionName"]) == migrate_id


def test_vpc_placement_and_rds_proxy_come_from_settings(in_vpc: Template) -> None:
    _, worker = function_by_handler(in_vpc, WORKER_HANDLER)
    vpc = worker["Properties"]["VpcConfig"]
    assert vpc == {"SubnetIds": ["subnet-0aaa", "subnet-0bbb"], "SecurityGroupIds": ["sg-0ccc"]}
    env = worker["Properties"]["Environment"]["Variables"]
    assert env["DB_PROXY_ENDPOINT"] == "leadpipe.proxy-abc.eu-west-1.rds.amazonaws.com"
    _, migrate = function_by_handler(in_vpc, MIGRATE_HANDLER)
    assert migrate["Properties"]["VpcConfig"] == vpc


# --- Functions --------------------------------------------------------------------------------


@pytest.mark.parametrize("handler", [INGEST_HANDLER, WORKER_HANDLER, MIGRATE_HANDLER])
def test_functions_are_arm64_current_python_traced_with_retained_logs(
    prod: Template, prod_settings: PipelineSettings, handler: str
) -> None:
    _, function = function_by_handler(prod, handler)
    props = function["Properties"]
    assert props["Architectures"] == ["arm64"]
    assert props["Runtime"] == "python3.13"
    assert props["TracingConfig"] == {"Mode": "Active"}
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    retention = prod.find_resources("AWS::Logs::LogGroup")[log_group_id]["Properties"]["RetentionInDays"]
    assert retention == prod_settings.log_retention_days


def test_ingest_environment(prod: Template, prod_settings: PipelineSettings) -> None:
    _, ingest = function_by_handler(prod, INGEST_HANDLER)
    env = ingest["Properties"]["Environment"]["Variables"]
    (leads_id, _), _ = queues(prod)
    assert env["LEADS_QUEUE_URL"] == {"Ref": leads_id}
    assert env["ALLOWED_ORIGINS"] == ",".join(prod_settings.allowed_origins)
    assert env["MAX_BODY_BYTES"] == str(prod_settings.max_body_bytes)
    assert env["HONEYPOT_FIELD"] == prod_settings.honeypot_field


# --- IAM: least privilege --------------------------------------------------------------------


def test_ingest_role_can_only_send_to_the_leads_queue(prod: Template) -> None:
    _, ingest = function_by_handler(prod, INGEST_HANDLER)
    (leads_id, _), _ = queues(prod)
    statements = policy_statements_of_role(prod, ref_id(ingest["Properties"]["Role"]))
    sqs_statements = [s for s in statements if any(a.startswith("sqs:") for a in actions(s))]
    assert [(sorted(actions(s)), ref_id(s["Resource"])) for s in sqs_statements] == [
        (["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"], leads_id)
    ]
    data_actions = {a for s in statements for a in actions(s) if not a.startswith(("xray:", "logs:"))}
    # prod checks a captcha: besides the queue, the ingest reads its captcha secret (test_spam_protection.py)
    assert data_actions == {"sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"} | set(SECRET_READ_ACTIONS)


def test_worker_role_consumes_its_queue_and_reads_only_its_secret_and_the_governors_record(prod: Template) -> None:
    _, worker = function_by_handler(prod, WORKER_HANDLER)
    (leads_id, _), _ = queues(prod)
    statements = policy_statements_of_role(prod, ref_id(worker["Properties"]["Role"]))
    by_service: dict[str, list[dict]] = {}
    for statement in statements:
        for service in {a.split(":")[0] for a in actions(statement)}:
            by_service.setdefault(service, []).append(statement)
    # prod's secret is encrypted with a customer-managed key: kms:Decrypt on it, through Secrets Manager only;
    # the drain governor's record is read (never written) to pace the worker below 2 writers
    assert set(by_service) == {"sqs", "secretsmanager", "logs", "xray", "kms", "ssm"}
    [record_statement] = by_service["ssm"]
    assert not any(a.startswith("ssm:Put") or a.startswith("ssm:Delete") for a in actions(record_statement))
    [key_statement] = by_service["kms"]
    assert (actions(key_statement), key_statement["Resource"]) == (["kms:Decrypt"], PROD_KEY_ARN)
    assert key_statement["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}
    [sqs_statement] = by_service["sqs"]
    assert ref_id(sqs_statement["Resource"]) == leads_id
    assert "sqs:SendMessage" not in actions(sqs_statement)
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= set(actions(sqs_statement))
    [secret_statement] = by_service["secretsmanager"]
    assert secret_statement["Resource"] == secret_resource_arns(SECRET_ARN)
    assert set(actions(secret_statement)) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}


# The AWS managed policies a role may carry: each is narrow and the documented one for its job.
ALLOWED_MANAGED_POLICIES = {
    "service-role/AWSLambdaBasicExecutionRole",  # write its own log streams
    "service-role/AWSLambdaVPCAccessExecutionRole",  # ENIs for a function placed in the VPC
    "service-role/AmazonAPIGatewayPushToCloudWatchLogs",  # API Gateway's account-level logging role
}


def statements_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    statement = document["Statement"]
    return [statement] if isinstance(statement, dict) else statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def has_wildcard(value: Any) -> bool:
    """True for "*", ["*"], "arn:aws:sqs:*:*:*" or a Fn::Join/Fn::Sub that builds a wildcard ARN."""
    return "*" in json.dumps(value)


def managed_policy_name(arn: Any) -> str:
    """`service-role/AWSLambdaBasicExecutionRole` from the ARN, however CDK wrote it (Fn::Join or Fn::Sub)."""
    match arn:
        case str():
            text = arn
        case {"Fn::Sub": str(text)}:
            pass
        case {"Fn::Join": [_, parts]}:
            text = "".join(p for p in parts if isinstance(p, str))
    return text.split(":policy/", 1)[1]


def every_allow_statement(template: Template) -> list[dict[str, Any]]:
    found = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        found += statements_of(policy["Properties"]["PolicyDocument"])
    for role in resources(template, "AWS::IAM::Role").values():
        for inline in role["Properties"].get("Policies", []):
            found += statements_of(inline["PolicyDocument"])
    for policy in resources(template, "AWS::IAM::ManagedPolicy").values():
        found += statements_of(policy["Properties"]["PolicyDocument"])
    return [s for s in found if s["Effect"] == "Allow"]


@pytest.mark.parametrize(
    "resource",
    [
        "*",
        ["*"],
        "arn:aws:sqs:eu-west-1:123456789012:*",
        {"Fn::Join": ["", ["arn:aws:sqs:", {"Ref": "AWS::Region"}, ":*"]]},
    ],
)
def test_the_wildcard_check_sees_every_shape_of_wildcard(resource: Any) -> None:
    assert has_wildcard(resource)
    assert not has_wildcard({"Fn::GetAtt": ["LeadQueue1A2B3C4D", "Arn"]})


@pytest.mark.parametrize(
    "arn",
    [
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/AmazonSQSFullAccess"]]},
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSQSFullAccess"},
        "arn:aws:iam::aws:policy/AmazonSQSFullAccess",
    ],
)
def test_the_managed_policy_check_reads_the_policy_name(arn: Any) -> None:
    assert managed_policy_name(arn) == "AmazonSQSFullAccess"
    assert "AmazonSQSFullAccess" not in ALLOWED_MANAGED_POLICIES


def is_versions_of_one_function(resource: Any, template: Template) -> bool:
    """`<function ARN>:*`, what grant_invoke writes: every version of one function of this stack."""
    match resource:
        case {"Fn::Join": ["", [{"Fn::GetAtt": [function_id, "Arn"]}, ":*"]]}:
            return function_id in template.find_resources("AWS::Lambda::Function")
    return False


@pytest.mark.parametrize("variant", ["prod", "dev", "in_vpc"])
def test_no_wildcard_resource_on_any_data_action(variant: str, request: pytest.FixtureRequest) -> None:
    template: Template = request.getfixturevalue(variant)
    for statement in every_allow_statement(template):
        assert not any(has_wildcard(action) for action in actions(statement)), statement
        wildcards = [r for r in as_list(statement["Resource"]) if has_wildcard(r)]
        if actions(statement) == ["lambda:InvokeFunction"]:
            # The migration trigger invokes the published version of its one function.
            wildcards = [r for r in wildcards if not is_versions_of_one_function(r, template)]
        if wildcards:
            # X-Ray's write actions are the only ones AWS offers no resource-level permission for.
            assert all(a.startswith("xray:") for a in actions(statement)), statement
    for role in resources(template, "AWS::IAM::Role").values():
        names = {managed_policy_name(arn) for arn in role["Properties"].get("ManagedPolicyArns", [])}
        assert names <= ALLOWED_MANAGED_POLICIES, names - ALLOWED_MANAGED_POLICIES


# --- API ---------------------------------------------------------------------------------------


def test_stage_throttling_tracing_and_access_logs_without_bodies_or_ips(
    prod: Template, prod_settings: PipelineSettings
) -> None:
    _, stage = only(prod, "AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["StageName"] == "prod"
    assert props["TracingEnabled"] is True
    [method_settings] = props["MethodSettings"]
    assert method_settings["ThrottlingRateLimit"] == prod_settings.throttle_rate_per_second
    assert method_settings["ThrottlingBurstLimit"] == prod_settings.throttle_burst
    assert method_settings["DataTraceEnabled"] is False
    access_log_format = props["AccessLogSetting"]["Format"]
    assert "$context.status" in access_log_format
    assert "sourceIp" not in access_log_format and "requestBody" not in access_log_format
    _, api = only(prod, "AWS::ApiGateway::RestApi")
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_post_leads_is_proxied_to_the_ingest(prod: Template) -> None:
    ingest_id, _ = function_by_handler(prod, INGEST_HANDLER)
    _, method = only(prod, "AWS::ApiGateway::Method", HttpMethod="POST")
    integration = method["Properties"]["Integration"]
    assert integration["Type"] == "AWS_PROXY"
    assert ingest_id in json.dumps(integration["Uri"])
    [resource] = resources(prod, "AWS::ApiGateway::Resource").values()
    assert resource["Properties"]["PathPart"] == "leads"


def test_cors_preflight_answers_only_allowed_origins(prod: Template, prod_settings: PipelineSettings) -> None:
    # Given the preflight (OPTIONS) methods API Gateway answers itself, with a MOCK integration
    options = prod.find_resources("AWS::ApiGateway::Method", {"Properties": {"HttpMethod": "OPTIONS"}})
    assert options, "no preflight method"
    for method in options.values():
        integration = method["Properties"]["Integration"]
        assert integration["Type"] == "MOCK"
        # When the integration's answer is read
        [response] = integration["IntegrationResponses"]
        headers = response["ResponseParameters"]
        # Then the origin header is one of the allowed origins, echoed only when the request's origin matches
        first, *others = prod_settings.allowed_origins
        assert headers["method.response.header.Access-Control-Allow-Origin"] == f"'{first}'"
        assert headers["method.response.header.Vary"] == "'Origin'"
        template = response["ResponseTemplates"]["application/json"]
        echoed = set(re.findall(r'\$origin == "([^"]+)"', template))
        assert echoed == set(others), template
        assert "*" not in first and not any("*" in origin for origin in echoed)
        # And it allows exactly the form's method and headers
        allowed_headers = headers["method.response.header.Access-Control-Allow-Headers"].strip("'").split(",")
        assert allowed_headers == ["Content-Type", "Idempotency-Key", "Leadpipe-Captcha-Pass"]
        assert headers["method.response.header.Access-Control-Allow-Methods"] == "'POST,OPTIONS'"
        [method_response] = method["Properties"]["MethodResponses"]
        assert method_response["StatusCode"] == response["StatusCode"] == "204"


def test_waf_per_ip_rate_rule_when_configured(prod: Template, dev: Template, prod_settings: PipelineSettings) -> None:
    acl_id, acl = only(prod, "AWS::WAFv2::WebACL")
    [rule] = acl["Properties"]["Rules"]
    assert (
        rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    )  # a retryable answer: test_spam_protection.py
    assert rule["Statement"]["RateBasedStatement"] == {
        "Limit": prod_settings.waf_requests_per_5_minutes_per_ip,
        "AggregateKeyType": "IP",
    }
    _, association = only(prod, "AWS::WAFv2::WebACLAssociation")
    assert ref_id(association["Properties"]["WebACLArn"]) == acl_id
    assert dev.find_resources("AWS::WAFv2::WebACL") == {}


# --- Monitoring --------------------------------------------------------------------------------


def test_alarm_email_subscription_and_tls_only_topic(prod: Template, dev: Template) -> None:
    _, subscription = only(prod, "AWS::SNS::Subscription")
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "oncall@example.com"
    assert dev.find_resources("AWS::SNS::Subscription") == {}
    prod.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )


def test_one_dashboard_with_the_pipeline_at_a_glance(prod: Template) -> None:
    _, dashboard = only(prod, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for title in ("Ingest rate", "Queue depth and age", "Stored rate", "DLQ depth", "Worker concurrency"):
        assert title in body
    for metric in ("LeadsAccepted", "LeadsStored", "ConcurrentExecutions", "ApproximateAgeOfOldestMessage"):
        assert metric in body


def test_outputs(prod: Template) -> None:
    outputs = prod.find_outputs("*")
    ours = {
        "LeadsEndpoint",
        "QueueUrl",
        "DeadLetterQueueUrl",
        "DashboardUrl",
        "AlarmTopicArn",
        "WorkerEventSourceMappingId",
        "DrainPauseParameterName",
        "DrainProbeFunctionName",
        "CanaryCheckFunctionName",
        "LeadsTable",
        "DrainGovernorParameterName",  # `leadpipe status --stack` reads the governor's record
    }  # the drain breaker, the canary check `leadpipe verify` invokes
    assert ours <= set(outputs)
    # The only other output is the API root URL that RestApi always adds
    assert [k for k in outputs if k not in ours and not k.startswith("LeadApiEndpoint")] == []
    assert "leads" in json.dumps(outputs["LeadsEndpoint"]["Value"])
    assert outputs["LeadsTable"]["Value"] == "leadpipe.leads"  # `leadpipe status --stack` reads this table
    dashboard_id, _ = only(prod, "AWS::CloudWatch::Dashboard")
    [_, parts] = outputs["DashboardUrl"]["Value"]["Fn::Join"]
    assert parts[0].endswith("#dashboards:name=") and parts[1] == {"Ref": dashboard_id}

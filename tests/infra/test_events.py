"""The events lane in the template: bus, rules, connections, API destinations at their rate, DLQs, alarms, IAM.

Each assertion is about what EventBridge, SQS and IAM will do with the template, with the page that says so.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import click
import pytest
from aws_cdk.assertions import Template

from functions.contract.observability import stage_dimension
from infra.config import PipelineSettings, settings_from_file
from infra.events import RELAY_MAX_CONCURRENCY
from leadpipe.cli import leadpipe
from tests.infra.conftest import synthesize
from tests.infra.template_queries import (
    RELAY_HANDLER,
    WORKER_HANDLER,
    actions,
    function_by_handler,
    only,
    policy_statements_of_role,
    ref_id,
    resources,
)

OAUTH_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/crm-oauth-AbCdEf"


@pytest.fixture(scope="module")
def dev_settings() -> PipelineSettings:
    return settings_from_file("dev")


@pytest.fixture(scope="module")
def prod_with_events(prod_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The production shape (database, drain breaker) with a CRM behind OAuth client credentials, one campaign."""
    crm = {
        "name": "crm",
        "url": "https://crm.example.com/api/leads",
        "auth": {
            "kind": "oauth_client_credentials",
            "token_url": "https://login.example.com/token",
            "secret_arn": OAUTH_SECRET,
        },
        "invocation_rate_per_second": 20,
        "campaigns": ["summersale20"],
        "max_event_age_hours": 6,
        "retry_attempts": 50,
    }
    settings = PipelineSettings.model_validate(
        {**prod_settings.model_dump(), "events_enabled": True, "event_destinations": [crm]}
    )
    return synthesize(settings, str(tmp_path_factory.mktemp("prod-events")))[1]


def rule_of(template: Template, destination_id: str) -> dict[str, Any]:
    [rule] = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if any(ref_id(t["Arn"]) == destination_id for t in r["Properties"].get("Targets", []))
    ]
    return rule


def api_destination(template: Template, rate: int) -> tuple[str, dict[str, Any]]:
    """(logical id, properties) of the API destination at `rate`."""
    destination_id, resource = only(template, "AWS::Events::ApiDestination", InvocationRateLimitPerSecond=rate)
    return destination_id, resource["Properties"]


def test_each_destination_is_an_api_destination_at_its_configured_rate(
    dev: Template, dev_settings: PipelineSettings
) -> None:
    # InvocationRateLimitPerSecond is EventBridge's cap on invocations per second of that destination; events
    # above it wait and are retried under the target's retry policy
    # (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_CreateApiDestination.html).
    for destination in dev_settings.event_destinations:
        _, props = api_destination(dev, destination.invocation_rate_per_second)
        assert props["HttpMethod"] == "POST"
        if destination.url is not None:
            assert props["InvocationEndpoint"] == str(destination.url)


def test_a_url_that_is_a_credential_never_appears_in_the_template(dev: Template) -> None:
    # The Slack webhook's URL is resolved from Secrets Manager at deploy time (a dynamic reference)
    # (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/dynamic-references-secretsmanager.html).
    _, props = api_destination(dev, 1)
    assert props["InvocationEndpoint"] == (
        "{{resolve:secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/slack-webhook-AbCdEf"
        ":SecretString:::}}"
    )


def test_the_api_key_comes_from_secrets_manager(dev: Template) -> None:
    destination_id, props = api_destination(dev, 5)
    [connection] = [
        c["Properties"]
        for k, c in resources(dev, "AWS::Events::Connection").items()
        if k == ref_id(props["ConnectionArn"])
    ]
    assert connection["AuthorizationType"] == "API_KEY"
    assert connection["AuthParameters"]["ApiKeyAuthParameters"] == {
        "ApiKeyName": "Authorization",
        "ApiKeyValue": "{{resolve:secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:"
        "leadpipe/crm-api-key-AbCdEf:SecretString:api_key::}}",
    }


def test_oauth_client_credentials_come_from_one_secret(prod_with_events: Template) -> None:
    # EventBridge fetches the token from AuthorizationEndpoint with the client id and secret
    # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-target-connection-auth.html).
    _, connection = only(prod_with_events, "AWS::Events::Connection")
    auth = connection["Properties"]
    assert auth["AuthorizationType"] == "OAUTH_CLIENT_CREDENTIALS"
    oauth = auth["AuthParameters"]["OAuthParameters"]
    assert oauth["AuthorizationEndpoint"] == "https://login.example.com/token"
    assert oauth["HttpMethod"] == "POST"
    resolve = "{{resolve:secretsmanager:" + OAUTH_SECRET + ":SecretString:%s::}}"
    assert oauth["ClientParameters"] == {"ClientID": resolve % "client_id", "ClientSecret": resolve % "client_secret"}


def test_rules_match_lead_stored_on_the_leads_bus_and_filter_campaigns(prod_with_events: Template) -> None:
    destination_id, _ = api_destination(prod_with_events, 20)
    rule = rule_of(prod_with_events, destination_id)
    bus_id, _ = only(prod_with_events, "AWS::Events::EventBus")
    assert ref_id(rule["EventBusName"]) == bus_id
    # Campaigns are upper-cased by the contract: the pattern must match what the worker publishes. A redriven
    # event reaches only the destination it names ($or: either branch matches;
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html)
    assert rule["EventPattern"] == {
        "source": ["leadpipe"],
        "$or": [
            {"detail-type": ["LeadStored"], "detail": {"campaign": ["SUMMERSALE20"]}},
            {"detail-type": ["LeadStoredRedrive"], "detail": {"campaign": ["SUMMERSALE20"], "redrive_to": ["crm"]}},
        ],
    }


def test_failed_deliveries_retry_per_settings_then_land_in_the_destinations_dlq(prod_with_events: Template) -> None:
    # EventBridge retries a failed target until MaximumRetryAttempts or MaximumEventAgeInSeconds, then sends the
    # event to the target's dead-letter queue; without one it is dropped
    # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html).
    destination_id, _ = api_destination(prod_with_events, 20)
    [target] = rule_of(prod_with_events, destination_id)["Targets"]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 6 * 3600, "MaximumRetryAttempts": 50}
    dlq_id = ref_id(target["DeadLetterConfig"]["Arn"])
    assert resources(prod_with_events, "AWS::SQS::Queue")[dlq_id]["Properties"]["SqsManagedSseEnabled"] is True


def test_only_that_rule_may_write_to_its_dlq(prod_with_events: Template) -> None:
    # EventBridge needs sqs:SendMessage on the DLQ through its queue policy, scoped to the rule by aws:SourceArn
    # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html#eb-dlq-perms).
    destination_id, _ = api_destination(prod_with_events, 20)
    rule_id = next(
        k
        for k, r in resources(prod_with_events, "AWS::Events::Rule").items()
        if any(ref_id(t["Arn"]) == destination_id for t in r["Properties"].get("Targets", []))
    )
    [target] = rule_of(prod_with_events, destination_id)["Targets"]
    dlq_id = ref_id(target["DeadLetterConfig"]["Arn"])
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources(prod_with_events, "AWS::SQS::QueuePolicy").values()
        if {"Ref": dlq_id} in p["Properties"]["Queues"]
    ]
    allows = [s for s in policy if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Action": "sqs:SendMessage",
            "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}},
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Resource": {"Fn::GetAtt": [dlq_id, "Arn"]},
            "Sid": allows[0]["Sid"],
        }
    ]


def test_each_target_role_may_invoke_only_its_own_destination(prod_with_events: Template) -> None:
    # A rule targeting an API destination uses a role with events:InvokeApiDestination on it
    # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-api-destinations.html).
    destination_id, _ = api_destination(prod_with_events, 20)
    [target] = rule_of(prod_with_events, destination_id)["Targets"]
    statements = policy_statements_of_role(prod_with_events, ref_id(target["RoleArn"]))
    assert statements == [
        {
            "Action": "events:InvokeApiDestination",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [destination_id, "Arn"]},
        }
    ]


def test_the_worker_may_put_events_on_its_bus_and_hand_off_to_its_queue_only(prod_with_events: Template) -> None:
    worker_id, worker = function_by_handler(prod_with_events, WORKER_HANDLER)
    bus_id, _ = only(prod_with_events, "AWS::Events::EventBus")
    environment = worker["Properties"]["Environment"]["Variables"]
    assert environment["EVENT_BUS_NAME"] == {"Ref": bus_id}
    hand_off_id = ref_id(environment["EVENTS_HAND_OFF_QUEUE_URL"])
    statements = policy_statements_of_role(prod_with_events, ref_id(worker["Properties"]["Role"]))
    put_events = [s for s in statements if "events:PutEvents" in actions(s)]
    assert put_events == [
        {"Action": "events:PutEvents", "Effect": "Allow", "Resource": {"Fn::GetAtt": [bus_id, "Arn"]}}
    ]
    sends = [s for s in statements if "sqs:SendMessage" in actions(s)]
    assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": [hand_off_id, "Arn"]}]


def test_the_relay_drains_the_hand_off_queue_into_the_bus_reporting_partial_failures(
    prod_with_events: Template, prod_settings: PipelineSettings
) -> None:
    relay_id, relay = function_by_handler(prod_with_events, RELAY_HANDLER)
    bus_id, _ = only(prod_with_events, "AWS::Events::EventBus")
    _, mapping = only(prod_with_events, "AWS::Lambda::EventSourceMapping", FunctionName={"Ref": relay_id})
    hand_off_id = ref_id(mapping["Properties"]["EventSourceArn"])
    # Without ReportBatchItemFailures one refused entry would send the whole batch back
    # (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html)
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["BatchSize"] == 10  # one PutEvents request
    hand_off = resources(prod_with_events, "AWS::SQS::Queue")[hand_off_id]["Properties"]
    # AWS: a visibility timeout of at least six times the function's timeout
    # (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html)
    assert hand_off["VisibilityTimeout"] >= 6 * relay["Properties"]["Timeout"]
    assert hand_off["RedrivePolicy"]["maxReceiveCount"] == prod_settings.events_hand_off_max_receive_count
    statements = policy_statements_of_role(prod_with_events, ref_id(relay["Properties"]["Role"]))
    assert [s["Resource"] for s in statements if "events:PutEvents" in actions(s)] == [{"Fn::GetAtt": [bus_id, "Arn"]}]


def test_every_events_dlq_and_the_hand_off_pages_on_call(prod_with_events: Template) -> None:
    topic_id, _ = only(prod_with_events, "AWS::SNS::Topic")
    destination_id, _ = api_destination(prod_with_events, 20)
    [target] = rule_of(prod_with_events, destination_id)["Targets"]
    _, mapping = only(
        prod_with_events,
        "AWS::Lambda::EventSourceMapping",
        FunctionName={"Ref": function_by_handler(prod_with_events, RELAY_HANDLER)[0]},
    )
    hand_off_id = ref_id(mapping["Properties"]["EventSourceArn"])
    hand_off_dlq_id = ref_id(
        resources(prod_with_events, "AWS::SQS::Queue")[hand_off_id]["Properties"]["RedrivePolicy"][
            "deadLetterTargetArn"
        ]
    )
    alarms = [a["Properties"] for a in resources(prod_with_events, "AWS::CloudWatch::Alarm").values()]

    def depth_alarm(queue_id: str) -> dict[str, Any]:
        [alarm] = [
            a
            for a in alarms
            if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
            and a["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
        ]
        return alarm

    for queue_id in (ref_id(target["DeadLetterConfig"]["Arn"]), hand_off_dlq_id):
        alarm = depth_alarm(queue_id)
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
    # The worker's own count, under this stage's identity (a dimension is part of a metric's identity:
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Dimension)
    [not_handed_off] = [a for a in alarms if a.get("MetricName") == "EventsNotHandedOff"]
    assert not_handed_off["Namespace"] == "Leadpipe" and not_handed_off["AlarmActions"] == [{"Ref": topic_id}]
    assert {d["Name"]: d["Value"] for d in not_handed_off["Dimensions"]} == {
        "service": "leadpipe-worker",
        "stage": "prod",
    }


def test_slack_posts_the_headline_and_no_address_unless_opted_in(dev: Template) -> None:
    destination_id, _ = api_destination(dev, 1)
    [target] = rule_of(dev, destination_id)["Targets"]
    assert target["InputTransformer"] == {
        "InputPathsMap": {"headline": "$.detail.headline"},
        "InputTemplate": '{"text": <headline>}',
    }


def test_the_crm_gets_the_events_detail_as_json(dev: Template) -> None:
    destination_id, _ = api_destination(dev, 5)
    [target] = rule_of(dev, destination_id)["Targets"]
    assert target["InputPath"] == "$.detail" and "InputTransformer" not in target
    assert target["HttpParameters"]["HeaderParameters"] == {"Content-Type": "application/json"}


def test_off_by_default_nothing_of_the_lane_exists(prod: Template) -> None:
    for kind in ("AWS::Events::EventBus", "AWS::Events::Connection", "AWS::Events::ApiDestination"):
        assert resources(prod, kind) == {}
    _, worker = function_by_handler(prod, WORKER_HANDLER)
    assert "EVENT_BUS_NAME" not in worker["Properties"]["Environment"]["Variables"]


def test_a_worker_in_a_vpc_gets_interface_endpoints_for_eventbridge_and_sqs(
    prod_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Given the worker in private subnets, whose network interfaces have no public address: without an endpoint
    # (or NAT) its PutEvents and SendMessage calls time out
    # (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc-internet.html)
    crm = {"name": "crm", "url": "https://crm.example.com/leads", "invocation_rate_per_second": 5}
    vpc = {
        "vpc_id": "vpc-0a1b2c3d4e5f60718",
        "vpc_subnet_ids": ["subnet-0a1b2c3d4e5f60721", "subnet-0a1b2c3d4e5f60722"],
        "vpc_availability_zones": ["eu-west-1a", "eu-west-1b"],
        "vpc_security_group_ids": ["sg-0a1b2c3d4e5f60733"],
    }
    settings = PipelineSettings.model_validate(
        {**prod_settings.model_dump(), **vpc, "stage": "vpcevents", "events_enabled": True, "event_destinations": [crm]}
    )

    # When the stack is synthesized
    template = synthesize(settings, str(tmp_path_factory.mktemp("vpc-events")))[1]

    # Then the VPC has an interface endpoint, with private DNS, for EventBridge and for SQS
    services = {
        e["Properties"]["ServiceName"]: e["Properties"].get("PrivateDnsEnabled")
        for e in resources(template, "AWS::EC2::VPCEndpoint").values()
    }
    assert services["com.amazonaws.eu-west-1.events"] is True
    assert services["com.amazonaws.eu-west-1.sqs"] is True


def test_the_relays_metrics_carry_the_stage_dimension(prod_with_events: Template) -> None:
    # Given the relay's function in the template
    _, relay = function_by_handler(prod_with_events, RELAY_HANDLER)
    environment = relay["Properties"]["Environment"]["Variables"]
    # When its metrics take their default dimensions from that environment, as the relay's module does
    dimensions = stage_dimension(environment)
    # Then EventsRelayed / EventsNotRelayed are this stage's: a dimension is part of a metric's identity, so
    # without it two stages in one account share (and the dashboard's stage filter never sees) them
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Dimension)
    assert dimensions == {"stage": "prod"}


def test_every_command_an_alarm_tells_on_call_to_run_is_one_the_cli_accepts(prod_with_events: Template) -> None:
    # Given the alarms' descriptions, which page on-call with the command to run
    descriptions = [
        a["Properties"]["AlarmDescription"] for a in resources(prod_with_events, "AWS::CloudWatch::Alarm").values()
    ]
    commands = [c for d in descriptions for c in re.findall(r"`leadpipe ([^`]+)`", d)]
    assert any("--hand-off" in c or "--queue" in c for c in commands)  # the hand-off DLQ's alarm is among them
    for command in commands:
        # When the CLI resolves its subcommands (parsing only: no AWS call)
        arguments = shlex.split(command)
        command_object: click.Command = leadpipe
        context = click.Context(leadpipe)
        while arguments and isinstance(command_object, click.Group) and not arguments[0].startswith("-"):
            found = command_object.get_command(context, arguments.pop(0))
            assert found is not None, command
            command_object = found
        # Then every option it names exists
        options = {name for parameter in command_object.params for name in parameter.opts}
        assert [a for a in arguments if a.startswith("--") and a not in options] == [], command


def test_a_hand_off_backlog_cannot_take_the_concurrency_the_ingest_runs_on(prod_with_events: Template) -> None:
    # Given the relay's event source and the ingest function, which has no reserved concurrency of its own
    relay_id, _ = function_by_handler(prod_with_events, RELAY_HANDLER)
    _, mapping = only(prod_with_events, "AWS::Lambda::EventSourceMapping", FunctionName={"Ref": relay_id})
    # When EventBridge comes back after an outage with a backlog in the hand-off queue, Lambda scales an SQS
    # event source by up to 300 concurrent batches a minute, to 1,000, out of the account's unreserved
    # concurrency (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html), which the ingest
    # shares: an unbounded relay would throttle the form's submissions.
    # Then the relay's event source is capped by its own maximum concurrency (2 is the least AWS allows)
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": RELAY_MAX_CONCURRENCY}
    assert RELAY_MAX_CONCURRENCY <= 5

"""What the rule sets (cdk-nag AwsSolutions and ServerlessChecks, cfn-lint with the serverless rules, checkov)
report on this stack and we keep on purpose, each with its reason, on the very resource it concerns.

cdk-nag reads Validations acknowledgements; cfn-lint reads `Metadata.cfn-lint.config.ignore_checks` (the reason
beside it in `ignore_reasons`); checkov reads `Metadata.checkov.skip` (`id`, `comment`). A finding on a resource
this table does not name fails tests/infra/test_rule_sets.py, so a new resource is never waved through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs

from infra.nag import acknowledge

INGEST = "functions.ingest.handler.lambda_handler"
WORKER = "functions.worker.handler.lambda_handler"
MIGRATE = "functions.worker.migrate_handler.lambda_handler"
PROBE = "functions.worker.probe_handler.lambda_handler"
CANARY_CHECK = "functions.worker.canary_handler.lambda_handler"
RETENTION = "functions.worker.retention_handler.lambda_handler"
RELAY = "functions.worker.event_relay_handler.lambda_handler"
CDK_TRIGGER_PROVIDER = "AWSCDK.TriggerCustomResourceProviderCustomResourceProvider"

SYNCHRONOUS = (
    "Invoked synchronously (API Gateway, the SQS event source mapping, the deploy trigger's RequestResponse call): "
    "Lambda sends only asynchronous invocations to a dead-letter target."
)
PROBE_EVENTS = (
    "A failed probe event is worthless a minute later: the next scheduled run is the retry, and DrainProbeErrors / "
    "DrainProbeSilent page on-call when runs fail or stop."
)
RETENTION_EVENTS = (
    "A failed retention run needs no replay: the next hourly run deletes the same rows (it is idempotent), and "
    "RetentionFailed / RetentionSilent page on-call when runs fail or stop."
)
CDK_PROVIDER = (
    "CDK's own trigger provider, run by CloudFormation once per deploy; it reports failure to CloudFormation itself."
)
PYTHON_VERSION = (
    "python3.13, not python3.14, on purpose: the tests run on the deployed Python, and CPython 3.14 cannot be "
    "installed from the registries the project builds from; AWS supports python3.13 until 2029-06-30."
)
DLQ_REASON = {
    INGEST: SYNCHRONOUS,
    WORKER: SYNCHRONOUS,
    MIGRATE: SYNCHRONOUS,
    PROBE: PROBE_EVENTS,
    RETENTION: RETENTION_EVENTS,
    RELAY: SYNCHRONOUS,
    CANARY_CHECK: "Invoked synchronously by `leadpipe verify` (RequestResponse), which reads its answer: Lambda sends "
    "only asynchronous invocations to a dead-letter target.",
}
UNRESERVED_REASON = {
    INGEST: "The public API must scale with the campaign; a reservation would take from the account's quota and cap "
    "forms at it. The stage throttle bounds it.",
    MIGRATE: "Runs once per deploy, invoked by the trigger alone.",
    CANARY_CHECK: "Runs only when `leadpipe verify` invokes it, one call at a time.",
    RELAY: "Runs only while EventBridge refuses events; its SQS event source caps it, and a reservation would "
    "sit idle.",
}
OUTSIDE_VPC_REASON = {
    RELAY: "Talks only to SQS and EventBridge, never to the database: a VPC would add endpoints and nothing to "
    "protect.",
    INGEST: "Talks only to SQS, Secrets Manager and the captcha verifier on the internet: a VPC would add a NAT "
    "gateway and nothing to protect.",
}


@dataclass(frozen=True)
class Ruling:
    """One rule of one tool that a resource breaks on purpose."""

    tool: str  # "cdk-nag", "cfn-lint" or "checkov"
    rule: str
    reason: str


def acknowledge_rule_findings(stack: cdk.Stack) -> None:
    """Put every ruling of `rulings_for` on the resource it concerns."""
    for construct in stack.node.find_all():
        if isinstance(construct, cdk.CfnResource):
            rulings = rulings_for(construct)
            if rulings:
                _apply(construct, rulings)


def rulings_for(resource: cdk.CfnResource) -> list[Ruling]:
    """The rule findings `resource` is allowed, by its type and its part in the stack."""
    kind = resource.cfn_resource_type
    rulings = [ruling for matches, ruling in _RULINGS.get(kind, []) if matches(resource)]
    if kind == "AWS::Lambda::Function":
        rulings += _function_rulings(resource)
    return rulings


def _function_rulings(resource: cdk.CfnResource) -> list[Ruling]:
    if resource.node.scope is not None and resource.node.scope.node.id == CDK_TRIGGER_PROVIDER:
        return [
            Ruling("checkov", "CKV_AWS_116", CDK_PROVIDER),
            Ruling("checkov", "CKV_AWS_115", CDK_PROVIDER),
            Ruling("checkov", "CKV_AWS_117", CDK_PROVIDER + " It calls only the Lambda API."),
            Ruling("cfn-lint", "WS1000", CDK_PROVIDER + " Its log group (with retention) has the outcome."),
            Ruling("cfn-lint", "W3005", "CDK writes DependsOn beside the GetAtt of the role: harmless."),
        ]
    if not isinstance(resource, lambda_.CfnFunction) or resource.handler not in DLQ_REASON:
        return []  # an unknown function gets no pass
    handler = resource.handler
    rulings = [
        Ruling("cdk-nag", "Serverless::Serverless-LambdaLatestVersion", PYTHON_VERSION),
        Ruling("cdk-nag", "Serverless::Serverless-LambdaDLQ", DLQ_REASON[handler]),
        Ruling("checkov", "CKV_AWS_116", DLQ_REASON[handler]),
        Ruling(
            "checkov",
            "CKV_AWS_173",
            "Lambda encrypts environment variables at rest; ours hold ARNs and limits, never a secret.",
        ),
        Ruling(
            "cfn-lint",
            "WS1004",
            "The function logs to its own log group through LoggingConfig.LogGroup, which has a retention "
            "(tests/infra/test_log_retention.py); the rule only looks for /aws/lambda/<name>.",
        ),
        Ruling("cfn-lint", "W3005", "CDK writes DependsOn beside the GetAtt of the role: harmless."),
    ]
    if handler in UNRESERVED_REASON:
        rulings.append(Ruling("checkov", "CKV_AWS_115", UNRESERVED_REASON[handler]))
    if handler in OUTSIDE_VPC_REASON or resource.vpc_config is None:
        reason = OUTSIDE_VPC_REASON.get(handler, "This stage has no VPC: the database it reaches is not in one.")
        rulings.append(Ruling("checkov", "CKV_AWS_117", reason))
    return rulings


def _is_dead_letter_queue(resource: cdk.CfnResource) -> bool:
    return isinstance(resource, sqs.CfnQueue) and resource.redrive_policy is None


def _is_public_post(resource: cdk.CfnResource) -> bool:
    return isinstance(resource, apigw.CfnMethod) and resource.http_method == "POST"


def _any(_: cdk.CfnResource) -> bool:
    return True


_RULINGS: dict[str, list[tuple[Callable[[cdk.CfnResource], bool], Ruling]]] = {
    "AWS::SQS::Queue": [
        (
            _any,
            Ruling("checkov", "CKV_AWS_27", "Encrypted with SSE-SQS (SqsManagedSseEnabled); the check knows KMS only."),
        ),
        (
            _is_dead_letter_queue,
            Ruling(
                "cdk-nag",
                "Serverless::Serverless-SQSRedrivePolicy",
                "It is the dead-letter queue; it pages when not empty.",
            ),
        ),
        (_is_dead_letter_queue, Ruling("cfn-lint", "ES6000", "It is the dead-letter queue; it pages when not empty.")),
    ],
    "AWS::Logs::LogGroup": [
        (
            _any,
            Ruling(
                "checkov",
                "CKV_AWS_158",
                "CloudWatch Logs encrypts every log group at rest; these hold no secrets, and a customer-managed key "
                "would add a key policy to keep right for each writer.",
            ),
        ),
    ],
    "AWS::SNS::Topic": [
        (
            _any,
            Ruling(
                "checkov",
                "CKV_AWS_26",
                "CloudWatch cannot publish to a topic encrypted with the AWS-managed key; alarm texts hold no "
                "personal data.",
            ),
        ),
    ],
    "AWS::SNS::Subscription": [
        (
            _any,
            Ruling(
                "cdk-nag",
                "Serverless::Serverless-SNSRedrivePolicy",
                "An e-mail page that SNS cannot deliver is retried by SNS; a queue of undelivered pages would page "
                "no one. `leadpipe verify` checks delivery.",
            ),
        ),
        (_any, Ruling("cfn-lint", "ES7000", "As for Serverless-SNSRedrivePolicy: no one would read the queue.")),
    ],
    "AWS::Lambda::EventSourceMapping": [
        (
            _any,
            Ruling(
                "cdk-nag",
                "Serverless::Serverless-LambdaEventSourceMappingDestination",
                "An SQS event source hands failed messages to the queue's own redrive policy (the DLQ after "
                "max_receive_count); on-failure destinations are for stream and Kafka sources.",
            ),
        ),
        (_any, Ruling("cfn-lint", "ES1001", "SQS source: the queue's redrive policy is the failure destination.")),
    ],
    "AWS::Events::Rule": [
        (_any, Ruling("cdk-nag", "Serverless::Serverless-EventBusDLQ", PROBE_EVENTS)),
        (_any, Ruling("cfn-lint", "ES4000", PROBE_EVENTS)),
    ],
    "AWS::Lambda::EventInvokeConfig": [
        (
            _any,
            Ruling(
                "cdk-nag", "Serverless::Serverless-LambdaAsyncFailureDestination", PROBE_EVENTS + " " + CDK_PROVIDER
            ),
        ),
    ],
    "AWS::Lambda::Permission": [
        (
            lambda resource: (
                isinstance(resource, lambda_.CfnPermission) and resource.principal == "events.amazonaws.com"
            ),
            Ruling("cfn-lint", "ES1007", PROBE_EVENTS),
        ),
    ],
    "AWS::ApiGateway::Stage": [
        (_any, Ruling("checkov", "CKV_AWS_120", "Every call is a POST of a new lead: nothing to cache.")),
    ],
    "AWS::ApiGateway::Method": [
        (
            _is_public_post,
            Ruling(
                "checkov",
                "CKV_AWS_59",
                "A public landing-page form has no caller identity; stage throttle, WAF and honeypot bound abuse.",
            ),
        ),
    ],
    "AWS::WAFv2::WebACL": [
        (
            _any,
            Ruling(
                "checkov",
                "CKV_AWS_192",
                "No Java behind this API: the ingest is Python and never passes a header to a log4j lookup.",
            ),
        ),
    ],
}


def _apply(resource: cdk.CfnResource, rulings: list[Ruling]) -> None:
    nag = [(r.rule, r.reason) for r in rulings if r.tool == "cdk-nag"]
    if nag:
        acknowledge(resource, *nag)
    lint = {r.rule: r.reason for r in rulings if r.tool == "cfn-lint"}
    if lint:
        config = (resource.get_metadata("cfn-lint") or {}).get("config", {})
        checks = [
            *config.get("ignore_checks", []),
            *(rule for rule in lint if rule not in config.get("ignore_checks", [])),
        ]
        reasons = {**config.get("ignore_reasons", {}), **lint}
        resource.add_metadata("cfn-lint", {"config": {**config, "ignore_checks": checks, "ignore_reasons": reasons}})
    skips = [{"id": r.rule, "comment": r.reason} for r in rulings if r.tool == "checkov"]
    if skips:
        existing = (resource.get_metadata("checkov") or {}).get("skip", [])
        resource.add_metadata("checkov", {"skip": [*existing, *skips]})

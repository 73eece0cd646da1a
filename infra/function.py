"""One builder for every Lambda function of the pipeline, so they all get the same secure defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.contract.observability import METRICS_NAMESPACE
from infra.bundling import LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME, function_code
from infra.nag import acknowledge

# What Lambda needs to create, describe and delete a VPC function's network interfaces.
VPC_ACCESS_POLICY = "service-role/AWSLambdaVPCAccessExecutionRole"


@dataclass(frozen=True)
class VpcPlacement:
    vpc: ec2.IVpc
    subnets: list[ec2.ISubnet]
    security_groups: list[ec2.ISecurityGroup]


@dataclass(frozen=True)
class PipelineFunctionProps:
    """What differs between our functions; everything else is the same on purpose."""

    code_folder: str  # functions/<code_folder>
    handler: str
    service_name: str
    memory_mb: int
    timeout: cdk.Duration
    log_retention_days: int
    environment: dict[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    vpc_placement: VpcPlacement | None = None
    description: str = ""


class PipelineFunction(Construct):
    """A Python function on arm64 with active tracing, JSON logs kept for a set time, and a role
    that can write only to its own log group (no managed policies, unless it lives in a VPC)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: PipelineFunctionProps) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=retention_days(props.log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        placement = props.vpc_placement
        if placement:
            # Lambda manages a VPC function's network interfaces with the function's own role, and CDK adds
            # this policy only to a role it creates itself: without it CreateFunction fails.
            self.role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name(VPC_ACCESS_POLICY))
            acknowledge(
                self.role,
                (
                    f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{VPC_ACCESS_POLICY}]",
                    "AWS's documented policy for a VPC function's network interfaces; "
                    "ec2:DescribeNetworkInterfaces allows no resource-level permissions.",
                ),
            )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            code=function_code(props.code_folder),
            handler=props.handler,
            description=props.description,
            memory_size=props.memory_mb,
            timeout=props.timeout,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=props.reserved_concurrency,
            vpc=placement.vpc if placement else None,
            vpc_subnets=ec2.SubnetSelection(subnets=placement.subnets) if placement else None,
            security_groups=placement.security_groups if placement else None,
            environment={
                "POWERTOOLS_SERVICE_NAME": props.service_name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **props.environment,
            },
        )
        self.log_group.grant_write(self.role)
        acknowledge(
            self.function,
            (
                "AwsSolutions-L1",
                "python3.13, not python3.14, on purpose: the tests run on the deployed Python, and CPython 3.14 "
                "cannot be installed from the registries the project builds from (PyPI, npm, Debian); "
                "AWS supports python3.13 until 2029-06-30.",
            ),
        )
        acknowledge(
            self.role,
            (
                "AwsSolutions-IAM5[Resource::*]",
                "Active tracing: X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions.",
            ),
        )


def retention_days(days: int) -> logs.RetentionDays:
    """CDK's enum member for a number of days the settings model allows."""
    names = {
        1: "ONE_DAY",
        3: "THREE_DAYS",
        5: "FIVE_DAYS",
        7: "ONE_WEEK",
        14: "TWO_WEEKS",
        30: "ONE_MONTH",
        60: "TWO_MONTHS",
        90: "THREE_MONTHS",
        180: "SIX_MONTHS",
        365: "ONE_YEAR",
    }
    return logs.RetentionDays[names[days]]

"""The web ACL's log of the requests it blocked, so a visitor who was turned away can be looked into."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.config import PipelineSettings
from infra.function import retention_days

# AWS WAF logs only to CloudWatch Logs groups whose name starts with this.
WAF_LOG_GROUP_PREFIX = "aws-waf-logs-"
# Headers that may carry a visitor's session or credentials: never logged.
REDACTED_HEADERS = ("cookie", "authorization")


class WafBlockedRequestLog(Construct):
    """A log group (with the stage's retention) and the web ACL's logging configuration: blocked requests only.

    Each record holds the client's IP address and request headers (personal data; see SECURITY.md),
    so allowed requests, which the API's own access log already counts without an IP, are dropped.

    Public attributes: `log_group`, `logging_configuration`.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: PipelineSettings, web_acl: wafv2.CfnWebACL
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        name = f"{WAF_LOG_GROUP_PREFIX}{stack.stack_name}"
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=name,
            retention=retention_days(settings.log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.logging_configuration = wafv2.CfnLoggingConfiguration(
            self,
            "Configuration",
            resource_arn=web_acl.attr_arn,
            # The log group's ARN without the ":*" that LogGroup.log_group_arn ends with: WAF refuses that form.
            log_destination_configs=[
                stack.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=name,
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            logging_filter={
                "DefaultBehavior": "DROP",
                "Filters": [
                    {
                        "Behavior": "KEEP",
                        "Requirement": "MEETS_ANY",
                        "Conditions": [{"ActionCondition": {"Action": "BLOCK"}}],
                    }
                ],
            },
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": header})
                for header in REDACTED_HEADERS
            ],
        )
        self.logging_configuration.node.add_dependency(self.log_group)

"""Who may publish to the alarm topic: CloudWatch alarms of this account and region, over TLS only."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns

CLOUDWATCH_SERVICE = "cloudwatch.amazonaws.com"


def let_cloudwatch_alarms_publish(topic: sns.Topic) -> None:
    """Add the statement that lets this account's alarms in this region publish to `topic`.

    A topic policy replaces SNS's default one, so the TLS-only Deny of `enforce_ssl` alone allows
    nobody: CloudWatch's publish fails with "not authorized to perform: SNS:Publish". The conditions
    keep another account's alarms out (the confused-deputy guard AWS recommends for service principals).
    """
    stack = cdk.Stack.of(topic)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchAlarmsOfThisAccount",
            principals=[iam.ServicePrincipal(CLOUDWATCH_SERVICE)],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {
                    "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                },
            },
        )
    )

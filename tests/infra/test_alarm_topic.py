"""Every alarm's notification can reach on-call: CloudWatch may publish to each topic an alarm action names.

- A topic's access policy (AWS::SNS::TopicPolicy) replaces the default one; a publisher it does not allow gets
  "not authorized to perform: SNS:Publish" in the alarm history:
  https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html
  https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger
- A service principal's access is scoped with aws:SourceAccount / aws:SourceArn (the confused deputy):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html
- A topic encrypted with the AWS-managed key (alias/aws/sns) cannot take CloudWatch's publish:
  https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
- The TLS-only statement (Deny when aws:SecureTransport is false) is AWS's advice for SNS:
  https://docs.aws.amazon.com/sns/latest/dg/sns-security-best-practices.html#enforce-encryption-data-in-transit
"""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import SynthesizedStage
from tests.infra.iam_evaluation import ACCOUNT, REGION, allowed, as_list, resolve, stand_in_arn

CLOUDWATCH = "cloudwatch.amazonaws.com"
OTHER_ACCOUNT = "210987654321"


def topic_policy_statements(stage: SynthesizedStage, topic_id: str) -> list[dict[str, Any]]:
    statements = []
    for policy in stage.resources.values():
        if policy["Type"] == "AWS::SNS::TopicPolicy" and {"Ref": topic_id} in policy["Properties"]["Topics"]:
            statements += as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    return [resolve(s, stage.resources) for s in statements]


def alarm_topics(stage: SynthesizedStage) -> list[tuple[str, str]]:
    """(alarm id, topic id) for every action of every alarm."""
    pairs = []
    for alarm_id, alarm in stage.resources.items():
        if alarm["Type"] != "AWS::CloudWatch::Alarm":
            continue
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            pairs += [(alarm_id, action["Ref"]) for action in alarm["Properties"].get(key, [])]
    return pairs


def publish_context(account: str, alarm_arn: str, secure: bool = True) -> dict[str, str]:
    return {"aws:SourceAccount": account, "aws:SourceArn": alarm_arn, "aws:SecureTransport": str(secure).lower()}


def test_every_alarm_action_topic_lets_this_accounts_alarms_publish(stage: SynthesizedStage) -> None:
    # Given every alarm of the stage and the topics its actions name
    pairs = alarm_topics(stage)
    assert pairs, "alarms without actions page no one"
    for alarm_id, topic_id in pairs:
        assert stage.resources[topic_id]["Type"] == "AWS::SNS::Topic"
        statements = topic_policy_statements(stage, topic_id)
        topic_arn = stand_in_arn(stage.resources, topic_id)
        alarm_arn = stand_in_arn(stage.resources, alarm_id)
        # When CloudWatch publishes the alarm's state change, over TLS, on behalf of this account's alarm
        # Then the topic's policy allows it
        assert allowed(statements, "sns:Publish", topic_arn, publish_context(ACCOUNT, alarm_arn), CLOUDWATCH), alarm_id
        # And the topic is not encrypted with a key CloudWatch cannot use
        assert "KmsMasterKeyId" not in stage.resources[topic_id]["Properties"]


def test_the_publish_right_is_scoped_to_this_accounts_alarms_over_tls(stage: SynthesizedStage) -> None:
    for alarm_id, topic_id in alarm_topics(stage):
        statements = topic_policy_statements(stage, topic_id)
        topic_arn = stand_in_arn(stage.resources, topic_id)
        foreign_alarm = f"arn:aws:cloudwatch:{REGION}:{OTHER_ACCOUNT}:alarm:anything"
        own_alarm = stand_in_arn(stage.resources, alarm_id)
        # Another account's alarm may not publish here (confused deputy)
        assert not allowed(
            statements, "sns:Publish", topic_arn, publish_context(OTHER_ACCOUNT, foreign_alarm), CLOUDWATCH
        )
        assert not allowed(statements, "sns:Publish", topic_arn, publish_context(ACCOUNT, foreign_alarm), CLOUDWATCH)
        # Nor may any request without TLS, ours included (the Deny is kept)
        assert not allowed(
            statements, "sns:Publish", topic_arn, publish_context(ACCOUNT, own_alarm, secure=False), CLOUDWATCH
        )
        # And the right is publishing, nothing else
        assert not allowed(statements, "sns:Subscribe", topic_arn, publish_context(ACCOUNT, own_alarm), CLOUDWATCH)


def test_a_tls_deny_alone_lets_no_one_publish() -> None:
    # Given the policy enforce_ssl writes by itself (the Deny statement only)
    deny_only = [
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "sns:Publish",
            "Resource": "arn:aws:sns:eu-west-1:123456789012:t",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    # Then CloudWatch's publish over TLS is implicitly denied: the evaluation above can fail
    context = publish_context(ACCOUNT, "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:a")
    assert not allowed(deny_only, "sns:Publish", "arn:aws:sns:eu-west-1:123456789012:t", context, CLOUDWATCH)

"""Names that AWS keeps per account (not per stack): one stage's deploy never takes another's.

- CloudWatch dashboards are global to the account, not per Region:
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudwatch-dashboard.html
- API Gateway's CloudWatch Logs role is one setting per account and Region (AWS::ApiGateway::Account); each
  stack that declares it overwrites the last: https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html
  https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-account.html
"""

from __future__ import annotations

from tests.infra.conftest import SynthesizedStage


def test_the_dashboard_name_carries_the_stage_and_the_region(stage: SynthesizedStage) -> None:
    # Given each stage's dashboard
    [dashboard] = [r["Properties"] for r in stage.resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    # Then its account-wide name differs per stage and per Region, so one stage in two Regions does not collide
    assert dashboard["DashboardName"] == {
        "Fn::Join": ["", [f"leadpipe-{stage.settings.stage}-", {"Ref": "AWS::Region"}]]
    }


def test_only_a_stage_that_creates_the_account_logging_role_declares_it(stage: SynthesizedStage) -> None:
    # Given each stage and what it says of API Gateway's account-level logging role
    accounts = {i: r for i, r in stage.resources.items() if r["Type"] == "AWS::ApiGateway::Account"}
    if stage.settings.api_gateway_cloudwatch_role == "existing":
        # Then a stage that uses the account's existing role leaves the account setting alone
        assert accounts == {}
        return
    # And the one that creates it keeps it (and the role) when its own stack is deleted: the others still log
    [(account_id, account)] = accounts.items()
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    assert account["DeletionPolicy"] == "Retain" and stage.resources[role_id]["DeletionPolicy"] == "Retain"

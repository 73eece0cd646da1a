"""Spam protection in the stack: the captcha check's wiring and the optional WAF managed rule groups.

AWS WAF's managed rule groups are named in
https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-list.html
(AWSManagedRulesAmazonIpReputationList, AWSManagedRulesBotControlRuleSet).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.config import PipelineSettings, SettingsError, settings_from_context
from infra.imported_secret import secret_resource_arns
from tests.infra.conftest import synthesize
from tests.infra.template_queries import INGEST_HANDLER

CAPTCHA_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/prod/turnstile-AbCdEf"


def ingest_function(template: Template) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": INGEST_HANDLER}}
    ).items()
    return logical_id, resource["Properties"]


def statements_granting(template: Template, action: str) -> list[dict[str, Any]]:
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if action in actions:
                found.append({**statement, "Roles": policy["Properties"]["Roles"]})
    return found


@pytest.fixture(scope="module")
def protected(prod_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory) -> Template:
    settings = prod_settings.model_copy(
        update={
            "stage": "guarded",
            "captcha_provider": "recaptcha_v3",
            "captcha_secret_arn": CAPTCHA_SECRET_ARN,
            "captcha_min_score": 0.7,
            "captcha_fail_open": True,
            "waf_managed_rule_groups": ["bot_control", "ip_reputation"],
        }
    )
    return synthesize(settings, str(tmp_path_factory.mktemp("guarded")))[1]


def test_without_a_provider_the_ingest_checks_no_captcha_and_reads_no_captcha_secret(dev: Template) -> None:
    # Given dev, which sets no captcha_provider
    _, ingest = ingest_function(dev)
    # Then the ingest has no captcha setting at all
    assert not [name for name in ingest["Environment"]["Variables"] if name.startswith("CAPTCHA_")]
    # And no one may read the captcha secret
    for statement in statements_granting(dev, "secretsmanager:GetSecretValue"):
        assert "turnstile" not in str(statement["Resource"]) and "captcha" not in str(statement["Resource"]).lower()


def test_a_provider_wires_the_ingest_and_lets_it_read_exactly_that_secret(protected: Template) -> None:
    # Given a stage that checks reCAPTCHA v3 tokens and fails open
    _, ingest = ingest_function(protected)
    variables = ingest["Environment"]["Variables"]
    # Then the ingest is told the provider, the secret's ARN (never the secret), the threshold and the failure mode
    assert variables["CAPTCHA_PROVIDER"] == "recaptcha_v3"
    assert variables["CAPTCHA_SECRET_ARN"] == CAPTCHA_SECRET_ARN
    assert variables["CAPTCHA_MIN_SCORE"] == "0.7" and variables["CAPTCHA_FAIL_OPEN"] == "true"
    # And its verifier timeout fits in the function's timeout with the SQS publish still to come
    assert 0 < float(variables["CAPTCHA_TIMEOUT_SECONDS"]) < ingest["Timeout"]
    # And only the ingest's role may read the secret, and only that secret (its ARN, complete or partial)
    role_id = ingest["Role"]["Fn::GetAtt"][0]
    [grant] = [
        s
        for s in statements_granting(protected, "secretsmanager:GetSecretValue")
        if s["Resource"] == secret_resource_arns(CAPTCHA_SECRET_ARN)
    ]
    assert grant["Roles"] == [{"Ref": role_id}] and grant["Effect"] == "Allow"


def test_managed_rule_groups_join_the_web_acl(protected: Template) -> None:
    # Given a stage with the per-IP rate rule and both managed groups
    [web_acl] = protected.find_resources("AWS::WAFv2::WebACL").values()
    rules = sorted(web_acl["Properties"]["Rules"], key=lambda rule: rule["Priority"])
    # Then IP reputation is checked first, the rate rule next, and Bot Control (priced per request) last
    assert [rule["Name"] for rule in rules] == ["ip-reputation", "per-ip-rate", "bot-control"]
    assert [rule["Priority"] for rule in rules] == [0, 1, 2]
    groups = {
        rule["Name"]: rule["Statement"]["ManagedRuleGroupStatement"]
        for rule in rules
        if "ManagedRuleGroupStatement" in rule["Statement"]
    }
    assert (
        groups["ip-reputation"]["VendorName"] == "AWS"
        and groups["ip-reputation"]["Name"] == "AWSManagedRulesAmazonIpReputationList"
    )
    assert groups["bot-control"]["Name"] == "AWSManagedRulesBotControlRuleSet"
    assert groups["bot-control"]["ManagedRuleGroupConfigs"] == [
        {"AWSManagedRulesBotControlRuleSet": {"InspectionLevel": "COMMON"}}
    ]
    # And the groups' own block actions apply (not overridden to count)
    for rule in rules:
        if rule["Name"] != "per-ip-rate":
            assert rule["OverrideAction"] == {"None": {}} and "Action" not in rule
    # And the web ACL guards the API's stage
    [association] = protected.find_resources("AWS::WAFv2::WebACLAssociation").values()
    assert association["Properties"]["WebACLArn"]["Fn::GetAtt"][1] == "Arn"


def test_managed_groups_alone_create_a_web_acl(
    prod_settings: PipelineSettings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Given a stage with no per-IP rate rule but IP reputation on
    settings = prod_settings.model_copy(
        update={
            "stage": "iprep",
            "waf_requests_per_5_minutes_per_ip": None,
            "waf_managed_rule_groups": ["ip_reputation"],
        }
    )
    template = synthesize(settings, str(tmp_path_factory.mktemp("iprep")))[1]
    # Then there is a web ACL holding just that group
    [web_acl] = template.find_resources("AWS::WAFv2::WebACL").values()
    assert [(rule["Name"], rule["Priority"]) for rule in web_acl["Properties"]["Rules"]] == [("ip-reputation", 0)]


def test_a_provider_without_its_secret_stops_synth_naming_the_key() -> None:
    # Given cdk.json context that turns on Turnstile but names no secret
    context = {
        "defaults": {"allowed_origins": ["https://www.example.com"]},
        "stages": {"dev": {"captcha_provider": "turnstile"}},
    }
    # When the settings are read; Then synth stops with a message naming the key to set
    with pytest.raises(SettingsError, match="captcha_secret_arn"):
        settings_from_context(context, "dev")


def test_the_per_ip_rate_rule_answers_a_retryable_429_in_the_project_shape(
    protected: Template, prod_settings: PipelineSettings
) -> None:
    # Given prod's per-IP rate rule (many visitors can share one office or carrier NAT address)
    [web_acl] = protected.find_resources("AWS::WAFv2::WebACL").values()
    [rule] = [rule for rule in web_acl["Properties"]["Rules"] if rule["Name"] == "per-ip-rate"]
    # Then it blocks with a custom response, which AWS WAF documents as taking precedence over the protected
    # resource's own (https://docs.aws.amazon.com/waf/latest/developerguide/customizing-the-response-for-blocked-requests.html):
    # a 429 with Retry-After, which leadpipe.js retries, rather than WAF_FILTERED's final 403
    response = rule["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    headers = {header["Name"]: header["Value"] for header in response["ResponseHeaders"]}
    assert headers == {
        "Retry-After": "60",
        "Access-Control-Allow-Origin": prod_settings.allowed_origins[0],
        "Access-Control-Expose-Headers": "Retry-After",
        "Vary": "Origin",
    }
    # And its body is the project's error shape, served as JSON
    body = web_acl["Properties"]["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    assert json.loads(body["Content"]) == {
        "error": {
            "code": "throttled",
            "message": "too many requests from your network; please retry later",
            "fields": [],
        }
    }

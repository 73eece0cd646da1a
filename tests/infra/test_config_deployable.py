"""Settings AWS would refuse at deploy time, or that would deploy and never work, stop synth naming the key.

- RDS Proxy endpoints are reachable only from inside their VPC ("a proxy can't be publicly accessible"):
  https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy.html#rds-proxy.limitations
- libpq's verify-ca / verify-full need a root certificate file (sslrootcert), or fail with "root certificate file
  ... does not exist": https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION
- Secrets Manager encrypts a secret with a KMS key of the secret's own Region; the caller needs kms:Decrypt on a
  customer-managed key, granted on the key's ARN (not an alias):
  https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html
  https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html
- Lambda keeps 100 of the account's concurrency unreserved ("decreases account's UnreservedConcurrentExecution
  below its minimum value"); the default quota is 1,000 per Region, new accounts may have less:
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
  https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import LAMBDA_UNRESERVED_MINIMUM, SettingsError, settings_from_context, settings_from_file
from tests.infra.conftest import STAGES, SynthesizedStage
from tests.infra.template_queries import with_stage

SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
VPC = {
    "vpc_id": "vpc-0a1b2c3d4e5f60718",
    "vpc_subnet_ids": ["subnet-0a1b2c3d4e5f60711"],
    "vpc_availability_zones": ["eu-west-1a"],
    "vpc_security_group_ids": ["sg-0a1b2c3d4e5f60733"],
}
DEFAULT_ACCOUNT_CONCURRENCY = 1_000


def refusal(stage: str, **overrides: Any) -> str:
    with pytest.raises(SettingsError) as caught:
        settings_from_context(with_stage(stage, **overrides), stage)
    return str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            {"db_proxy_endpoint": "p.proxy-abc.eu-west-1.rds.amazonaws.com"},
            "leadpipe.stages.prod.db_proxy_endpoint: an RDS Proxy is reachable only from inside its VPC",
        ),
        (
            {"db_sslmode": "verify-full", "db_ca_bundle": None},
            "leadpipe.stages.prod.db_ca_bundle: db_sslmode verify-full",
        ),
        ({"db_sslmode": "verify-ca", "db_ca_bundle": None}, "leadpipe.stages.prod.db_ca_bundle: db_sslmode verify-ca"),
        (
            {"db_secret_kms_key_arn": KEY.replace("eu-west-1", "us-east-1")},
            "leadpipe.stages.prod.db_secret_kms_key_arn: Secrets Manager uses a KMS key of the secret's own region",
        ),
        (
            {"db_secret_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:alias/leadpipe"},
            "leadpipe.stages.prod.db_secret_kms_key_arn: String should match pattern",
        ),
        ({"captcha_secret_kms_key_arn": KEY}, "leadpipe.stages.prod.captcha_secret_kms_key_arn: a KMS key without"),
        ({"account_concurrency_limit": 50}, "leadpipe.stages.prod.account_concurrency_limit: the stack reserves 4"),
        ({"account_concurrency_limit": 102}, "leadpipe.stages.prod.account_concurrency_limit: the stack reserves 4"),
    ],
)
def test_combinations_aws_would_refuse_stop_synth_naming_the_key(overrides: dict[str, Any], line: str) -> None:
    # Given a prod stage with one setting AWS would refuse (its database secret set, as prod needs)
    # When synth reads it  Then it stops with a line that names the key
    assert line in refusal("prod", **overrides)


def test_the_same_settings_pass_where_aws_takes_them() -> None:
    # A proxy inside a VPC, verify-full with the shipped bundle, a key of the secret's region, room for 4 reserved
    settings = settings_from_context(
        with_stage(
            "prod",
            db_proxy_endpoint="p.proxy-abc.eu-west-1.rds.amazonaws.com",
            db_sslmode="verify-full",
            db_secret_kms_key_arn=KEY,
            account_concurrency_limit=LAMBDA_UNRESERVED_MINIMUM + 4,
            **VPC,
        ),
        "prod",
    )
    assert settings.reserved_concurrency_total == 4  # the worker's 2, the probe's 1 and the retention's 1


def test_every_stage_leaves_lambdas_unreserved_minimum_in_a_default_account(
    stages: dict[str, SynthesizedStage],
) -> None:
    # Given every stage of cdk.json, deployed side by side into one account with the default quota
    reserved = {
        name: sum(
            r["Properties"].get("ReservedConcurrentExecutions", 0)
            for r in s.resources.values()
            if r["Type"] == "AWS::Lambda::Function"
        )
        for name, s in stages.items()
    }
    # Then what the templates reserve is what the settings model counts
    assert reserved == {name: s.settings.reserved_concurrency_total for name, s in stages.items()}
    # And all of them together leave Lambda its 100 unreserved
    assert sum(reserved.values()) <= DEFAULT_ACCOUNT_CONCURRENCY - LAMBDA_UNRESERVED_MINIMUM


def test_the_production_shape_in_cdk_json() -> None:
    # Given the checked-in stages
    assert set(STAGES) >= {"dev", "prod", "staging"}
    prod, staging = settings_from_file("prod"), settings_from_file("staging")
    # Then prod is the shape a platform engineer deploys: private subnets, RDS Proxy, a CMK-encrypted secret,
    # a verified server certificate, WAF, a captcha and an alarm e-mail
    assert prod.in_vpc and len(prod.vpc_subnet_ids) >= 2 and prod.vpc_security_group_ids
    assert prod.db_proxy_endpoint and prod.db_secret_kms_key_arn and prod.db_sslmode == "verify-full"
    assert prod.waf_requests_per_5_minutes_per_ip and prod.captcha_provider and prod.alarm_email
    # And staging is the direct-connection VPC shape, whose subnets route to AWS through a NAT (declared)
    assert staging.in_vpc and staging.db_proxy_endpoint is None and staging.vpc_aws_api_access == "nat"

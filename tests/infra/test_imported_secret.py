"""Every role that reads an imported secret can read the real secret, whatever form of ARN the settings give.

- Secrets Manager appends "-" and six random characters to a secret's name in its ARN; a policy naming a
  partial ARN matches the secret with "-??????":
  https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html#iam-resources
  https://docs.aws.amazon.com/secretsmanager/latest/userguide/troubleshoot.html#ARN_secretnamehyphen
- IAM matches `?` against exactly one character: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
- Reading a secret encrypted with a customer-managed key needs kms:Decrypt on that key; kms:ViaService limits it
  to calls Secrets Manager makes: https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html
  https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service
"""

from __future__ import annotations

import pytest

from infra.config import settings_from_file
from infra.imported_secret import secret_resource_arns
from tests.infra.conftest import SynthesizedStage, synthesize
from tests.infra.iam_evaluation import REGION, allowed, role_statements

PREFIX = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"


@pytest.mark.parametrize(
    ("given", "real", "other"),
    [
        # A complete ARN: the real secret is exactly it
        (f"{PREFIX}leadpipe/prod/db-AbCdEf", f"{PREFIX}leadpipe/prod/db-AbCdEf", f"{PREFIX}leadpipe/prod/db-XyZ123"),
        # A partial ARN whose name ends like a suffix ("db-master"): the real one has Secrets Manager's suffix
        (
            f"{PREFIX}leadpipe/prod/db-master",
            f"{PREFIX}leadpipe/prod/db-master-Q1w2E3",
            f"{PREFIX}leadpipe/prod/db-masters-Q1w2E3",
        ),
        # A plain partial ARN
        (f"{PREFIX}leadpipe/prod/db", f"{PREFIX}leadpipe/prod/db-Q1w2E3", f"{PREFIX}leadpipe/prod/dbx-Q1w2E3"),
    ],
)
def test_the_grant_matches_the_real_secret_and_no_other(given: str, real: str, other: str) -> None:
    # Given the resources a read grant names for the ARN the settings give
    statements = [
        {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": secret_resource_arns(given)}
    ]
    # When the function reads the real secret  Then IAM allows it, and another secret of a similar name stays denied
    assert allowed(statements, "secretsmanager:GetSecretValue", real)
    assert not allowed(statements, "secretsmanager:GetSecretValue", other)


def test_every_reader_of_the_database_secret_can_decrypt_it(stage: SynthesizedStage) -> None:
    # Given each stage; cdk.json names complete ARNs, so the real secret is the ARN itself
    settings = stage.settings
    real_secret = settings.db_secret_arn or f"{PREFIX}no-database-AbCdEf"
    via = {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}
    readers = []
    for function_id, function in stage.resources.items():
        if function["Type"] != "AWS::Lambda::Function":
            continue
        statements = role_statements(stage.resources, function["Properties"]["Role"]["Fn::GetAtt"][0])
        # When a function reads the database secret
        if allowed(statements, "secretsmanager:GetSecretValue", real_secret):
            readers.append(function["Properties"]["Handler"])
            # Then with a customer-managed key it may also decrypt, through Secrets Manager only
            if settings.db_secret_kms_key_arn:
                assert allowed(statements, "kms:Decrypt", settings.db_secret_kms_key_arn, via), function_id
                assert not allowed(statements, "kms:Decrypt", settings.db_secret_kms_key_arn, {}), function_id
    # And the readers are the worker, the migration, the probe, the retention and the canary check, or no one
    # without a database
    expected = (
        {"handler", "migrate_handler", "probe_handler", "retention_handler", "canary_handler"}
        if settings.has_database
        else set()
    )
    assert {h.split(".")[2] for h in readers} == expected


def test_a_partial_arn_ending_like_a_suffix_still_reads_the_real_secret(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Given prod with a partial ARN whose name ends in "-" and six characters ("db-master"), as an operator may write it
    settings = settings_from_file("prod").model_copy(update={"db_secret_arn": f"{PREFIX}leadpipe/prod/db-master"})
    template = synthesize(settings, str(tmp_path_factory.mktemp("partial")))[0]["Resources"]
    [worker] = [
        r for r in template.values() if r["Properties"].get("Handler") == "functions.worker.handler.lambda_handler"
    ]
    statements = role_statements(template, worker["Properties"]["Role"]["Fn::GetAtt"][0])
    # When the worker reads the real secret, whose ARN has Secrets Manager's suffix  Then IAM allows it
    assert allowed(statements, "secretsmanager:GetSecretValue", f"{PREFIX}leadpipe/prod/db-master-Q1w2E3")

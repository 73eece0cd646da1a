"""A Secrets Manager secret made outside the stack, named by the ARN in the settings, and the key that encrypts it."""

from __future__ import annotations

from aws_cdk import aws_iam as iam

# What `Secret.grant_read` grants: read the value and its metadata.
SECRET_READ_ACTIONS = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
# Secrets Manager ends every secret's ARN with "-" and six random characters.
RANDOM_SUFFIX_PATTERN = "-??????"


def secret_resource_arns(arn: str) -> list[str]:
    """IAM resources that match the secret `arn` names, complete or partial: the text cannot tell them apart
    (`db-master` ends like a suffix), so both the ARN and `<arn>-??????` are granted."""
    return [arn, f"{arn}{RANDOM_SUFFIX_PATTERN}"]


class ImportedSecret:
    """`secret_arn` and its customer-managed key (None: aws/secretsmanager). An imported key's policy cannot be
    changed from here, so `grant_read` puts kms:Decrypt on the reader's own policy."""

    def __init__(self, secret_arn: str, kms_key_arn: str | None = None) -> None:
        self.secret_arn = secret_arn
        self.kms_key_arn = kms_key_arn

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        grant = iam.Grant.add_to_principal(
            grantee=grantee, actions=SECRET_READ_ACTIONS, resource_arns=secret_resource_arns(self.secret_arn)
        )
        if self.kms_key_arn:
            region = self.secret_arn.split(":")[3]
            # Only through Secrets Manager: the reader cannot use the key for anything else.
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["kms:Decrypt"],
                resource_arns=[self.kms_key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
            )
        return grant

"""A Secrets Manager secret made outside the stack, named by the ARN in the settings, and the key that encrypts it."""

from __future__ import annotations

from aws_cdk import aws_iam as iam

# What `Secret.grant_read` grants: read the value and its metadata.
SECRET_READ_ACTIONS = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
# Secrets Manager ends every secret's ARN with "-" and six random characters.
RANDOM_SUFFIX_PATTERN = "-??????"


def secret_resource_arns(arn: str) -> list[str]:
    """IAM resources that match the secret `arn` names, whether it is the complete ARN or a partial one.

    A partial ARN (the name without the suffix) cannot be told from a complete one by its text: the name
    `db-master` ends like a suffix. Granting both the ARN as given and `<arn>-??????` matches the real
    secret either way; the second can match only a secret whose name is this whole ARN's name.
    """
    return [arn, f"{arn}{RANDOM_SUFFIX_PATTERN}"]


class ImportedSecret:
    """`secret_arn` as the settings give it; `kms_key_arn` is its customer-managed key, or None for aws/secretsmanager.

    `grant_read` is what `Secret.grant_read` does, plus kms:Decrypt on the customer-managed key: an imported
    key's policy cannot be changed from here, so the grant goes on the reader's own policy.
    """

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

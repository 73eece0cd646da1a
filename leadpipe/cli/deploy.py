"""Around a deploy: `leadpipe preflight` before it, `leadpipe verify` after it (docs/deploy.md)."""

from __future__ import annotations

import click

from infra.config import SettingsError, settings_from_file
from leadpipe.cli.errors import CliError

PREFLIGHT_SERVICES = ("lambda", "apigateway", "ec2", "secretsmanager", "kms", "rds", "sns", "cloudformation")
VERIFY_SERVICES = ("cloudformation", "cloudwatch", "lambda", "sqs", "sns")


@click.command()
@click.option("--stage", required=True, help="Whose settings from cdk.json to check.")
def preflight(stage: str) -> int:
    """Before a deploy: check the target account can take the stage (read-only).

    Read-only checks of the account and Region in your shell's credentials: Lambda concurrency, the
    API Gateway quota and logging role, the VPC and its routes to the AWS APIs, the database secret
    and its key, the RDS Proxy, the security groups on the way to the database, the alarm e-mail.
    One line per check; exit 2 if any fails. Step by step: docs/deploy.md.
    """
    import boto3

    from leadpipe.preflight import AccountClients, run_preflight

    clients = AccountClients(*(boto3.client(name) for name in PREFLIGHT_SERVICES))
    checks = run_preflight(settings_from_file(stage), clients, f"Leadpipe-{stage}")
    click.echo("\n".join(check.line() for check in checks))
    return 0 if all(check.ok for check in checks) else 2


@click.command()
@click.option("--stack", required=True, help="The deployed stack's name, e.g. Leadpipe-prod.")
@click.option("--stage", help="Whose cdk.json settings (its captcha) apply; default: the name after 'Leadpipe-'.")
def verify(stack: str, stage: str | None) -> int:
    """After a deploy: prove the stack works end to end (a canary lead, every alarm's notification).

    The DLQ is empty, the drain runs, the drain probe's last run succeeded; a canary lead (under
    leadpipe-canary.example) posted to LeadsEndpoint is stored, then erased, checked from inside
    the VPC; each alarm is set to ALARM (OK if in ALARM), its history must show the SNS action, and
    it is put back. On-call receives those notifications. One line per check; exit 2 if any fails.
    """
    import boto3

    from leadpipe.targets import TargetNotFound
    from leadpipe.verify import StackClients, http_post, verify_stack

    try:
        settings = settings_from_file(stage or stack.removeprefix("Leadpipe-"))
    except SettingsError:
        if stage:
            raise
        settings = None  # a stack named otherwise: no captcha secret to sign the canary's pass with
    captcha_secret = None
    if settings and settings.captcha_provider and settings.captcha_secret_arn:
        arn = settings.captcha_secret_arn

        def captcha_secret() -> str:
            return boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]

    clients = StackClients(*(boto3.client(name) for name in VERIFY_SERVICES))
    try:
        checks = verify_stack(stack, clients, http_post, captcha_secret=captcha_secret)
    except TargetNotFound as error:
        raise CliError(str(error)) from None
    click.echo("\n".join(check.line() for check in checks))
    return 0 if all(check.ok for check in checks) else 2

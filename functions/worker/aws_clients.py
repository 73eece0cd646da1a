"""Bounded AWS API calls for the worker's functions (worker, migrations, drain probe).

botocore's defaults (60 s connect, 60 s read, retries) would run a function into its own timeout on a slow
AWS API; each call here gives up within `AWS_CALL_SECONDS` and the caller's own retry takes over.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 1.0
ATTEMPTS = 1  # the caller's own retry (SQS, the probe's schedule, the deploy) is the retry
AWS_CALL_SECONDS = ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS)


def bounded_config() -> Config:
    """A botocore config whose calls end within AWS_CALL_SECONDS."""
    return Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
    )


def bounded_client(service: str) -> Any:
    """A boto3 client for `service` with the bounded config."""
    return boto3.client(service, config=bounded_config())


@cache
def secrets_provider() -> Any:
    """Powertools' Secrets Manager provider (it caches values) on a bounded client; built on first use."""
    from aws_lambda_powertools.utilities import parameters  # only the cloud path needs it

    return parameters.SecretsProvider(boto_config=bounded_config())

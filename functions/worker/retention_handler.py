"""Lambda entry point of the retention: wiring only; what it deletes and how is in retention.py.

Runs on a schedule (EventBridge), with the worker's credentials and network path. A run that fails
raises, so the function's Errors metric (and its alarm) tells on-call.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import psycopg
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from functions.contract import RedactingFormatter
from functions.worker.credentials import database_conninfo
from functions.worker.retention import RetentionPolicy, run_retention
from functions.worker.settings import WorkerSettings

RETENTION_SERVICE = "leadpipe-retention"
RETENTION_APPLICATION_NAME = "leadpipe-retention"  # DB owners can tell its session from the worker's
logger = Logger(service=RETENTION_SERVICE, logger_formatter=RedactingFormatter())


class RetentionSettings(BaseModel):
    """How long leads and tombstones are kept; unset (absent) keeps them."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    lead_retention_days: int | None = Field(default=None, alias="LEAD_RETENTION_DAYS", ge=1)
    tombstone_retention_days: int | None = Field(default=None, alias="ERASURE_TOMBSTONE_RETENTION_DAYS", ge=1)


@cache
def get_settings() -> tuple[RetentionSettings, WorkerSettings]:
    environ = {k: v for k, v in os.environ.items() if v != ""}
    return RetentionSettings.model_validate(environ), WorkerSettings.from_env(environ)


def retention_policy(retention: RetentionSettings, worker: WorkerSettings) -> RetentionPolicy:
    """The policy with the worker's own statement and lock limits, so a batch never outlasts a worker's INSERT."""
    return RetentionPolicy(
        lead_retention_days=retention.lead_retention_days,
        tombstone_retention_days=retention.tombstone_retention_days,
        statement_timeout_seconds=worker.statement_timeout_seconds,
        lock_timeout_seconds=min(worker.lock_timeout_seconds, 2),
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    retention, worker = get_settings()
    policy = retention_policy(retention, worker)
    with psycopg.connect(
        database_conninfo(worker), autocommit=True, application_name=RETENTION_APPLICATION_NAME
    ) as connection:
        run = run_retention(
            connection,
            worker.leads_table,
            policy,
            time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        )
    logger.info("retention ran", extra={"policy": policy.as_text(), **run.as_dict()})
    return run.as_dict()


def reset_for_tests() -> None:
    get_settings.cache_clear()

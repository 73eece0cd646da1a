"""Lambda entry point of `leadpipe verify`'s canary check: wiring only; the work is in canary.py.

It runs in the worker's VPC with the worker's credentials code, so the operator needs no route to the database.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.contract import RedactingFormatter
from functions.worker.canary import CanaryRequest, confirm_and_erase
from functions.worker.credentials import database_conninfo, session_timeouts
from functions.worker.repository import connect
from functions.worker.settings import WorkerSettings

CANARY_CHECK_SERVICE = "leadpipe-canary-check"
logger = Logger(service=CANARY_CHECK_SERVICE, logger_formatter=RedactingFormatter())


@cache
def get_settings() -> WorkerSettings:
    return WorkerSettings.from_env(os.environ)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, bool]:
    """`{"lead_id", "email", "give_up"}` in, `{"stored", "tombstoned"}` out; a non-canary address fails the call."""
    request = CanaryRequest.model_validate(event)
    settings = get_settings()
    with connect(database_conninfo(settings), prepare_statements=False) as connection:
        outcome = confirm_and_erase(connection, settings.leads_table, request, session_timeouts(settings))
    logger.info("canary checked", extra={"lead_id": str(request.lead_id), **outcome.as_dict()})
    return outcome.as_dict()


def reset_for_tests() -> None:
    get_settings.cache_clear()

"""Lambda entry point run by the deploy trigger: apply the SQL migrations, idempotently."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.contract import RedactingFormatter
from functions.worker.credentials import database_conninfo
from functions.worker.migrate import apply_migrations
from functions.worker.repository import connect
from functions.worker.settings import WorkerSettings

logger = Logger(service="leadpipe-migrations", logger_formatter=RedactingFormatter())


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Fails (and so fails the deploy) if the database cannot be migrated."""
    settings = WorkerSettings.from_env(os.environ)
    with connect(database_conninfo(settings), prepare_statements=settings.prepares_statements) as connection:
        applied = apply_migrations(connection, settings.leads_table)
    logger.info("migrations done", extra={"applied": applied, "table": settings.leads_table})
    return {"applied": applied}

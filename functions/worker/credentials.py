"""Where the worker's database connection string comes from: never a plain env var in the cloud."""

from __future__ import annotations

from psycopg.conninfo import make_conninfo

from functions.worker.settings import WorkerSettings


def database_conninfo(settings: WorkerSettings) -> str:
    """A libpq connection string, from `DATABASE_URL` or from the RDS-format secret.

    The secret is read through Powertools parameters, which caches it for
    `secret_max_age_seconds`, so a rotated password is picked up without a redeploy.
    """
    timeout = {"connect_timeout": str(settings.connect_timeout_seconds)}
    if settings.database_url is not None:
        return make_conninfo(settings.database_url.get_secret_value(), **timeout)

    from aws_lambda_powertools.utilities import parameters  # only the cloud path needs it

    secret = parameters.get_secret(settings.db_secret_arn, transform="json", max_age=settings.secret_max_age_seconds)
    options = {
        "host": settings.db_proxy_endpoint or secret["host"],
        "port": str(secret.get("port", 5432)),
        "user": secret["username"],
        "password": secret["password"],
        "dbname": secret.get("dbname", "postgres"),
        **timeout,
    }
    if settings.db_sslmode:
        options["sslmode"] = settings.db_sslmode
    return make_conninfo("", **options)

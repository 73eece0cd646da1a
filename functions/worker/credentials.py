"""Where the worker's database connection string comes from: never a plain env var in the cloud."""

from __future__ import annotations

from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from functions.worker.aws_clients import secrets_provider
from functions.worker.repository import SessionTimeouts
from functions.worker.settings import WorkerSettings

# libpq's client-side keepalives: a peer that vanished (failover, network cut) is noticed in ~1 min.
CLIENT_KEEPALIVES = {"keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3"}
# The CA bundles shipped with the worker's package, by their `db_ca_bundle` name.
CA_BUNDLES_DIR = Path(__file__).resolve().parent / "certs"
# Only these modes verify: with `require`, a given root file would silently turn it into verify-ca (libpq).
VERIFYING_SSLMODES = frozenset({"verify-ca", "verify-full"})


def session_timeouts(settings: WorkerSettings) -> SessionTimeouts:
    """The server-side limits of the worker's session, from its settings."""
    return SessionTimeouts(
        statement_timeout_seconds=settings.statement_timeout_seconds,
        lock_timeout_seconds=settings.lock_timeout_seconds,
        idle_in_transaction_timeout_seconds=settings.function_timeout_seconds,
    )


def database_conninfo(settings: WorkerSettings) -> str:
    """A libpq connection string, from `DATABASE_URL` or from the RDS-format secret.

    The secret is read through Powertools parameters, which caches it for
    `secret_max_age_seconds`, so a rotated password is picked up without a redeploy.
    It always carries `connect_timeout` and TCP keepalives. On a direct connection it also carries
    the session timeouts as startup `options`; through RDS Proxy it does not (the repository sets
    them per transaction), since session state set by a client pins its proxy connection.
    """
    extra = {"connect_timeout": str(settings.connect_timeout_seconds), **CLIENT_KEEPALIVES}
    if settings.database_url is not None:
        base = settings.database_url.get_secret_value()
        return make_conninfo(base, **extra, **_startup_options(settings, conninfo_to_dict(base).get("options")))

    # Bounded: a slow Secrets Manager fails this call in seconds, not botocore's minutes.
    secret = secrets_provider().get(settings.db_secret_arn, transform="json", max_age=settings.secret_max_age_seconds)
    options = {
        "host": settings.db_proxy_endpoint or secret["host"],
        "port": str(secret.get("port", 5432)),
        "user": secret["username"],
        "password": secret["password"],
        "dbname": secret.get("dbname", "postgres"),
        **extra,
        **_startup_options(settings, None),
    }
    if settings.db_sslmode:
        options["sslmode"] = settings.db_sslmode
    if settings.db_sslmode in VERIFYING_SSLMODES and settings.db_ca_bundle:
        options["sslrootcert"] = str(ca_bundle_path(settings.db_ca_bundle))
    return make_conninfo("", **options)


def ca_bundle_path(name: str) -> Path:
    """The PEM file of a shipped CA bundle."""
    return CA_BUNDLES_DIR / f"{name}.pem"


def _startup_options(settings: WorkerSettings, existing: str | None) -> dict[str, str]:
    if settings.through_proxy:
        return {}
    ours = session_timeouts(settings).startup_options()
    return {"options": f"{existing} {ours}" if existing else ours}

"""The worker function's environment, checked once per execution environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from functions.worker.round_trip_deadline import ROUND_TRIP_MARGIN_SECONDS

TABLE_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$"


class WorkerSettings(BaseModel):
    """Where the database is and which table to fill.

    In the cloud the credentials come from a Secrets Manager secret (`DB_SECRET_ARN`); a plain
    `DATABASE_URL` is for local runs and tests only.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    database_url: SecretStr | None = Field(default=None, alias="DATABASE_URL")
    db_secret_arn: str | None = Field(default=None, alias="DB_SECRET_ARN")
    db_proxy_endpoint: str | None = Field(default=None, alias="DB_PROXY_ENDPOINT")
    db_sslmode: str | None = Field(default=None, alias="DB_SSLMODE")
    # The shipped CA bundle (functions/worker/certs/<name>.pem) that verify-ca / verify-full trust.
    db_ca_bundle: Literal["aws-rds-global"] | None = Field(default=None, alias="DB_CA_BUNDLE")
    leads_table: str = Field(default="leadpipe.leads", alias="LEADS_TABLE", pattern=TABLE_NAME_PATTERN)
    connect_timeout_seconds: int = Field(default=5, alias="DB_CONNECT_TIMEOUT_SECONDS", ge=1, le=60)
    statement_timeout_seconds: int = Field(default=10, alias="DB_STATEMENT_TIMEOUT_SECONDS", ge=1, le=600)
    lock_timeout_seconds: int = Field(default=5, alias="DB_LOCK_TIMEOUT_SECONDS", ge=1, le=600)
    # Lambda's own limit: an open transaction idle longer than the whole invocation has lost its client.
    function_timeout_seconds: int = Field(default=30, alias="WORKER_TIMEOUT_SECONDS", ge=1, le=900)
    secret_max_age_seconds: int = Field(default=300, alias="DB_SECRET_MAX_AGE_SECONDS", ge=0)
    # LeadStored events (optional): the bus to publish on, and the durable queue for what it does not take.
    event_bus_name: str | None = Field(default=None, alias="EVENT_BUS_NAME", min_length=1)
    events_hand_off_queue_url: str | None = Field(default=None, alias="EVENTS_HAND_OFF_QUEUE_URL", min_length=1)

    @model_validator(mode="after")
    def _one_credential_source(self) -> WorkerSettings:
        if (self.database_url is None) == (self.db_secret_arn is None):
            raise ValueError("set exactly one of DATABASE_URL (local) or DB_SECRET_ARN (cloud)")
        return self

    @property
    def through_proxy(self) -> bool:
        """RDS Proxy multiplexes sessions: no session state may be set on its connections."""
        return self.db_proxy_endpoint is not None

    @property
    def round_trip_limit_seconds(self) -> float:
        """The probe's client-side limit on one round trip, and the worker's when it has no Lambda context to size
        it from: the statement timeout plus a margin for the server's own answer."""
        return self.statement_timeout_seconds + ROUND_TRIP_MARGIN_SECONDS

    @property
    def prepares_statements(self) -> bool:
        """Not through RDS Proxy, where a prepared statement would pin the session."""
        return self.db_proxy_endpoint is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerSettings:
        return cls.model_validate({k: v for k, v in environ.items() if v != ""})

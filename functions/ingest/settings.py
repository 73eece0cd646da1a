"""The ingest function's environment, checked once per execution environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]


class IngestSettings(BaseModel):
    """What the stack (or the local runtime) tells the ingest through its environment."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    queue_url: str = Field(alias="LEADS_QUEUE_URL", min_length=1)
    allowed_origins: CommaList = Field(default=(), alias="ALLOWED_ORIGINS")
    max_body_bytes: int = Field(default=16_384, alias="MAX_BODY_BYTES", ge=1_024, le=1_048_576)
    honeypot_field: str = Field(default="website", alias="HONEYPOT_FIELD", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    metric_campaigns: CommaList = Field(default=(), alias="METRIC_CAMPAIGNS")
    retry_after_seconds: int = Field(default=5, alias="RETRY_AFTER_SECONDS", ge=1, le=3_600)
    # The ingest's own Lambda timeout: the SQS client's timeouts and retries are derived from it.
    function_timeout_seconds: int = Field(default=5, alias="INGEST_TIMEOUT_SECONDS", ge=1, le=29)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> IngestSettings:
        return cls.model_validate(dict(environ))

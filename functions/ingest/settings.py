"""The ingest function's environment, checked once per execution environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from functions.contract.lead import normalise_campaign


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]
# Compared with the lead's normalised code, so `summersale20` in the settings tracks SUMMERSALE20.
CampaignCodes = Annotated[CommaList, AfterValidator(lambda codes: tuple(normalise_campaign(code) for code in codes))]


class IngestSettings(BaseModel):
    """What the stack (or the local runtime) tells the ingest through its environment."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    queue_url: str = Field(alias="LEADS_QUEUE_URL", min_length=1)
    allowed_origins: CommaList = Field(default=(), alias="ALLOWED_ORIGINS")
    max_body_bytes: int = Field(default=16_384, alias="MAX_BODY_BYTES", ge=1_024, le=1_048_576)
    honeypot_field: str = Field(default="website", alias="HONEYPOT_FIELD", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    metric_campaigns: CampaignCodes = Field(default=(), alias="METRIC_CAMPAIGNS")
    retry_after_seconds: int = Field(default=5, alias="RETRY_AFTER_SECONDS", ge=1, le=3_600)
    # The ingest's own Lambda timeout: the SQS client's timeouts and retries are derived from it.
    function_timeout_seconds: int = Field(default=5, alias="INGEST_TIMEOUT_SECONDS", ge=1, le=29)
    # Spam protection beyond the honeypot: set only when the stage checks a captcha.
    captcha_provider: Literal["turnstile", "recaptcha_v3"] | None = Field(default=None, alias="CAPTCHA_PROVIDER")
    captcha_secret_arn: str | None = Field(default=None, alias="CAPTCHA_SECRET_ARN", min_length=1)
    captcha_min_score: float = Field(default=0.5, alias="CAPTCHA_MIN_SCORE", ge=0, le=1)
    captcha_fail_open: bool = Field(default=False, alias="CAPTCHA_FAIL_OPEN")
    captcha_timeout_seconds: float = Field(default=1.5, alias="CAPTCHA_TIMEOUT_SECONDS", gt=0, le=10)
    captcha_verify_url: str | None = Field(default=None, alias="CAPTCHA_VERIFY_URL", pattern=r"^https?://")

    @model_validator(mode="after")
    def _captcha_needs_a_secret(self) -> IngestSettings:
        if self.captcha_provider and not self.captcha_secret_arn:
            raise ValueError("CAPTCHA_PROVIDER is set but CAPTCHA_SECRET_ARN is not")
        if self.captcha_provider and self.captcha_timeout_seconds > self.function_timeout_seconds / 2:
            raise ValueError("CAPTCHA_TIMEOUT_SECONDS must leave at least half of INGEST_TIMEOUT_SECONDS to SQS")
        return self

    @property
    def sqs_budget_seconds(self) -> float:
        """The part of the function's time SQS may use: what the captcha check may take comes first."""
        return self.function_timeout_seconds - (self.captcha_timeout_seconds if self.captcha_provider else 0.0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> IngestSettings:
        return cls.model_validate(dict(environ))

"""Where `LeadStored` events go: one typed setting per HTTP destination, and the bodies we ship.

Pure pydantic, no CDK: the stack (infra/events.py), the local stand-in (leadpipe/local/) and the
planner read the same model, so what `make run` delivers is what EventBridge would.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from functions.worker.lead_events import EVENT_SOURCE, LEAD_STORED

SECRET_ARN_PATTERN = r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$"
# EventBridge's own ranges: InvocationRateLimitPerSecond 1-300, RetryPolicy 60-86,400 s and 0-185 attempts.
MAX_INVOCATION_RATE_PER_SECOND = 300
MAX_EVENT_AGE_HOURS = 24
MAX_RETRY_ATTEMPTS = 185

# `leadpipe dlq redrive --destination NAME` puts a destination's dead letters back on the bus as this, for that
# destination's rule only: the others have delivered those leads already.
LEAD_STORED_REDRIVE = "LeadStoredRedrive"


class ApiKeyAuth(BaseModel):
    """A header EventBridge adds to every request, its value read from a Secrets Manager secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["api_key"]
    header: str = Field(default="Authorization", pattern=r"^[A-Za-z0-9-]{1,64}$")
    secret_arn: str = Field(pattern=SECRET_ARN_PATTERN)
    secret_json_field: str = Field(
        default="api_key", min_length=1, description="the key holding the value in the secret's JSON"
    )


class OAuthClientCredentialsAuth(BaseModel):
    """OAuth 2 client credentials: EventBridge fetches (and refreshes) the token from `token_url`.

    The secret's JSON holds `client_id` and `client_secret`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["oauth_client_credentials"]
    token_url: HttpUrl
    secret_arn: str = Field(pattern=SECRET_ARN_PATTERN)
    scope: str | None = Field(default=None, max_length=512)


class NoAuth(BaseModel):
    """For endpoints whose URL is the credential (a Slack incoming webhook): keep the URL in a secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["none"]


Auth = Annotated[ApiKeyAuth | OAuthClientCredentialsAuth | NoAuth, Field(discriminator="kind")]


class BodyTemplate(BaseModel):
    """What EventBridge sends: either one JSON path of the event (`input_path`), or an input transformer
    (`input_paths` and `input_template`, placeholders `<name>` outside quotes, as EventBridge documents)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_path: str | None = None
    input_paths: dict[str, str] = Field(default_factory=dict)
    input_template: str | None = None


def _lead_json() -> BodyTemplate:
    """The generic CRM webhook: the event's detail as JSON (lead_id, campaign, times, the lead's fields)."""
    return BodyTemplate(input_path="$.detail")


def _slack_text(include_email: bool) -> BodyTemplate:
    """Slack's incoming webhook: "New lead for SUMMERSALE20"; the address only when the team opts in."""
    if include_email:
        return BodyTemplate(
            input_paths={"headline": "$.detail.headline", "email": "$.detail.lead.email"},
            input_template='{"text": <headline>, "attachments": [{"text": <email>}]}',
        )
    return BodyTemplate(input_paths={"headline": "$.detail.headline"}, input_template='{"text": <headline>}')


class EventDestination(BaseModel):
    """One HTTP endpoint that gets every stored lead (of `campaigns`, if set), at most
    `invocation_rate_per_second`, through an EventBridge API destination."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")
    url: HttpUrl | None = Field(default=None, description="https endpoint; or url_secret_arn")
    url_secret_arn: str | None = Field(
        default=None,
        pattern=SECRET_ARN_PATTERN,
        description="a secret whose value is the URL (Slack's webhook URL is a credential)",
    )
    auth: Auth = Field(default_factory=lambda: NoAuth(kind="none"))
    invocation_rate_per_second: int = Field(ge=1, le=MAX_INVOCATION_RATE_PER_SECOND)
    body: Literal["lead_json", "slack_text", "custom"] = "lead_json"
    include_email: bool = Field(default=False, description="slack_text: show the address in the channel")
    custom_body: BodyTemplate | None = None
    campaigns: list[Annotated[str, Field(pattern=r"^\s*[A-Za-z0-9_-]{1,64}\s*$")]] = Field(
        default_factory=list, max_length=20, description="only these campaigns (any case); empty: all"
    )
    max_event_age_hours: int = Field(default=MAX_EVENT_AGE_HOURS, ge=1, le=MAX_EVENT_AGE_HOURS)
    retry_attempts: int = Field(default=MAX_RETRY_ATTEMPTS, ge=0, le=MAX_RETRY_ATTEMPTS)
    max_lag_minutes: int = Field(default=60, ge=1, description="`leadpipe plan` warns when the peak lag is longer")

    @field_validator("campaigns")
    @classmethod
    def _as_the_contract_stores_them(cls, campaigns: list[str]) -> list[str]:
        # The Lead contract upper-cases a campaign: the rule must match what the worker publishes.
        return [campaign.strip().upper() for campaign in campaigns]

    @model_validator(mode="after")
    def _consistent(self) -> EventDestination:
        if (self.url is None) == (self.url_secret_arn is None):
            raise ValueError("set exactly one of url or url_secret_arn")
        if self.url is not None and self.url.scheme != "https":
            raise ValueError("url must be https (EventBridge API destinations call HTTPS endpoints only)")
        if (self.body == "custom") != (self.custom_body is not None):
            raise ValueError("custom_body goes with body 'custom', and only with it")
        if self.include_email and self.body != "slack_text":
            raise ValueError("include_email applies to body 'slack_text' only")
        return self

    @property
    def template(self) -> BodyTemplate:
        """What EventBridge turns each event into before the POST."""
        if self.body == "lead_json":
            return _lead_json()
        if self.body == "slack_text":
            return _slack_text(self.include_email)
        return self.custom_body  # type: ignore[return-value]

    @property
    def event_pattern(self) -> dict[str, object]:
        """The rule's pattern: every LeadStored (of `campaigns`), and the redriven events meant for this destination
        (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html#eb-filtering-complex-example-or)."""
        campaign: dict[str, object] = {"campaign": self.campaigns} if self.campaigns else {}
        stored: dict[str, object] = {"detail-type": [LEAD_STORED], **({"detail": campaign} if campaign else {})}
        redriven = {"detail-type": [LEAD_STORED_REDRIVE], "detail": {**campaign, "redrive_to": [self.name]}}
        return {"source": [EVENT_SOURCE], "$or": [stored, redriven]}

    @property
    def max_event_age_seconds(self) -> int:
        return self.max_event_age_hours * 3600

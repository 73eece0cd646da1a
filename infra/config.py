"""The pipeline's settings: one typed model, read from `cdk.json` per stage.

The CDK stack and the local runtime both read this model, so a local run mirrors the cloud.
It imports nothing from CDK. A bad value stops synth with a message naming the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from functions.contract.lead import normalise_campaign
from functions.worker.governor import GovernorLimits
from functions.worker.retention import RETENTION_TIMEOUT_SECONDS
from functions.worker.settings import TABLE_NAME_PATTERN
from infra.destinations import EventDestination

CONTEXT_KEY = "leadpipe"
DEFAULT_STAGE = "dev"
SQS_MAX_RETENTION_DAYS = 14  # SQS's longest message retention
# AWS's advice for an SQS event source: 6x the function timeout
# (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html)
VISIBILITY_TIMEOUT_FACTOR = 6
REPO_ROOT = Path(__file__).resolve().parent.parent
# Lambda keeps this much of an account's concurrency unreserved
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
LAMBDA_UNRESERVED_MINIMUM = 100
PROBE_RESERVED_CONCURRENCY = 1  # one drain probe at a time
RETENTION_RESERVED_CONCURRENCY = 1  # one retention run, so one database session, at a time
# A key ARN (key/<id>), never an alias: IAM authorizes kms:Decrypt against the key's own ARN.
KMS_KEY_ARN_PATTERN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$"


class SettingsError(ValueError):
    """A setting is missing, malformed or contradicts another one. The message names the key."""


def _origin(value: str) -> str:
    if value == "*" or not value.startswith(("https://", "http://")) or value.rstrip("/").count("/") != 2:
        raise ValueError(f"{value!r} is not an origin like https://www.example.com (no path, no wildcard)")
    return value.rstrip("/")


Origin = Annotated[str, AfterValidator(_origin)]
# The code as leads carry it (upper-cased): `summersale20` in cdk.json tracks SUMMERSALE20.
CampaignCode = Annotated[str, AfterValidator(normalise_campaign)]


class PipelineSettings(BaseModel):
    """Every knob of one stage. Defaults are sane for a first deploy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,19}$")]

    # --- API: what the forms may do
    allowed_origins: list[Origin] = Field(min_length=1, description="Origins whose pages may POST leads")
    throttle_rate_per_second: float = Field(default=100, gt=0, le=10_000, description="API stage steady rate")
    throttle_burst: int = Field(default=200, ge=1, le=5_000, description="API stage burst")
    waf_requests_per_5_minutes_per_ip: int | None = Field(
        default=None, ge=10, le=2_000_000_000, description="Per-IP rate rule; unset means no WAF"
    )
    max_body_bytes: int = Field(default=16_384, ge=1_024, le=1_048_576)
    honeypot_field: str = Field(default="website", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    metric_campaigns: list[CampaignCode] = Field(
        default_factory=list, max_length=20, description="Campaigns with their own metric (any case)"
    )

    # --- Spam protection beyond the honeypot (optional, off by default)
    captcha_provider: Literal["turnstile", "recaptcha_v3"] | None = Field(
        default=None, description="Verify a Turnstile or reCAPTCHA v3 token server-side; unset means no check"
    )
    captcha_secret_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$",
        description="Secrets Manager secret holding the verifier's secret key",
    )
    captcha_min_score: float = Field(default=0.5, ge=0, le=1, description="reCAPTCHA v3: lowest score accepted")
    captcha_fail_open: bool = Field(
        default=False, description="Accept the lead when the verifier is unreachable (True) or answer 503 (False)"
    )
    waf_managed_rule_groups: list[Literal["bot_control", "ip_reputation"]] = Field(
        default_factory=list, description="AWS WAF managed rule groups to add to the web ACL"
    )

    # --- Functions
    ingest_memory_mb: int = Field(default=256, ge=128, le=10_240)
    ingest_timeout_seconds: int = Field(default=5, ge=1, le=29)  # API Gateway gives up at 29 s
    worker_memory_mb: int = Field(default=512, ge=128, le=10_240)
    worker_timeout_seconds: int = Field(default=30, ge=3, le=900)
    log_retention_days: Literal[1, 3, 5, 7, 14, 30, 60, 90, 180, 365] = 30

    # --- Queue and the database's write cap
    batch_size: int = Field(default=100, ge=1, le=10_000)
    max_batching_window_seconds: int = Field(default=1, ge=0, le=300)
    max_concurrency: int = Field(default=2, ge=2, le=1_000, description="Most batches (DB connections) at once")
    reserved_concurrency: int = Field(default=2, ge=2, le=1_000)
    visibility_timeout_seconds: int | None = Field(default=None, ge=0, le=43_200)
    max_receive_count: int = Field(default=5, ge=1, le=1_000)
    retention_days: int = Field(default=14, ge=1, le=14)

    # --- Alarms
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    alarm_queue_age_seconds: int = Field(default=900, ge=60)
    alarm_queue_depth: int = Field(default=10_000, ge=1)
    alarm_worker_errors: int = Field(default=1, ge=1)
    alarm_worker_throttles: int = Field(default=1, ge=1)
    alarm_api_5xx_percent: float = Field(default=1.0, gt=0, le=100)
    alarm_ingest_p99_ms: int = Field(default=1_000, ge=10)
    # Minutes (1-minute periods) with batches that found the database unreachable before on-call is paged.
    alarm_db_unavailable_minutes: int = Field(default=2, ge=1, le=5)

    # --- Database
    db_secret_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$"
    )
    db_proxy_endpoint: str | None = Field(default=None, min_length=1)
    db_sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = "require"
    leads_table: str = Field(default="leadpipe.leads", pattern=TABLE_NAME_PATTERN)
    vpc_id: str | None = Field(default=None, pattern=r"^vpc-[0-9a-f]+$")
    vpc_subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")]] = Field(default_factory=list)
    vpc_availability_zones: list[str] = Field(default_factory=list)
    vpc_security_group_ids: list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]+$")]] = Field(default_factory=list)

    # --- Worker's database session: a stuck connect or INSERT ends well inside the function's timeout
    db_connect_timeout_seconds: int = Field(default=5, ge=1, le=60, description="libpq connect_timeout")
    db_statement_timeout_seconds: int = Field(
        default=10, ge=1, le=600, description="server-side statement_timeout of the batch INSERT"
    )
    db_lock_timeout_seconds: int = Field(
        default=5, ge=1, le=600, description="server-side lock_timeout, e.g. behind a migration"
    )

    # --- Drain governor: writers between a floor and max_concurrency, following the database's health
    governor_enabled: bool = Field(
        default=True, description="Let the drain yield to the database's own load below max_concurrency"
    )
    governor_floor_writers: float = Field(
        default=0.25,
        gt=0,
        le=1_000,
        description="Writers at the least while the database answers; below 1, one writer paced",
    )
    governor_busy_sessions: float = Field(
        default=1.0,
        gt=0,
        le=1_000,
        description="Other sessions' average active count (DB load) at which the drain yields",
    )
    governor_latency_tolerance_percent: int = Field(
        default=100,
        ge=0,
        le=1_000,
        description="How much slower than on the idle database a batch may commit before the drain yields",
    )

    # --- Personal data retention, run on a schedule (infra/retention.py; locally by the runtime)
    lead_retention_days: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description="Delete leads received more than this many days ago; unset keeps them",
    )
    # A tombstone outlives every lead it blocks: 14 days in the queue, 14 more after a DLQ redrive
    # (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/setting-up-dead-letter-queue-retention.html).
    erasure_tombstone_retention_days: int | None = Field(
        default=30,
        ge=2 * SQS_MAX_RETENTION_DAYS + 1,
        le=36_500,
        description="Delete erasure tombstones older than this; unset keeps them",
    )

    # --- LeadStored events on an EventBridge bus, delivered to HTTP endpoints at their own rate (off by default)
    events_enabled: bool = Field(default=False, description="Publish one LeadStored event per stored lead")
    events_hand_off_max_receive_count: int = Field(
        default=100, ge=1, le=1_000, description="Relay attempts of an event EventBridge refused before its DLQ"
    )
    event_destinations: list[EventDestination] = Field(
        default_factory=list,
        max_length=10,
        description="HTTP endpoints (CRM, Slack) fed by EventBridge API destinations",
    )

    @model_validator(mode="after")
    def _events_consistent(self) -> PipelineSettings:
        if self.event_destinations and not self.events_enabled:
            raise _Conflict("events_enabled", "event_destinations need events_enabled: true")
        names = [destination.name for destination in self.event_destinations]
        if len(set(names)) != len(names):
            raise _Conflict("event_destinations", f"destination names must be unique: {names}")
        return self

    # --- Deploying into a real account (docs/operations.md, "Deploy settings")
    vpc_aws_api_access: Literal["interface_endpoints", "nat"] = Field(
        default="interface_endpoints",
        description="How VPC functions reach the AWS APIs they call: endpoints made here, or the VPC's own route",
    )
    db_secret_kms_key_arn: str | None = Field(
        default=None, pattern=KMS_KEY_ARN_PATTERN, description="Customer-managed key of db_secret_arn"
    )
    captcha_secret_kms_key_arn: str | None = Field(
        default=None, pattern=KMS_KEY_ARN_PATTERN, description="Customer-managed key of captcha_secret_arn"
    )
    db_ca_bundle: Literal["aws-rds-global"] | None = Field(
        default="aws-rds-global", description="CA bundle that db_sslmode verify-ca/verify-full trust"
    )
    account_concurrency_limit: int = Field(
        default=1_000, ge=1, description="The account's Lambda concurrent executions quota in the region"
    )
    api_gateway_cloudwatch_role: Literal["create", "existing"] = Field(
        default="create", description="Create API Gateway's account-level logging role, or use the one already set"
    )

    @model_validator(mode="after")
    def _deployable(self) -> PipelineSettings:
        """Combinations AWS itself would refuse at deploy time, or that would deploy and never work."""
        if self.db_proxy_endpoint and self.db_secret_arn and not self.in_vpc:
            raise _Conflict(
                "db_proxy_endpoint", "an RDS Proxy is reachable only from inside its VPC: set vpc_id and its keys"
            )
        if self.db_sslmode in ("verify-ca", "verify-full") and self.db_ca_bundle is None:
            raise _Conflict("db_ca_bundle", f"db_sslmode {self.db_sslmode} needs a CA bundle to verify the server")
        for key_setting, secret_setting in (
            ("db_secret_kms_key_arn", "db_secret_arn"),
            ("captcha_secret_kms_key_arn", "captcha_secret_arn"),
        ):
            key_arn, secret_arn = getattr(self, key_setting), getattr(self, secret_setting)
            if key_arn and not secret_arn:
                raise _Conflict(key_setting, f"a KMS key without {secret_setting} protects nothing")
            if key_arn and secret_arn and _arn_region(key_arn) != _arn_region(secret_arn):
                raise _Conflict(
                    key_setting,
                    f"Secrets Manager uses a KMS key of the secret's own region ({_arn_region(secret_arn)})",
                )
        reservable = self.account_concurrency_limit - min(LAMBDA_UNRESERVED_MINIMUM, self.account_concurrency_limit)
        if self.reserved_concurrency_total > reservable:
            raise _Conflict(
                "account_concurrency_limit",
                f"the stack reserves {self.reserved_concurrency_total} concurrent executions, but Lambda keeps "
                f"{LAMBDA_UNRESERVED_MINIMUM} of {self.account_concurrency_limit} unreserved: ask for a higher quota",
            )
        return self

    @property
    def reserved_concurrency_total(self) -> int:
        """The account concurrency the stack reserves: the worker, plus the probe and the retention with a database."""
        with_database = PROBE_RESERVED_CONCURRENCY + RETENTION_RESERVED_CONCURRENCY
        return self.reserved_concurrency + (with_database if self.has_database else 0)

    @model_validator(mode="after")
    def _consistent(self) -> PipelineSettings:
        if self.max_concurrency > self.reserved_concurrency:
            raise _Conflict(
                "max_concurrency",
                f"{self.max_concurrency} is above reserved_concurrency ({self.reserved_concurrency}); "
                "the event source would be throttled by the function's own cap",
            )
        if (
            self.visibility_timeout_seconds is not None
            and self.visibility_timeout_seconds < self.minimum_visibility_timeout
        ):
            raise _Conflict(
                "visibility_timeout_seconds",
                f"{self.visibility_timeout_seconds} is below {VISIBILITY_TIMEOUT_FACTOR}x worker_timeout_seconds "
                f"+ max_batching_window_seconds ({self.minimum_visibility_timeout}); batches in flight would be "
                "delivered twice",
            )
        database_seconds = (
            self.db_connect_timeout_seconds + self.db_statement_timeout_seconds + self.db_lock_timeout_seconds
        )
        if database_seconds >= self.worker_timeout_seconds:
            raise _Conflict(
                "db_statement_timeout_seconds",
                "db_connect_timeout_seconds + db_statement_timeout_seconds + db_lock_timeout_seconds "
                f"({database_seconds}) "
                f"must be below worker_timeout_seconds ({self.worker_timeout_seconds}), or Lambda ends a stuck batch "
                "first "
                "and its server session outlives it",
            )
        if self.batch_size > 10 and self.max_batching_window_seconds < 1:
            raise _Conflict(
                "max_batching_window_seconds",
                "a batch_size above 10 needs a batching window of at least 1 second (an SQS rule)",
            )
        vpc_keys = (self.vpc_id, self.vpc_subnet_ids, self.vpc_security_group_ids)
        if any(vpc_keys) and not all(vpc_keys):
            raise _Conflict("vpc_id", "set vpc_id, vpc_subnet_ids and vpc_security_group_ids together")
        if self.vpc_subnet_ids and len(self.vpc_availability_zones) != len(self.vpc_subnet_ids):
            raise _Conflict("vpc_availability_zones", "give one availability zone per subnet in vpc_subnet_ids")
        if self.db_proxy_endpoint and not self.db_secret_arn:
            raise _Conflict("db_proxy_endpoint", "an RDS Proxy needs db_secret_arn for its credentials")
        if self.captcha_provider and not self.captcha_secret_arn:
            raise _Conflict(
                "captcha_secret_arn",
                f"captcha_provider {self.captcha_provider!r} needs the secret that holds its secret key",
            )
        if self.governor_floor_writers > self.max_concurrency:
            raise _Conflict(
                "governor_floor_writers",
                f"{self.governor_floor_writers:g} is above max_concurrency ({self.max_concurrency})",
            )
        if self.stage == "prod" and not self.db_secret_arn:
            raise _Conflict("db_secret_arn", "prod must name its database secret")
        return self

    @property
    def minimum_visibility_timeout(self) -> int:
        """AWS's guidance for an SQS event source: 6x the function timeout plus the batching window."""
        return VISIBILITY_TIMEOUT_FACTOR * self.worker_timeout_seconds + self.max_batching_window_seconds

    @property
    def queue_visibility_timeout_seconds(self) -> int:
        return self.visibility_timeout_seconds or self.minimum_visibility_timeout

    def worker_database_environment(self) -> dict[str, str]:
        """The worker's database limits as env vars: the stack and the local runtime pass the same."""
        return {
            "DB_CONNECT_TIMEOUT_SECONDS": str(self.db_connect_timeout_seconds),
            "DB_STATEMENT_TIMEOUT_SECONDS": str(self.db_statement_timeout_seconds),
            "DB_LOCK_TIMEOUT_SECONDS": str(self.db_lock_timeout_seconds),
            "WORKER_TIMEOUT_SECONDS": str(self.worker_timeout_seconds),
        }

    def governor_limits(self) -> GovernorLimits:
        """The drain governor's limits in these settings (the probe and the local runtime use the same)."""
        return GovernorLimits(
            floor=self.governor_floor_writers,
            cap=self.max_concurrency,
            busy_sessions=self.governor_busy_sessions,
            latency_tolerance=self.governor_latency_tolerance_percent / 100,
        )

    def retention_environment(self) -> dict[str, str]:
        """The retention function's settings as env vars (an unset one is absent): for the stack and `make run`."""
        days = {
            "LEAD_RETENTION_DAYS": self.lead_retention_days,
            "ERASURE_TOMBSTONE_RETENTION_DAYS": self.erasure_tombstone_retention_days,
        }
        return {name: str(value) for name, value in days.items() if value is not None} | {
            "RETENTION_TIMEOUT_SECONDS": str(RETENTION_TIMEOUT_SECONDS)
        }

    @property
    def has_database(self) -> bool:
        return self.db_secret_arn is not None

    @property
    def in_vpc(self) -> bool:
        return self.vpc_id is not None


def _arn_region(arn: str) -> str:
    return arn.split(":")[3]


class _Conflict(ValueError):
    """Two settings that cannot both hold; `key` is the one to change."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def settings_from_context(context: Mapping[str, Any] | None, stage: str | None) -> PipelineSettings:
    """The settings of `stage` from the `leadpipe` block of cdk.json context.

    `defaults` apply to every stage; `stages.<name>` overrides them. Raises `SettingsError`
    naming the offending key, e.g. `leadpipe.stages.prod.max_concurrency`.
    """
    if not context:
        raise SettingsError(f"cdk.json has no '{CONTEXT_KEY}' context block")
    stage = stage or DEFAULT_STAGE
    stages = context.get("stages") or {}
    if stage not in stages:
        known = ", ".join(sorted(stages)) or "none"
        raise SettingsError(f"unknown stage {stage!r} (-c stage=...); cdk.json defines: {known}")
    merged = {**(context.get("defaults") or {}), **(stages[stage] or {}), "stage": stage}
    try:
        return PipelineSettings.model_validate(merged)
    except ValidationError as error:
        raise SettingsError(_describe(error, stage)) from None


def settings_from_file(stage: str | None = None, cdk_json: Path = REPO_ROOT / "cdk.json") -> PipelineSettings:
    """The same settings the stack uses, for the local runtime and the CLI."""
    context = json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {})
    return settings_from_context(context.get(CONTEXT_KEY), stage)


def _describe(error: ValidationError, stage: str) -> str:
    lines = []
    for detail in error.errors(include_url=False):
        key = ".".join(str(part) for part in detail["loc"])
        cause = detail.get("ctx", {}).get("error")
        if isinstance(cause, _Conflict):
            key, message = cause.key, str(cause)
        else:
            message = detail["msg"].removeprefix("Value error, ")
        lines.append(
            f"{CONTEXT_KEY}.stages.{stage}.{key}: {message}" if key else f"{CONTEXT_KEY}.stages.{stage}: {message}"
        )
    return "invalid settings:\n  " + "\n  ".join(lines)

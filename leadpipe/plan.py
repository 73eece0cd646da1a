"""The campaign launch review: will the pipeline take it, how long will it lag, what will it cost.

Pure arithmetic on the stage's settings and a price table; `leadpipe plan` prints it as
markdown for the launch ticket, or as JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from functions.contract import Lead
from infra.config import PipelineSettings

SECONDS_PER_MONTH = 30 * 24 * 3600
# What Lambda's SQS event source adds to each batch on top of the store itself (hand-off and
# invoke). Its receives and deletes run beside the function, so they do not count here.
LAMBDA_INVOKE_OVERHEAD_SECONDS = 0.02
INGEST_GB_SECONDS_PER_LEAD = 0.010  # ~40 ms billed at 256 MB
LOG_BYTES_PER_LEAD = 1_200  # ingest line + EMF + share of the worker's per-batch line
ALARM_COUNT = 7
CUSTOM_METRICS = 8
SQS_REQUESTS_PER_LEAD = 1 + 2 / 10  # one send; receive and delete come ten at a time
AGE_ALARM_MINUTES_TO_FIRE = 3  # the stack's queue-age alarm needs 3 one-minute periods


class PlanError(ValueError):
    """The launch ticket's numbers do not describe a campaign; the message says which."""


@dataclass(frozen=True)
class LaunchTicket:
    campaign: str
    leads: float  # expected leads in total
    arrival_seconds: float  # the leads that arrive in the peak arrive spread over this long
    peak_share: float  # the fraction of all leads that arrive in that peak window
    launch: datetime | None = None
    endpoint: str | None = None
    new_fields: tuple[str, ...] = ()
    store_seconds_per_batch: float = 0.05
    event_source_seconds_per_batch: float = LAMBDA_INVOKE_OVERHEAD_SECONDS

    @classmethod
    def from_inputs(
        cls, *, campaign: str, leads: float | None = None, audience: float | None = None, conversion_percent: float | None = None,
        within_minutes: float | None = None, peak_hour_share: float | None = None, **rest: Any,
    ) -> LaunchTicket:  # fmt: skip
        if leads is None:
            if audience is None or conversion_percent is None:
                raise PlanError("give --leads, or --audience with --conversion")
            if audience < 0 or not 0 <= conversion_percent <= 100:
                raise PlanError("--audience must be >= 0 and --conversion a percentage from 0 to 100")
            leads = audience * conversion_percent / 100
        if leads < 0:
            raise PlanError("--leads must be >= 0")
        if (within_minutes is None) == (peak_hour_share is None):
            raise PlanError("describe the arrival with exactly one of --within-minutes or --peak-hour-share")
        if within_minutes is not None:
            if within_minutes <= 0:
                raise PlanError("--within-minutes must be more than 0")
            return cls(campaign=campaign, leads=leads, arrival_seconds=within_minutes * 60, peak_share=1.0, **rest)
        if not 0 < peak_hour_share <= 1:
            raise PlanError("--peak-hour-share must be a fraction above 0 and at most 1")
        return cls(campaign=campaign, leads=leads, arrival_seconds=3600, peak_share=peak_hour_share, **rest)


@dataclass
class CostLine:
    item: str
    campaign_usd: float
    month_usd: float


@dataclass
class LaunchPlan:
    campaign: str
    stage: str
    leads: float
    peak_leads: float
    peak_rate_per_s: float
    throttle_rate_per_s: float
    throttle_burst: int
    throttled_requests: float
    accepted_rate_per_s: float
    drain_rate_per_s: float
    max_backlog: float
    drain_seconds_after_peak: float
    max_queue_age_seconds: float
    age_alarm_fires_after_seconds: float | None
    depth_alarm_fires_after_seconds: float | None
    db_writer_cap: int
    retention_seconds: float
    unknown_fields: list[str]
    recommendations: list[str]
    warnings: list[str]
    costs: list[CostLine]
    database_comparison: dict[str, Any]
    launch: str | None = None
    endpoint: str | None = None
    price_table: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_price_table(name: str = "aws-us-east-1.json") -> dict[str, Any]:
    return json.loads(resources.files("leadpipe.prices").joinpath(name).read_text())


def drain_rate_per_s(settings: PipelineSettings, store_seconds_per_batch: float,
                     event_source_seconds_per_batch: float = LAMBDA_INVOKE_OVERHEAD_SECONDS) -> float:  # fmt: skip
    """Leads per second the worker takes off a full queue: each of `max_concurrency` writers
    stores one full batch per (store + event source) seconds. The database owner's cap is this
    rate; `make bench` checks it against a measured drain."""
    return settings.max_concurrency * settings.batch_size / (store_seconds_per_batch + event_source_seconds_per_batch)


def plan_launch(ticket: LaunchTicket, settings: PipelineSettings, prices: dict[str, Any]) -> LaunchPlan:
    """Every figure of the launch review; see the module docstring."""
    if ticket.store_seconds_per_batch <= 0:
        raise PlanError("--store-ms-per-batch must be more than 0")
    if ticket.event_source_seconds_per_batch < 0:
        raise PlanError("the event source's seconds per batch cannot be negative")
    peak_leads = ticket.leads * ticket.peak_share
    window = ticket.arrival_seconds
    peak_rate = peak_leads / window

    # API Gateway's token bucket: the burst is spent first, then the steady rate holds.
    rate, burst = settings.throttle_rate_per_second, settings.throttle_burst
    throttled = max(0.0, peak_leads - (rate * window + burst)) if peak_rate > rate else 0.0
    accepted_rate = (peak_leads - throttled) / window

    drain_rate = drain_rate_per_s(settings, ticket.store_seconds_per_batch, ticket.event_source_seconds_per_batch)
    growth = accepted_rate - drain_rate
    max_backlog = max(0.0, growth * window)
    drain_after_peak = max_backlog / drain_rate
    max_age = drain_after_peak  # the last lead of the peak waits for the whole backlog ahead of it

    age_threshold = settings.alarm_queue_age_seconds
    age_fires = None
    if growth > 0 and max_age >= age_threshold:
        # backlog(t)/drain_rate reaches the threshold at t = threshold * drain / growth
        age_fires = age_threshold * drain_rate / growth + AGE_ALARM_MINUTES_TO_FIRE * 60
    depth_fires = None
    if growth > 0 and max_backlog >= settings.alarm_queue_depth:
        depth_fires = settings.alarm_queue_depth / growth + AGE_ALARM_MINUTES_TO_FIRE * 60

    retention = settings.retention_days * 86400
    warnings, recommendations = [], []
    if window + drain_after_peak > retention:
        warnings.append(
            f"DRAINING TAKES LONGER THAN THE QUEUE KEEPS MESSAGES ({retention / 86400:.0f} days): leads WILL BE LOST. "
            "Raise max_concurrency (with the DB owner) or batch_size before launch."
        )
    if throttled > 0:
        needed = math.ceil(peak_rate * 1.2)
        recommendations.append(
            f"throttle_rate_per_second: {rate:g} -> {needed} (peak {peak_rate:.0f}/s plus 20%): "
            f"otherwise about {throttled:,.0f} form posts get 429 and must retry."
        )
    if age_fires is not None:
        minutes = math.ceil(max_age / 60) + AGE_ALARM_MINUTES_TO_FIRE
        recommendations.append(
            f"alarm_queue_age_seconds: expect the queue-age alarm about {age_fires / 60:.0f} min after the peak starts; "
            f"tell on-call, or raise the threshold to {minutes * 60} for the campaign."
        )
    if drain_after_peak > 3600:
        recommendations.append(
            f"max_concurrency: {settings.max_concurrency} writers need {drain_after_peak / 3600:.1f} h to drain the backlog; "
            "ask the DB owner whether more concurrent writers are acceptable."
        )
    known = set(Lead.model_fields)
    unknown = [f for f in ticket.new_fields if f not in known]
    if unknown:
        recommendations.append(
            f"new fields {', '.join(unknown)} are not in the Lead contract: send them as custom.<name> "
            "(up to 20 keys) or extend functions/contract/lead.py and add a migration before launch."
        )

    costs = _costs(ticket, settings, prices)
    return LaunchPlan(
        campaign=ticket.campaign,
        stage=settings.stage,
        leads=ticket.leads,
        peak_leads=peak_leads,
        peak_rate_per_s=peak_rate,
        throttle_rate_per_s=rate,
        throttle_burst=burst,
        throttled_requests=throttled,
        accepted_rate_per_s=accepted_rate,
        drain_rate_per_s=drain_rate,
        max_backlog=max_backlog,
        drain_seconds_after_peak=drain_after_peak,
        max_queue_age_seconds=max_age,
        age_alarm_fires_after_seconds=age_fires,
        depth_alarm_fires_after_seconds=depth_fires,
        db_writer_cap=settings.max_concurrency,
        retention_seconds=retention,
        unknown_fields=unknown,
        recommendations=recommendations,
        warnings=warnings,
        costs=costs,
        database_comparison=_database_comparison(peak_rate, drain_rate, drain_rate / settings.batch_size, prices),
        launch=ticket.launch.isoformat() if ticket.launch else None,
        endpoint=ticket.endpoint,
        price_table={"region": prices["region"], "as_of": prices["as_of"]},
    )


def _costs(ticket: LaunchTicket, settings: PipelineSettings, prices: dict[str, Any]) -> list[CostLine]:
    leads = ticket.leads
    per_million = 1_000_000
    batches = leads / settings.batch_size
    worker_gb_seconds = batches * (ticket.store_seconds_per_batch + ticket.event_source_seconds_per_batch) * settings.worker_memory_mb / 1024
    ingest_gb_seconds = leads * INGEST_GB_SECONDS_PER_LEAD * settings.ingest_memory_mb / 256

    def line(item: str, variable: float, fixed_month: float = 0.0) -> CostLine:
        return CostLine(item, round(variable, 4), round(variable + fixed_month, 4))

    lines = [
        line("API Gateway REST requests", leads / per_million * prices["api_gateway_rest_per_million_requests"]),
        line("Lambda requests (ingest + worker)", (leads + batches) / per_million * prices["lambda_per_million_requests"]),
        line("Lambda compute, arm64 GB-seconds", (ingest_gb_seconds + worker_gb_seconds) * prices["lambda_arm64_per_gb_second"]),
        line("SQS requests", leads * SQS_REQUESTS_PER_LEAD / per_million * prices["sqs_standard_per_million_requests"]),
        line("CloudWatch Logs ingestion", leads * LOG_BYTES_PER_LEAD / 1e9 * prices["cloudwatch_logs_ingest_per_gb"]),
        line(
            "CloudWatch alarms, custom metrics, dashboard",
            0.0,
            ALARM_COUNT * prices["cloudwatch_alarm_per_month"] + CUSTOM_METRICS * prices["cloudwatch_custom_metric_per_month"]
            + prices["cloudwatch_dashboard_per_month"],
        ),  # fmt: skip
        line(
            "Secrets Manager (DB secret, cached reads)",
            batches / 100 / 10_000 * prices["secrets_manager_per_10k_api_calls"],
            prices["secrets_manager_secret_per_month"] if settings.has_database else 0.0,
        ),
    ]
    if settings.waf_requests_per_5_minutes_per_ip:
        lines.append(
            line(
                "WAF web ACL, one rate rule, requests",
                leads / per_million * prices["waf_per_million_requests"],
                prices["waf_web_acl_per_month"] + prices["waf_rule_per_month"],
            )
        )
    lines.append(CostLine("TOTAL", round(sum(c.campaign_usd for c in lines), 2), round(sum(c.month_usd for c in lines), 2)))
    return lines


def _database_comparison(peak_rate: float, drain_rate: float, batch_commits_per_s: float, prices: dict[str, Any]) -> dict[str, Any]:
    """What it costs to keep a database big enough to take the peak unbuffered, all month long."""
    instances = prices["rds_postgresql_single_az"]

    def smallest_for(writes_per_s: float) -> dict[str, Any] | None:
        return next((i for i in instances if i["sustained_single_row_commits_per_s"] >= writes_per_s), None)

    unbuffered = smallest_for(peak_rate)
    # Buffered, the DB sees one commit per batch, from at most max_concurrency connections.
    buffered = smallest_for(batch_commits_per_s) or instances[-1]
    hours = SECONDS_PER_MONTH / 3600
    return {
        "unbuffered_peak_writes_per_s": round(peak_rate, 1),
        "unbuffered_instance": unbuffered["class"] if unbuffered else "beyond the largest listed class",
        "unbuffered_month_usd": round(unbuffered["hourly"] * hours, 2) if unbuffered else None,
        "buffered_rows_per_s": round(drain_rate, 1),
        "buffered_instance": buffered["class"],
        "buffered_month_usd": round(buffered["hourly"] * hours, 2),
        "assumption": prices["rds_capacity_note"],
    }


def to_markdown(plan: LaunchPlan) -> str:
    """The review, ready to paste into the launch ticket."""

    def duration(seconds: float | None) -> str:
        if seconds is None:
            return "does not fire"
        return str(timedelta(seconds=round(seconds)))

    out = [f"## Launch review: {plan.campaign} (stage `{plan.stage}`)", ""]
    if plan.launch or plan.endpoint:
        out += [f"Launch: {plan.launch or 'unannounced'} · endpoint: {plan.endpoint or 'the stage API'}", ""]
    out += [f"> **{w}**" for w in plan.warnings] + ([""] if plan.warnings else [])
    out += [
        "| | |",
        "| --- | --- |",
        f"| expected leads | {plan.leads:,.0f} ({plan.peak_leads:,.0f} in the peak window) |",
        f"| peak ingest rate | {plan.peak_rate_per_s:,.1f}/s vs API throttle {plan.throttle_rate_per_s:g}/s (burst {plan.throttle_burst}) |",
        f"| throttled (429) | {'none' if not plan.throttled_requests else f'about {plan.throttled_requests:,.0f} requests'} |",
        f"| drain rate | {plan.drain_rate_per_s:,.0f} leads/s ({plan.db_writer_cap} DB writers) |",
        f"| max queue backlog | {plan.max_backlog:,.0f} leads |",
        f"| time to drain after the peak | {duration(plan.drain_seconds_after_peak)} |",
        f"| oldest lead waits at most | {duration(plan.max_queue_age_seconds)} |",
        f"| queue-age alarm | {duration(plan.age_alarm_fires_after_seconds)} after the peak starts |",
        f"| queue-depth alarm | {duration(plan.depth_alarm_fires_after_seconds)} after the peak starts |",
        f"| DB writer cap | {plan.db_writer_cap} concurrent connections, whatever the traffic |",
        "",
        "### Recommended changes",
        *([f"- {r}" for r in plan.recommendations] or ["- none: the current settings take this campaign."]),
        "",
        f"### AWS cost ({plan.price_table['region']}, prices as of {plan.price_table['as_of']})",
        "",
        "| item | this campaign | a month at this volume |",
        "| --- | ---: | ---: |",
        *[f"| {c.item} | ${c.campaign_usd:,.2f} | ${c.month_usd:,.2f} |" for c in plan.costs],
        "",
    ]
    db = plan.database_comparison
    unbuffered_cost = f"${db['unbuffered_month_usd']:,.0f}/month" if db["unbuffered_month_usd"] is not None else "not listed"
    out += [
        "### Versus sizing the database for the unbuffered peak",
        f"Writing each lead straight to PostgreSQL at {db['unbuffered_peak_writes_per_s']:,}/s needs about "
        f"`{db['unbuffered_instance']}` ({unbuffered_cost}), all month, because campaigns launch unannounced. "
        f"Through the queue the database sees batches of rows at {db['buffered_rows_per_s']:,}/s with at most "
        f"{plan.db_writer_cap} connections: `{db['buffered_instance']}` (${db['buffered_month_usd']:,.0f}/month) is enough.",
        f"_{db['assumption']}_",
    ]
    return "\n".join(out)

"""The campaign launch review: will the pipeline take it, how long will it lag, what will it cost.

Pure arithmetic on the stage's settings, a price table and the account's default quotas
(`leadpipe/prices/`, each with its as-of date and source). The review runs twice: with the
settings as they are, and again with the settings it recommends, so the ticket shows what
its own advice buys. `leadpipe plan` prints it as markdown for the launch ticket, or as JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from annotated_types import Le

from functions.contract import Lead
from infra.config import PipelineSettings
from leadpipe.custom_metrics import custom_metrics
from leadpipe.plan_destinations import DestinationLag, events_campaign_costs, events_fixed_costs, review_destinations
from leadpipe.plan_destinations import to_markdown as destinations_markdown

SECONDS_PER_MONTH = 30 * 24 * 3600
# What Lambda's SQS event source adds to each batch on top of the store itself (hand-off and
# invoke). Its receives and deletes run beside the function, so they do not count here.
LAMBDA_INVOKE_OVERHEAD_SECONDS = 0.02
INGEST_SECONDS_PER_REQUEST = 0.040  # billed duration of one validated SendMessage in Lambda
LOG_BYTES_PER_LEAD = 1_200  # ingest line + EMF + share of the worker's per-batch line
ALARM_COUNT = 8  # infra/monitoring.py's seven, plus DatabaseUnavailable
DRAIN_PROBE_ALARM_COUNT = 2  # DrainProbeErrors, DrainProbeSilent: only a stack with a database has the drain breaker
RETENTION_ALARM_COUNT = 2  # RetentionFailed, RetentionSilent: only a stack with a database has the retention
GOVERNOR_ALARM_COUNT = 1  # DrainGovernorSilent: a stack with a database and the governor on
SQS_REQUESTS_PER_LEAD = 1 + 2 / 10  # one send; receive and delete come ten at a time
QUEUE_ALARM_PERIODS = 3  # the queue-age and queue-depth alarms need 3 one-minute periods
THROTTLE_HEADROOM = 1.2  # recommend the peak plus 20%


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
        cls,
        *,
        campaign: str,
        leads: float | None = None,
        audience: float | None = None,
        conversion_percent: float | None = None,
        within_minutes: float | None = None,
        peak_hour_share: float | None = None,
        **rest: Any,
    ) -> LaunchTicket:
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
    usd: float


@dataclass
class QuotaCheck:
    """One AWS quota against what this campaign needs of it."""

    quota: str
    limit: float
    needed: float
    fits: bool
    detail: str


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
    drain_rate_per_s: float  # the slow end: the governor's floor with the main application busy (alarms use it)
    max_backlog: float
    drain_seconds_after_peak: float  # at the slow end
    max_queue_age_seconds: float
    age_alarm_fires_after_seconds: float | None
    depth_alarm_fires_after_seconds: float | None
    db_unavailable_alarm_within_seconds: tuple[float, float]
    db_writer_cap: int
    retention_seconds: float
    unknown_fields: list[str]
    warnings: list[str]
    quotas: list[QuotaCheck]
    campaign_costs: list[CostLine]
    campaign_cost_usd: float
    usd_per_million_leads: float | None
    fixed_monthly_costs: list[CostLine]
    fixed_monthly_usd: float
    database_comparison: dict[str, Any]
    recommendations: list[str] = field(default_factory=list)
    recommended_settings: dict[str, Any] = field(default_factory=dict)
    after_recommendations: LaunchPlan | None = None
    launch: str | None = None
    endpoint: str | None = None
    price_table: dict[str, str] = field(default_factory=dict)
    quota_table: dict[str, str] = field(default_factory=dict)
    drain_rate_at_cap_per_s: float | None = None  # the fast end: every writer up to the cap, the main app idle
    drain_seconds_after_peak_at_cap: float | None = None
    governed: bool = False
    destinations: list[DestinationLag] = field(default_factory=list)  # the events lane's, when the stage has one

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_price_table(name: str = "aws-us-east-1.json") -> dict[str, Any]:
    return json.loads(resources.files("leadpipe.prices").joinpath(name).read_text())


def load_quota_table(name: str = "aws-quotas.json") -> dict[str, Any]:
    return json.loads(resources.files("leadpipe.prices").joinpath(name).read_text())


def drain_rate_per_s(
    settings: PipelineSettings,
    store_seconds_per_batch: float,
    event_source_seconds_per_batch: float = LAMBDA_INVOKE_OVERHEAD_SECONDS,
) -> float:
    """Leads per second the worker takes off a full queue: each of `max_concurrency` writers
    stores one full batch per (store + event source) seconds. The database owner's cap is this
    rate; `make bench` checks it against a measured drain."""
    return settings.max_concurrency * settings.batch_size / (store_seconds_per_batch + event_source_seconds_per_batch)


def slowest_drain_rate_per_s(settings: PipelineSettings, rate_at_cap: float) -> float:
    """The drain when the governor holds it at its floor (the main application busy all along); the cap's rate
    when the governor is off. Each writer is taken at its unloaded pace: a busy database slows it further."""
    if not settings.governor_enabled:
        return rate_at_cap
    return rate_at_cap * settings.governor_floor_writers / settings.max_concurrency


def oldest_lead_age(t: float, accepted_rate: float, drain_rate: float, arrival_seconds: float) -> float:
    """Age of the oldest queued lead `t` seconds after the peak starts, the queue empty at 0.

    Leads arrive at `accepted_rate` for `arrival_seconds`; the worker takes them in order at
    `drain_rate`. The lead that arrived at s leaves once everything before it has, at
    s * accepted / drain, so at time t the oldest one arrived at t * drain / accepted and has
    waited t * (accepted - drain) / accepted, until the queue empties at arrival * accepted / drain.
    """
    if drain_rate >= accepted_rate or t <= 0:
        return 0.0
    if t >= arrival_seconds * accepted_rate / drain_rate:
        return 0.0
    return t * (accepted_rate - drain_rate) / accepted_rate


def backlog_curve(
    times: list[float], arrived: list[float], drain_rate: float, outage: tuple[float, float] | None = None
) -> list[float]:
    """The predicted queue depth at each of `times` (ascending): `arrived[i]` leads accepted in
    total by `times[i]`, the worker draining at `drain_rate` except during `outage` (start, end)."""
    depth, previous_time, previous_arrived, out = 0.0, 0.0, 0.0, []
    for t, total in zip(times, arrived, strict=True):
        # the part of this step the database was away drains nothing
        down = 0.0 if outage is None else max(0.0, min(t, outage[1]) - max(previous_time, outage[0]))
        depth = max(0.0, depth + (total - previous_arrived) - drain_rate * (t - previous_time - down))
        out.append(depth)
        previous_time, previous_arrived = t, total
    return out


def settings_ceiling(name: str) -> float:
    """The largest value the settings model accepts for `name`."""
    return min(m.le for m in PipelineSettings.model_fields[name].metadata if isinstance(m, Le))


def plan_launch(
    ticket: LaunchTicket, settings: PipelineSettings, prices: dict[str, Any], quotas: dict[str, Any] | None = None
) -> LaunchPlan:
    """The review with the current settings, its advice, and the review again with that advice taken.

    Every recommended value is one the settings model accepts: the recommended settings are
    built through it, so a refused value would raise here rather than reach the ticket.
    """
    if ticket.store_seconds_per_batch <= 0:
        raise PlanError("--store-ms-per-batch must be more than 0")
    if ticket.event_source_seconds_per_batch < 0:
        raise PlanError("the event source's seconds per batch cannot be negative")
    quotas = quotas or load_quota_table()
    plan = _review(ticket, settings, prices, quotas)
    changes: dict[str, Any] = {}
    advice: list[str] = []

    if plan.throttled_requests > 0:
        changes["throttle_rate_per_second"], text = _throttle_advice(plan, quotas)
        advice.append(text)
    recommended = _with(settings, changes)
    after = _review(ticket, recommended, prices, quotas) if changes else plan
    alarm_changes, alarm_advice = _alarm_advice(settings, after)
    changes |= alarm_changes
    advice += alarm_advice
    if changes:
        recommended = _with(settings, changes)
        plan.after_recommendations = _review(ticket, recommended, prices, quotas)
        plan.recommended_settings = changes
    advice += _quota_advice(plan, quotas)
    if plan.drain_seconds_after_peak > 3600:
        advice.append(
            f"max_concurrency: {settings.max_concurrency} writers need {plan.drain_seconds_after_peak / 3600:.1f} h "
            "to drain the "
            "backlog; ask the DB owner whether more concurrent writers are acceptable."
        )
    if plan.unknown_fields:
        advice.append(
            f"new fields {', '.join(plan.unknown_fields)} are not in the Lead contract: send them as custom.<name> "
            "(up to 20 keys) or extend functions/contract/lead.py and add a migration before launch."
        )
    plan.recommendations = advice
    plan.launch = ticket.launch.isoformat() if ticket.launch else None
    plan.endpoint = ticket.endpoint
    return plan


def _alarm_advice(settings: PipelineSettings, after: LaunchPlan) -> tuple[dict[str, Any], list[str]]:
    """Alarm thresholds that follow the traffic the recommended throttle lets in (`after`), not today's."""
    changes: dict[str, Any] = {}
    advice: list[str] = []
    if after.age_alarm_fires_after_seconds is not None:
        threshold = _round_up(after.max_queue_age_seconds, 60) + QUEUE_ALARM_PERIODS * 60
        changes["alarm_queue_age_seconds"] = threshold
        advice.append(
            f"alarm_queue_age_seconds: {settings.alarm_queue_age_seconds} -> {threshold}: the oldest lead waits up to "
            f"{_duration(after.max_queue_age_seconds)}, so the queue-age alarm would page about "
            f"{_duration(after.age_alarm_fires_after_seconds)} after the peak starts. Raise it for the campaign, or "
            "tell on-call."
        )
    if after.depth_alarm_fires_after_seconds is not None:
        threshold = _round_up(after.max_backlog * 1.1, 1000)
        changes["alarm_queue_depth"] = threshold
        advice.append(
            f"alarm_queue_depth: {settings.alarm_queue_depth} -> {threshold}: the backlog reaches "
            f"{after.max_backlog:,.0f} leads, "
            "which is this campaign working as designed, not an incident."
        )
    return changes, advice


def _with(settings: PipelineSettings, changes: dict[str, Any]) -> PipelineSettings:
    return PipelineSettings(**{**settings.model_dump(), **changes})


def _throttle_advice(plan: LaunchPlan, quotas: dict[str, Any]) -> tuple[float, str]:
    """(the rate to set, the sentence for the ticket): the peak plus 20%, within what the
    settings model and the account's API Gateway quota allow."""
    wanted = _round_up(plan.peak_rate_per_s * THROTTLE_HEADROOM, 1)
    account = quotas["api_gateway_account_rate_per_s"]["value"]
    ceiling = min(settings_ceiling("throttle_rate_per_second"), account)
    rate = min(wanted, ceiling)
    text = (
        f"throttle_rate_per_second: {plan.throttle_rate_per_s:g} -> {rate:g} (peak {plan.peak_rate_per_s:,.0f}/s plus "
        "20%"
        + (f", capped at {ceiling:,.0f}/s" if rate < wanted else "")
        + f"): otherwise about {plan.throttled_requests:,.0f} form posts get 429 and must retry."
    )
    if rate < wanted:
        text += (
            f" The campaign needs {wanted:,}/s: above {ceiling:,.0f}/s it needs an API Gateway quota increase and a "
            "higher "
            f"ceiling in infra/config.py (see the quota advice), or the same leads spread over "
            f"{math.ceil(plan.peak_leads / ceiling / 60)} min or more."
        )
    return rate, text


def _quota_advice(plan: LaunchPlan, quotas: dict[str, Any]) -> list[str]:
    lead_time = quotas["increase_lead_time"]
    advice = []
    for check in plan.quotas:
        if check.fits:
            continue
        if check.quota.startswith("API Gateway"):
            ask = _round_up(check.needed * THROTTLE_HEADROOM, 1000)
            code = quotas["api_gateway_account_rate_per_s"]["quota_code"]
            advice.append(
                f"REQUEST AN INCREASE: API Gateway throttle quota per account and Region ({code}) from "
                f"{check.limit:,.0f} to "
                f"{ask:,.0f} requests/s (peak {check.needed:,.0f}/s plus 20%), in the launch Region. {lead_time}"
            )
        elif check.quota.startswith("Lambda concurrent"):
            ask = _round_up(check.needed + quotas["lambda_account_concurrency"]["unreserved_minimum"], 1000)
            code = quotas["lambda_account_concurrency"]["quota_code"]
            advice.append(
                f"REQUEST AN INCREASE: Lambda concurrent executions ({code}) from {check.limit:,.0f} to at least "
                f"{ask:,.0f} "
                f"(this campaign needs {check.needed:,.0f}), plus what the account's other functions use at the same "
                f"time. {lead_time}"
            )
        else:
            advice.append(f"{check.quota}: {check.detail}")
    return advice


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(round(value / step, 6)) * step)  # 20000.000000000004 is 20,000


def _review(
    ticket: LaunchTicket, settings: PipelineSettings, prices: dict[str, Any], quotas: dict[str, Any]
) -> LaunchPlan:
    peak_leads = ticket.leads * ticket.peak_share
    window = ticket.arrival_seconds
    peak_rate = peak_leads / window
    rate, burst, throttled = _throttled_in_peak(peak_leads, window, settings, quotas)
    accepted_rate = (peak_leads - throttled) / window

    drain_at_cap = drain_rate_per_s(settings, ticket.store_seconds_per_batch, ticket.event_source_seconds_per_batch)
    # The forecasts (backlog, oldest lead, alarms) take the slow end: the governor may hold the drain at its floor.
    drain_rate = slowest_drain_rate_per_s(settings, drain_at_cap)
    backlog_at_cap = max(0.0, (accepted_rate - drain_at_cap) * window)
    growth = accepted_rate - drain_rate
    max_backlog = max(0.0, growth * window)
    drain_after_peak = max_backlog / drain_rate
    # The oldest lead is oldest just before the queue empties: it is the last of the peak.
    max_age = drain_after_peak
    age_fires, depth_fires = _queue_alarm_fire_times(settings, accepted_rate, growth, max_age, max_backlog)

    retention = settings.retention_days * 86400
    warnings = _retention_warnings(window + drain_after_peak, retention)
    # Each stored lead's event leaves as its row commits: destinations see the store's pace, not the form's.
    destinations = review_destinations(
        settings, ticket.campaign, accepted_rate * window, min(accepted_rate, drain_rate), window
    )
    warnings += [destination.warning for destination in destinations if destination.warning]
    known = set(Lead.model_fields)
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
        db_unavailable_alarm_within_seconds=_db_unavailable_alarm_window(settings),
        db_writer_cap=settings.max_concurrency,
        retention_seconds=retention,
        unknown_fields=[f for f in ticket.new_fields if f not in known],
        warnings=warnings,
        destinations=destinations,
        quotas=_quota_checks(peak_rate, settings, quotas),
        **_cost_fields(ticket, settings, prices, accepted=ticket.leads - throttled),
        database_comparison=_database_comparison(peak_rate, drain_at_cap, drain_at_cap / settings.batch_size, prices),
        price_table={"region": prices["region"], "as_of": prices["as_of"]},
        quota_table={"region": quotas["region"], "as_of": quotas["as_of"]},
        drain_rate_at_cap_per_s=drain_at_cap,
        drain_seconds_after_peak_at_cap=backlog_at_cap / drain_at_cap,
        governed=settings.governor_enabled,
    )


def _cost_fields(
    ticket: LaunchTicket, settings: PipelineSettings, prices: dict[str, Any], *, accepted: float
) -> dict[str, Any]:
    """The plan's cost fields: the campaign's costs, their total and its price per million leads stored, and
    the fixed monthly costs."""
    campaign_costs = _campaign_costs(ticket, settings, prices, arrived=ticket.leads, accepted=accepted)
    campaign_total = round(sum(c.usd for c in campaign_costs), 2)
    fixed = _fixed_monthly_costs(settings, prices)
    return {
        "campaign_costs": campaign_costs,
        "campaign_cost_usd": campaign_total,
        "usd_per_million_leads": round(campaign_total / accepted * 1e6, 2) if accepted > 0 else None,
        "fixed_monthly_costs": fixed,
        "fixed_monthly_usd": round(sum(c.usd for c in fixed), 2),
    }


def _throttled_in_peak(
    peak_leads: float, window: float, settings: PipelineSettings, quotas: dict[str, Any]
) -> tuple[float, int, float]:
    """(the stage's rate, its burst, the requests refused with 429 in the peak window)."""
    # API Gateway's token bucket: the burst is spent first, then the steady rate holds. The
    # stage's throttle never exceeds the account's, which every API in the Region shares.
    account = quotas["api_gateway_account_rate_per_s"]
    rate = min(settings.throttle_rate_per_second, account["value"])
    burst = min(settings.throttle_burst, account["burst"])
    throttled = max(0.0, peak_leads - (rate * window + burst)) if peak_leads / window > rate else 0.0
    return rate, burst, throttled


def _queue_alarm_fire_times(
    settings: PipelineSettings, accepted_rate: float, growth: float, max_age: float, max_backlog: float
) -> tuple[float | None, float | None]:
    """Seconds after the peak starts when the queue-age and queue-depth alarms fire (None: they don't)."""
    age_threshold = settings.alarm_queue_age_seconds
    age_fires = None
    if growth > 0 and max_age >= age_threshold:
        # oldest_lead_age(t) = t * growth / accepted reaches the threshold at t = threshold * accepted / growth
        age_fires = age_threshold * accepted_rate / growth + QUEUE_ALARM_PERIODS * 60
    depth_fires = None
    if growth > 0 and max_backlog >= settings.alarm_queue_depth:
        depth_fires = settings.alarm_queue_depth / growth + QUEUE_ALARM_PERIODS * 60
    return age_fires, depth_fires


def _db_unavailable_alarm_window(settings: PipelineSettings) -> tuple[float, float]:
    # One failed batch per minute breaches a period; an outage that starts late in a minute
    # may miss it, so the alarm comes N to N+1 minutes after the outage, plus CloudWatch's delay.
    db_minutes = settings.alarm_db_unavailable_minutes
    return (db_minutes * 60.0, (db_minutes + 1) * 60.0)


def _retention_warnings(seconds_until_drained: float, retention: float) -> list[str]:
    if seconds_until_drained <= retention:
        return []
    return [
        f"DRAINING TAKES LONGER THAN THE QUEUE KEEPS MESSAGES ({retention / 86400:.0f} days): leads WILL BE LOST. "
        "Raise max_concurrency (with the DB owner) or batch_size before launch."
    ]


def _quota_checks(peak_rate: float, settings: PipelineSettings, quotas: dict[str, Any]) -> list[QuotaCheck]:
    """What the campaign needs, unthrottled, of each account quota it shares with everything else."""
    ingest = math.ceil(peak_rate * INGEST_SECONDS_PER_REQUEST)  # Little's law: rate x duration
    return [
        _api_gateway_quota_check(peak_rate, quotas["api_gateway_account_rate_per_s"]),
        _lambda_concurrency_quota_check(peak_rate, ingest, settings, quotas["lambda_account_concurrency"]),
        _lambda_scaling_quota_check(ingest, quotas["lambda_scaling_rate"]),
        _event_source_quota_check(settings, quotas["sqs_event_source_scaling"]),
    ]


def _api_gateway_quota_check(peak_rate: float, api: dict[str, Any]) -> QuotaCheck:
    return QuotaCheck(
        "API Gateway requests/s (account, Region)",
        api["value"],
        peak_rate,
        peak_rate <= api["value"],
        f"peak {peak_rate:,.0f}/s against {api['value']:,}/s (burst {api['burst']:,}), shared by every API in the "
        "account and Region",
    )


def _lambda_concurrency_quota_check(
    peak_rate: float, ingest: int, settings: PipelineSettings, concurrency: dict[str, Any]
) -> QuotaCheck:
    reserved = settings.reserved_concurrency
    needed = ingest + reserved
    left = concurrency["value"] - needed
    return QuotaCheck(
        "Lambda concurrent executions (account, Region)",
        concurrency["value"],
        needed,
        left >= 0,
        f"ingest {ingest:,} ({peak_rate:,.0f}/s x {INGEST_SECONDS_PER_REQUEST * 1000:.0f} ms) + worker reserved "
        f"{reserved:,}; "
        + (
            f"leaves {left:,} for every other function in the account"
            if left >= 0
            else f"{-left:,} short before any other function runs"
        ),
    )


def _lambda_scaling_quota_check(ingest: int, scaling: dict[str, Any]) -> QuotaCheck:
    ramp_seconds = math.ceil(ingest / scaling["environments_per_10_s"]) * 10
    return QuotaCheck(
        "Lambda scaling rate (per function)",
        scaling["environments_per_10_s"],
        ingest,
        ingest <= scaling["environments_per_10_s"],
        f"the ingest reaches {ingest:,} environments within {ramp_seconds} s"
        + ("" if ingest <= scaling["environments_per_10_s"] else "; until then the excess gets 429 (the form retries)"),
    )


def _event_source_quota_check(settings: PipelineSettings, event_source: dict[str, Any]) -> QuotaCheck:
    writers_ramp = max(
        0.0,
        (settings.max_concurrency - event_source["initial_concurrent_batches"]) / event_source["added_per_minute"] * 60,
    )
    return QuotaCheck(
        "SQS event source scaling (worker)",
        event_source["maximum_concurrency"],
        settings.max_concurrency,
        writers_ramp <= 60,
        (
            f"{settings.max_concurrency} writers from the start (Lambda starts at "
            f"{event_source['initial_concurrent_batches']} batches at once)"
            if writers_ramp == 0
            else f"{settings.max_concurrency} writers reached within {_duration(writers_ramp)} (Lambda starts at "
            f"{event_source['initial_concurrent_batches']}, +{event_source['added_per_minute']} a minute)"
        )
        + ("" if writers_ramp <= 60 else ": the drain runs below its full rate that long"),
    )


def _campaign_costs(
    ticket: LaunchTicket, settings: PipelineSettings, prices: dict[str, Any], *, arrived: float, accepted: float
) -> list[CostLine]:
    """What this campaign's traffic costs, priced by what reaches each service: a 429 stops at
    API Gateway, which does not bill it; WAF inspects (and bills) everything that arrives."""
    per_million = 1_000_000
    batches = accepted / settings.batch_size
    worker_gb_seconds = (
        batches
        * (ticket.store_seconds_per_batch + ticket.event_source_seconds_per_batch)
        * settings.worker_memory_mb
        / 1024
    )
    ingest_gb_seconds = accepted * INGEST_SECONDS_PER_REQUEST * settings.ingest_memory_mb / 1024
    lines = [
        CostLine(
            "API Gateway REST requests (accepted; 429s are not billed)",
            accepted / per_million * prices["api_gateway_rest_per_million_requests"],
        ),
        CostLine(
            "Lambda requests (ingest + worker)",
            (accepted + batches) / per_million * prices["lambda_per_million_requests"],
        ),
        CostLine(
            "Lambda compute, arm64 GB-seconds",
            (ingest_gb_seconds + worker_gb_seconds) * prices["lambda_arm64_per_gb_second"],
        ),
        CostLine(
            "SQS requests", accepted * SQS_REQUESTS_PER_LEAD / per_million * prices["sqs_standard_per_million_requests"]
        ),
        CostLine(
            "CloudWatch Logs ingestion", accepted * LOG_BYTES_PER_LEAD / 1e9 * prices["cloudwatch_logs_ingest_per_gb"]
        ),
        CostLine(
            "Secrets Manager reads (cached)", batches / 100 / 10_000 * prices["secrets_manager_per_10k_api_calls"]
        ),
    ]
    if _has_web_acl(settings):
        lines.append(
            CostLine(
                "WAF requests (every request that arrives, 429s included)",
                arrived / per_million * prices["waf_per_million_requests"],
            )
        )
    for group in settings.waf_managed_rule_groups:
        price = prices["waf_managed_rule_groups"][group]
        if price["per_million_requests"]:
            lines.append(
                CostLine(f"WAF {group} requests inspected", arrived / per_million * price["per_million_requests"])
            )
    if settings.captcha_provider:
        lines.append(
            CostLine(
                f"{settings.captcha_provider} verifications (one per accepted post)",
                _captcha_usd(settings.captcha_provider, accepted, prices),
            )
        )
    lines += [CostLine(item, usd) for item, usd in events_campaign_costs(settings, ticket.campaign, accepted, prices)]
    return [CostLine(c.item, round(c.usd, 4)) for c in lines]


def _captcha_usd(provider: str, verifications: float, prices: dict[str, Any]) -> float:
    """The provider's monthly tiers, as if this campaign were the month's only traffic."""
    table = prices["captcha"][provider]
    if provider == "turnstile":
        return 0.0
    if verifications <= table["free_per_month"]:
        return 0.0
    flat_up_to, flat_usd = table["flat_usd_up_to"]
    return flat_usd + max(0.0, verifications - flat_up_to) * table["per_assessment_above"]


def _has_web_acl(settings: PipelineSettings) -> bool:
    return bool(settings.waf_requests_per_5_minutes_per_ip or settings.waf_managed_rule_groups)


def _fixed_monthly_costs(settings: PipelineSettings, prices: dict[str, Any]) -> list[CostLine]:
    """What the stack costs each month whatever the traffic (prorated by the hour by AWS)."""
    alarms = ALARM_COUNT
    if settings.has_database:
        alarms += (
            DRAIN_PROBE_ALARM_COUNT + RETENTION_ALARM_COUNT + GOVERNOR_ALARM_COUNT * int(settings.governor_enabled)
        )
    metrics = len(custom_metrics(settings))
    lines = [
        CostLine(
            f"CloudWatch: {alarms} alarms, {metrics} custom metrics, one dashboard",
            alarms * prices["cloudwatch_alarm_per_month"]
            + metrics * prices["cloudwatch_custom_metric_per_month"]
            + prices["cloudwatch_dashboard_per_month"],
        ),
    ]
    secrets = int(settings.has_database) + int(bool(settings.captcha_secret_arn))
    if secrets:
        lines.append(
            CostLine(f"Secrets Manager: {secrets} secret(s)", secrets * prices["secrets_manager_secret_per_month"])
        )
    if _has_web_acl(settings):
        rules = int(bool(settings.waf_requests_per_5_minutes_per_ip)) + len(settings.waf_managed_rule_groups)
        lines.append(
            CostLine(
                f"WAF: web ACL and {rules} rule(s)",
                prices["waf_web_acl_per_month"] + rules * prices["waf_rule_per_month"],
            )
        )
    for group in settings.waf_managed_rule_groups:
        price = prices["waf_managed_rule_groups"][group]
        if price["per_month"]:
            lines.append(CostLine(f"WAF {group} subscription", price["per_month"]))
    lines += [CostLine(item, usd) for item, usd in events_fixed_costs(settings, prices)]
    return [CostLine(c.item, round(c.usd, 2)) for c in lines]


def _database_comparison(
    peak_rate: float, drain_rate: float, batch_commits_per_s: float, prices: dict[str, Any]
) -> dict[str, Any]:
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


def _drain_rate_range(plan: LaunchPlan) -> str:
    at_cap = f"{plan.drain_rate_at_cap_per_s:,.0f} leads/s at the cap ({plan.db_writer_cap} DB writers, main app idle)"
    if not plan.governed:
        return at_cap
    return f"{at_cap} .. {plan.drain_rate_per_s:,.0f} leads/s at the governor's floor (main app busy)"


def _drain_time_range(plan: LaunchPlan) -> str:
    if not plan.governed:
        return _duration(plan.drain_seconds_after_peak)
    return (
        f"{_duration(plan.drain_seconds_after_peak_at_cap)} (cap, main app idle) .. "
        f"{_duration(plan.drain_seconds_after_peak)} (floor, main app busy; the alarms below assume this)"
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "does not fire"
    return str(timedelta(seconds=round(seconds)))


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _outcome_rows(plan: LaunchPlan) -> list[tuple[str, str]]:
    """The figures the two reviews (as set, and after the advice) are compared on."""
    throttled = "none" if not plan.throttled_requests else f"about {plan.throttled_requests:,.0f} requests"
    low, high = plan.db_unavailable_alarm_within_seconds
    return [
        ("API throttle", f"{plan.throttle_rate_per_s:,.0f}/s (burst {plan.throttle_burst:,})"),
        ("throttled (429)", throttled),
        ("accepted rate in the peak", f"{plan.accepted_rate_per_s:,.1f}/s"),
        ("max queue backlog", f"{plan.max_backlog:,.0f} leads"),
        ("time to drain after the peak", _drain_time_range(plan)),
        ("oldest lead waits at most", _duration(plan.max_queue_age_seconds)),
        (
            "queue-age alarm",
            f"{_duration(plan.age_alarm_fires_after_seconds)}"
            + (" after the peak starts" if plan.age_alarm_fires_after_seconds else ""),
        ),
        (
            "queue-depth alarm",
            f"{_duration(plan.depth_alarm_fires_after_seconds)}"
            + (" after the peak starts" if plan.depth_alarm_fires_after_seconds else ""),
        ),
        (
            "database-unavailable alarm",
            f"only if the database is unreachable: {low / 60:.0f}-{high / 60:.0f} min after the outage starts, plus "
            "CloudWatch's delay",
        ),
        (
            "this campaign's AWS cost",
            f"{_usd(plan.campaign_cost_usd)} ({_usd(plan.usd_per_million_leads)} per million leads stored)",
        ),
    ]


def to_markdown(plan: LaunchPlan) -> str:
    """The review, ready to paste into the launch ticket."""
    out = [f"## Launch review: {plan.campaign} (stage `{plan.stage}`)", ""]
    if plan.launch or plan.endpoint:
        out += [f"Launch: {plan.launch or 'unannounced'} · endpoint: {plan.endpoint or 'the stage API'}", ""]
    out += [f"> **{w}**" for w in plan.warnings] + ([""] if plan.warnings else [])
    out += _summary_markdown(plan)
    out += _quotas_markdown(plan)
    out += [
        "### Recommended changes",
        *([f"- {r}" for r in plan.recommendations] or ["- none: the current settings take this campaign."]),
        "",
    ]
    out += _after_recommendations_markdown(plan)
    out += destinations_markdown(plan.destinations)
    out += _costs_markdown(plan)
    out += _database_comparison_markdown(plan)
    return "\n".join(out)


def _summary_markdown(plan: LaunchPlan) -> list[str]:
    return [
        "| | |",
        "| --- | --- |",
        f"| expected leads | {plan.leads:,.0f} ({plan.peak_leads:,.0f} in the peak window) |",
        f"| peak ingest rate | {plan.peak_rate_per_s:,.1f}/s |",
        f"| drain rate | {_drain_rate_range(plan)} |",
        *[f"| {name} | {value} |" for name, value in _outcome_rows(plan)],
        f"| DB writer cap | {plan.db_writer_cap} concurrent connections, whatever the traffic |",
        "",
    ]


def _quotas_markdown(plan: LaunchPlan) -> list[str]:
    return [
        f"### AWS quotas ({plan.quota_table['region']} defaults as of {plan.quota_table['as_of']}; check your "
        "account's in Service Quotas)",
        "",
        "| quota | default | this campaign needs | |",
        "| --- | ---: | ---: | --- |",
        *[
            f"| {q.quota} | {q.limit:,.0f} | {q.needed:,.0f} | {'ok' if q.fits else '**over**'}: {q.detail} |"
            for q in plan.quotas
        ],
        "",
    ]


def _after_recommendations_markdown(plan: LaunchPlan) -> list[str]:
    after = plan.after_recommendations
    if after is None:
        return []
    changed = ", ".join(
        f"`{k}: {v:g}`" if isinstance(v, float | int) else f"`{k}: {v}`" for k, v in plan.recommended_settings.items()
    )
    return [
        f"### After the recommended changes ({changed})",
        "",
        "| | as set | after |",
        "| --- | --- | --- |",
        *[
            f"| {name} | {now} | {then} |"
            for (name, now), (_, then) in zip(_outcome_rows(plan), _outcome_rows(after), strict=True)
        ],
        "",
    ]


def _costs_markdown(plan: LaunchPlan) -> list[str]:
    return [
        f"### AWS cost of this campaign ({plan.price_table['region']}, prices as of {plan.price_table['as_of']})",
        "",
        "| item | this campaign |",
        "| --- | ---: |",
        *[f"| {c.item} | ${c.usd:,.2f} |" for c in plan.campaign_costs],
        f"| **total** | **{_usd(plan.campaign_cost_usd)}** |",
        f"| per million leads stored | {_usd(plan.usd_per_million_leads)} |",
        "",
        "Fixed monthly costs, whatever the traffic:",
        "",
        "| item | a month |",
        "| --- | ---: |",
        *[f"| {c.item} | ${c.usd:,.2f} |" for c in plan.fixed_monthly_costs],
        f"| **total** | **{_usd(plan.fixed_monthly_usd)}** |",
        "",
    ]


def _database_comparison_markdown(plan: LaunchPlan) -> list[str]:
    db = plan.database_comparison
    unbuffered_cost = (
        f"${db['unbuffered_month_usd']:,.0f}/month" if db["unbuffered_month_usd"] is not None else "not listed"
    )
    return [
        "### Versus sizing the database for the unbuffered peak",
        f"Writing each lead straight to PostgreSQL at {db['unbuffered_peak_writes_per_s']:,}/s needs about "
        f"`{db['unbuffered_instance']}` ({unbuffered_cost}), all month, because campaigns launch unannounced. "
        f"Through the queue the database sees batches of rows at {db['buffered_rows_per_s']:,}/s with at most "
        f"{plan.db_writer_cap} connections: `{db['buffered_instance']}` (${db['buffered_month_usd']:,.0f}/month) is "
        "enough.",
        f"_{db['assumption']}_",
    ]

"""The launch review's arithmetic, against cases worked out by hand in the comments."""

from __future__ import annotations

import copy
import json

import pytest

from infra.config import PipelineSettings, settings_from_file
from leadpipe.plan import (
    LaunchTicket,
    PlanError,
    backlog_curve,
    drain_rate_per_s,
    load_price_table,
    load_quota_table,
    oldest_lead_age,
    plan_launch,
    to_markdown,
)

PRICES = load_price_table()
QUOTAS = load_quota_table()


def settings(**overrides) -> PipelineSettings:
    base = {
        "stage": "test",
        "allowed_origins": ["https://www.example.com"],
        "batch_size": 100,
        "max_concurrency": 2,
        "reserved_concurrency": 2,
        "governor_enabled": False,  # the drain at a fixed cap; the governed range has tests of its own
    }
    return PipelineSettings(**{**base, **overrides})


def ticket(**kwargs) -> LaunchTicket:
    return LaunchTicket.from_inputs(campaign="TEST", **kwargs)


def test_a_governed_drain_is_a_range_and_the_alarms_are_forecast_at_its_slow_end() -> None:
    # Given 600,000 leads in 10 min = 1,000/s; at the cap 2 * 100 / (0.48 + 0.02) = 400/s; the governor's floor is
    # half a writer: a quarter of that, 100/s, while the main application keeps the database busy
    plan = plan_launch(
        ticket(leads=600_000, within_minutes=10, store_seconds_per_batch=0.48),
        settings(
            governor_enabled=True,
            governor_floor_writers=0.5,
            throttle_rate_per_second=5_000,
            throttle_burst=5_000,
            alarm_queue_age_seconds=600,
            alarm_queue_depth=10_000,
        ),
        PRICES,
    )
    # Then the drain is a range: 400/s at the cap, 100/s at the floor
    assert (plan.drain_rate_at_cap_per_s, plan.drain_rate_per_s) == (pytest.approx(400), pytest.approx(100))
    # at the cap the backlog (600 * 600 = 360,000) drains in 900 s; at the floor (900 * 600 = 540,000) in 5,400 s
    assert plan.drain_seconds_after_peak_at_cap == pytest.approx(900)
    assert (plan.max_backlog, plan.drain_seconds_after_peak) == (pytest.approx(540_000), pytest.approx(5_400))
    # and the alarms are forecast at the slow end: the oldest lead is t * 900 / 1,000 old, 600 s at t = 666.7 s
    assert plan.age_alarm_fires_after_seconds == pytest.approx(600 * 1000 / 900 + 180)
    assert plan.depth_alarm_fires_after_seconds == pytest.approx(10_000 / 900 + 180)
    markdown = to_markdown(plan)
    assert (
        "| drain rate | 400 leads/s at the cap (2 DB writers, main app idle) .. 100 leads/s at the governor's"
        in markdown
    )
    assert "| time to drain after the peak | 0:15:00 (cap, main app idle) .. 1:30:00 (floor, main app busy;" in markdown


def test_throttle_exceeded_counts_the_429s_and_the_advice_removes_them() -> None:
    # Given 60,000 leads in 1 min = 1,000/s against 100/s + burst 200
    # When the launch is reviewed
    plan = plan_launch(
        ticket(leads=60_000, within_minutes=1, store_seconds_per_batch=0.08),
        settings(throttle_rate_per_second=100, throttle_burst=200),
        PRICES,
    )
    # Then 60,000 - (100*60 + 200) = 53,800 are refused, 6,200 accepted over 60 s
    assert plan.peak_rate_per_s == pytest.approx(1000)
    assert plan.throttled_requests == pytest.approx(53_800)
    assert plan.accepted_rate_per_s == pytest.approx(6_200 / 60)
    # batch time 0.08 + 0.02 s: 2 writers * 100 rows / 0.1 s = 2,000/s, so nothing queues up
    assert plan.drain_rate_per_s == pytest.approx(2_000)
    assert plan.max_backlog == 0 and plan.age_alarm_fires_after_seconds is None
    # the advice is the peak plus 20%: 1,200/s; with it, 1,000/s all pass and nothing queues
    assert plan.recommended_settings == {"throttle_rate_per_second": 1200}
    assert any(r.startswith("throttle_rate_per_second: 100 -> 1200") for r in plan.recommendations)
    after = plan.after_recommendations
    assert after.throttled_requests == 0 and after.accepted_rate_per_s == pytest.approx(1000) and after.max_backlog == 0


def test_backlog_drain_time_and_alarm_timing() -> None:
    # Given 600,000 in 10 min = 1,000/s; drain 2*100/(0.48+0.02) = 400/s; growth 600/s for 600 s
    plan = plan_launch(
        ticket(leads=600_000, within_minutes=10, store_seconds_per_batch=0.48),
        settings(
            throttle_rate_per_second=5_000, throttle_burst=5_000, alarm_queue_age_seconds=600, alarm_queue_depth=10_000
        ),
        PRICES,
    )
    # Then the backlog peaks at 600 * 600 = 360,000 and takes 360,000 / 400 = 900 s to drain;
    # the last lead of the peak (arrived at 600 s) leaves at 1,500 s: 900 s is the longest wait
    assert plan.throttled_requests == 0
    assert plan.max_backlog == pytest.approx(360_000)
    assert plan.drain_seconds_after_peak == pytest.approx(900)
    assert plan.max_queue_age_seconds == pytest.approx(900)
    # the oldest lead's age is t * 600 / 1,000: it reaches 600 s at t = 1,000 s, + 3 one-minute periods
    assert plan.age_alarm_fires_after_seconds == pytest.approx(1_180)
    # depth reaches 10,000 at 10,000 / 600 = 16.7 s, + 3 min
    assert plan.depth_alarm_fires_after_seconds == pytest.approx(196.67, abs=0.01)
    assert plan.warnings == []


def test_the_age_alarm_follows_the_oldest_lead_not_the_newest() -> None:
    # Given a launch review's example: 54,000 leads in 10 min on dev's throttle (100/s) = 90/s, drain
    # 2 writers * 3 rows / (0.18 + 0.02) s = 30/s, the age alarm at its default 900 s
    plan = plan_launch(
        ticket(leads=54_000, within_minutes=10, store_seconds_per_batch=0.18), settings(batch_size=3), PRICES
    )
    assert plan.drain_rate_per_s == pytest.approx(30)
    # Then: the lead that arrived at s leaves at s * 90 / 30 = 3s. At t the oldest queued one
    # arrived at t / 3 and is 2t / 3 old; 2t / 3 = 900 at t = 1,350 s, + 180 s of alarm periods
    assert plan.age_alarm_fires_after_seconds == pytest.approx(1_530)  # the old backlog/drain model said 630
    # the backlog is 60 * 600 = 36,000 at 600 s; the last lead of the peak leaves at 1,800 s, 1,200 s old
    assert plan.max_backlog == pytest.approx(36_000)
    assert plan.max_queue_age_seconds == pytest.approx(1_200)
    assert oldest_lead_age(1_350, 90, 30, 600) == pytest.approx(900)
    assert oldest_lead_age(300, 90, 30, 600) == pytest.approx(200)
    assert oldest_lead_age(1_800, 90, 30, 600) == 0  # the queue is empty again
    # The advice: the age threshold above the 20 min wait plus 3 periods (23 min), the depth above
    # the backlog plus 10% (39,600 -> 40,000); with both, neither alarm pages for the campaign
    assert plan.recommended_settings == {"alarm_queue_age_seconds": 1_380, "alarm_queue_depth": 40_000}
    after = plan.after_recommendations
    assert after.age_alarm_fires_after_seconds is None and after.depth_alarm_fires_after_seconds is None
    assert after.max_backlog == pytest.approx(36_000)  # alarms change nothing about the queue


def test_a_million_leads_in_a_minute_meets_the_quotas() -> None:
    # Given 1,000,000 leads in 1 min (16,667/s) on prod's settings (throttle 100/s, burst 200, 4 writers)
    prod = settings_from_file("prod")
    plan = plan_launch(ticket(leads=1_000_000, within_minutes=1), prod, PRICES)
    # Then the throttle advice stops at 10,000/s: the settings model's ceiling and the account's
    # default API Gateway quota (10,000 requests/s per account and Region, AWS API Gateway quotas page)
    assert plan.recommended_settings["throttle_rate_per_second"] == 10_000
    assert any("capped at 10,000/s" in r for r in plan.recommendations)
    # and it asks AWS for the peak plus 20%: 20,000/s, with the lead time
    quota_advice = next(r for r in plan.recommendations if "API Gateway throttle quota" in r)
    assert (
        "from 10,000 to 20,000 requests/s" in quota_advice
        and "L-8A5B8E43" in quota_advice
        and "two weeks" in quota_advice
    )
    api, concurrency, scaling, event_source = plan.quotas
    assert not api.fits
    # Lambda: 16,667/s x 40 ms = 667 ingest environments + 4 reserved for the worker = 671 of 1,000
    assert (concurrency.needed, concurrency.fits) == (671, True) and "leaves 329" in concurrency.detail
    assert scaling.fits and event_source.fits
    # After the advice: 1,000,000 - (10,000 * 60 + 200) = 399,800 still refused until AWS raises the quota
    after = plan.after_recommendations
    assert after.throttled_requests == pytest.approx(399_800)
    assert after.accepted_rate_per_s == pytest.approx(600_200 / 60)


def test_a_lambda_quota_below_the_need_asks_for_an_increase() -> None:
    # Given an account whose Lambda concurrency is 500, and 1,000,000 leads in 1 min (671 needed, as above)
    quotas = copy.deepcopy(QUOTAS)
    quotas["lambda_account_concurrency"]["value"] = 500
    plan = plan_launch(
        ticket(leads=1_000_000, within_minutes=1), settings(max_concurrency=4, reserved_concurrency=4), PRICES, quotas
    )
    # Then it is 171 short, and the ask is the need plus the 100 AWS keeps unreserved, rounded up: 1,000
    check = plan.quotas[1]
    assert not check.fits and "171 short" in check.detail
    assert any(
        "Lambda concurrent executions (L-B99A9384) from 500 to at least 1,000" in r for r in plan.recommendations
    )


def test_a_lower_account_quota_caps_the_throttle_advice() -> None:
    # Given a Region whose default is 2,500 requests/s (burst 1,250), and 3,000/s wanted
    quotas = copy.deepcopy(QUOTAS)
    quotas["api_gateway_account_rate_per_s"].update(value=2_500, burst=1_250)
    plan = plan_launch(ticket(leads=180_000, within_minutes=1), settings(throttle_burst=5_000), PRICES, quotas)
    # Then the account's burst, not the stage's 5,000, bounds the first second, and the advice stops at 2,500
    assert plan.throttle_burst == 1_250
    assert plan.throttled_requests == pytest.approx(180_000 - (100 * 60 + 1_250))
    assert plan.recommended_settings["throttle_rate_per_second"] == 2_500


def test_a_platform_measured_slower_hand_off_slows_the_drain() -> None:
    # the same store time on a platform whose event source costs 0.12 s per batch (the local
    # runtime pays its SQS receives and deletes in line): 2 * 100 / (0.08 + 0.12) = 1,000/s
    plan = plan_launch(
        ticket(leads=60_000, within_minutes=10, store_seconds_per_batch=0.08, event_source_seconds_per_batch=0.12),
        settings(),
        PRICES,
    )
    assert plan.drain_rate_per_s == pytest.approx(1_000)
    assert drain_rate_per_s(settings(), 0.08) == pytest.approx(2_000)  # Lambda's hand-off, the default


def test_audience_times_conversion_and_peak_hour_share() -> None:
    # 2,000,000 * 1.5% = 30,000 leads, 40% of them in the peak hour: 12,000 / 3,600 s
    plan = plan_launch(ticket(audience=2_000_000, conversion_percent=1.5, peak_hour_share=0.4), settings(), PRICES)
    assert plan.leads == pytest.approx(30_000)
    assert plan.peak_leads == pytest.approx(12_000)
    assert plan.peak_rate_per_s == pytest.approx(12_000 / 3_600)


def test_zero_conversion_is_a_quiet_campaign() -> None:
    plan = plan_launch(ticket(audience=1_000_000, conversion_percent=0, within_minutes=30), settings(), PRICES)
    assert (plan.leads, plan.peak_rate_per_s, plan.max_backlog, plan.throttled_requests) == (0, 0, 0, 0)
    assert plan.campaign_cost_usd == 0 and plan.usd_per_million_leads is None
    # 8 alarms * $0.10 + 9 metrics * $0.30 + the $3 dashboard cost money even when idle
    assert plan.fixed_monthly_usd == pytest.approx(6.50)


def test_drain_longer_than_retention_is_a_loud_warning() -> None:
    # 1,000,000 in 1 h = 277.8/s; drain 2 writers * 1 row / (0.98 + 0.02) s = 2/s; backlog ~992,800 leads
    plan = plan_launch(
        ticket(leads=1_000_000, within_minutes=60, store_seconds_per_batch=0.98),
        settings(
            batch_size=1,
            max_batching_window_seconds=0,
            retention_days=1,
            throttle_rate_per_second=1_000,
            throttle_burst=1_000,
        ),
        PRICES,
    )
    assert plan.drain_rate_per_s == pytest.approx(2)
    # (277.78 - 2) * 3,600 = 992,800 leads left at the end of the hour, at 2/s: 496,400 s
    assert plan.drain_seconds_after_peak == pytest.approx(496_400)
    assert plan.warnings and "WILL BE LOST" in plan.warnings[0]
    assert "**DRAINING TAKES LONGER" in to_markdown(plan)


def test_costs_follow_what_reaches_each_service() -> None:
    # Given 1,000,000 leads in 1 min against 10,000/s + burst 5,000, a WAF rate rule, 4 writers
    plan = plan_launch(
        ticket(leads=1_000_000, within_minutes=1),
        settings(
            throttle_rate_per_second=10_000,
            throttle_burst=5_000,
            waf_requests_per_5_minutes_per_ip=300,
            max_concurrency=4,
            reserved_concurrency=4,
        ),
        PRICES,
    )
    # Then 1,000,000 - (600,000 + 5,000) = 395,000 get 429 and 605,000 are accepted
    assert plan.throttled_requests == pytest.approx(395_000)
    costs = {c.item.split(" (")[0]: c.usd for c in plan.campaign_costs}
    assert costs["API Gateway REST requests"] == pytest.approx(0.605 * 3.50)  # the 429s are not billed
    assert costs["WAF requests"] == pytest.approx(1.0 * 0.60)  # WAF inspects all 1,000,000
    assert costs["SQS requests"] == pytest.approx(0.605 * 1.2 * 0.40)
    assert costs["Lambda requests"] == pytest.approx(0.611_05 * 0.20, abs=1e-4)  # 605,000 posts + 6,050 batches
    # compute: 605,000 * 40 ms * 0.25 GB = 6,050 GB-s, 6,050 batches * 70 ms * 0.5 GB = 211.75: 6,261.75 * $0.0000133334
    assert costs["Lambda compute, arm64 GB-seconds"] == pytest.approx(0.0835, abs=1e-4)
    assert costs["CloudWatch Logs ingestion"] == pytest.approx(0.363)  # 605,000 * 1,200 B = 0.726 GB * $0.50
    # total by hand: 2.1175 + 0.1222 + 0.0835 + 0.2904 + 0.3630 + 0.0003 + 0.6000 = 3.5769
    assert plan.campaign_cost_usd == pytest.approx(3.58)
    assert plan.usd_per_million_leads == pytest.approx(3.58 / 0.605, abs=0.01)  # $5.92 per million stored
    # fixed: $6.50 of CloudWatch, the web ACL $5 and its one rule $1
    assert plan.fixed_monthly_usd == pytest.approx(12.50)


def test_spam_protection_costs_are_in_the_table() -> None:
    # Given Bot Control and the IP reputation list, reCAPTCHA v3 with its secret, a DB secret
    protected = settings(
        throttle_rate_per_second=1_000,
        waf_requests_per_5_minutes_per_ip=300,
        waf_managed_rule_groups=["bot_control", "ip_reputation"],
        captcha_provider="recaptcha_v3",
        captcha_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/captcha-AbCdEf",
        db_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/db-AbCdEf",
    )
    plan = plan_launch(ticket(leads=605_000, within_minutes=60), protected, PRICES)
    costs = {c.item.split(" (")[0]: c.usd for c in plan.campaign_costs}
    # Bot Control: $1 per million inspected; reCAPTCHA: $8 flat to 100,000, then 505,000 * $0.001
    assert costs["WAF bot_control requests inspected"] == pytest.approx(0.605)
    assert costs["recaptcha_v3 verifications"] == pytest.approx(8 + 505)
    fixed = {c.item: c.usd for c in plan.fixed_monthly_costs}
    # web ACL $5 + 3 rules (rate, bot control, IP reputation) * $1; Bot Control's $10 subscription; 2 secrets * $0.40
    assert fixed["WAF: web ACL and 3 rule(s)"] == pytest.approx(8)
    assert fixed["WAF bot_control subscription"] == pytest.approx(10)
    assert fixed["Secrets Manager: 2 secret(s)"] == pytest.approx(0.80)
    # With a database the drain breaker's probe and the retention have two alarms each (it fails, it stops running):
    # 12 alarms * $0.10 + 21 custom metrics * $0.30 (ingest 4 + 9 refusal codes + captcha 2, worker 5,
    # probe 1) + one dashboard $3 = $10.50
    assert fixed["CloudWatch: 12 alarms, 21 custom metrics, one dashboard"] == pytest.approx(10.50)
    assert plan.fixed_monthly_usd == pytest.approx(10.50 + 8 + 10 + 0.80)


CAPTCHA_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:leadpipe/captcha-AbCdEf"


@pytest.mark.parametrize(
    ("provider", "verifications", "usd"),
    [("turnstile", 5_000_000, 0), ("recaptcha_v3", 9_000, 0), ("recaptcha_v3", 50_000, 8)],
)
def test_captcha_tiers(provider: str, verifications: int, usd: float) -> None:
    plan = plan_launch(
        ticket(leads=verifications, within_minutes=600),
        settings(captcha_provider=provider, captcha_secret_arn=CAPTCHA_SECRET, throttle_rate_per_second=10_000),
        PRICES,
    )
    assert next(c.usd for c in plan.campaign_costs if c.item.startswith(provider)) == pytest.approx(usd)


def test_the_database_unavailable_alarm_is_forecast_honestly() -> None:
    # Given the alarm at 3 one-minute periods: it comes 3 to 4 minutes after the outage, never from traffic
    plan = plan_launch(ticket(leads=10, within_minutes=1), settings(alarm_db_unavailable_minutes=3), PRICES)
    assert plan.db_unavailable_alarm_within_seconds == (180, 240)
    assert (
        "only if the database is unreachable: 3-4 min after the outage starts, plus CloudWatch's delay"
        in to_markdown(plan)
    )


def test_the_markdown_shows_quotas_and_the_plan_after_its_advice() -> None:
    plan = plan_launch(ticket(leads=1_000_000, within_minutes=1), settings_from_file("prod"), PRICES)
    text = to_markdown(plan)
    assert "### AWS quotas (us-east-1 defaults as of 2026-11-30" in text
    assert "| API Gateway requests/s (account, Region) | 10,000 | 16,667 | **over**" in text
    assert "### After the recommended changes (`throttle_rate_per_second: 10000`" in text
    assert "| throttled (429) | about 993,800 requests | about 399,800 requests |" in text
    assert "| per million leads stored |" in text and "Fixed monthly costs, whatever the traffic:" in text


def test_backlog_curve_stops_draining_while_the_database_is_away() -> None:
    # 100 leads/s arrive for 10 s, drain 50/s, the database away from 4 s to 6 s
    times = [float(t) for t in range(0, 13, 2)]
    arrived = [min(t, 10) * 100 for t in times]
    # step by step: +200-100, +200-100, +200 (away), +200-100, +200-100, +0-100
    assert backlog_curve(times, arrived, 50, (4, 6)) == [0, 100, 200, 400, 500, 600, 500]


def test_new_fields_outside_the_contract_are_flagged() -> None:
    plan = plan_launch(ticket(leads=10, within_minutes=1, new_fields=("phone", "favourite_colour")), settings(), PRICES)
    assert plan.unknown_fields == ["favourite_colour"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"within_minutes": 5}, "give --leads, or --audience with --conversion"),
        ({"leads": 10}, "exactly one of --within-minutes or --peak-hour-share"),
        ({"leads": 10, "within_minutes": 0}, "--within-minutes must be more than 0"),
        ({"leads": 10, "peak_hour_share": 1.5}, "--peak-hour-share must be a fraction"),
        ({"audience": 10, "conversion_percent": 120, "within_minutes": 1}, "percentage from 0 to 100"),
    ],
)
def test_bad_tickets_are_refused_with_the_option_to_fix(inputs: dict, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        ticket(**inputs)


def test_the_plan_command_takes_a_measured_event_source_cost(capsys: pytest.CaptureFixture) -> None:
    from leadpipe.cli import main as leadpipe

    # dev: 2 writers of 100 rows; 80 ms store + 20 ms hand-off = 2,000/s; + 120 ms event source = 1,000/s
    base = [
        "plan",
        "--campaign",
        "X",
        "--leads",
        "60000",
        "--within-minutes",
        "10",
        "--store-ms-per-batch",
        "80",
        "--json",
    ]
    # (dev is governed: the slow end is its floor, a quarter writer of the 2: an eighth of the rate at the cap)
    assert leadpipe(base) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["drain_rate_at_cap_per_s"], answer["drain_rate_per_s"]) == (pytest.approx(2_000), pytest.approx(250))
    assert leadpipe([*base, "--event-source-ms-per-batch", "120"]) == 0
    assert json.loads(capsys.readouterr().out)["drain_rate_at_cap_per_s"] == pytest.approx(1_000)
    assert leadpipe([*base, "--event-source-ms-per-batch", "-1"]) == 2
    assert "cannot be negative" in capsys.readouterr().err


@pytest.mark.parametrize("stage", ["dev", "prod"])
@pytest.mark.parametrize("leads", [10, 50_000, 1_000_000, 50_000_000])
@pytest.mark.parametrize("minutes", [1, 60, 24 * 60])
def test_the_advice_is_always_a_setting_the_model_accepts(stage: str, leads: int, minutes: int) -> None:
    # Given campaigns from a trickle to 50 million leads in a minute, on both stages
    plan = plan_launch(ticket(leads=leads, within_minutes=minutes), settings_from_file(stage), PRICES)
    # Then the recommended settings validate as a whole (the settings model refuses, e.g., a throttle above 10,000/s)
    recommended = PipelineSettings(**{**settings_from_file(stage).model_dump(), **plan.recommended_settings})
    if plan.throttled_requests:  # the peak plus 20%, or the ceiling
        assert recommended.throttle_rate_per_second == min(round(plan.peak_rate_per_s * 1.2 + 0.5), 10_000)
    # and the plan after the advice never throttles more than the plan before it
    after = plan.after_recommendations or plan
    assert after.throttled_requests <= plan.throttled_requests

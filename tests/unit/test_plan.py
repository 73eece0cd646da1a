"""The launch review's arithmetic, against cases worked out by hand."""

from __future__ import annotations

import json

import pytest

from infra.config import PipelineSettings, settings_from_file
from leadpipe.plan import LaunchTicket, PlanError, drain_rate_per_s, load_price_table, plan_launch, to_markdown

PRICES = load_price_table()


def settings(**overrides) -> PipelineSettings:
    base = {"stage": "test", "allowed_origins": ["https://www.example.com"], "batch_size": 100, "max_concurrency": 2, "reserved_concurrency": 2}
    return PipelineSettings(**{**base, **overrides})


def ticket(**kwargs) -> LaunchTicket:
    return LaunchTicket.from_inputs(campaign="TEST", **kwargs)


def test_throttle_exceeded_counts_the_429s() -> None:
    # 60,000 leads in 1 min = 1,000/s against 100/s + burst 200: 60,000 - (100*60 + 200) = 53,800 refused
    plan = plan_launch(ticket(leads=60_000, within_minutes=1, store_seconds_per_batch=0.08), settings(throttle_rate_per_second=100, throttle_burst=200), PRICES)
    assert plan.peak_rate_per_s == pytest.approx(1000)
    assert plan.throttled_requests == pytest.approx(53_800)
    assert plan.accepted_rate_per_s == pytest.approx(6_200 / 60)
    # batch time 0.08 + 0.02 s: 2 writers * 100 rows / 0.1 s = 2,000/s, so nothing queues up
    assert plan.drain_rate_per_s == pytest.approx(2_000)
    assert plan.max_backlog == 0 and plan.age_alarm_fires_after_seconds is None
    assert any(r.startswith("throttle_rate_per_second: 100 -> 1200") for r in plan.recommendations)


def test_backlog_drain_time_and_alarm_timing() -> None:
    # 600,000 in 10 min = 1,000/s; drain 2*100/(0.48+0.02) = 400/s; growth 600/s for 600 s
    plan = plan_launch(
        ticket(leads=600_000, within_minutes=10, store_seconds_per_batch=0.48),
        settings(throttle_rate_per_second=5_000, throttle_burst=5_000, alarm_queue_age_seconds=600, alarm_queue_depth=10_000),
        PRICES,
    )
    assert plan.throttled_requests == 0
    assert plan.max_backlog == pytest.approx(360_000)
    assert plan.drain_seconds_after_peak == pytest.approx(900)
    assert plan.max_queue_age_seconds == pytest.approx(900)
    # age reaches 600 s when backlog/400 = 600, i.e. at t = 600*400/600 = 400 s, + 3 min of alarm periods
    assert plan.age_alarm_fires_after_seconds == pytest.approx(580)
    # depth reaches 10,000 at 10,000/600 s, + 3 min
    assert plan.depth_alarm_fires_after_seconds == pytest.approx(10_000 / 600 + 180)
    assert plan.warnings == []


def test_a_platform_measured_slower_hand_off_slows_the_drain() -> None:
    # the same store time on a platform whose event source costs 0.12 s per batch (the local
    # runtime pays its SQS receives and deletes in line): 2 * 100 / (0.08 + 0.12) = 1,000/s
    plan = plan_launch(ticket(leads=60_000, within_minutes=10, store_seconds_per_batch=0.08, event_source_seconds_per_batch=0.12), settings(), PRICES)
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
    total = plan.costs[-1]
    assert total.item == "TOTAL" and total.campaign_usd == 0
    assert total.month_usd > 0  # alarms, metrics and the dashboard cost money even when idle


def test_drain_longer_than_retention_is_a_loud_warning() -> None:
    # 1,000,000 in 1 h = 277.8/s; drain 2 writers * 1 row / (0.98 + 0.02) s = 2/s; backlog ~992,800 leads
    plan = plan_launch(
        ticket(leads=1_000_000, within_minutes=60, store_seconds_per_batch=0.98),
        settings(batch_size=1, max_batching_window_seconds=0, retention_days=1, throttle_rate_per_second=1_000, throttle_burst=1_000),
        PRICES,
    )
    assert plan.drain_rate_per_s == pytest.approx(2)
    assert plan.drain_seconds_after_peak == pytest.approx((1_000_000 / 3600 - 2) * 3600 / 2)
    assert plan.warnings and "WILL BE LOST" in plan.warnings[0]
    assert "**DRAINING TAKES LONGER" in to_markdown(plan)


def test_cost_lines_follow_the_price_table() -> None:
    plan = plan_launch(ticket(leads=1_000_000, within_minutes=60), settings(waf_requests_per_5_minutes_per_ip=300), PRICES)
    costs = {c.item: c for c in plan.costs}
    assert costs["API Gateway REST requests"].campaign_usd == pytest.approx(3.50)
    assert costs["SQS requests"].campaign_usd == pytest.approx(1.2 * 0.40)
    assert costs["WAF web ACL, one rate rule, requests"].month_usd == pytest.approx(0.60 + 5 + 1)
    assert costs["TOTAL"].campaign_usd == pytest.approx(sum(c.campaign_usd for c in plan.costs[:-1]), abs=0.01)


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

    base = ["plan", "--campaign", "X", "--leads", "60000", "--within-minutes", "10", "--store-ms-per-batch", "80", "--json"]
    settings = settings_from_file("dev")
    assert leadpipe(base) == 0
    assert json.loads(capsys.readouterr().out)["drain_rate_per_s"] == pytest.approx(settings.max_concurrency * settings.batch_size / 0.1)
    assert leadpipe([*base, "--event-source-ms-per-batch", "120"]) == 0
    assert json.loads(capsys.readouterr().out)["drain_rate_per_s"] == pytest.approx(settings.max_concurrency * settings.batch_size / 0.2)
    assert leadpipe([*base, "--event-source-ms-per-batch", "-1"]) == 2
    assert "cannot be negative" in capsys.readouterr().err

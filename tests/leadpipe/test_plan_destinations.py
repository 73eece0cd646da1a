"""The launch review's event destinations: lag behind the database, when it clears, warnings, costs."""

from __future__ import annotations

import pytest

from infra.config import settings_from_file
from infra.destinations import EventDestination
from leadpipe.plan_destinations import destination_lag, duration, events_campaign_costs, review_destinations

PRICES = {
    "eventbridge_custom_events_per_million": 1.0,
    "eventbridge_api_destination_invocations_per_million": 0.2,
    "sqs_standard_per_million_requests": 0.4,
}


def crm(**overrides: object) -> EventDestination:
    return EventDestination.model_validate(
        {"name": "hubspot", "url": "https://api.hsforms.com/x", "invocation_rate_per_second": 5, **overrides}
    )


def test_a_destination_slower_than_the_store_lags_and_catches_up_after_the_peak() -> None:
    # Given 30,000 leads stored at 50/s over a 10-minute arrival window (the queue drains after it), HubSpot at 5/s
    lag = destination_lag(crm(), "SUMMERSALE20", 30_000, 50, 600)

    # Then the last lead is stored at 600 s and delivered at 6,000 s: 1 h 30 min behind, caught up 1 h 30 min after
    assert lag.lag_at_peak_seconds == pytest.approx(5_400)
    assert lag.caught_up_after_peak_seconds == pytest.approx(5_400)
    assert lag.sentence() == (
        "hubspot lags 1 h 30 min behind the database at the peak and catches up 1 h 30 min after it (5/s)"
    )
    # And it is over the 60-minute lag setting: the review warns, naming the setting
    assert "over its max_lag_minutes (60)" in lag.warning


def test_when_the_store_is_the_bottleneck_the_catch_up_counts_from_the_end_of_arrivals() -> None:
    # 12,000 leads arrive in 60 s but are stored at 100/s (120 s); the CRM takes 10/s (1,200 s)
    lag = destination_lag(crm(invocation_rate_per_second=10), "X", 12_000, 100, 60)
    assert (lag.lag_at_peak_seconds, lag.caught_up_after_peak_seconds) == (pytest.approx(1_080), pytest.approx(1_140))


def test_a_destination_as_fast_as_the_store_never_lags() -> None:
    lag = destination_lag(crm(invocation_rate_per_second=50), "X", 30_000, 50, 600)
    assert (lag.lag_at_peak_seconds, lag.warning) == (0, None)
    assert lag.sentence() == "hubspot keeps up at 50/s: no lag behind the database"


def test_events_older_than_the_retry_window_would_be_dead_lettered() -> None:
    # 1 million leads at 1/s: the last waits about 11.5 days, far past EventBridge's 24 h at most
    lag = destination_lag(crm(invocation_rate_per_second=1), "X", 1_000_000, 500, 600)
    assert lag.warning.startswith("HUBSPOT WOULD DEAD-LETTER EVENTS")


def test_a_destination_filtered_to_other_campaigns_does_not_lag_for_this_one() -> None:
    lag = destination_lag(crm(campaigns=["winter"]), "summersale20", 30_000, 50, 600)
    assert (lag.receives_campaign, lag.lag_at_peak_seconds) == (False, 0)


def test_costs_count_one_event_per_lead_and_one_invocation_per_receiving_destination() -> None:
    settings = settings_from_file("dev")  # the shipped examples: a CRM and Slack, both for every campaign
    lines = dict(events_campaign_costs(settings, "X", 1_000_000, PRICES))
    assert lines["EventBridge custom events (one LeadStored per stored lead)"] == pytest.approx(1.0)
    assert lines["EventBridge API destination invocations (2 destination(s))"] == pytest.approx(0.4)


def test_no_events_no_review() -> None:
    settings = settings_from_file("prod")
    assert (
        review_destinations(settings, "X", 1_000, 10, 60) == []
        and events_campaign_costs(settings, "X", 1, PRICES) == []
    )


def test_durations_read_as_a_person_writes_them() -> None:
    assert [duration(s) for s in (12, 2_460, 7_800)] == ["12 s", "41 min", "2 h 10 min"]

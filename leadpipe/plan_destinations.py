"""The launch review's downstream part: how far each event destination lags behind the database, and what events cost.

Pure arithmetic, as plan.py. The worker stores the peak's accepted leads at `stored_rate` (the
accepted rate, or the drain rate when the queue backs up) and publishes each one as it commits;
an API destination delivers at most `invocation_rate_per_second`, so when that is slower its own
backlog grows until the last lead is stored, and drains after. EventBridge keeps the waiting events
under the target's retry policy: one that waits longer than `max_event_age_hours` goes to the DLQ
(https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ApiDestination.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.config import PipelineSettings
from infra.destinations import EventDestination

# One alarm per destination DLQ, plus the hand-off queue's DLQ, its age, and EventsNotHandedOff.
EVENTS_LANE_ALARMS = 3


@dataclass
class DestinationLag:
    """One destination in the launch review."""

    name: str
    rate_per_s: float
    receives_campaign: bool
    lag_at_peak_seconds: float  # how far its deliveries trail the database when the last lead is stored
    caught_up_after_peak_seconds: float  # from the end of the arrival window until its last delivery
    max_lag_minutes: int
    warning: str | None = None

    def sentence(self) -> str:
        if not self.receives_campaign:
            return f"{self.name} does not receive this campaign (campaigns filter)"
        if self.lag_at_peak_seconds <= 0:
            return f"{self.name} keeps up at {self.rate_per_s:g}/s: no lag behind the database"
        return (
            f"{self.name} lags {duration(self.lag_at_peak_seconds)} behind the database at the peak and catches up "
            f"{duration(self.caught_up_after_peak_seconds)} after it ({self.rate_per_s:g}/s)"
        )


def duration(seconds: float) -> str:
    """'41 min', '2 h 10 min', '12 s'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def destination_lag(
    destination: EventDestination, campaign: str, accepted_leads: float, stored_rate: float, arrival_seconds: float
) -> DestinationLag:
    """The lag of one destination for a peak of `accepted_leads` stored at `stored_rate` from the peak's start."""
    receives = not destination.campaigns or campaign.strip().upper() in destination.campaigns
    rate = float(destination.invocation_rate_per_second)
    lag = caught_up = 0.0
    if receives and accepted_leads > 0 and stored_rate > rate:
        stored_until = accepted_leads / stored_rate
        delivered_until = accepted_leads / rate
        lag = delivered_until - stored_until
        caught_up = max(0.0, delivered_until - arrival_seconds)
    result = DestinationLag(destination.name, rate, receives, lag, caught_up, destination.max_lag_minutes)
    if lag > destination.max_event_age_seconds:
        result.warning = (
            f"{destination.name.upper()} WOULD DEAD-LETTER EVENTS: they wait up to {duration(lag)}, longer than its "
            f"max_event_age_hours ({destination.max_event_age_hours}); raise invocation_rate_per_second (ask the "
            "endpoint's owner) or plan a redrive."
        )
    elif lag > destination.max_lag_minutes * 60:
        result.warning = f"{result.sentence()}: over its max_lag_minutes ({destination.max_lag_minutes})."
    return result


def review_destinations(
    settings: PipelineSettings, campaign: str, accepted_leads: float, stored_rate: float, arrival_seconds: float
) -> list[DestinationLag]:
    if not settings.events_enabled:
        return []
    return [
        destination_lag(d, campaign, accepted_leads, stored_rate, arrival_seconds) for d in settings.event_destinations
    ]


def events_campaign_costs(
    settings: PipelineSettings, campaign: str, accepted: float, prices: dict[str, Any]
) -> list[tuple[str, float]]:
    """(item, USD) for the campaign's events: one custom event per stored lead, one invocation per destination."""
    if not settings.events_enabled:
        return []
    per_million = 1_000_000
    receiving = [d for d in settings.event_destinations if not d.campaigns or campaign.strip().upper() in d.campaigns]
    invocations = accepted * len(receiving)
    return [
        (
            "EventBridge custom events (one LeadStored per stored lead)",
            accepted / per_million * prices["eventbridge_custom_events_per_million"],
        ),
        (
            f"EventBridge API destination invocations ({len(receiving)} destination(s))",
            invocations / per_million * prices["eventbridge_api_destination_invocations_per_million"],
        ),
        (
            "Destination DLQs, at most (every invocation failing: one SQS request each)",
            invocations / per_million * prices["sqs_standard_per_million_requests"],
        ),
    ]


def events_fixed_costs(settings: PipelineSettings, prices: dict[str, Any]) -> list[tuple[str, float]]:
    if not settings.events_enabled:
        return []
    alarms = EVENTS_LANE_ALARMS + len(settings.event_destinations)
    return [
        (f"CloudWatch: {alarms} events-lane alarms (DLQs, hand-off)", alarms * prices["cloudwatch_alarm_per_month"])
    ]


def to_markdown(destinations: list[DestinationLag]) -> list[str]:
    if not destinations:
        return []
    return [
        "### Event destinations (EventBridge API destinations)",
        "",
        "| destination | rate | lag behind the database at the peak | caught up after the peak | |",
        "| --- | ---: | ---: | ---: | --- |",
        *[
            f"| {d.name} | {d.rate_per_s:g}/s | {duration(d.lag_at_peak_seconds) if d.receives_campaign else '-'} | "
            f"{duration(d.caught_up_after_peak_seconds) if d.receives_campaign else '-'} | {d.sentence()} |"
            for d in destinations
        ],
        "",
    ]

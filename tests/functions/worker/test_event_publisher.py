"""PutEvents partial failures, a failed call, and the hand-off: what the worker does with each.

A double of the events client stands in where moto cannot fail on cue: EventBridge answers a
request with `FailedEntryCount` and an `ErrorCode` on each entry it did not take, in the order of
the request (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from functions.worker.event_publisher import (
    TIME_NEEDED_FOR_PUT_EVENTS_SECONDS,
    EventBusPublisher,
    HandOffQueue,
    LeadStoredPublisher,
)
from tests.conftest import TEST_REGION
from tests.moto_mock import mock_aws


def entries(count: int) -> list[dict[str, Any]]:
    return [
        {
            "Source": "leadpipe",
            "DetailType": "LeadStored",
            "Detail": json.dumps({"lead_id": f"L{i}"}),
            "EventBusName": "b",
        }
        for i in range(count)
    ]


class ScriptedEvents:
    """Answers each PutEvents from a script: 'ok', a set of indexes to fail, or an exception to raise."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, Exception):
            raise step
        failing = set() if step == "ok" else step
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"} if i in failing else {"EventId": f"e{i}"}
            for i in range(len(Entries))
        ]
        return {"FailedEntryCount": len(failing & set(range(len(Entries)))), "Entries": results}


def lead_ids(sent: list[dict[str, Any]]) -> list[str]:
    return [json.loads(e["Detail"])["lead_id"] for e in sent]


def test_failed_entries_are_sent_again_and_only_they() -> None:
    # Given EventBridge failing entries 1 and 3 of a request, then taking them
    events = ScriptedEvents({1, 3}, "ok")

    # When five entries are published
    failed, reason = EventBusPublisher(events).put_events(entries(5))

    # Then the second call carried exactly the two failed entries, and nothing is left over
    assert lead_ids(events.calls[1]) == ["L1", "L3"]
    assert (failed, reason) == ([], "InternalFailure")


def test_entries_failed_twice_are_given_back() -> None:
    events = ScriptedEvents({0}, {0})
    failed, reason = EventBusPublisher(events).put_events(entries(3))
    assert lead_ids(failed) == ["L0"] and reason == "InternalFailure"


def test_a_failed_call_gives_back_everything_not_yet_sent_and_pauses_the_calls() -> None:
    # Given 25 entries (three requests) and EventBridge failing the second request's call
    clock = [100.0]
    events = ScriptedEvents("ok", EndpointConnectionError(endpoint_url="https://events"))
    publisher = EventBusPublisher(events, pause_seconds=30, clock=lambda: clock[0])

    # When they are published
    failed, reason = publisher.put_events(entries(25))

    # Then the first ten went, the other fifteen are given back, and no third call was made
    assert len(events.calls) == 2 and lead_ids(failed) == [f"L{i}" for i in range(10, 25)]
    assert reason == "EndpointConnectionError"

    # When the next batch comes within the pause: no call at all (the drain does not wait on EventBridge)
    clock[0] += 29
    failed, reason = publisher.put_events(entries(2))
    assert len(events.calls) == 2 and len(failed) == 2 and reason == "PutEventsPaused"

    # When the pause is over, EventBridge is tried again
    clock[0] += 2
    assert publisher.put_events(entries(2)) == ([], None) and len(events.calls) == 3


@pytest.fixture
def sqs() -> Any:
    with mock_aws():
        yield boto3.client("sqs", region_name=TEST_REGION)


def test_what_eventbridge_did_not_take_is_handed_off_whole(sqs: Any) -> None:
    # Given the hand-off queue and EventBridge failing two entries twice
    url = sqs.create_queue(QueueName="hand-off")["QueueUrl"]
    publisher = LeadStoredPublisher(EventBusPublisher(ScriptedEvents({2, 4}, {0, 1})), HandOffQueue(sqs, url))

    # When a batch's events are published
    outcome = publisher.publish(entries(6))

    # Then four went to the bus and the two others wait in the queue, each message one PutEvents entry
    assert (outcome.published, outcome.handed_off, outcome.not_handed_off) == (4, 2, [])
    queued = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(json.loads(m["Body"])["Detail"] for m in queued) == sorted(
        e["Detail"] for e in entries(6) if json.loads(e["Detail"])["lead_id"] in {"L2", "L4"}
    )


def test_what_neither_took_is_named_by_lead_id(sqs: Any) -> None:
    publisher = LeadStoredPublisher(
        EventBusPublisher(ScriptedEvents(EndpointConnectionError(endpoint_url="https://events"))),
        HandOffQueue(sqs, "https://sqs.eu-west-1.amazonaws.com/123456789012/missing"),
    )
    outcome = publisher.publish(entries(3))
    assert (outcome.published, outcome.handed_off, outcome.not_handed_off) == (0, 0, ["L0", "L1", "L2"])


def test_no_call_starts_that_the_invocations_end_could_cut_and_the_next_batch_tries_again() -> None:
    # Given an invocation with less time left than one failing call may take (its timeouts and its retry)
    events = ScriptedEvents()
    publisher = EventBusPublisher(events)

    # When 12 entries are published
    failed, reason = publisher.put_events(entries(12), time_left=lambda: TIME_NEEDED_FOR_PUT_EVENTS_SECONDS - 0.5)

    # Then no call was made and every entry is given back for the hand-off queue
    assert events.calls == [] and lead_ids(failed) == [f"L{i}" for i in range(12)]
    assert reason == "NoTimeForPutEvents"

    # When the next invocation has time: EventBridge is tried (a short invocation is no outage: no pause)
    assert publisher.put_events(entries(2), time_left=lambda: 30.0) == ([], None) and len(events.calls) == 1

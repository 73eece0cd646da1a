"""The events lane's DLQs for on-call: list (masked), redrive to that destination only, purge.

A redriven event is LeadStoredRedrive with `redrive_to`, which only that destination's rule matches: its
pattern is an $or of every LeadStored and the redriven events named for it
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html). moto's
EventBridge evaluates the same pattern here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.destinations import EventDestination
from leadpipe.event_dead_letters import EventsDeadLetterQueue, erase_person_from, peek, purge, redrive
from tests.conftest import TEST_REGION
from tests.moto_mock import mock_aws

EVENT = {
    "source": "leadpipe",
    "detail-type": "LeadStored",
    "detail": {"lead_id": "L1", "campaign": "X", "lead": {"email": "jane@example.com"}},
}


pytestmark = pytest.mark.usefixtures("short_polling_sweeps")


@pytest.fixture
def lane() -> Iterator[dict[str, Any]]:
    """A bus with the crm and slack rules (their own patterns), each delivering to a queue; crm's DLQ with one event."""
    with mock_aws():
        sqs, events = boto3.client("sqs", region_name=TEST_REGION), boto3.client("events", region_name=TEST_REGION)
        events.create_event_bus(Name="leads")
        delivered = {}
        for name in ("crm", "slack"):
            url = sqs.create_queue(QueueName=f"{name}-delivery")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            pattern = EventDestination(
                name=name, url="https://x.example.com", invocation_rate_per_second=1
            ).event_pattern
            events.put_rule(Name=name, EventBusName="leads", EventPattern=json.dumps(pattern))
            events.put_targets(Rule=name, EventBusName="leads", Targets=[{"Id": "q", "Arn": arn}])
            delivered[name] = url
        dlq = sqs.create_queue(QueueName="crm-dead-letters")["QueueUrl"]
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=json.dumps(EVENT),
            MessageAttributes={
                "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"},
                "ERROR_MESSAGE": {"DataType": "String", "StringValue": "Unable to invoke ApiDestination endpoint"},
            },
        )
        queue = EventsDeadLetterQueue("crm's DLQ", sqs, dlq, "crm", events=events, bus_name="leads")
        yield {"queue": queue, "sqs": sqs, "delivered": delivered}


def bodies(sqs: Any, url: str) -> list[dict[str, Any]]:
    return [
        json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    ]


def test_list_shows_the_lead_masked_and_eventbridges_reason(lane: dict[str, Any]) -> None:
    [letter] = peek(lane["queue"], 10)
    assert (letter.lead_id, letter.campaign, letter.email) == ("L1", "X", "j***@example.com")
    assert letter.reason == "SDK_CLIENT_ERROR: Unable to invoke ApiDestination endpoint"
    assert len(peek(lane["queue"], 10)) == 1  # listing consumed nothing


def test_redrive_reaches_that_destination_only_and_empties_its_dlq(lane: dict[str, Any]) -> None:
    # When crm's dead letters are redriven
    assert redrive(lane["queue"]) == "put 1 event(s) back on the bus for crm"

    # Then crm's rule got the event again, slack's did not, and the DLQ is empty
    sqs = lane["sqs"]
    [again] = bodies(sqs, lane["delivered"]["crm"])
    assert again["detail-type"] == "LeadStoredRedrive" and again["detail"]["lead_id"] == "L1"
    assert again["detail"]["redrive_to"] == "crm"
    assert bodies(sqs, lane["delivered"]["slack"]) == []
    assert peek(lane["queue"], 10) == []


def test_purge_empties_the_dlq(lane: dict[str, Any]) -> None:
    purge(lane["queue"])
    assert peek(lane["queue"], 10) == []


def test_the_hand_off_dlq_is_listed_and_moved_back_to_the_hand_off_queue() -> None:
    with mock_aws():
        # Given the hand-off DLQ holding one PutEvents entry the relay never got onto the bus
        sqs = boto3.client("sqs", region_name=TEST_REGION)
        hand_off = sqs.create_queue(QueueName="hand-off")["QueueUrl"]
        dlq = sqs.create_queue(QueueName="hand-off-dlq")["QueueUrl"]
        entry = {
            "Source": "leadpipe",
            "DetailType": "LeadStored",
            "Detail": json.dumps(EVENT["detail"]),
            "EventBusName": "b",
        }
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(entry))
        queue = EventsDeadLetterQueue("the hand-off DLQ", sqs, dlq, None, hand_off_url=hand_off)

        # When on-call lists it, then redrives it
        [letter] = peek(queue, 10)
        said = redrive(queue)

        # Then the lead shows masked, and the entry is back in the hand-off queue for the relay, unchanged
        assert (letter.lead_id, letter.email) == ("L1", "j***@example.com")
        assert said == "moved 1 event(s) back to the events hand-off queue"
        assert bodies(sqs, hand_off) == [entry] and peek(queue, 10) == []


def test_erasure_deletes_the_persons_events_and_keeps_the_others(lane: dict[str, Any]) -> None:
    # Given crm's DLQ holding jane's event (the fixture's) and bob's
    queue = lane["queue"]
    bob = {**EVENT, "detail": {"lead_id": "L2", "campaign": "X", "lead": {"email": "bob@example.com"}}}
    lane["sqs"].send_message(QueueUrl=queue.url, MessageBody=json.dumps(bob))

    # When jane is erased from it
    removed = erase_person_from(queue, "jane@example.com")

    # Then her event is gone, bob's is still there and visible
    assert removed == 1
    assert [letter.lead_id for letter in peek(queue, 10)] == ["L2"]

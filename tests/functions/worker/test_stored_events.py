"""LeadStored events from the worker, against a real PostgreSQL and moto's EventBridge and SQS.

Rows exactly once, events at least once (docs/design.md): an event for every lead the batch stored,
again for a redelivered batch, none for a batch that failed, and an EventBridge outage after the
commit neither fails a stored lead's record (so nothing reaches the leads DLQ) nor loses its event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from functions.worker import event_relay_handler
from functions.worker import handler as worker
from functions.worker.lead_events import EVENT_SOURCE, LEAD_STORED
from leadpipe.erasure import erase_person
from tests.conftest import TEST_REGION, FakeLambdaContext, LeadsDatabase
from tests.events import sqs_record
from tests.functions.worker.conftest import make_envelope
from tests.moto_mock import mock_aws

BUS = "leadpipe-test-leads"


@contextmanager
def eventbridge_unreachable() -> Iterator[list[str]]:
    """Every PutEvents of a client made meanwhile fails as an unreachable endpoint does (botocore's own
    error, raised by a hook on the session's public event system before the request goes out).
    Yields the list of calls tried."""
    calls: list[str] = []

    def unreachable(**_: Any) -> None:
        calls.append("PutEvents")
        raise EndpointConnectionError(endpoint_url="https://events.eu-west-1.amazonaws.com")

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-call.events.PutEvents", unreachable)
    try:
        yield calls
    finally:
        boto3.DEFAULT_SESSION.events.unregister("before-call.events.PutEvents", unreachable)


@dataclass
class EventsWorld:
    """The bus with a rule that copies every LeadStored event to `capture_url`; the leads queue with its
    DLQ after one receive (the strictest redrive); the hand-off queue."""

    sqs: Any
    capture_url: str
    leads_url: str
    dead_letters_url: str
    hand_off_url: str

    def messages_in(self, url: str) -> int:
        """Visible and in flight: a record the worker failed stays in flight until its visibility ends."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes[name]) for name in names)

    def captured(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in drain(self.sqs, self.capture_url)]


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message of a queue, received and deleted."""
    out: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages"):
        out.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    return out


@pytest.fixture
def events_world(leads_db: LeadsDatabase, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventsWorld]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=TEST_REGION)
        events = boto3.client("events", region_name=TEST_REGION)
        capture_url = sqs.create_queue(QueueName="capture")["QueueUrl"]
        capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.create_event_bus(Name=BUS)
        pattern = {"source": [EVENT_SOURCE], "detail-type": [LEAD_STORED]}
        events.put_rule(Name="capture", EventBusName=BUS, EventPattern=json.dumps(pattern))
        events.put_targets(Rule="capture", EventBusName=BUS, Targets=[{"Id": "capture", "Arn": capture_arn}])
        dead_letters_url = sqs.create_queue(QueueName="leads-dlq")["QueueUrl"]
        dead_letters_arn = sqs.get_queue_attributes(QueueUrl=dead_letters_url, AttributeNames=["QueueArn"])
        redrive = {"deadLetterTargetArn": dead_letters_arn["Attributes"]["QueueArn"], "maxReceiveCount": "1"}
        leads_url = sqs.create_queue(
            QueueName="leads", Attributes={"RedrivePolicy": json.dumps(redrive), "VisibilityTimeout": "30"}
        )["QueueUrl"]
        hand_off_url = sqs.create_queue(QueueName="events-hand-off")["QueueUrl"]
        monkeypatch.setenv("DATABASE_URL", leads_db.uri)
        monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
        monkeypatch.setenv("EVENT_BUS_NAME", BUS)
        monkeypatch.setenv("EVENTS_HAND_OFF_QUEUE_URL", hand_off_url)
        event_relay_handler.reset_for_tests()
        yield EventsWorld(sqs, capture_url, leads_url, dead_letters_url, hand_off_url)
        event_relay_handler.reset_for_tests()


def deliver(world: EventsWorld, bodies: list[str]) -> dict[str, Any]:
    """What the SQS event source does: receive the queued leads, invoke the worker, delete what succeeded."""
    for body in bodies:
        world.sqs.send_message(QueueUrl=world.leads_url, MessageBody=body)
    messages = []
    while batch := world.sqs.receive_message(
        QueueUrl=world.leads_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    ).get("Messages"):
        messages.extend(batch)
    event = {"Records": [sqs_record(m["MessageId"], m["Body"]) for m in messages]}
    for record, message in zip(event["Records"], messages, strict=True):
        record["receiptHandle"] = message["ReceiptHandle"]
    answer = worker.lambda_handler(event, FakeLambdaContext())
    failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
    done = [m for m in messages if m["MessageId"] not in failed]
    for start in range(0, len(done), 10):
        world.sqs.delete_message_batch(
            QueueUrl=world.leads_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ],
        )
    return answer


def stored_at_in_table(leads_db: LeadsDatabase) -> dict[str, datetime]:
    with leads_db.connect() as connection:
        return dict(connection.execute(f"SELECT lead_id::text, stored_at FROM {leads_db.leads_table}").fetchall())


def test_every_inserted_lead_gets_one_event_with_its_fields(events_world: EventsWorld, leads_db: LeadsDatabase) -> None:
    # Given three new leads of a campaign
    envelopes = [make_envelope(f"p{i}@example.com", campaign="summersale20", first_name=f"P{i}") for i in range(3)]

    # When the worker stores their batch
    answer = deliver(events_world, [e.to_message_body() for e in envelopes])

    # Then every record succeeded, and the bus carried one LeadStored event per lead, with the lead's fields
    assert answer == {"batchItemFailures": []}
    events = events_world.captured()
    assert sorted(e["detail"]["lead_id"] for e in events) == sorted(str(e.lead_id) for e in envelopes)
    by_id = {e["detail"]["lead_id"]: e for e in events}
    for envelope in envelopes:
        event = by_id[str(envelope.lead_id)]
        assert (event["source"], event["detail-type"]) == (EVENT_SOURCE, LEAD_STORED)
        detail = event["detail"]
        assert detail["campaign"] == "SUMMERSALE20"
        assert detail["headline"] == "New lead for SUMMERSALE20"
        assert detail["lead"]["email"] == envelope.lead.email
        assert detail["lead"]["first_name"] == envelope.lead.first_name
        assert datetime.fromisoformat(detail["received_at"]) == envelope.received_at
        assert datetime.fromisoformat(detail["stored_at"]) >= envelope.received_at
    # And nothing went to the hand-off queue
    assert drain(events_world.sqs, events_world.hand_off_url) == []


def test_a_redelivered_batch_publishes_its_events_again_with_the_rows_stored_at(
    events_world: EventsWorld, leads_db: LeadsDatabase
) -> None:
    # Given a batch already stored and published
    bodies = [make_envelope(f"r{i}@example.com").to_message_body() for i in range(3)]
    deliver(events_world, bodies)
    first = events_world.captured()

    # When SQS delivers the same batch again
    answer = deliver(events_world, bodies)

    # Then no second row, but every event again, carrying the stored_at of the row that is there
    assert answer == {"batchItemFailures": []}
    assert leads_db.count_rows() == 3
    again = events_world.captured()
    assert sorted(e["detail"]["lead_id"] for e in again) == sorted(e["detail"]["lead_id"] for e in first)
    stored_at = stored_at_in_table(leads_db)
    assert {e["detail"]["lead_id"]: datetime.fromisoformat(e["detail"]["stored_at"]) for e in again} == stored_at
    # And a consumer's dedupe by lead_id leaves one lead each
    assert len({e["detail"]["lead_id"] for e in first + again}) == 3


def test_a_lead_erased_before_its_redelivery_has_no_event(events_world: EventsWorld, leads_db: LeadsDatabase) -> None:
    # Given a stored lead whose person was then erased, and another lead of the same batch
    erased, kept = make_envelope("gone@example.com"), make_envelope("kept@example.com")
    bodies = [erased.to_message_body(), kept.to_message_body()]
    deliver(events_world, bodies)
    events_world.captured()
    erase_person(leads_db.uri, leads_db.leads_table, "gone@example.com")

    # When the batch is delivered again
    deliver(events_world, bodies)

    # Then only the lead that still has a row is published: no event for an erased person
    assert [e["detail"]["lead_id"] for e in events_world.captured()] == [str(kept.lead_id)]


def test_a_batch_that_failed_publishes_nothing(events_world: EventsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a database nobody answers at
    monkeypatch.setenv("DATABASE_URL", "postgresql://leadpipe@127.0.0.1:9/leads?connect_timeout=1")
    bodies = [make_envelope(f"f{i}@example.com").to_message_body() for i in range(2)]

    # When the worker tries the batch
    answer = deliver(events_world, bodies)

    # Then every record fails, and no event was published or handed off
    assert len(answer["batchItemFailures"]) == 2
    assert events_world.captured() == []
    assert drain(events_world.sqs, events_world.hand_off_url) == []


def test_eventbridge_failing_after_the_commit_costs_no_lead_and_no_event(
    events_world: EventsWorld, leads_db: LeadsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given EventBridge unreachable, and a leads queue that sends a record to its DLQ after ONE receive
    envelopes = [make_envelope(f"o{i}@example.com") for i in range(12)]

    # When the worker stores the batch, and the next one
    with eventbridge_unreachable() as calls:
        answer = deliver(events_world, [e.to_message_body() for e in envelopes[:10]])
        next_answer = deliver(events_world, [e.to_message_body() for e in envelopes[10:]])

    # Then every record succeeded: the rows are committed, no record is left, none reaches the leads DLQ
    assert answer == next_answer == {"batchItemFailures": []}
    assert leads_db.count_rows() == 12
    # And the drain did not wait on EventBridge: one failed call, then the next batch went straight to the queue
    assert calls == ["PutEvents"]
    assert events_world.messages_in(events_world.leads_url) == 0
    assert events_world.messages_in(events_world.dead_letters_url) == 0
    assert events_world.captured() == []

    # When EventBridge is back and the relay drains the hand-off queue
    handed_off = drain(events_world.sqs, events_world.hand_off_url)
    relayed = event_relay_handler.relay(
        {"Records": [sqs_record(m["MessageId"], m["Body"]) for m in handed_off]}, event_relay_handler.get_bus()
    )

    # Then every stored lead's event is on the bus
    assert relayed == {"batchItemFailures": []}
    assert sorted(e["detail"]["lead_id"] for e in events_world.captured()) == sorted(str(e.lead_id) for e in envelopes)


def test_with_eventbridge_and_the_hand_off_queue_both_away_the_records_come_back_and_republish(
    events_world: EventsWorld, leads_db: LeadsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given EventBridge unreachable and the hand-off queue gone too
    monkeypatch.setenv("EVENTS_HAND_OFF_QUEUE_URL", events_world.hand_off_url.replace("events-hand-off", "missing"))
    bodies = [make_envelope(f"b{i}@example.com").to_message_body() for i in range(2)]
    records = [sqs_record(f"m{i}", body) for i, body in enumerate(bodies)]

    # When the worker stores the batch
    with eventbridge_unreachable():
        answer = worker.lambda_handler({"Records": records}, FakeLambdaContext())

    # Then the rows are stored, and both records come back (the event must not be lost)
    assert leads_db.count_rows() == 2
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}

    # When SQS delivers them again to a new execution environment, with EventBridge back
    worker.reset_for_tests()
    again = worker.lambda_handler({"Records": records}, FakeLambdaContext())

    # Then no second row, and both events are published
    assert again == {"batchItemFailures": []}
    assert leads_db.count_rows() == 2
    assert len(events_world.captured()) == 2


@dataclass
class AlmostOutOfTime(FakeLambdaContext):
    """An invocation whose store left it less time than one failing PutEvents call may take."""

    remaining_millis: int = 4_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


def test_a_store_that_left_too_little_time_hands_the_events_off_without_trying_eventbridge(
    events_world: EventsWorld, leads_db: LeadsDatabase
) -> None:
    # Given EventBridge unreachable (each try of the call may wait out its connect timeout) and an invocation
    # with 4 s left after the store: less than one failing PutEvents call may take with the worker's client.
    # Lambda ending the invocation there would send the whole batch back, stored records included, each
    # receive counting towards the leads DLQ (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html)
    envelopes = [make_envelope(f"t{i}@example.com") for i in range(3)]
    records = [sqs_record(f"t{i}", e.to_message_body()) for i, e in enumerate(envelopes)]
    worker.reset_for_tests()

    # When the worker stores the batch
    with eventbridge_unreachable() as calls:
        answer = worker.lambda_handler({"Records": records}, AlmostOutOfTime())

    # Then EventBridge was not tried: every event went to the hand-off queue, and every record succeeded
    assert calls == []
    assert answer == {"batchItemFailures": []}
    assert leads_db.count_rows() == 3
    handed_off = [
        json.loads(json.loads(m["Body"])["Detail"])["lead_id"]
        for m in drain(events_world.sqs, events_world.hand_off_url)
    ]
    assert sorted(handed_off) == sorted(str(e.lead_id) for e in envelopes)

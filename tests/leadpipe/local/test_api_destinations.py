"""The local API destination: EventBridge's body, retry and dead-letter rules, and a rate it never exceeds.

AWS's rules, which the stand-in follows: a 2xx is delivered; 401, 407, 409, 429 and 5xx (and timeouts) are
retried under the target's retry policy, then dead-lettered; any other status is not retried
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-api-destinations.html).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.destinations import EventDestination
from leadpipe.local.api_destinations import LocalApiDestination, RateLimit
from leadpipe.local.receiver import LocalReceiver
from tests.conftest import TEST_REGION
from tests.moto_mock import mock_aws

EVENT = {
    "source": "leadpipe",
    "detail-type": "LeadStored",
    "detail": {
        "lead_id": "L1",
        "campaign": "SUMMERSALE20",
        "headline": "New lead for SUMMERSALE20",
        "lead": {"email": "jane@example.com"},
    },
}


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name=TEST_REGION)


def wait(check: Any, seconds: float = 10) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)


def run_one_event(
    sqs: Any, destination: EventDestination, status_for: Any
) -> tuple[LocalReceiver, list[dict], LocalApiDestination]:
    """Put EVENT on the destination's delivery queue, let the sender run until it settles, return what happened."""
    receiver = LocalReceiver(answer=status_for).start()
    delivery = sqs.create_queue(QueueName="delivery", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    dead_letters = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    sqs.send_message(QueueUrl=delivery, MessageBody=json.dumps(EVENT))
    # Short polling, so stopping need not wait out a long poll; back-offs capped at 1 s, so a retry comes back soon.
    sender = LocalApiDestination(
        sqs,
        destination,
        delivery,
        dead_letters,
        f"{receiver.url}/{destination.name}",
        receive_wait_seconds=0,
        longest_back_off_seconds=1,
    )
    sender.start()
    wait(lambda: sender.stats.delivered or sender.stats.dead_lettered)
    sender.stop()
    receiver.stop()
    letters = sqs.receive_message(QueueUrl=dead_letters, MessageAttributeNames=["All"]).get("Messages", [])
    return receiver, letters, sender


def destination(**overrides: Any) -> EventDestination:
    return EventDestination.model_validate(
        {"name": "crm", "url": "https://crm.example.com/x", "invocation_rate_per_second": 5, **overrides}
    )


def test_the_crm_gets_the_events_detail_as_json(sqs: Any) -> None:
    receiver, letters, _ = run_one_event(sqs, destination(), lambda _: 200)
    [request] = receiver.snapshot()
    assert (request.path, request.json(), letters) == ("/crm", EVENT["detail"], [])


def test_slack_gets_the_headline_without_the_address(sqs: Any) -> None:
    slack = destination(name="slack", body="slack_text")
    receiver, _, _ = run_one_event(sqs, slack, lambda _: 200)
    assert [r.json() for r in receiver.snapshot()] == [{"text": "New lead for SUMMERSALE20"}]


def test_slack_shows_the_address_only_when_the_team_opts_in(sqs: Any) -> None:
    slack = destination(name="slack", body="slack_text", include_email=True)
    receiver, _, _ = run_one_event(sqs, slack, lambda _: 200)
    assert [r.json() for r in receiver.snapshot()] == [
        {"text": "New lead for SUMMERSALE20", "attachments": [{"text": "jane@example.com"}]}
    ]


def test_a_status_eventbridge_does_not_retry_is_dead_lettered_at_once(sqs: Any) -> None:
    receiver, letters, _ = run_one_event(sqs, destination(), lambda _: 400)
    assert len(receiver.snapshot()) == 1
    [letter] = letters
    assert json.loads(letter["Body"]) == EVENT
    assert letter["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "HTTP 400"


def test_a_retried_status_is_retried_until_retry_attempts_then_dead_lettered(sqs: Any) -> None:
    # retry_attempts 0: the first failure is the last attempt
    receiver, letters, sender = run_one_event(sqs, destination(retry_attempts=0), lambda _: 503)
    assert len(receiver.snapshot()) == 1 and len(letters) == 1 and sender.stats.delivered == 0


def test_a_retried_status_comes_back_after_a_back_off(sqs: Any) -> None:
    # A 429 then 200: delivered on the second attempt (after the back-off, here capped at 1 s)
    answers = iter([429, 200])
    receiver, letters, sender = run_one_event(sqs, destination(), lambda _: next(answers))
    assert (len(receiver.snapshot()), letters, sender.stats.retried, sender.stats.delivered) == (2, [], 1, 1)


def test_the_rate_limit_waits_for_the_answer_a_full_second_back() -> None:
    # Given a limit of 2 per second whose last two answers came at 10.0 and 10.4
    now = [10.0]
    limit = RateLimit(2, clock=lambda: now[0])
    limit.answered()
    now[0] = 10.4
    limit.answered()

    class Stopping:
        waited: list[float] = []

        def wait(self, seconds: float) -> bool:
            self.waited.append(round(seconds, 6))
            now[0] += seconds
            return False

        def is_set(self) -> bool:
            return False

    # When the next request asks to start at 10.5
    now[0] = 10.5
    stopping = Stopping()
    assert limit.wait(stopping)

    # Then it waited until 11.0: one second after the answer two requests back
    assert stopping.waited == [0.5]

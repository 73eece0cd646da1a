"""The relay's own time: one PutEvents call, all its attempts included, ends inside the relay's invocation."""

from __future__ import annotations

from botocore.config import Config

from functions.worker.event_relay_handler import RELAY_CLIENT_CONFIG, RELAY_TIMEOUT_SECONDS
from functions.worker.round_trip_deadline import RESPONSE_RESERVE_SECONDS


def longest_call_seconds(config: Config) -> float:
    """Every attempt waiting out its connect and read timeouts, and the standard retry mode's back-off
    between them (at most 2^(n-1) s before the n-th retry,
    https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html)."""
    attempts = config.retries["total_max_attempts"]
    back_off = sum(2 ** (retry - 1) for retry in range(1, attempts))
    return attempts * (config.connect_timeout + config.read_timeout) + back_off


def test_a_hanging_eventbridge_lets_the_relay_answer_its_batch() -> None:
    # Given EventBridge accepting connections but never answering, on every attempt of the relay's client
    longest = longest_call_seconds(RELAY_CLIENT_CONFIG)

    # Then the call gives up with time left to answer `batchItemFailures`: a relay that Lambda ends on its
    # timeout answers nothing, so its whole batch comes back, the entries EventBridge took included, each
    # receive counting towards the hand-off DLQ (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html)
    assert longest + RESPONSE_RESERVE_SECONDS <= RELAY_TIMEOUT_SECONDS

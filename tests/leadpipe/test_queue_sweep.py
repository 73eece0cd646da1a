"""The dead-letter sweeps as they run against AWS, not against moto.

AWS: a short poll (WaitTimeSeconds 0) asks only a subset of SQS's servers and may answer "empty" while messages
remain; a long poll asks all of them.
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html
"""

from __future__ import annotations

from typing import Any

from leadpipe.queue_sweep import delete_matching


class RecordingSqs:
    """An empty queue that records every receive's parameters."""

    def __init__(self) -> None:
        self.receives: list[dict[str, Any]] = []

    def receive_message(self, **parameters: Any) -> dict[str, Any]:
        self.receives.append(parameters)
        return {}


def test_a_sweep_ends_only_on_an_empty_long_poll() -> None:
    # Given a queue that answers "empty" (as a short poll may, while messages remain on other servers)
    sqs = RecordingSqs()
    # When a sweep deletes a person's messages, with the production settings (no test fixture shortens them)
    deleted = delete_matching(sqs, "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq", lambda body: True, 30)
    # Then the receive that ended it was a long poll: an erasure never stops on a short poll's false "empty"
    assert deleted == 0 and len(sqs.receives) == 1
    assert sqs.receives[0]["WaitTimeSeconds"] >= 1

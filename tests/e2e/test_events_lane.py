"""The events lane on the local runtime: a burst of stored leads reaches a destination at its rate, every one.

The count is `LEADPIPE_EVENTS_BURST_LEADS` (default 100: 5 s at 20/s; the full 2,000 take 100 s and are
run by hand, `LEADPIPE_EVENTS_BURST_LEADS=2000`). 100 is still a burst: queued at once, five times what one
second may carry, so without the limit they would reach the receiver within about a second and fail the bound.
The rate bound is an invariant of the local API destination, checked on the receiver's own clock: no one-second
window holds more than the rate's worth of requests.

AWS: an API destination's InvocationRateLimitPerSecond is the most invocations per second EventBridge sends it;
events over the rate wait and are retried (within its 24-hour retry window).
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_CreateApiDestination.html
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from functions.contract import Lead, LeadEnvelope, Source
from infra.config import settings_from_file
from infra.destinations import EventDestination
from leadpipe.local.receiver import LocalReceiver
from tests.e2e.conftest import RunningPipeline, leads_table_of_its_own, start_pipeline, wait_for

RATE = 20
BURST = int(os.environ.get("LEADPIPE_EVENTS_BURST_LEADS", "100"))

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[LocalReceiver]:
    receiver = LocalReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def crm_at_20_per_second(e2e_data_dir: Path, receiver: LocalReceiver, postgres_uri: str) -> Iterator[RunningPipeline]:
    """dev's settings (its own visibility timeout: a burst is not redelivered for nothing), one CRM at 20/s.
    One ingest environment: the burst goes straight onto the queue, the API takes no part in it. Its table is in
    a schema of its own on the session's PostgreSQL: the lane needs no database of its own."""
    crm = EventDestination(name="crm", url="https://crm.example.com/leads", invocation_rate_per_second=RATE)
    with leads_table_of_its_own(postgres_uri, "events-burst") as leads_table:
        settings = settings_from_file("dev").model_copy(
            update={"events_enabled": True, "event_destinations": [crm], "leads_table": leads_table}
        )
        running = start_pipeline(
            e2e_data_dir / "events-burst",
            settings,
            events=True,
            events_to=receiver.url,
            ingest_environments=1,
            database_url=postgres_uri,
        )
        yield running
        running.pipeline.stop(drain_seconds=0)


def most_in_any_second(times: list[float]) -> int:
    """The largest number of requests whose arrival falls within one second of each other."""
    times = sorted(times)
    most, start = 0, 0
    for end, arrived in enumerate(times):
        while arrived - times[start] > 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_a_burst_reaches_the_crm_whole_and_never_faster_than_its_rate(
    crm_at_20_per_second: RunningPipeline, receiver: LocalReceiver
) -> None:
    # Given a burst of leads in the queue at once
    running = crm_at_20_per_second
    envelopes = [
        LeadEnvelope(
            lead_id=uuid.uuid4(),
            received_at=datetime.now(UTC),
            source=Source(user_agent="pytest"),
            lead=Lead(email=f"burst{i}@example.com", campaign="SUMMERSALE20"),
        )
        for i in range(BURST)
    ]
    for start in range(0, BURST, 10):
        running.sqs.send_message_batch(
            QueueUrl=running.info.leads_queue_url,
            Entries=[
                {"Id": str(i), "MessageBody": e.to_message_body()} for i, e in enumerate(envelopes[start : start + 10])
            ],
        )

    # When the worker stores them and the local API destination delivers their events
    wanted = {str(e.lead_id) for e in envelopes}

    def delivered() -> set[str]:
        return {r.json()["lead_id"] for r in receiver.snapshot()}

    wait_for(lambda: delivered() >= wanted, timeout=BURST / RATE * 2 + 60, message=f"{BURST} leads at the receiver")

    # Then every lead was stored once and reached the CRM at least once: dedupe by lead_id leaves the burst exactly
    assert running.count() == BURST
    assert delivered() == wanted
    received = receiver.snapshot()
    assert all(r.path == "/crm" for r in received)
    # And never faster than the rate: no one-second window of the receiver's clock holds more than 20
    assert most_in_any_second([r.at for r in received]) <= RATE
    times = sorted(r.at for r in received)
    print(  # the figures for docs/performance.md (pytest -s)
        f"\nburst {BURST}: {len(received)} requests, {len(received) - BURST} repeats, "
        f"most in one second {most_in_any_second(times)}, {(times[-1] - times[0]):.1f} s first to last"
    )
    # And nothing was dead-lettered on the way
    lane = running.pipeline.events.info
    assert running.queue_attribute(running.info.dead_letter_queue_url, "ApproximateNumberOfMessages") == 0
    assert running.pipeline.events.destinations["crm"].stats.dead_lettered == 0
    assert lane.destination_dead_letter_urls.keys() == {"crm"}

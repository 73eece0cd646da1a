"""The running local API throttles like the stage: one token bucket across all its processes.

AWS: API Gateway throttles a stage with a token bucket (steady rate, burst = bucket size); requests
over it get 429 and never reach the integration.
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-throttling.html
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    RunningPipeline,
    e2e_settings,
    http_request,
    leads_table_of_its_own,
    start_pipeline,
    wait_for,
)

RATE_PER_SECOND, BURST = 0.5, 4


@pytest.fixture(scope="module")
def throttled_pipeline(e2e_data_dir: Path, postgres_uri: str) -> Iterator[RunningPipeline]:
    """Its table in a schema of its own on the session's PostgreSQL: the throttle needs no database of its own."""
    with leads_table_of_its_own(postgres_uri, "throttled") as leads_table:
        settings = e2e_settings().model_copy(
            update={"throttle_rate_per_second": RATE_PER_SECOND, "throttle_burst": BURST, "leads_table": leads_table}
        )
        running = start_pipeline(e2e_data_dir / "throttled", settings, database_url=postgres_uri)
        yield running
        running.pipeline.stop(drain_seconds=5)


def test_the_stage_bucket_is_shared_by_every_process(throttled_pipeline: RunningPipeline) -> None:
    # Given the local API (several processes on one socket) with a stage burst of 4 at 0.5 per second
    api = throttled_pipeline.info.api_url
    origin = throttled_pipeline.info.landing_page_url.rstrip("/")
    campaign = f"THR{uuid.uuid4().hex[:6]}".upper()
    answers: list[tuple[int, dict[str, str], bytes]] = []
    lock = threading.Lock()

    def send(count: int) -> None:
        for _ in range(count):
            body = json.dumps({"email": f"throttle-{uuid.uuid4().hex[:8]}@example.com", "campaign": campaign})
            answer = http_request(api, "POST", body, {"Content-Type": "application/json", "Origin": origin})
            with lock:
                answers.append((answer.status, answer.headers, answer.body))

    # When 4 clients send 10 leads each, at once
    started = time.monotonic()
    clients = [threading.Thread(target=send, args=(10,)) for _ in range(4)]
    for client in clients:
        client.start()
    for client in clients:
        client.join(120)
    elapsed = time.monotonic() - started
    # Then the stage let through its burst plus what refilled meanwhile: one bucket, not one per process
    accepted = [a for a in answers if a[0] == 202]
    throttled = [a for a in answers if a[0] == 429]
    assert len(answers) == 40 and len(accepted) + len(throttled) == 40
    assert BURST <= len(accepted) <= BURST + int(RATE_PER_SECOND * elapsed) + 1, (len(accepted), elapsed)
    # And each 429 is the stage's answer: project shape, Retry-After, CORS for the local page
    status, headers, body = throttled[0]
    assert json.loads(body)["error"]["code"] == "throttled"
    assert headers["retry-after"] == "1" and headers["access-control-allow-origin"] == origin
    # And only the accepted leads were queued and stored
    assert len(accepted) == len({json.loads(a[2])["lead_id"] for a in accepted})
    wait_for(
        lambda: throttled_pipeline.count("campaign = %s", (campaign,)) == len(accepted),
        timeout=60,
        message="the accepted leads stored",
    )

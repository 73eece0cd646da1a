"""The local runtime's drain governor under a synthetic competing load: it yields, the drain still stores, and it
takes the cap back once the load stops. No timing assertion: each step waits (a liveness limit) for the next."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from leadpipe.cli import main as leadpipe
from tests.e2e.conftest import RunningPipeline, http_request, wait_for

LIVENESS_SECONDS = 120
DECISION_SECONDS = 0.25


@pytest.fixture
def governor_deciding_quicker(local_pipeline: RunningPipeline) -> Iterator[RunningPipeline]:
    """The session pipeline, its governor deciding every 0.25 s during the test instead of every second: the same
    decisions, four times as often (the steps down to the floor and back up to the cap are what the test waits for)."""
    governor = local_pipeline.pipeline.drain_governor
    governor.interval_seconds, every_second = DECISION_SECONDS, governor.interval_seconds
    yield local_pipeline
    governor.interval_seconds = every_second


def governor_status(pipeline: RunningPipeline, capsys: pytest.CaptureFixture) -> dict:
    """What `leadpipe status --json` says of the governor."""
    capsys.readouterr()
    assert leadpipe(["status", "--json", "--data-dir", pipeline.info.data_dir]) == 0
    return json.loads(capsys.readouterr().out)["governor"]


def test_the_local_drain_yields_to_a_competing_load_keeps_storing_and_takes_the_cap_back(
    governor_deciding_quicker: RunningPipeline, capsys
) -> None:
    local_pipeline = governor_deciding_quicker
    cap = local_pipeline.pipeline.settings.max_concurrency
    floor = local_pipeline.pipeline.settings.governor_floor_writers
    # Given the local runtime (stage dev: governor on), its drain at the cap
    wait_for(lambda: governor_status(local_pipeline, capsys)["writers"] == cap, LIVENESS_SECONDS, "writers at the cap")
    stop = threading.Event()

    def main_app() -> None:
        with psycopg.connect(local_pipeline.info.database_url, autocommit=True, application_name="main-app") as db:
            while not stop.is_set():
                db.execute("SELECT pg_sleep(0.05)")

    sessions = [threading.Thread(target=main_app) for _ in range(3)]
    for session in sessions:
        session.start()
    try:
        # When another application keeps 3 sessions busy on the database
        wait_for(
            lambda: governor_status(local_pipeline, capsys)["writers"] == floor,
            LIVENESS_SECONDS,
            "writers at the floor",
        )
        # Then the governor is at its floor and says why, and a lead posted now is still stored (never starved)
        status = governor_status(local_pipeline, capsys)
        assert status["reason"].startswith("main application busy") and status["cap"] == cap
        email = f"governed-{uuid.uuid4().hex[:8]}@example.com"
        answer = http_request(
            local_pipeline.info.api_url, "POST", json.dumps({"email": email}), {"Content-Type": "application/json"}
        )
        assert answer.status == 202
        wait_for(lambda: local_pipeline.count("email = %s", (email,)) == 1, LIVENESS_SECONDS, "the lead stored")
    finally:
        stop.set()
        for session in sessions:
            session.join()
    # When the load stops  Then the writers climb back to the cap
    wait_for(lambda: governor_status(local_pipeline, capsys)["writers"] == cap, LIVENESS_SECONDS, "writers back")
    changes = governor_status(local_pipeline, capsys)["changes"]
    assert changes[-1]["writers"] == cap and changes[-1]["reason"].startswith("healthy")

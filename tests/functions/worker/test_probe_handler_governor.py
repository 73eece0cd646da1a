"""The probe function runs the drain governor after the breaker: moto for Lambda and SSM, a real PostgreSQL."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import boto3
import psycopg
import pytest

from functions.worker import probe_handler
from tests.conftest import TEST_REGION
from tests.events import emitted_metrics

RECORD = "/leadpipe/drain-governor"


def test_the_probe_lowers_the_mappings_concurrency_while_another_application_keeps_the_database_busy(
    deployed_mapping: Any, leads_db: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: Any, capsys
) -> None:
    # Given a governed stack (cap 4) and a healthy database on which another application keeps 3 sessions busy
    ssm = boto3.client("ssm", region_name=TEST_REGION)
    ssm.put_parameter(Name=RECORD, Value='{"writers": null}', Type="String")
    monkeypatch.setenv("GOVERNOR_RECORD_PARAMETER", RECORD)
    monkeypatch.setenv("MAX_CONCURRENCY", "4")
    monkeypatch.setenv("DATABASE_URL", leads_db.uri)
    monkeypatch.setenv("LEADS_TABLE", leads_db.leads_table)
    probe_handler.reset_for_tests()
    stop = threading.Event()

    def main_app() -> None:
        with psycopg.connect(leads_db.uri, autocommit=True, application_name="main-app") as connection:
            while not stop.is_set():
                connection.execute("SELECT pg_sleep(0.05)")

    sessions = [threading.Thread(target=main_app) for _ in range(3)]
    for session in sessions:
        session.start()
    try:
        # When the probe runs
        answer = probe_handler.lambda_handler({"detail-type": "Scheduled Event"}, lambda_context)
    finally:
        stop.set()
        for session in sessions:
            session.join()
    # Then the breaker keeps the drain running, and the governor halves the writers: MaximumConcurrency 2
    assert answer["state"] == "running"
    assert answer["governor"]["writers"] == 2.0 and answer["governor"]["mapping_concurrency"] == 2
    assert answer["governor"]["reason"].startswith("main application busy")
    mapping_id = os.environ["EVENT_SOURCE_MAPPING_ID"]
    mapping = boto3.client("lambda", region_name=TEST_REGION).get_event_source_mapping(UUID=mapping_id)
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    # And the record says why, for `leadpipe status --stack`, and the dashboard gets writers and cap
    record = json.loads(ssm.get_parameter(Name=RECORD)["Parameter"]["Value"])
    assert record["writers"] == 2.0 and record["changes"][0]["writers"] == 2.0
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["DrainWriters"], metrics["DrainWriterCap"]) == (2.0, 4.0)

"""Shared by the tests in this folder."""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker import probe_handler
from functions.worker.drain import (
    NOT_PAUSED,
)
from functions.worker.migrate import apply_migrations
from leadpipe.embedded_postgres import EmbeddedPostgres, start_embedded_postgres
from tests.conftest import REPO_ROOT, TEST_REGION, FakeLambdaContext
from tests.moto_mock import mock_aws


def make_envelope(email: str, **lead_fields: Any) -> LeadEnvelope:
    return LeadEnvelope(
        lead_id=uuid.uuid4(),
        received_at=datetime.now(UTC) - timedelta(seconds=5),
        source=Source(user_agent="pytest"),
        lead=Lead(email=email, **lead_fields),
    )


@pytest.fixture
def own_server() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server this test may stop and start again."""
    data_dir = REPO_ROOT / ".leadpipe" / "pytest" / f"outage-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    server = start_embedded_postgres(data_dir)
    with psycopg.connect(server.uri, autocommit=True) as connection:
        apply_migrations(connection, "leadpipe.leads")
    yield server
    server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def worker_summaries(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if '"batch done"' in line]


@pytest.fixture
def deployed_mapping(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """A worker function, its SQS mapping and the pause parameter, as the stack deploys them."""
    with mock_aws():
        role = boto3.client("iam").create_role(RoleName="worker", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("handler.py", "def handle(event, context): pass")
        lambda_client = boto3.client("lambda", region_name=TEST_REGION)
        lambda_client.create_function(
            FunctionName="worker",
            Runtime="python3.12",
            Role=role,
            Handler="handler.handle",
            Code={"ZipFile": code.getvalue()},
        )
        sqs = boto3.client("sqs", region_name=TEST_REGION)
        queue_arn = sqs.get_queue_attributes(
            QueueUrl=sqs.create_queue(QueueName="leads")["QueueUrl"], AttributeNames=["QueueArn"]
        )
        mapping = lambda_client.create_event_source_mapping(
            EventSourceArn=queue_arn["Attributes"]["QueueArn"], FunctionName="worker", Enabled=True
        )
        boto3.client("ssm", region_name=TEST_REGION).put_parameter(
            Name="/leadpipe/drain-pause", Value=NOT_PAUSED, Type="String"
        )
        monkeypatch.setenv("EVENT_SOURCE_MAPPING_ID", mapping["UUID"])
        monkeypatch.setenv("DRAIN_PAUSE_PARAMETER", "/leadpipe/drain-pause")
        monkeypatch.setenv("LEADS_TABLE", "leadpipe.leads")
        probe_handler.reset_for_tests()
        yield lambda: lambda_client.get_event_source_mapping(UUID=mapping["UUID"])["State"]
        probe_handler.reset_for_tests()


def worker_outage_datapoints(stdout: str) -> list[float]:
    """Values of `DatabaseUnavailable` printed as EMF under the worker's service dimension."""
    values = []
    for line in stdout.splitlines():
        if line.startswith("{") and '"DatabaseUnavailable"' in line:
            document = json.loads(line)
            if (
                document.get("service") == "leadpipe-worker"
                and document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Leadpipe"
            ):
                value = document["DatabaseUnavailable"]
                values.extend(float(v) for v in (value if isinstance(value, list) else [value]))
    return values


@dataclass
class ShortLambdaContext(FakeLambdaContext):
    """An invocation with only `remaining_ms` left (Lambda's context counts down; the fake does not)."""

    remaining_ms: int = 6_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def canary_envelope(email: str) -> LeadEnvelope:
    """A lead as `leadpipe verify` posts it, received a moment ago."""
    return make_envelope(email, campaign="LEADPIPE_VERIFY")


def store_as_worker(leads_db: Any, *envelopes: LeadEnvelope) -> None:
    """Store leads with the worker's own repository and INSERT, as a batch would."""
    from functions.worker.repository import ConnectionProvider, LeadRepository, connect

    repository = LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table)
    assert repository.store_batch(list(envelopes)).inserted == len(envelopes)

"""The local runtime's retention: the retention function's own handler, in an environment of its own, on a
schedule, with the stage's settings; `leadpipe status` then shows the policy and the run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker.repository import ConnectionProvider, LeadRepository, connect
from infra.config import settings_from_file
from leadpipe.local.lambda_pool import LambdaPool
from leadpipe.local.retention import LocalRetention
from leadpipe.status import PipelineStatus, database_status
from tests.conftest import LeadsDatabase


def received(email: str, days_ago: float) -> LeadEnvelope:
    return LeadEnvelope(
        lead_id=uuid.uuid4(),
        received_at=datetime.now(UTC) - timedelta(days=days_ago),
        source=Source(user_agent="pytest"),
        lead=Lead(email=email, campaign="SUMMERSALE20", utm_source="newsletter"),
    )


def test_the_local_retention_runs_the_functions_handler_and_status_shows_it(leads_db: LeadsDatabase, tmp_path) -> None:
    # Given a stage keeping leads 30 days, a lead of 40 days and one of an hour ago
    settings = settings_from_file("dev").model_copy(update={"lead_retention_days": 30})
    repository = LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table)
    repository.store_batch([received("old@example.com", 40), received("new@example.com", 1 / 24 / 2)])
    function = LambdaPool(
        "functions.worker.retention_handler.lambda_handler",
        "leadpipe-retention",
        1,
        {
            "DATABASE_URL": leads_db.uri,
            "LEADS_TABLE": leads_db.leads_table,
            **settings.worker_database_environment(),
            **settings.retention_environment(),
        },
        tmp_path / "retention.log",
    )
    retention = LocalRetention(function, interval_seconds=3600, timeout_seconds=60)
    try:
        # When the runtime's schedule fires (it runs once at start)
        retention.start()
        retention.stop()
    finally:
        function.close()
    # Then the function deleted the old lead and kept the new one
    assert retention.last_run == {"outcome": "done", "leads_deleted": 1, "tombstones_deleted": 0, "error": None}
    assert [row["email"] for row in leads_db.rows()] == ["new@example.com"]
    # And `leadpipe status` shows the policy, the run, and the lead per campaign and per utm_source
    status = PipelineStatus(source="local", queued=0, in_flight=0, dead_letters=0, oldest_message_age_seconds=None)
    for key, value in database_status(leads_db.uri, leads_db.leads_table).items():
        setattr(status, key, value)
    text = status.as_text()
    assert "retention             leads deleted after 30 days; erasure tombstones 30 days" in text
    assert ": done, 1 leads and 0 tombstones deleted" in text
    assert status.leads_received == {
        "campaign": {"SUMMERSALE20": {"last_hour": 1, "last_day": 1}},
        "utm_source": {"newsletter": {"last_hour": 1, "last_day": 1}},
    }
    assert "    SUMMERSALE20                   1         1" in text

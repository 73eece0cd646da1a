"""Leads per campaign and per utm_source, last hour and last day, from the table (a real PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker.repository import ConnectionProvider, LeadRepository, connect
from leadpipe.lead_counts import counts_as_text, leads_by_campaign_and_source
from tests.conftest import LeadsDatabase

NOW = datetime.now(UTC)


def lead(minutes_ago: float, **fields: str) -> LeadEnvelope:
    return LeadEnvelope(
        lead_id=uuid.uuid4(),
        received_at=NOW - timedelta(minutes=minutes_ago),
        source=Source(),
        lead=Lead(email=f"{uuid.uuid4().hex[:8]}@example.com", **fields),
    )


def test_leads_are_counted_per_campaign_and_per_source_for_the_last_hour_and_day(leads_db: LeadsDatabase) -> None:
    # Given leads of the last few minutes, of earlier today, and of two days ago
    LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table).store_batch(
        [
            lead(5, campaign="SUMMERSALE20", utm_source="newsletter"),
            lead(10, campaign="SUMMERSALE20", utm_source="google"),
            lead(300, campaign="SUMMERSALE20", utm_source="newsletter"),
            lead(20),
            lead(60 * 48, campaign="SUMMERSALE20", utm_source="newsletter"),
        ]
    )
    # When they are counted
    with leads_db.connect() as connection:
        counts = leads_by_campaign_and_source(connection, leads_db.leads_table, now=NOW)
    # Then each campaign and each source has its last hour and last day; the old lead counts in neither
    assert counts == {
        "campaign": {
            "SUMMERSALE20": {"last_hour": 2, "last_day": 3},
            "(none)": {"last_hour": 1, "last_day": 1},
        },
        "utm_source": {
            "newsletter": {"last_hour": 1, "last_day": 2},
            "google": {"last_hour": 1, "last_day": 1},
            "(none)": {"last_hour": 1, "last_day": 1},
        },
    }
    # And the text for on-call ranks them by the day's count
    assert counts_as_text("received, by utm_source", counts["utm_source"]) == [
        "  received, by utm_source  last hour  last day",
        "    newsletter                     1         2",
        "    (none)                         1         1",
        "    google                         1         1",
    ]

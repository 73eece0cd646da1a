"""Erasure takes the consent record and the attribution with the lead: nothing of the person is left in any
table of the pipeline's schema, the retention's record included (a real PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker.repository import ConnectionProvider, LeadRepository, connect
from functions.worker.retention import RetentionPolicy, run_retention
from leadpipe.erasure import erase_person
from tests.conftest import LeadsDatabase

TOUCH = {
    "touched_at": "2026-05-04T09:30:00Z",
    "landing_page": "https://www.example.com/summer?gclid=Cj0KCQiA-erase-me",
    "referrer": "https://news.example.org/article-erase-me",
    "utm_source": "newsletter-erase-me",
    "gclid": "Cj0KCQiA-erase-me",
}
# What would identify the person, or their visit, if any of it were left behind
TRACES = ("erased@example.com", "erase-me", "consent-text-erase-me")


def test_erasure_removes_the_consent_record_and_the_attribution_with_the_lead(leads_db: LeadsDatabase) -> None:
    # Given a person's lead with full attribution and consent, another person's lead, and a retention run on record
    lead = Lead(
        email="erased@example.com",
        gclid="Cj0KCQiA-erase-me",
        referrer="https://news.example.org/article-erase-me",
        first_touch=TOUCH,
        last_touch=TOUCH,
        consent=True,
        consent_text_id="consent-text-erase-me",
        consent_text_version="3",
        consent_purposes=["newsletter"],
        consent_page="https://www.example.com/summer",
    )
    envelopes = [
        LeadEnvelope(
            lead_id=uuid.uuid4(), received_at=datetime.now(UTC) - timedelta(minutes=1), source=Source(), lead=person
        )
        for person in (lead, Lead(email="kept@example.com", consent=True, consent_text_id="newsletter"))
    ]
    LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table).store_batch(envelopes)
    with leads_db.connect() as connection:
        run_retention(connection, leads_db.leads_table, RetentionPolicy(None, 30))
    # When the person is erased
    assert erase_person(leads_db.uri, leads_db.leads_table, "Erased@Example.com") == 1
    # Then the consent query finds only the other person
    schema = leads_db.leads_table.split(".")[0]
    with leads_db.connect() as connection:
        consented = connection.execute(
            f"SELECT email FROM {leads_db.leads_table} WHERE consent AND consent_text_id IS NOT NULL"
        ).fetchall()
        # And no table of the schema holds any trace of the person, their consent text or their visit
        tables = [t for (t,) in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]
        left = {
            table: [
                row
                for (row,) in connection.execute(f'SELECT t::text FROM {schema}."{table}" AS t')
                if any(x in row for x in TRACES)
            ]
            for table in tables
        }
    assert consented == [("kept@example.com",)]
    assert set(tables) >= {"leads", "leads_erasures", "leads_retention"}
    assert left == dict.fromkeys(tables, [])

"""The consent record and the attribution as stored: queryable the way a consent audit asks (a real PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker.repository import ConnectionProvider, LeadRepository, connect
from tests.conftest import LeadsDatabase

AUDIT = "SELECT email FROM {table} WHERE consent AND consent_text_id = 'newsletter' AND consent_text_version = '3'"


def envelope(email: str, **fields: object) -> LeadEnvelope:
    received_at = datetime(2026, 5, 4, 9, 30, tzinfo=UTC) - timedelta(minutes=len(email))
    return LeadEnvelope(
        lead_id=uuid.uuid4(), received_at=received_at, source=Source(), lead=Lead(email=email, **fields)
    )


def test_every_lead_who_agreed_to_version_3_of_the_newsletter_text(leads_db: LeadsDatabase) -> None:
    # Given leads who agreed to version 3, to version 2, who saw version 3 and did not tick, and one with no record
    newsletter = {"consent_text_id": "newsletter", "consent_purposes": "newsletter"}
    LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table).store_batch(
        [
            envelope("agreed-v3@example.com", consent=True, consent_text_version="3", **newsletter),
            envelope("agreed-v2@example.com", consent=True, consent_text_version="2", **newsletter),
            envelope("unticked-v3@example.com", consent=False, consent_text_version="3", **newsletter),
            envelope("boolean-only@example.com", consent=True),
        ]
    )
    with leads_db.connect() as connection:
        # When the audit asks
        found = connection.execute(AUDIT.format(table=leads_db.leads_table)).fetchall()
        rows = {
            email: (consent, purposes, at)
            for email, consent, purposes, at in connection.execute(
                f"SELECT email, consent, consent_purposes, consent_at = received_at FROM {leads_db.leads_table}"
            )
        }
        # (and the planner can answer it from the consent index, not by reading every lead)
        connection.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in connection.execute("EXPLAIN " + AUDIT.format(table=leads_db.leads_table)))
    # Then only the lead who agreed to that version is found
    assert found == [("agreed-v3@example.com",)]
    assert "leads_consent_text_idx" in plan
    # And each row says what was agreed to and when: the unticked one nothing, the boolean-only one just its time
    assert rows == {
        "agreed-v3@example.com": (True, ["newsletter"], True),
        "agreed-v2@example.com": (True, ["newsletter"], True),
        "unticked-v3@example.com": (False, [], None),
        "boolean-only@example.com": (True, [], True),
    }

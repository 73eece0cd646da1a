"""The store path's erasure check, read once per batch: only leads received before the newest tombstone are checked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker.repository import ConnectionProvider, LeadRepository, connect
from leadpipe.erasure import erase_person

pytestmark = pytest.mark.usefixtures("both_store_paths")  # the COPY-first and the INSERT-only store path


def envelope_of(email: str, received_at: datetime) -> LeadEnvelope:
    return LeadEnvelope(
        lead_id=uuid.uuid4(), received_at=received_at, source=Source(user_agent="pytest"), lead=Lead(email=email)
    )


def test_one_batch_skips_only_the_erased_persons_lead_received_before_the_erasure(leads_db) -> None:
    # Given Jane erased now, and a batch of her lead received a minute before, Max's received a minute before,
    # and Jane's received a minute after (she signed up again after the erasure)
    erase_person(leads_db.uri, leads_db.leads_table, "jane@example.com")
    now = datetime.now(UTC)
    batch = [
        envelope_of("jane@example.com", now - timedelta(minutes=1)),
        envelope_of("max@example.com", now - timedelta(minutes=1)),
        envelope_of("jane@example.com", now + timedelta(minutes=1)),
    ]
    repository = LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table)
    # When the batch is stored in one statement
    outcome = repository.store_batch(batch)
    # Then the lead received before the erasure is skipped (counted with the duplicates), the others are stored
    assert (outcome.inserted, outcome.duplicates) == (2, 1)
    stored = {(row["email"], row["lead_id"]) for row in leads_db.rows()}
    assert stored == {("max@example.com", batch[1].lead_id), ("jane@example.com", batch[2].lead_id)}


def test_a_batch_received_after_every_tombstone_is_stored_whole(leads_db) -> None:
    # Given an earlier erasure of someone else, and a batch received after it
    erase_person(leads_db.uri, leads_db.leads_table, "old@example.com")
    batch = [envelope_of(f"p{i}@example.com", datetime.now(UTC)) for i in range(3)]
    repository = LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table)
    # When it is stored / Then every lead is a row
    assert repository.store_batch(batch).inserted == 3
    assert leads_db.count_rows() == 3

"""Two workers storing overlapping batches at once (an SQS redelivery while the first receive is still being stored)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker.repository import ConnectionProvider, LeadRepository, StoreOutcome, connect

pytestmark = pytest.mark.usefixtures("both_store_paths")  # the COPY-first and the INSERT-only store path


def envelope_of(email: str) -> LeadEnvelope:
    return LeadEnvelope(
        lead_id=uuid.uuid4(), received_at=datetime.now(UTC), source=Source(user_agent="pytest"), lead=Lead(email=email)
    )


def slow_each_row_insert(leads_db) -> None:
    """A trigger that holds each row for a moment before it is written, so both workers have written their first
    row before either writes its second: the interleaving that would deadlock if they took the rows in their order."""
    schema = leads_db.leads_table.split(".")[0]
    with leads_db.connect() as connection:
        connection.execute(
            f"CREATE FUNCTION {schema}.slow_row() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$"
        )
        connection.execute(
            f"CREATE TRIGGER slow_row BEFORE INSERT ON {leads_db.leads_table}"
            f" FOR EACH ROW EXECUTE FUNCTION {schema}.slow_row()"
        )


def test_two_workers_storing_the_same_leads_in_opposite_orders_both_succeed_and_store_each_once(leads_db) -> None:
    # Given two leads, and two workers that received them in opposite orders (SQS gives no order within a batch)
    first, second = envelope_of("ann@example.com"), envelope_of("bob@example.com")
    slow_each_row_insert(leads_db)
    batches = {"a": [first, second], "b": [second, first]}
    outcomes: dict[str, StoreOutcome | Exception] = {}
    start = threading.Barrier(2)

    def worker(name: str) -> None:
        repository = LeadRepository(ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table)
        start.wait()
        try:
            outcomes[name] = repository.store_batch(batches[name])
        except Exception as error:  # a deadlock would surface here, failing the whole batch (a receive burned)
            outcomes[name] = error

    # When both store their batch at the same time
    threads = [threading.Thread(target=worker, args=(name,)) for name in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then neither batch fails: each lead is one row, stored by one of them and a duplicate for the other
    assert all(isinstance(outcome, StoreOutcome) for outcome in outcomes.values()), outcomes
    assert sorted((o.inserted, o.duplicates) for o in outcomes.values()) == [(0, 2), (2, 0)]
    assert sorted(str(row["lead_id"]) for row in leads_db.rows()) == sorted([str(first.lead_id), str(second.lead_id)])

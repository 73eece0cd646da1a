"""The retention against a real PostgreSQL: old rows go, new rows stay, tombstones outlive the rows, and a
form's INSERT never waits for it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker.repository import ConnectionProvider, LeadRepository, SessionTimeouts, connect
from functions.worker.retention import RetentionFailed, RetentionPolicy, last_retention_run, run_retention
from leadpipe.erasure import erase_person
from tests.conftest import LeadsDatabase

NOW = datetime.now(UTC)


def received(email: str, days_ago: float) -> LeadEnvelope:
    return LeadEnvelope(
        lead_id=uuid.uuid4(),
        received_at=NOW - timedelta(days=days_ago),
        source=Source(user_agent="pytest"),
        lead=Lead(email=email, consent=True, consent_text_id="newsletter", gclid="Cj0KCQiA"),
    )


def worker(leads_db: LeadsDatabase, lock_timeout_seconds: int = 1) -> LeadRepository:
    """The worker's own store path, with its session timeouts set per transaction (as through RDS Proxy)."""
    timeouts = SessionTimeouts(
        statement_timeout_seconds=5,
        lock_timeout_seconds=lock_timeout_seconds,
        idle_in_transaction_timeout_seconds=30,
    )
    return LeadRepository(
        ConnectionProvider(lambda: connect(leads_db.uri)), leads_db.leads_table, transaction_timeouts=timeouts
    )


def emails(leads_db: LeadsDatabase) -> list[str]:
    return [row["email"] for row in leads_db.rows()]


def test_old_leads_go_and_new_ones_stay_in_small_batches(leads_db: LeadsDatabase) -> None:
    # Given five leads received 40 days ago and two received yesterday
    old = [received(f"old{i}@example.com", days_ago=40) for i in range(5)]
    new = [received(f"new{i}@example.com", days_ago=1) for i in range(2)]
    assert worker(leads_db).store_batch(old + new).inserted == 7
    # When the retention keeps leads 30 days, deleting two rows per batch
    policy = RetentionPolicy(lead_retention_days=30, tombstone_retention_days=None, batch_rows=2)
    with leads_db.connect() as connection:
        run = run_retention(connection, leads_db.leads_table, policy)
        record = last_retention_run(connection, leads_db.leads_table)
    # Then the old leads are gone, over several batches, and the new ones stay
    assert (run.outcome, run.leads_deleted, run.tombstones_deleted) == ("done", 5, 0)
    assert emails(leads_db) == ["new0@example.com", "new1@example.com"]
    # And the run is recorded for `leadpipe status`, with the policy it applied
    assert record is not None
    assert (record["outcome"], record["leads_deleted"], record["lead_retention_days"], record["error"]) == (
        "done",
        5,
        30,
        None,
    )
    assert record["last_done_at"] == record["finished_at"]


def test_unset_retention_keeps_every_lead(leads_db: LeadsDatabase) -> None:
    # Given a lead received ten years ago
    worker(leads_db).store_batch([received("ancient@example.com", days_ago=3650)])
    # When the retention runs with no lead retention set
    with leads_db.connect() as connection:
        run = run_retention(connection, leads_db.leads_table, RetentionPolicy(None, None))
    # Then nothing is deleted
    assert (run.outcome, run.leads_deleted) == ("done", 0)
    assert emails(leads_db) == ["ancient@example.com"]


def test_tombstones_outlive_the_rows_and_keep_blocking_until_their_own_retention(leads_db: LeadsDatabase) -> None:
    # Given a person erased today, whose lead received before the erasure is still in the queue
    in_flight = received("erased@example.com", days_ago=0.01)
    erase_person(leads_db.uri, leads_db.leads_table, "erased@example.com")
    worker(leads_db).store_batch([received("other@example.com", days_ago=0)])
    policy = RetentionPolicy(lead_retention_days=30, tombstone_retention_days=60)
    # When the retention runs 40 days later: past the leads' retention, within the tombstones'
    with leads_db.connect() as connection:
        later = run_retention(connection, leads_db.leads_table, policy, now=NOW + timedelta(days=40))
    # Then the rows are gone, the tombstone is not, and the redelivered lead is still refused
    assert (later.leads_deleted, later.tombstones_deleted) == (1, 0)
    assert worker(leads_db).store_batch([in_flight]).inserted == 0
    assert emails(leads_db) == []
    # When it runs 70 days later, past the tombstones' retention too
    with leads_db.connect() as connection:
        much_later = run_retention(connection, leads_db.leads_table, policy, now=NOW + timedelta(days=70))
    # Then the tombstone is gone as well
    assert (much_later.leads_deleted, much_later.tombstones_deleted) == (0, 1)


def test_a_form_insert_goes_through_while_a_retention_batch_holds_its_locks(leads_db: LeadsDatabase) -> None:
    # Given old leads, and a retention run whose deletes stay uncommitted (its batches held open in one transaction,
    # far longer than a real batch's milliseconds)
    worker(leads_db).store_batch([received(f"old{i}@example.com", days_ago=40) for i in range(3)])
    policy = RetentionPolicy(lead_retention_days=30, tombstone_retention_days=None)
    with leads_db.connect() as retention, retention.transaction():
        run = run_retention(retention, leads_db.leads_table, policy)
        assert run.leads_deleted == 3
        # When the worker stores a new batch meanwhile, with a lock timeout of one second
        outcome = worker(leads_db, lock_timeout_seconds=1).store_batch([received("new@example.com", days_ago=0)])
        # Then it is stored: it waited for no lock the retention holds (else: lock timeout, DatabaseUnavailable)
        assert outcome.inserted == 1
    assert emails(leads_db) == ["new@example.com"]


def test_a_batch_that_would_wait_for_a_lock_gives_up_after_the_lock_timeout(leads_db: LeadsDatabase) -> None:
    # Given old leads, and the table held in SHARE mode (what `leadpipe db erase` takes while it erases)
    worker(leads_db).store_batch([received("old@example.com", days_ago=40)])
    policy = RetentionPolicy(lead_retention_days=30, tombstone_retention_days=None, lock_timeout_seconds=1)
    with leads_db.connect() as holder, holder.transaction():
        holder.execute(f"LOCK TABLE {leads_db.leads_table} IN SHARE MODE")
        # When the retention runs
        with leads_db.connect() as connection, pytest.raises(RetentionFailed) as failed:
            run_retention(connection, leads_db.leads_table, policy)
    # Then it stops with the lock timeout's SQLSTATE (never the server's message: it may quote data)
    assert str(failed.value) == "LockNotAvailable (SQLSTATE 55P03)"
    # And the failure is recorded, the lead is still there for the next run
    with leads_db.connect() as connection:
        record = last_retention_run(connection, leads_db.leads_table)
    assert record is not None
    assert (record["outcome"], record["error"], record["last_done_at"]) == (
        "failed",
        "LockNotAvailable (SQLSTATE 55P03)",
        None,
    )
    assert emails(leads_db) == ["old@example.com"]


def test_a_run_out_of_time_stops_before_a_batch_and_says_unfinished(leads_db: LeadsDatabase) -> None:
    # Given old leads and a complete run recorded earlier
    worker(leads_db).store_batch([received("old@example.com", days_ago=40)])
    policy = RetentionPolicy(lead_retention_days=30, tombstone_retention_days=None)
    with leads_db.connect() as connection:
        run_retention(connection, leads_db.leads_table, RetentionPolicy(None, None))
        done_at = last_retention_run(connection, leads_db.leads_table)["last_done_at"]
        # When a run has less time left than one batch may take
        run = run_retention(connection, leads_db.leads_table, policy, time_left=lambda: 1.0)
        record = last_retention_run(connection, leads_db.leads_table)
    # Then it starts no batch, says so, and the last complete run is still on record
    assert (run.outcome, run.leads_deleted) == ("unfinished", 0)
    assert (record["outcome"], record["last_done_at"]) == ("unfinished", done_at)
    assert emails(leads_db) == ["old@example.com"]


def test_a_database_that_is_gone_fails_the_run(leads_db: LeadsDatabase) -> None:
    # Given a connection the server has closed
    connection = psycopg.connect(leads_db.uri, autocommit=True)
    with leads_db.connect() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (connection.info.backend_pid,))
    # When the retention runs on it
    with pytest.raises(RetentionFailed) as failed:
        run_retention(connection, leads_db.leads_table, RetentionPolicy(30, 30))
    # Then the run fails (the function's error is what pages on-call), naming the error class only
    assert str(failed.value).startswith(("AdminShutdown", "OperationalError"))
    connection.close()

"""The retention: deletes leads older than `lead_retention_days` and erasure tombstones older than theirs.

It deletes in small batches, each its own short transaction with a statement and a lock timeout. A DELETE
takes the same table lock as the worker's INSERT (ROW EXCLUSIVE, which never conflicts with itself) and
locks only the old rows it deletes, skipping any another session holds: a form's INSERT never waits on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from functions.worker.repository import erasures_table_identifier, leads_table_identifier

# The function's timeout: long enough for a backlog (the first run after retention is switched on), in batches
# of seconds each; a run that needs longer stops as `unfinished` and the next one goes on.
RETENTION_TIMEOUT_SECONDS = 300
RETENTION_BATCH_ROWS = 500  # rows per DELETE: its locks last milliseconds, and a failed batch costs little
RETENTION_LOCK_TIMEOUT_SECONDS = 2  # a batch that would wait longer (a migration, an erasure) gives up
# A batch is started only while at least this many seconds are left: its statement timeout, and time to record.
BATCH_RESERVE_MARGIN_SECONDS = 3


def retention_table_identifier(leads_table: str) -> sql.Identifier:
    """The one-row record of the last retention run, next to the leads table (migration 0004)."""
    schema, table = leads_table.split(".", 1)
    return sql.Identifier(schema, f"{table}_retention")


@dataclass(frozen=True)
class RetentionPolicy:
    """How long leads and tombstones are kept (None: for good) and how the deletes are paced."""

    lead_retention_days: int | None
    tombstone_retention_days: int | None
    statement_timeout_seconds: int = 10
    lock_timeout_seconds: int = RETENTION_LOCK_TIMEOUT_SECONDS
    batch_rows: int = RETENTION_BATCH_ROWS

    def as_text(self) -> str:
        leads = (
            "kept until erased"
            if self.lead_retention_days is None
            else f"deleted after {self.lead_retention_days} days"
        )
        tombstones = "kept" if self.tombstone_retention_days is None else f"{self.tombstone_retention_days} days"
        return f"leads {leads}; erasure tombstones {tombstones}"


@dataclass(frozen=True)
class RetentionRun:
    """What one run did. `outcome`: done, unfinished (out of time; the next run goes on) or failed."""

    outcome: str
    leads_deleted: int
    tombstones_deleted: int
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RetentionFailed(Exception):
    """A run stopped on a database error; what it deleted before that stays deleted."""


def run_retention(
    connection: psycopg.Connection,
    leads_table: str,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    time_left: Callable[[], float] | None = None,
) -> RetentionRun:
    """Delete what `policy` says is too old at `now`, batch by batch, and record the run in the database.

    `connection` must be in autocommit mode (each batch is its own transaction). `time_left()` (seconds) stops
    it from starting a batch it may not finish: the run is then `unfinished`. Raises `RetentionFailed` on a
    database error, after recording the failure when the database still answers.
    """
    started_at = datetime.now(UTC)
    now = now or started_at
    leads, tombstones = leads_table_identifier(leads_table), erasures_table_identifier(leads_table)
    deleted = {"leads": 0, "tombstones": 0}
    try:
        _record(connection, leads_table, policy, started_at, outcome="running")
        for kind, table, key, age in (
            ("leads", leads, "lead_id", "received_at"),
            ("tombstones", tombstones, "email_sha256", "erased_at"),
        ):
            days = policy.lead_retention_days if kind == "leads" else policy.tombstone_retention_days
            if days is None:
                continue
            statement = _batch_delete(table, key, age)
            cutoff = now - timedelta(days=days)
            while True:
                if (
                    time_left is not None
                    and time_left() < policy.statement_timeout_seconds + BATCH_RESERVE_MARGIN_SECONDS
                ):
                    run = RetentionRun("unfinished", deleted["leads"], deleted["tombstones"])
                    _record(connection, leads_table, policy, started_at, outcome=run.outcome, run=run)
                    return run
                count = _delete_batch(connection, statement, cutoff, policy)
                deleted[kind] += count
                if count < policy.batch_rows:
                    break
    except psycopg.Error as error:
        reason = f"{type(error).__name__} (SQLSTATE {error.sqlstate or 'none'})"  # never the message: it may quote data
        run = RetentionRun("failed", deleted["leads"], deleted["tombstones"], reason)
        # If the database is away the record cannot be written: the function's error (and its alarm) tells on-call.
        with contextlib.suppress(psycopg.Error):
            _record(connection, leads_table, policy, started_at, outcome=run.outcome, run=run)
        raise RetentionFailed(reason) from error
    run = RetentionRun("done", deleted["leads"], deleted["tombstones"])
    _record(connection, leads_table, policy, started_at, outcome=run.outcome, run=run)
    return run


def _batch_delete(table: sql.Identifier, key: str, age: str) -> sql.Composed:
    # SKIP LOCKED: a row another session holds (an erasure, a redelivered INSERT) waits for the next batch.
    return sql.SQL(
        "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {age} < %s ORDER BY {age} LIMIT %s"
        " FOR UPDATE SKIP LOCKED)"
    ).format(table=table, key=sql.Identifier(key), age=sql.Identifier(age))


def _delete_batch(
    connection: psycopg.Connection, statement: sql.Composed, cutoff: datetime, policy: RetentionPolicy
) -> int:
    with connection.transaction(), connection.cursor() as cursor:
        # SET LOCAL: for this transaction only, so it also holds through RDS Proxy without pinning.
        cursor.execute(
            sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(f"{policy.statement_timeout_seconds}s"))
        )
        cursor.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{policy.lock_timeout_seconds}s")))
        cursor.execute(statement, (cutoff, policy.batch_rows))
        return cursor.rowcount


def _record(
    connection: psycopg.Connection,
    leads_table: str,
    policy: RetentionPolicy,
    started_at: datetime,
    *,
    outcome: str,
    run: RetentionRun | None = None,
) -> None:
    finished_at = None if run is None else datetime.now(UTC)
    values = {
        "lead_retention_days": policy.lead_retention_days,
        "tombstone_retention_days": policy.tombstone_retention_days,
        "started_at": started_at,
        "finished_at": finished_at,
        "outcome": outcome,
        "leads_deleted": run.leads_deleted if run else 0,
        "tombstones_deleted": run.tombstones_deleted if run else 0,
        "error": run.error if run else None,
        "last_done_at": finished_at if outcome == "done" else None,
    }
    table = retention_table_identifier(leads_table)
    updates = [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(name)) for name in values if name != "last_done_at"]
    # The time of the last complete run survives the runs that failed after it.
    updates.append(sql.SQL("last_done_at = coalesce(EXCLUDED.last_done_at, {}.last_done_at)").format(table))
    connection.execute(
        sql.SQL(
            "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT (only_row) DO UPDATE SET {updates}"
        ).format(
            table=table,
            columns=sql.SQL(", ").join(map(sql.Identifier, values)),
            values=sql.SQL(", ").join(map(sql.Placeholder, values)),
            updates=sql.SQL(", ").join(updates),
        ),
        values,
    )


def last_retention_run(connection: psycopg.Connection, leads_table: str) -> dict[str, Any] | None:
    """The record of the last run (None before the first), times as ISO 8601 text."""
    with connection.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(sql.SQL("SELECT * FROM {}").format(retention_table_identifier(leads_table))).fetchone()
    if row is None:
        return None
    row.pop("only_row")
    return {k: v.isoformat(timespec="seconds") if isinstance(v, datetime) else v for k, v in row.items()}

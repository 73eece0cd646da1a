"""The drain breaker's reach into AWS and the database: the only code of the probe with I/O."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from functions.worker.repository import heartbeat_table_identifier, leads_table_identifier
from functions.worker.round_trip_deadline import RoundTripDeadline

# Not the worker's name: DB owners (and `leadpipe spike`) count the worker's connections against the cap.
PROBE_APPLICATION_NAME = "leadpipe-drain-probe"
# Enabling means it is on its way to receiving; Disabling, on its way to stopping.
RECEIVING_STATES = frozenset({"Enabled", "Enabling"})


class EventSourceMappingSwitch:
    """The worker's event source mapping, by its UUID: the role may touch this one mapping only."""

    def __init__(self, lambda_client: Any, mapping_id: str) -> None:
        self._lambda = lambda_client
        self._mapping_id = mapping_id

    def is_enabled(self) -> bool:
        return self._lambda.get_event_source_mapping(UUID=self._mapping_id)["State"] in RECEIVING_STATES

    def set_enabled(self, enabled: bool) -> None:
        self._lambda.update_event_source_mapping(UUID=self._mapping_id, Enabled=enabled)


def read_parameter(ssm: Any, name: str) -> str | None:
    """The operator's pause record (an SSM String parameter)."""
    return ssm.get_parameter(Name=name)["Parameter"]["Value"]


def database_answers(
    conninfo: str,
    leads_table: str,
    connect_timeout_seconds: int | None = None,
    answer_within_seconds: float | None = None,
) -> bool:
    """True when the database takes and commits the worker's writes now: it accepts the worker's
    credentials, no lock holds the leads table, and a write to the heartbeat table commits.

    "Answers `SELECT 1`" is not enough: a read-only or locked database answers, yet every batch
    would fail and spend a receive. Nor is a write that is rolled back: a database whose commits
    never finish (a synchronous standby away, a stalled disk flush), out of disk (53100) or refusing
    writes near xid wraparound (54000) takes the login, the reads and the lock. So the probe commits
    one real row (migration 0003), as the worker's batch would. False, not a hang, when the connected
    path does not answer within `answer_within_seconds`.
    """
    options = {} if connect_timeout_seconds is None else {"connect_timeout": connect_timeout_seconds}
    leads, heartbeat = leads_table_identifier(leads_table), heartbeat_table_identifier(leads_table)
    try:
        with (
            psycopg.connect(conninfo, application_name=PROBE_APPLICATION_NAME, **options) as connection,
            RoundTripDeadline(connection, answer_within_seconds),
            connection.transaction(),
        ):
            connection.execute(sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE NOWAIT").format(leads))
            connection.execute(
                sql.SQL(
                    "INSERT INTO {} (only_row) VALUES (true) ON CONFLICT (only_row) DO UPDATE SET at = now()"
                ).format(heartbeat)
            )
        return True
    except psycopg.Error:
        return False

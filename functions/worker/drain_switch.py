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
    """True when the database takes and commits the worker's writes now; False, not a hang, past
    `answer_within_seconds`.

    `SELECT 1` is not enough: a read-only, full or commit-stalled database answers it, yet would fail every batch.
    So it takes the leads table's lock without waiting and commits one real heartbeat row, as a batch would.
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

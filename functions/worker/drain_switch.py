"""The drain breaker's reach into AWS and the database: the only code of the probe with I/O."""

from __future__ import annotations

from typing import Any

import psycopg

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


def database_answers(conninfo: str) -> bool:
    """True when the database accepts the worker's credentials and answers `SELECT 1`."""
    try:
        with psycopg.connect(conninfo, autocommit=True, application_name=PROBE_APPLICATION_NAME) as connection:
            connection.execute("SELECT 1").fetchone()
        return True
    except psycopg.Error:
        return False

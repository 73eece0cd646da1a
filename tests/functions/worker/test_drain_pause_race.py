"""`leadpipe drain pause` during a probe run must not be undone by that run.

The probe reads the pause record once, then probes the database (up to DB_CONNECT_TIMEOUT_SECONDS),
then compares the switch with its stale decision. An operator who writes the record and disables
the mapping inside that window gets the mapping re-enabled by the probe, though the CLI said
"paused" (docs: "the breaker can never re-enable a drain an operator has just paused")."""

from __future__ import annotations

from functions.worker.drain import OperatorPause, run_breaker


class Switch:
    def __init__(self) -> None:
        self.enabled = True

    def is_enabled(self) -> bool:
        return self.enabled

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled


def test_an_operator_pause_during_the_probe_is_not_undone() -> None:
    switch = Switch()
    record: dict[str, str | None] = {"value": None}

    def database_answers() -> bool:
        # While the probe waits on the database, the operator runs `leadpipe drain pause`
        # (AwsDrainControl.pause: put the record, then disable the mapping).
        record["value"] = OperatorPause.now("ops", "DB maintenance").to_json()
        switch.set_enabled(False)
        return True

    run_breaker(database_answers, lambda: record["value"], switch)
    assert switch.enabled is False, "the probe re-enabled a drain the operator had just paused"

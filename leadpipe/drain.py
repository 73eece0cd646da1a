"""`leadpipe drain pause | resume | status`: the operator's hand on the worker's event source.

Locally the running runtime's breaker watches a pause file under its data folder. In AWS the
pause record is an SSM parameter the probe function reads, and the switch is the event source
mapping's Enabled flag. Either way the record is written before the switch is turned, so the
breaker can never re-enable a drain an operator has just paused.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from functions.worker.drain import NOT_PAUSED, DrainState, OperatorPause, observed_state, parse_pause_record
from leadpipe.local.drain_breaker import PAUSE_FILE_NAME, read_local_drain_state, write_atomically

LOCAL_APPLY_TIMEOUT_SECONDS = 15  # the runtime's breaker looks at the pause file every second or so


class DrainControlError(RuntimeError):
    """The drain could not be switched; the message says why and what to do."""


@dataclass(frozen=True)
class DrainStatus:
    state: str
    receiving: bool
    pause: dict[str, str] | None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "receiving": self.receiving, "pause": self.pause, "detail": self.detail}

    def as_text(self) -> str:
        words = {
            DrainState.RUNNING.value: "running",
            DrainState.HELD_BY_BREAKER.value: "held by the breaker (the database does not answer)",
            DrainState.PAUSED_BY_OPERATOR.value: "paused by an operator",
        }
        line = words.get(self.state, self.state)
        if self.pause:
            line += f": {self.pause['who']}, since {self.pause['since'] or '?'}, because {self.pause['why']}"
        return line + (f" ({self.detail})" if self.detail else "")


class DrainControl(Protocol):
    def pause(self, pause: OperatorPause) -> DrainStatus: ...
    def resume(self) -> DrainStatus: ...
    def status(self) -> DrainStatus: ...


class LocalDrainControl:
    """The local runtime's poller, through the pause file its breaker watches."""

    def __init__(self, data_dir: Path, apply_timeout_seconds: float = LOCAL_APPLY_TIMEOUT_SECONDS) -> None:
        self._data_dir = data_dir
        self._timeout = apply_timeout_seconds

    def pause(self, pause: OperatorPause) -> DrainStatus:
        write_atomically(self._data_dir / PAUSE_FILE_NAME, pause.to_json())
        return self._wait_for(lambda s: s.state == DrainState.PAUSED_BY_OPERATOR.value, "the poller to pause")

    def resume(self) -> DrainStatus:
        (self._data_dir / PAUSE_FILE_NAME).unlink(missing_ok=True)
        # The breaker then probes: running if the database answers, held if it does not.
        return self._wait_for(lambda s: s.state != DrainState.PAUSED_BY_OPERATOR.value, "the poller to resume")

    def status(self) -> DrainStatus:
        state = read_local_drain_state(self._data_dir)
        return DrainStatus(
            state=state["state"],
            receiving=state["receiving"],
            pause=state["pause"],
            detail=f"since {state['since']}" if state.get("since") else "",
        )

    def _wait_for(self, reached, what: str) -> DrainStatus:
        deadline = time.monotonic() + self._timeout
        while True:
            status = self.status()
            if reached(status):
                return status
            if time.monotonic() >= deadline:
                raise DrainControlError(
                    f"the local runtime did not apply it within {self._timeout:.0f} s (waiting for {what})"
                )
            time.sleep(0.1)


class AwsDrainControl:
    """A deployed stack: the pause record in SSM, the worker's event source mapping, the probe function."""

    def __init__(
        self, lambda_client: Any, ssm: Any, mapping_id: str, pause_parameter: str, probe_function: str
    ) -> None:
        self._lambda = lambda_client
        self._ssm = ssm
        self._mapping_id = mapping_id
        self._parameter = pause_parameter
        self._probe_function = probe_function

    def pause(self, pause: OperatorPause) -> DrainStatus:
        self._ssm.put_parameter(Name=self._parameter, Value=pause.to_json(), Type="String", Overwrite=True)
        self._lambda.update_event_source_mapping(UUID=self._mapping_id, Enabled=False)
        return self.status()

    def resume(self) -> DrainStatus:
        self._ssm.put_parameter(Name=self._parameter, Value=NOT_PAUSED, Type="String", Overwrite=True)
        # The probe decides, with the worker's own credentials and network path: held if the database is away.
        answer = self._lambda.invoke(FunctionName=self._probe_function, InvocationType="RequestResponse")
        if answer.get("FunctionError"):
            raise DrainControlError(
                f"the probe function failed ({answer['FunctionError']}); it runs again within a minute"
            )
        return self.status()

    def status(self) -> DrainStatus:
        mapping = self._lambda.get_event_source_mapping(UUID=self._mapping_id)
        record = self._ssm.get_parameter(Name=self._parameter)["Parameter"]["Value"]
        pause = parse_pause_record(record)
        # Enabling and Disabling are on their way; count them as where they are going.
        receiving = mapping["State"] in ("Enabled", "Enabling")
        state = observed_state(receiving, pause)
        return DrainStatus(
            state=state.value,
            receiving=receiving,
            pause=asdict(pause) if pause else None,
            detail=f"event source mapping {mapping['State']}",
        )

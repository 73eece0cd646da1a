"""The drain breaker's decision: should the worker's event source be receiving right now?

The probe function in AWS and the local poller both call `decide`, so they never disagree. States
(docs/drain-breaker.md): RUNNING; HELD_BY_BREAKER (the database did not answer: receiving would only
burn receive counts into the DLQ); PAUSED_BY_OPERATOR (only `resume` ends it, never the breaker).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol


class DrainState(StrEnum):
    RUNNING = "running"
    HELD_BY_BREAKER = "held_by_breaker"
    PAUSED_BY_OPERATOR = "paused_by_operator"


class PauseRecordError(ValueError):
    """A pause record that cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True)
class OperatorPause:
    """Who paused the drain, why, and since when (UTC, ISO 8601)."""

    who: str
    why: str
    since: str

    @classmethod
    def now(cls, who: str, why: str, clock: datetime | None = None) -> OperatorPause:
        if not who.strip() or not why.strip():
            raise PauseRecordError("a pause needs both who paused it and why")
        since = (clock or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
        return cls(who=who.strip()[:100], why=why.strip()[:500], since=since)

    def to_json(self) -> str:
        return json.dumps({"paused": True, **asdict(self)})


# The stored form of "not paused": an SSM parameter cannot hold an empty value.
NOT_PAUSED = json.dumps({"paused": False})


def parse_pause_record(text: str | None) -> OperatorPause | None:
    """The operator's pause from its stored JSON (None or NOT_PAUSED: no pause).

    An unreadable record counts as a pause: the breaker must never override an operator
    because their record got mangled.
    """
    if text is None or not text.strip():
        return None
    try:
        record = json.loads(text)
        if not record.get("paused"):
            return None
        return OperatorPause(who=str(record["who"]), why=str(record["why"]), since=str(record["since"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return OperatorPause(who="unknown", why="the pause record could not be read; resume to clear it", since="")


@dataclass(frozen=True)
class DrainDecision:
    state: DrainState
    pause: OperatorPause | None = None

    @property
    def receiving(self) -> bool:
        """Whether the event source should be enabled (in AWS: the mapping's Enabled flag)."""
        return self.state is DrainState.RUNNING

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "receiving": self.receiving,
            "pause": asdict(self.pause) if self.pause else None,
        }


def decide(database_answers: bool, pause: OperatorPause | None) -> DrainDecision:
    """An operator's pause wins; otherwise the latest probe decides (no memory: one good probe resumes)."""
    if pause is not None:
        return DrainDecision(DrainState.PAUSED_BY_OPERATOR, pause)
    if not database_answers:
        return DrainDecision(DrainState.HELD_BY_BREAKER)
    return DrainDecision(DrainState.RUNNING)


def observed_state(receiving: bool, pause: OperatorPause | None) -> DrainState:
    """The state as `leadpipe status` sees it from outside: the Enabled flag and the pause record."""
    if pause is not None:
        return DrainState.PAUSED_BY_OPERATOR
    return DrainState.RUNNING if receiving else DrainState.HELD_BY_BREAKER


class DrainSwitch(Protocol):
    """The event source's on/off switch (in AWS: the mapping's Enabled flag)."""

    def is_enabled(self) -> bool: ...
    def set_enabled(self, enabled: bool) -> None: ...


@dataclass(frozen=True)
class BreakerRun:
    decision: DrainDecision
    switched: bool  # whether this run turned the switch

    def as_dict(self) -> dict[str, object]:
        return {**self.decision.as_dict(), "switched": self.switched}


def run_breaker(
    database_answers: Callable[[], bool], read_pause_record: Callable[[], str | None], switch: DrainSwitch
) -> BreakerRun:
    """One breaker run: read the operator's record, probe (unless paused), set the switch if it differs.

    Also disables a drain an operator paused whose switch is still on (say the CLI stopped
    between writing the record and turning the switch).
    """
    pause = parse_pause_record(read_pause_record())
    decision = decide(database_answers=pause is not None or database_answers(), pause=pause)
    if decision.receiving and pause is None:
        # The probe may have waited seconds on the database: an operator who paused meanwhile wins.
        pause = parse_pause_record(read_pause_record())
        if pause is not None:
            decision = decide(database_answers=True, pause=pause)
    if switch.is_enabled() == decision.receiving:
        return BreakerRun(decision, switched=False)
    switch.set_enabled(decision.receiving)
    return BreakerRun(decision, switched=True)

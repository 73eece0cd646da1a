"""The drain governor's reach into AWS and the database: the only code of the governor with I/O.

The probe runs it once a minute, after the breaker. It sets the mapping's `MaximumConcurrency`, which AWS keeps
at 2 or more (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html), and keeps its decision in
an SSM parameter for the next run.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from functions.worker.governor import (
    REASONS_KEPT,
    GovernorDecision,
    GovernorLimits,
    GovernorState,
    HealthSample,
    decide_writers,
    pause_after_batch,
    writer_level,
)
from functions.worker.round_trip_deadline import RoundTripDeadline

# AWS::Lambda::EventSourceMapping ScalingConfig.MaximumConcurrency: minimum 2, maximum 1000
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-lambda-eventsourcemapping-scalingconfig.html).
AWS_MINIMUM_CONCURRENCY = 2
LONGEST_PAUSE_SECONDS = 5.0  # a paced writer never waits longer between batches: the drain never starves
GOVERNOR_APPLICATION_NAME = "leadpipe-governor"
# A Standard SSM parameter's largest value (the governor's record is one):
# https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html
RECORD_MAX_CHARACTERS = 4096
SAMPLE_ANSWER_SECONDS = 5.0  # what the sample's own queries may take in all, beyond its pauses
# The sessions the drain runs itself (worker, breaker probe, governor) are not the main application.
OTHER_ACTIVE_SESSIONS_SQL = """
SELECT count(*) FILTER (WHERE state = 'active'), count(*) FILTER (WHERE state IS NULL)
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name NOT LIKE 'leadpipe-%'
"""


def other_active_sessions(connection: psycopg.Connection) -> float | None:
    """Sessions running a statement now that are not the drain's own; None when none is visible and
    some are hidden (a role without `pg_monitor` sees other roles' sessions without their state)."""
    active, hidden = connection.execute(OTHER_ACTIVE_SESSIONS_SQL).fetchone()
    return None if active == 0 and hidden > 0 else float(active)


def mapping_concurrency(writers: float, cap: int) -> int:
    """The mapping's MaximumConcurrency for `writers`: whole writers, never below AWS's minimum nor above the cap."""
    return max(AWS_MINIMUM_CONCURRENCY, min(cap, writer_level(writers)))


def sample_health(
    conninfo: str, heartbeat: sql.Composable, samples: int = 10, every_seconds: float = 0.2
) -> HealthSample:
    """`samples` looks at pg_stat_activity, and one heartbeat commit timed as the latency sample (one row)."""
    seen: list[float] = []
    deadline = samples * every_seconds + SAMPLE_ANSWER_SECONDS  # a database that stops answering ends it, not the probe
    with (
        psycopg.connect(conninfo, autocommit=True, application_name=GOVERNOR_APPLICATION_NAME) as connection,
        RoundTripDeadline(connection, deadline),
    ):
        for index in range(samples):
            if index:
                time.sleep(every_seconds)
            others = other_active_sessions(connection)
            if others is not None:
                seen.append(others)
        started = time.perf_counter()
        connection.execute(
            sql.SQL("INSERT INTO {} (only_row) VALUES (true) ON CONFLICT (only_row) DO UPDATE SET at = now()").format(
                heartbeat
            )
        )
        commit_seconds = time.perf_counter() - started
    return HealthSample(statistics.fmean(seen) if seen else None, commit_seconds)


@dataclass(frozen=True)
class GovernorRecord:
    """What the governor decided last, kept between runs (the state) and shown to operators (the rest)."""

    state: GovernorState
    reason: str = "not decided yet"
    mapping_concurrency: int | None = None
    changes: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    cap: int | None = None

    def to_json(self) -> str:
        """The record as kept; the baselines of the writer levels furthest from the current one are left out
        while it would not fit a Standard SSM parameter (PutParameter refuses it, and the governor would stall)."""
        level = writer_level(self.state.writers)
        baselines = sorted(self.state.baselines, key=lambda pair: abs(pair[0] - level))
        while True:
            text = json.dumps(
                {
                    "writers": self.state.writers,
                    "baselines": [list(pair) for pair in sorted(baselines)],
                    "reason": self.reason,
                    "mapping_concurrency": self.mapping_concurrency,
                    "changes": list(self.changes),
                    "cap": self.cap,
                }
            )
            if len(text) <= RECORD_MAX_CHARACTERS or not baselines:
                return text
            baselines.pop()

    def after(self, decision: GovernorDecision, concurrency: int | None) -> GovernorRecord:
        changes = self.changes
        if decision.writers != self.state.writers:
            at = datetime.now(UTC).isoformat(timespec="seconds")
            changes = (*changes, {"at": at, "writers": decision.writers, "reason": decision.reason})[-REASONS_KEPT:]
        return GovernorRecord(decision.state, decision.reason, concurrency, changes, self.cap)


def parse_governor_record(text: str | None, cap: int) -> GovernorRecord:
    """The kept record; an empty or unreadable one starts at the cap (the mapping's deployed value)."""
    try:
        record = json.loads(text or "")
        state = GovernorState(
            writers=float(record["writers"]),
            baselines=tuple((int(level), float(value)) for level, value in record.get("baselines") or []),
        )
        return GovernorRecord(
            state,
            str(record.get("reason", "")),
            record.get("mapping_concurrency"),
            tuple(record.get("changes") or ()),
            record.get("cap", cap),
        )
    except (ValueError, KeyError, TypeError):
        return GovernorRecord(GovernorState(writers=float(cap)))


class EventSourceMappingConcurrency:
    """The worker's event source mapping's MaximumConcurrency, by its UUID (the probe may touch this mapping only)."""

    def __init__(self, lambda_client: Any, mapping_id: str) -> None:
        self._lambda = lambda_client
        self._mapping_id = mapping_id

    def get(self) -> int | None:
        mapping = self._lambda.get_event_source_mapping(UUID=self._mapping_id)
        return (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")

    def set(self, concurrency: int) -> None:
        self._lambda.update_event_source_mapping(
            UUID=self._mapping_id, ScalingConfig={"MaximumConcurrency": concurrency}
        )


@dataclass(frozen=True)
class GovernorRun:
    record: GovernorRecord
    mapping_changed: bool


def run_governor(
    limits: GovernorLimits,
    drain_receiving: bool,
    sample: Callable[[], HealthSample],
    read_record: Callable[[], str | None],
    write_record: Callable[[str], None],
    mapping: EventSourceMappingConcurrency,
) -> GovernorRun:
    """One governor run: decide from the kept record and a fresh sample, set the mapping if it differs, keep the record.

    While the breaker holds, the mapping's concurrency is left alone (the mapping is disabled anyway)."""
    record = parse_governor_record(read_record(), limits.cap)
    health = sample() if drain_receiving else HealthSample()
    decision = decide_writers(record.state, health, limits, drain_receiving=drain_receiving)
    concurrency, changed = record.mapping_concurrency, False
    if drain_receiving:
        concurrency = mapping_concurrency(decision.writers, limits.cap)
        if mapping.get() != concurrency:
            mapping.set(concurrency)
            changed = True
    updated = replace(record, cap=limits.cap).after(decision, concurrency)
    if updated.to_json() != record.to_json():
        write_record(updated.to_json())
    return GovernorRun(updated, changed)


def worker_pause_seconds(record_text: str | None, batch_seconds: float, seconds_left: float) -> float:
    """How long the worker waits after a batch in AWS: the governor's writers below the mapping's
    MaximumConcurrency (never under AWS's 2) are its share of the time; never past `seconds_left`."""
    record = parse_governor_record(record_text, cap=0)
    if not record.cap or record.state.writers <= 0:
        return 0.0  # no decision yet, or held (then nothing is received anyway)
    duty = record.state.writers / mapping_concurrency(record.state.writers, record.cap)
    return max(0.0, min(pause_after_batch(batch_seconds, duty, LONGEST_PAUSE_SECONDS), seconds_left))


def governor_record_for_status(text: str | None) -> dict[str, Any] | None:
    """The record as `leadpipe status --stack` shows it (None before the governor's first run)."""
    record = parse_governor_record(text, cap=0)
    if not record.cap:
        return None
    return {
        "writers": record.state.writers,
        "cap": record.cap,
        "reason": record.reason,
        "mapping_concurrency": record.mapping_concurrency,
        "changes": list(record.changes),
    }

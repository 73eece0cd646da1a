"""The drain governor's decision: how many writers the drain may use now, below the DB owner's cap.

Pure, so the probe in AWS and the local runtime cannot disagree (docs/drain-governor.md). Writers are a real
number: 1.5 is two writers each busy three quarters of the time (`pacing`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

# The most one decision may take away: half (TCP's multiplicative decrease, Gradient2's gradient floor);
# the least, a fifth, so a load just at the threshold still moves the drain.
LARGEST_DECREASE_FACTOR = 0.5
SMALLEST_DECREASE_FACTOR = 0.8
# The unloaded baseline is a long-window average, since a minimum is biased low by lucky samples (Gradient2);
# a sample under half of it replaces it at once: the database got faster for good (Vegas).
BASELINE_WINDOW = 30
BASELINE_RESET_SHARE = 0.5
# Only while other sessions are below this share of the busy threshold is a batch's latency "unloaded".
IDLE_SHARE_OF_BUSY = 0.5
REASONS_KEPT = 10


@dataclass(frozen=True)
class GovernorLimits:
    """The DB owner's terms, from the settings `governor_*` and `max_concurrency` (a tolerance of 0.5 is 50%)."""

    floor: float
    cap: int
    busy_sessions: float
    latency_tolerance: float
    increase_step: float = 0.5  # the most writers one decision adds

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.cap:
            raise ValueError(f"the floor ({self.floor}) must be above 0 and at most the cap ({self.cap})")
        if self.busy_sessions <= 0 or self.latency_tolerance < 0 or self.increase_step <= 0:
            raise ValueError("busy_sessions and increase_step must be above 0, latency_tolerance at least 0")


@dataclass(frozen=True)
class HealthSample:
    """What the drain saw since the last decision: other sessions' mean active count (None without `pg_monitor`)
    and the median commit latency per row (None: no batch ran)."""

    other_active_sessions: float | None = None
    seconds_per_row: float | None = None


@dataclass(frozen=True)
class GovernorState:
    """The writers allowed, and an unloaded latency per writer count: our own writers slow a batch too, and that
    is not the main application's pain."""

    writers: float
    baselines: tuple[tuple[int, float], ...] = ()

    def baseline(self, level: int) -> float | None:
        return dict(self.baselines).get(level)

    def with_baseline(self, level: int, seconds_per_row: float) -> GovernorState:
        known = dict(self.baselines)
        known[level] = seconds_per_row
        return replace(self, baselines=tuple(sorted(known.items())))


@dataclass(frozen=True)
class GovernorDecision:
    writers: float
    reason: str
    state: GovernorState = field(repr=False)

    @property
    def changed_from(self) -> float:
        return self.state.writers


def writer_level(writers: float) -> int:
    """How many writers run at once for `writers` (each paced to its share): 1.5 -> 2, 0.25 -> 1."""
    return math.ceil(round(writers, 6))


def pacing(writers: float) -> tuple[int, float]:
    """(writers running at once, the share of its time each spends on batches) for `writers`."""
    level = writer_level(writers)
    if level == 0:
        return 0, 0.0
    return level, min(1.0, writers / level)


def pause_after_batch(batch_seconds: float, duty: float, longest_pause_seconds: float) -> float:
    """How long a writer waits after a batch that took `batch_seconds`, to spend `duty` of its time on
    batches; never longer than `longest_pause_seconds`, so the drain never starves."""
    if duty >= 1 or batch_seconds <= 0:
        return 0.0
    return min(longest_pause_seconds, batch_seconds * (1 - duty) / max(duty, 1e-3))


def decide_writers(
    state: GovernorState, sample: HealthSample, limits: GovernorLimits, *, drain_receiving: bool
) -> GovernorDecision:
    """The writers for the next period, and why: 0 while held, the floor after a hold; down by the measured excess
    (at most half) when the main application is busy or batches run slow; otherwise one step up to the cap."""
    current = state.writers
    if not drain_receiving:
        return GovernorDecision(
            0.0, "held: the breaker (or an operator) stopped the drain", replace(state, writers=0.0)
        )
    if current <= 0:
        return _to(state, limits.floor, f"the drain resumed: starting at the floor ({limits.floor:g})")
    current = min(max(current, limits.floor), limits.cap)  # settings may have changed under a kept state

    level = writer_level(current)
    others = sample.other_active_sessions
    baseline = state.baseline(level)  # compared before this sample joins it
    state = _learn_baseline(state, sample, limits, level)
    congested, pressure, why = False, 0.0, ""
    if others is not None and others >= limits.busy_sessions:
        congested, pressure = True, others / limits.busy_sessions
        why = f"main application busy: {others:.1f} other active sessions (yield at {limits.busy_sessions:g})"
    if sample.seconds_per_row is not None and baseline:
        ratio = sample.seconds_per_row / baseline
        allowed = 1 + limits.latency_tolerance
        if ratio > allowed and ratio / allowed > pressure:
            congested, pressure = True, ratio / allowed
            why = (
                f"batches {ratio:.1f}x slower than on the idle database at {level} writer(s) (tolerance {allowed:.2f}x)"
            )
    if congested:
        factor = min(SMALLEST_DECREASE_FACTOR, max(LARGEST_DECREASE_FACTOR, 1 / pressure))
        target = max(limits.floor, current * factor)
        if target >= current:
            return _to(state, current, f"{why}; at the floor")
        return _to(state, target, why)
    if current >= limits.cap:
        return _to(state, float(limits.cap), "healthy: at the cap")
    target = min(float(limits.cap), current + limits.increase_step)
    return _to(state, target, "healthy: one step up")


def _to(state: GovernorState, writers: float, reason: str) -> GovernorDecision:
    writers = round(writers, 4)
    return GovernorDecision(writers, reason, replace(state, writers=writers))


def _learn_baseline(state: GovernorState, sample: HealthSample, limits: GovernorLimits, level: int) -> GovernorState:
    """The baseline, learned only while the main application is idle."""
    if sample.seconds_per_row is None or sample.seconds_per_row <= 0:
        return state
    others = sample.other_active_sessions
    if others is not None and others >= limits.busy_sessions * IDLE_SHARE_OF_BUSY:
        return state
    known = state.baseline(level)
    if known is None or sample.seconds_per_row < known * BASELINE_RESET_SHARE:
        return state.with_baseline(level, sample.seconds_per_row)
    return state.with_baseline(level, known + (sample.seconds_per_row - known) / BASELINE_WINDOW)

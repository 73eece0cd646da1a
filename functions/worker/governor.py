"""The drain governor's decision: how many writers the drain may use right now, below the DB owner's cap.

Pure and deployed, like the breaker's `decide`: the probe function in AWS and the local runtime's
governor thread both decide with `decide_writers`, so the two cannot disagree. docs/drain-governor.md
says what each part took from Netflix's concurrency-limits, Envoy's adaptive concurrency and TCP.

Writers are a real number: 1.5 is two writers each busy three quarters of the time, 0.25 one writer
busy a quarter of it (`pacing`). `max_concurrency` stays the hard ceiling; the breaker's hold is 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

# The most one decision may take away: half (TCP's multiplicative decrease, Gradient2's gradient floor);
# the least, a fifth, so a load just at the threshold still moves the drain.
LARGEST_DECREASE_FACTOR = 0.5
SMALLEST_DECREASE_FACTOR = 0.8
# The unloaded baseline is a long-window average (Gradient2: a minimum is biased low by lucky samples, and a noisy
# machine then sheds load for nothing): each sample moves it by 1/BASELINE_WINDOW. A sample under half of it
# replaces it at once (Vegas' new minimum): the database got faster for good.
BASELINE_WINDOW = 30
BASELINE_RESET_SHARE = 0.5
# Other sessions below this share of the busy threshold count as "the main application is idle":
# only then is a batch's latency taken into the unloaded baseline.
IDLE_SHARE_OF_BUSY = 0.5
REASONS_KEPT = 10


@dataclass(frozen=True)
class GovernorLimits:
    """The DB owner's terms.

    `floor`: writers at the least while the database answers (below 1: one writer, paced);
    `cap`: `max_concurrency`, never exceeded; `busy_sessions`: the other sessions' average active
    count (Performance Insights' "DB load") at which the drain yields; `latency_tolerance`: how much
    slower than on the idle database a batch's commit may run before the drain yields (0.5: 50%);
    `increase_step`: the most writers one decision adds.
    """

    floor: float
    cap: int
    busy_sessions: float
    latency_tolerance: float
    increase_step: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.cap:
            raise ValueError(f"the floor ({self.floor}) must be above 0 and at most the cap ({self.cap})")
        if self.busy_sessions <= 0 or self.latency_tolerance < 0 or self.increase_step <= 0:
            raise ValueError("busy_sessions and increase_step must be above 0, latency_tolerance at least 0")


@dataclass(frozen=True)
class HealthSample:
    """What the drain saw of the database since the last decision.

    `other_active_sessions`: the mean number of sessions running a statement that are not the
    drain's own (None: not visible, e.g. no `pg_monitor` grant); `seconds_per_row`: a batch's
    commit latency per stored row, the median of the period (None: no batch ran).
    """

    other_active_sessions: float | None = None
    seconds_per_row: float | None = None


@dataclass(frozen=True)
class GovernorState:
    """What the governor remembers: the writers it allows, and the unloaded per-row latency at each
    whole number of writers (a batch is slower with more of our own writers; that is not the main
    application's pain, so each level is compared with itself)."""

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
    """The writers for the next period, and why.

    - The breaker holds (or an operator paused): 0. Back from a hold: the floor, then up step by step.
    - The main application is busy (other sessions at or above `busy_sessions`), or the drain's batches
      run slower than `1 + latency_tolerance` times their unloaded baseline at the same writer count:
      down, by the measured excess (Gradient2's gradient), at most by half, never below the floor.
    - Otherwise up by `increase_step` (additive increase), never above the cap.
    """
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
    """Gradient2's long-window average, reset by a much lower sample (Vegas), learned only while the main
    application is idle."""
    if sample.seconds_per_row is None or sample.seconds_per_row <= 0:
        return state
    others = sample.other_active_sessions
    if others is not None and others >= limits.busy_sessions * IDLE_SHARE_OF_BUSY:
        return state
    known = state.baseline(level)
    if known is None or sample.seconds_per_row < known * BASELINE_RESET_SHARE:
        return state.with_baseline(level, sample.seconds_per_row)
    return state.with_baseline(level, known + (sample.seconds_per_row - known) / BASELINE_WINDOW)

"""The drain governor's decision over traces of what the drain saw: bounds, steps, the breaker's zero."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.worker.governor import (
    LARGEST_DECREASE_FACTOR,
    GovernorLimits,
    GovernorState,
    HealthSample,
    decide_writers,
    pacing,
    pause_after_batch,
)

limits_strategy = st.builds(
    lambda cap, floor_share, busy, tolerance, step: GovernorLimits(
        floor=max(0.05, round(cap * floor_share, 2)),
        cap=cap,
        busy_sessions=busy,
        latency_tolerance=tolerance,
        increase_step=step,
    ),
    cap=st.integers(min_value=2, max_value=50),
    floor_share=st.floats(min_value=0.0, max_value=1.0),
    busy=st.floats(min_value=0.1, max_value=20),
    tolerance=st.floats(min_value=0.0, max_value=5),
    step=st.floats(min_value=0.05, max_value=4),
)
samples_strategy = st.builds(
    HealthSample,
    other_active_sessions=st.none() | st.floats(min_value=0, max_value=200),
    seconds_per_row=st.none() | st.floats(min_value=1e-6, max_value=1.0),
)
# One period of a trace: what the drain saw, and whether the breaker let it receive.
trace_strategy = st.lists(st.tuples(samples_strategy, st.booleans()), min_size=1, max_size=60)


@given(limits=limits_strategy, trace=trace_strategy, start=st.floats(min_value=0, max_value=60))
def test_writers_stay_between_the_floor_and_the_cap_except_the_breakers_zero(limits, trace, start) -> None:
    # Given any limits, any starting writer count and any trace of samples and breaker decisions
    state = GovernorState(writers=start)
    for sample, receiving in trace:
        # When the governor decides each period
        decision = decide_writers(state, sample, limits, drain_receiving=receiving)
        # Then the writers are 0 exactly when the breaker holds, and otherwise within [floor, cap]
        if receiving:
            assert limits.floor - 1e-9 <= decision.writers <= limits.cap
        else:
            assert decision.writers == 0
        assert decision.state.writers == decision.writers
        state = decision.state


@given(limits=limits_strategy, trace=trace_strategy)
def test_each_step_is_bounded_up_by_the_step_and_down_by_half(limits, trace) -> None:
    # Given a governor running (not held) from the floor
    state = GovernorState(writers=limits.floor)
    for sample, _ in trace:
        before = state.writers
        # When it decides with the breaker letting the drain receive
        decision = decide_writers(state, sample, limits, drain_receiving=True)
        # Then it adds at most one step and takes at most half (never below the floor)
        assert decision.writers <= before + limits.increase_step + 1e-4  # writers are kept to 4 decimals
        assert decision.writers >= min(before, max(limits.floor, before * LARGEST_DECREASE_FACTOR)) - 1e-3
        state = decision.state


@given(limits=limits_strategy, others=st.floats(min_value=0, max_value=200))
def test_a_busy_main_application_never_gets_more_writers(limits, others) -> None:
    # Given other sessions at or above the busy threshold, the drain at the cap
    busy = max(others, limits.busy_sessions)
    state = GovernorState(writers=float(limits.cap))
    # When the governor decides
    decision = decide_writers(state, HealthSample(other_active_sessions=busy), limits, drain_receiving=True)
    # Then the writers go down (or stay at the floor)
    assert decision.writers < limits.cap or limits.floor == limits.cap
    assert "main application busy" in decision.reason


def test_a_competing_load_takes_writers_down_to_the_floor_and_its_end_brings_them_back_to_the_cap() -> None:
    # Given a cap of 4, a floor of a quarter writer, yielding at 1 other active session
    limits = GovernorLimits(floor=0.25, cap=4, busy_sessions=1.0, latency_tolerance=0.5, increase_step=0.5)
    state = GovernorState(writers=4.0)
    seen = []
    # When the main application is busy for 6 periods, then idle for 10
    for others in [3.0] * 6 + [0.0] * 10:
        decision = decide_writers(state, HealthSample(other_active_sessions=others), limits, drain_receiving=True)
        seen.append(decision.writers)
        state = decision.state
    # Then the writers halve down to the floor, then climb back by one step a period to the cap
    assert seen == [2.0, 1.0, 0.5, 0.25, 0.25, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75, 4.0, 4.0, 4.0]


def test_batches_slower_than_the_tolerance_at_the_same_writer_count_take_writers_down() -> None:
    # Given a baseline of 10 us per row learned at 2 writers while the main application was idle
    limits = GovernorLimits(floor=0.5, cap=2, busy_sessions=1.0, latency_tolerance=0.5)
    idle = decide_writers(GovernorState(writers=2.0), HealthSample(0.0, 10e-6), limits, drain_receiving=True)
    assert idle.writers == 2.0 and idle.state.baseline(2) == pytest.approx(10e-6)
    # When batches at 2 writers take 30 us per row, with no other session visible (no pg_monitor grant)
    slow = decide_writers(idle.state, HealthSample(None, 30e-6), limits, drain_receiving=True)
    # Then the writers go down by the excess (3x against 1.5x allowed: halved), and the reason says why
    assert slow.writers == 1.0
    assert slow.reason.startswith("batches 3.0x slower than on the idle database at 2 writer(s)")


def test_the_breaker_hold_is_zero_and_the_resume_starts_at_the_floor() -> None:
    # Given the drain at its cap
    limits = GovernorLimits(floor=0.5, cap=3, busy_sessions=1.0, latency_tolerance=0.5)
    # When the breaker holds, then lets the drain receive again
    held = decide_writers(GovernorState(writers=3.0), HealthSample(), limits, drain_receiving=False)
    resumed = decide_writers(held.state, HealthSample(), limits, drain_receiving=True)
    # Then the writers are 0 while held, and start again at the floor
    assert (held.writers, resumed.writers) == (0.0, 0.5)
    assert held.reason.startswith("held")


@pytest.mark.parametrize(
    ("writers", "expected"), [(0.0, (0, 0.0)), (0.25, (1, 0.25)), (1.0, (1, 1.0)), (1.5, (2, 0.75)), (2.0, (2, 1.0))]
)
def test_pacing_runs_whole_writers_each_busy_for_its_share(writers, expected) -> None:
    # Given a writer count / When it is turned into running writers and their duty / Then it matches
    assert pacing(writers) == expected


def test_a_paced_writer_waits_three_times_its_batch_at_a_quarter_duty_but_never_past_the_longest_pause() -> None:
    # Given a batch of 40 ms at a duty of a quarter / When the pause is computed / Then 120 ms, bounded by the longest
    assert pause_after_batch(0.04, 0.25, longest_pause_seconds=5) == pytest.approx(0.12)
    assert pause_after_batch(4.0, 0.25, longest_pause_seconds=5) == 5
    assert pause_after_batch(0.04, 1.0, longest_pause_seconds=5) == 0

"""The governor's AWS side: the mapping's MaximumConcurrency (2 to the cap), its record, and its health sample."""

from __future__ import annotations

import json

from functions.worker.governor import GovernorLimits, HealthSample
from functions.worker.governor_switch import (
    AWS_MINIMUM_CONCURRENCY,
    mapping_concurrency,
    parse_governor_record,
    run_governor,
    sample_health,
)
from functions.worker.repository import heartbeat_table_identifier


class FakeMapping:
    """The event source mapping's MaximumConcurrency, as Lambda keeps it."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.updates: list[int] = []

    def get(self) -> int:
        return self.concurrency

    def set(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.updates.append(concurrency)


def test_the_mapping_never_goes_below_awss_minimum_of_2_nor_above_the_cap() -> None:
    # AWS refuses MaximumConcurrency below 2 or above 1000
    # (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-lambda-eventsourcemapping-scalingconfig.html)
    assert AWS_MINIMUM_CONCURRENCY == 2
    assert [mapping_concurrency(w, cap=5) for w in (0.25, 1.0, 2.0, 2.5, 5.0, 9.0)] == [2, 2, 2, 3, 5, 5]


def test_runs_take_the_mapping_down_while_the_main_application_is_busy_and_keep_the_record() -> None:
    # Given a cap of 6 writers, the mapping deployed at the cap, and no record yet
    limits = GovernorLimits(floor=0.5, cap=6, busy_sessions=1.0, latency_tolerance=0.5)
    mapping, kept = FakeMapping(6), {"text": '{"writers": null}'}

    def run(sample: HealthSample, receiving: bool = True):
        return run_governor(
            limits, receiving, lambda: sample, lambda: kept["text"], lambda text: kept.update(text=text), mapping
        )

    # When three runs find the main application busy (4 other active sessions)
    writers = [run(HealthSample(other_active_sessions=4.0)).record.state.writers for _ in range(3)]
    # Then the writers halve each run and the mapping follows, never below AWS's 2
    assert writers == [3.0, 1.5, 0.75]
    assert mapping.updates == [3, 2]
    record = json.loads(kept["text"])
    assert record["writers"] == 0.75 and record["mapping_concurrency"] == 2
    assert [c["writers"] for c in record["changes"]] == [3.0, 1.5, 0.75]
    assert record["reason"].startswith("main application busy")
    # When the breaker holds the drain
    held = run(HealthSample(other_active_sessions=4.0), receiving=False)
    # Then the writers are 0 and the (disabled) mapping is left as it was
    assert held.record.state.writers == 0 and mapping.updates == [3, 2] and not held.mapping_changed


def test_an_unreadable_record_starts_at_the_cap() -> None:
    # Given a mangled record  When it is read  Then the governor starts where the mapping was deployed: the cap
    assert parse_governor_record("{not json", cap=4).state.writers == 4.0
    assert parse_governor_record(None, cap=4).state.writers == 4.0


def test_the_health_sample_sees_no_other_session_on_a_quiet_database_and_times_one_commit(leads_db) -> None:
    # Given a quiet database  When the governor samples it as the probe does
    sample = sample_health(
        leads_db.uri, heartbeat_table_identifier(leads_db.leads_table), samples=3, every_seconds=0.01
    )
    # Then no other session is active, and the heartbeat commit's latency is the latency sample
    assert sample.other_active_sessions == 0.0
    assert sample.seconds_per_row is not None and sample.seconds_per_row > 0

"""The governor's record stays within what a Standard SSM parameter holds, however many writer levels it learned."""

from __future__ import annotations

import json

from functions.worker.governor import GovernorLimits, HealthSample
from functions.worker.governor_switch import run_governor

# PutParameter refuses a Standard-tier value over 4096 characters ("Standard tier parameters support a maximum
# parameter value of 4096 characters"); the record is a Standard String parameter (infra/governor.py).
# https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html
STANDARD_PARAMETER_MAX_CHARACTERS = 4096


class FakeMapping:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency

    def get(self) -> int:
        return self.concurrency

    def set(self, concurrency: int) -> None:
        self.concurrency = concurrency


def test_a_governor_climbing_through_many_writer_levels_keeps_a_record_ssm_accepts() -> None:
    # Given a large cap, the governor starting at its floor, and an idle database whose per-row latency
    # (a full-precision float, as a timed commit gives) differs at each level
    limits = GovernorLimits(floor=0.5, cap=200, busy_sessions=4.0, latency_tolerance=0.5)
    mapping, kept = FakeMapping(2), {"text": json.dumps({"writers": 0.5, "baselines": [], "cap": 200})}

    def put_parameter(text: str) -> None:
        if len(text) > STANDARD_PARAMETER_MAX_CHARACTERS:
            raise ValueError("ValidationException: Standard tier parameters support a maximum of 4096 characters")
        kept["text"] = text

    # When it runs once a minute until it reaches the cap
    for run in range(500):
        sample = HealthSample(other_active_sessions=0.0, seconds_per_row=0.000123456789 * (1 + run / 997))
        run_governor(limits, True, lambda s=sample: s, lambda: kept["text"], put_parameter, mapping)
    # Then every record was accepted, and the governor got to the cap (it did not stall on a record it could not keep)
    assert json.loads(kept["text"])["writers"] == 200.0
    assert mapping.concurrency == 200

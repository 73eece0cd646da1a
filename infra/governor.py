"""The drain governor in AWS: the breaker's probe also sets the mapping's MaximumConcurrency from the DB's health."""

from __future__ import annotations

from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.breaker import DrainBreaker
from infra.config import PipelineSettings
from infra.worker import LeadWorker

# The record's value before the first run: the governor starts at the cap, as the mapping is deployed.
NOT_DECIDED = '{"writers": null}'


class DrainGovernor(Construct):
    """The governor's `record` (an SSM parameter), and the probe's settings and rights to keep it.

    It runs in the drain probe, after the breaker; the probe logs its errors and carries on, so its own alarm is
    DrainGovernorSilent. Its only extra right is this parameter. The worker reads the record to pace itself
    below 2 writers.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: PipelineSettings,
        breaker: DrainBreaker,
        worker: LeadWorker,
    ) -> None:
        super().__init__(scope, construct_id)
        self.record = ssm.StringParameter(
            self,
            "Record",
            string_value=NOT_DECIDED,
            description="Leadpipe drain governor: the writers it allows, why, its last changes (the probe writes it)",
        )
        probe = breaker.function
        self.record.grant_read(probe.role)
        self.record.grant_write(probe.role)
        environment = {
            "GOVERNOR_RECORD_PARAMETER": self.record.parameter_name,
            "MAX_CONCURRENCY": str(settings.max_concurrency),
            "GOVERNOR_FLOOR_WRITERS": str(settings.governor_floor_writers),
            "GOVERNOR_BUSY_SESSIONS": str(settings.governor_busy_sessions),
            "GOVERNOR_LATENCY_TOLERANCE_PERCENT": str(settings.governor_latency_tolerance_percent),
        }
        for name, value in environment.items():
            probe.function.add_environment(name, value)
        # Below 2 writers (AWS's least MaximumConcurrency) the worker paces itself: it reads the record only.
        self.record.grant_read(worker.function.role)
        worker.function.function.add_environment("GOVERNOR_RECORD_PARAMETER", self.record.parameter_name)

"""Lambda entry point of the drain breaker's probe: wiring only; the decisions are in drain.py and governor.py.

Runs every minute (EventBridge) and whenever the DatabaseUnavailable alarm changes state. It
connects with the worker's own credentials and network path, so "the probe got in" means the
worker would too. With the governor on (GOVERNOR_RECORD_PARAMETER set), it then sets the mapping's
MaximumConcurrency from the database's health (functions/worker/governor_switch.py).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from functions.contract import RedactingFormatter
from functions.contract.observability import METRICS_NAMESPACE, WORKER_SERVICE, stage_dimension
from functions.worker.aws_clients import bounded_client, secrets_provider
from functions.worker.credentials import database_conninfo
from functions.worker.drain import DrainState, run_breaker
from functions.worker.drain_switch import EventSourceMappingSwitch, database_answers, read_parameter
from functions.worker.governor import GovernorLimits
from functions.worker.governor_switch import EventSourceMappingConcurrency, run_governor, sample_health
from functions.worker.repository import heartbeat_table_identifier
from functions.worker.round_trip_deadline import round_trip_seconds
from functions.worker.settings import WorkerSettings

DRAIN_PROBE_SERVICE = "leadpipe-drain-probe"
logger = Logger(service=DRAIN_PROBE_SERVICE, logger_formatter=RedactingFormatter())
metrics = Metrics(namespace=METRICS_NAMESPACE, service=DRAIN_PROBE_SERVICE)
metrics.set_default_dimensions(**stage_dimension(os.environ))


class ProbeSettings(BaseModel):
    """Which mapping to switch and where the operator's pause record is."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    mapping_id: str = Field(alias="EVENT_SOURCE_MAPPING_ID", min_length=1)
    pause_parameter: str = Field(alias="DRAIN_PAUSE_PARAMETER", min_length=1)
    # The drain governor: off without its record parameter.
    governor_parameter: str | None = Field(default=None, alias="GOVERNOR_RECORD_PARAMETER")
    max_concurrency: int = Field(default=2, alias="MAX_CONCURRENCY", ge=2, le=1_000)
    governor_floor_writers: float = Field(default=0.25, alias="GOVERNOR_FLOOR_WRITERS", gt=0)
    governor_busy_sessions: float = Field(default=1.0, alias="GOVERNOR_BUSY_SESSIONS", gt=0)
    governor_latency_tolerance_percent: int = Field(default=100, alias="GOVERNOR_LATENCY_TOLERANCE_PERCENT", ge=0)

    def governor_limits(self) -> GovernorLimits:
        return GovernorLimits(
            floor=min(self.governor_floor_writers, self.max_concurrency),
            cap=self.max_concurrency,
            busy_sessions=self.governor_busy_sessions,
            latency_tolerance=self.governor_latency_tolerance_percent / 100,
        )


@cache
def get_settings() -> tuple[ProbeSettings, WorkerSettings]:
    environ = {k: v for k, v in os.environ.items() if v != ""}
    return ProbeSettings.model_validate(environ), WorkerSettings.from_env(environ)


@cache
def get_clients() -> tuple[Any, Any]:
    return bounded_client("lambda"), bounded_client("ssm")


def probe_database(worker: WorkerSettings, time_left_seconds: float) -> bool:
    """Whether the database takes and commits the worker's writes; a path that does not answer within the
    round-trip limit (statement timeout + margin, and before this invocation ends) counts as not answering.
    Stricter than the worker, whose round trip may take its whole invocation: a false hold costs time, not leads."""
    try:
        conninfo = database_conninfo(worker)
    except Exception as error:  # no credentials for the probe means none for the worker either: hold
        logger.warning("database credentials unavailable", extra={"error": type(error).__name__})
        return False
    # The deadline starts once connected, and connect_timeout may have been spent first.
    answer_within = round_trip_seconds(
        worker.round_trip_limit_seconds, time_left_seconds - worker.connect_timeout_seconds
    )
    if database_answers(conninfo, worker.leads_table, answer_within_seconds=answer_within):
        return True
    logger.warning("database not answering", extra={"answer_within_seconds": answer_within})
    return False


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    probe, worker = get_settings()
    lambda_client, ssm = get_clients()
    run = run_breaker(
        database_answers=lambda: probe_database(worker, context.get_remaining_time_in_millis() / 1000),
        read_pause_record=lambda: read_parameter(ssm, probe.pause_parameter),
        switch=EventSourceMappingSwitch(lambda_client, probe.mapping_id),
    )
    held = run.decision.state is DrainState.HELD_BY_BREAKER
    metrics.add_metric(name="DrainHeldByBreaker", unit=MetricUnit.Count, value=int(held))
    if held:
        # While the drain is held no batch runs, so the worker reports nothing: the probe speaks for it,
        # and the DatabaseUnavailable alarm stays in ALARM (no false OK) until the database answers.
        report_worker_outage()
    logger.info(
        "drain decided",
        extra={"state": run.decision.state.value, "switched": run.switched, "trigger": event.get("detail-type")},
    )
    answer = run.as_dict()
    if probe.governor_parameter:
        answer["governor"] = govern(probe, worker, lambda_client, ssm, receiving=run.decision.receiving)
    return answer


def govern(
    probe: ProbeSettings, worker: WorkerSettings, lambda_client: Any, ssm: Any, *, receiving: bool
) -> dict | None:
    """One governor run after the breaker's.

    A failure leaves the mapping at its last decision and is logged; DrainGovernorSilent pages if it lasts.
    """
    limits = probe.governor_limits()
    try:
        run = run_governor(
            limits,
            receiving,
            sample=lambda: sample_health(database_conninfo(worker), heartbeat_table_identifier(worker.leads_table)),
            read_record=lambda: read_parameter(ssm, probe.governor_parameter),
            write_record=lambda text: ssm.put_parameter(
                Name=probe.governor_parameter, Value=text, Type="String", Overwrite=True
            ),
            mapping=EventSourceMappingConcurrency(lambda_client, probe.mapping_id),
        )
    except Exception as error:
        logger.warning("drain governor failed", extra={"error": type(error).__name__})
        return None
    record = run.record
    metrics.add_metric(name="DrainWriters", unit=MetricUnit.Count, value=record.state.writers)
    metrics.add_metric(name="DrainWriterCap", unit=MetricUnit.Count, value=limits.cap)
    logger.info(
        "drain writers decided",
        extra={
            "writers": record.state.writers,
            "reason": record.reason,
            "mapping_concurrency": record.mapping_concurrency,
            "mapping_changed": run.mapping_changed,
        },
    )
    return {"writers": record.state.writers, "reason": record.reason, "mapping_concurrency": record.mapping_concurrency}


def report_worker_outage() -> None:
    """One `DatabaseUnavailable` datapoint on the worker's own metric (its service and stage)."""
    with single_metric(
        name="DatabaseUnavailable",
        unit=MetricUnit.Count,
        value=1,
        namespace=METRICS_NAMESPACE,
        default_dimensions={"service": WORKER_SERVICE, **stage_dimension(os.environ)},
    ):
        pass


def reset_for_tests() -> None:
    get_settings.cache_clear()
    get_clients.cache_clear()
    secrets_provider.cache_clear()

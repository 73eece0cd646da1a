"""Find the pipeline to talk to: the local runtime, or a deployed stack by its name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from functions.worker.governor_switch import governor_record_for_status
from infra.config import SettingsError, settings_from_file
from leadpipe.drain import AwsDrainControl, DrainControl, LocalDrainControl
from leadpipe.local.drain_governor import read_local_governor_state
from leadpipe.local.runtime import DEFAULT_DATA_DIR, RuntimeInfo, local_sqs_client

# Stack outputs of the drain breaker (infra/breaker.py); absent when the stack has no database.
DRAIN_OUTPUTS = ("WorkerEventSourceMappingId", "DrainPauseParameterName", "DrainProbeFunctionName")
GOVERNOR_OUTPUT = "DrainGovernorParameterName"  # infra/stack.py, when the drain governor is on
STACK_NAME_PREFIX = "Leadpipe-"  # app.py names each stage's stack Leadpipe-<stage>


class TargetNotFound(RuntimeError):
    """No running local pipeline, or no such stack; the message says what to do."""


@dataclass(frozen=True)
class PipelineTarget:
    description: str
    sqs: Any
    leads_queue_url: str
    dead_letter_queue_url: str
    database_url: str | None
    leads_table: str
    cloudwatch: Any | None = None
    api_url: str | None = None
    drain: DrainControl | None = None  # None: a stack without a database has no drain breaker
    governor: Callable[[], dict[str, Any] | None] | None = None  # the drain governor's last decision, if it runs

    @property
    def in_aws(self) -> bool:
        return self.cloudwatch is not None


def resolve_target(
    stack_name: str | None,
    data_dir: Path = DEFAULT_DATA_DIR,
    database_url: str | None = None,
    leads_table: str | None = None,
) -> PipelineTarget:
    if stack_name is None:
        try:
            info = RuntimeInfo.load(data_dir)
        except FileNotFoundError as error:
            raise TargetNotFound(str(error)) from None
        return PipelineTarget(
            description=f"local runtime, stage {info.stage}",
            sqs=local_sqs_client(info.sqs_endpoint_url),
            leads_queue_url=info.leads_queue_url,
            dead_letter_queue_url=info.dead_letter_queue_url,
            database_url=database_url or info.database_url,
            leads_table=info.leads_table,
            api_url=info.api_url,
            drain=LocalDrainControl(Path(info.data_dir)),
            governor=lambda: read_local_governor_state(Path(info.data_dir)),
        )
    outputs = stack_outputs(boto3.client("cloudformation"), stack_name)
    return PipelineTarget(
        description=f"stack {stack_name}",
        sqs=boto3.client("sqs"),
        leads_queue_url=outputs["QueueUrl"],
        dead_letter_queue_url=outputs["DeadLetterQueueUrl"],
        database_url=database_url,
        leads_table=leads_table or (deployed_leads_table(outputs, stack_name) if database_url else ""),
        cloudwatch=boto3.client("cloudwatch"),
        api_url=outputs.get("LeadsEndpoint"),
        drain=aws_drain_control(outputs),
        governor=aws_governor_status(outputs),
    )


def deployed_leads_table(outputs: dict[str, str], stack_name: str) -> str:
    """The stack's own leads table: its LeadsTable output, else (an older stack) its stage's in cdk.json."""
    if "LeadsTable" in outputs:
        return outputs["LeadsTable"]
    try:
        return settings_from_file(stack_name.removeprefix(STACK_NAME_PREFIX)).leads_table
    except SettingsError as error:
        raise TargetNotFound(f"stack {stack_name!r} names no leads table (no LeadsTable output): {error}") from None


def aws_drain_control(outputs: dict[str, str]) -> AwsDrainControl | None:
    if not all(name in outputs for name in DRAIN_OUTPUTS):
        return None
    mapping_id, parameter, probe = (outputs[name] for name in DRAIN_OUTPUTS)
    return AwsDrainControl(boto3.client("lambda"), boto3.client("ssm"), mapping_id, parameter, probe)


def aws_governor_status(outputs: dict[str, str]) -> Callable[[], dict[str, Any] | None] | None:
    """The governor's record in SSM (written by the probe), when the stack has the governor."""
    parameter = outputs.get(GOVERNOR_OUTPUT)
    if parameter is None:
        return None
    ssm = boto3.client("ssm")
    return lambda: governor_record_for_status(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except cloudformation.exceptions.ClientError as error:
        raise TargetNotFound(f"stack {stack_name!r} not found: {error.response['Error']['Message']}") from None
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

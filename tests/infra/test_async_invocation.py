"""Functions that AWS invokes asynchronously have bounded retries and a bounded event age, in every stage.

- Lambda retries a failed asynchronous invocation twice and keeps an event up to 6 hours unless the function's
  EventInvokeConfig says otherwise; throttled events wait in the queue until the event age runs out:
  https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
- EventBridge invokes a Lambda target asynchronously:
  https://docs.aws.amazon.com/lambda/latest/dg/with-eventbridge-scheduler.html
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html
- CloudFormation invokes a custom resource's function asynchronously and waits an hour for its answer:
  https://docs.aws.amazon.com/lambda/latest/dg/services-cloudformation.html
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes.html
"""

from __future__ import annotations

import re
from typing import Any

from tests.infra.conftest import SynthesizedStage

LAMBDA_DEFAULT_EVENT_AGE_SECONDS = 6 * 3600
CUSTOM_RESOURCE_WAIT_SECONDS = 3600


def function_id_of(value: Any, resources: dict[str, Any]) -> str | None:
    """The logical id of a function named by Ref or Fn::GetAtt, if it is one of this template's functions."""
    match value:
        case {"Ref": str(logical_id)} | {"Fn::GetAtt": [str(logical_id), "Arn"]}:
            return logical_id if resources.get(logical_id, {}).get("Type") == "AWS::Lambda::Function" else None
    return None


def asynchronously_invoked(stage: SynthesizedStage) -> dict[str, list[str]]:
    """Function id -> what invokes it asynchronously: EventBridge rules (with their schedule) and custom resources."""
    found: dict[str, list[str]] = {}
    for resource in stage.resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                if function := function_id_of(target["Arn"], stage.resources):
                    found.setdefault(function, []).append(props.get("ScheduleExpression", "event pattern"))
        custom = resource["Type"].startswith("Custom::") or resource["Type"] == "AWS::CloudFormation::CustomResource"
        if custom and (function := function_id_of(props.get("ServiceToken"), stage.resources)):
            found.setdefault(function, []).append("custom resource")
    return found


def invoke_config(stage: SynthesizedStage, function_id: str) -> dict[str, Any] | None:
    for resource in stage.resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::EventInvokeConfig" and props.get("FunctionName") == {"Ref": function_id}:
            assert props["Qualifier"] == "$LATEST"  # the version EventBridge and CloudFormation invoke
            return props
    return None


def schedule_seconds(expression: str) -> int | None:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours)\)", expression)
    if not match:
        return None
    return int(match.group(1)) * (60 if match.group(2).startswith("minute") else 3600)


def test_every_asynchronously_invoked_function_has_bounded_retries_and_event_age(stage: SynthesizedStage) -> None:
    # Given every function the stage's rules and custom resources invoke asynchronously
    invoked = asynchronously_invoked(stage)
    assert bool(invoked) == stage.settings.has_database  # the probe and the migration trigger come with a database
    for function_id, invokers in invoked.items():
        config = invoke_config(stage, function_id)
        # Then it overrides Lambda's defaults (2 retries, 6 hours) explicitly
        assert config is not None, f"{stage.settings.stage}: {function_id} ({invokers}) keeps Lambda's defaults"
        assert config["MaximumRetryAttempts"] == 0
        age = config["MaximumEventAgeInSeconds"]
        # And an event is dropped once the one waiting for it has moved on: the next scheduled run, or CloudFormation
        periods = [schedule_seconds(i) for i in invokers if schedule_seconds(i)]
        limit = min(periods) if periods else CUSTOM_RESOURCE_WAIT_SECONDS
        assert 60 <= age <= limit < LAMBDA_DEFAULT_EVENT_AGE_SECONDS, (function_id, age, invokers)


def test_the_probe_with_one_reserved_instance_never_queues_retries(stages: dict[str, SynthesizedStage]) -> None:
    # Given the prod probe: one reserved instance, invoked every minute and on the database alarm
    prod = stages["prod"]
    [(probe_id, probe)] = [
        (i, r)
        for i, r in prod.resources.items()
        if r["Properties"].get("Handler") == "functions.worker.probe_handler.lambda_handler"
    ]
    assert probe["Properties"]["ReservedConcurrentExecutions"] == 1
    # Then a failed or throttled run is not retried behind the next one
    config = invoke_config(prod, probe_id)
    assert (config["MaximumRetryAttempts"], config["MaximumEventAgeInSeconds"]) == (0, 60)

"""A function's bounded async config exists before anything can invoke it asynchronously.

CloudFormation creates resources that do not depend on each other in parallel, in any order
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-dependson.html). Until the
function's EventInvokeConfig exists, Lambda applies its defaults to an asynchronous invocation: two retries and
events kept up to 6 hours (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
So on a stack's first deploy the migration trigger's provider (invoked asynchronously by CloudFormation,
https://docs.aws.amazon.com/lambda/latest/dg/services-cloudformation.html) could run a failed migration again, and
the probe's first scheduled events could queue retries behind its one reserved instance.
"""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import SynthesizedStage
from tests.infra.template_queries import created_after, references


def asynchronous_invokers(resources: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Function id -> the rules and custom resources that invoke it asynchronously."""
    found: dict[str, list[str]] = {}
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        targets = [t["Arn"] for t in props.get("Targets", [])] if resource["Type"] == "AWS::Events::Rule" else []
        if resource["Type"].startswith("Custom::") or resource["Type"] == "AWS::CloudFormation::CustomResource":
            targets.append(props.get("ServiceToken"))
        for target in targets:
            for function_id in references(target):
                if resources.get(function_id, {}).get("Type") == "AWS::Lambda::Function":
                    found.setdefault(function_id, []).append(logical_id)
    return found


def invoke_config_id(resources: dict[str, dict[str, Any]], function_id: str) -> str:
    [config_id] = [
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::EventInvokeConfig"
        and resource["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return config_id


def test_no_asynchronous_invoker_is_created_before_the_functions_async_config(stage: SynthesizedStage) -> None:
    # Given every function a rule or a custom resource of the stage invokes asynchronously
    resources = stage.resources
    invoked = asynchronous_invokers(resources)
    assert bool(invoked) == stage.settings.has_database  # the probe and the migration trigger come with a database
    # Then each invoker is created only after the function's EventInvokeConfig
    early = [
        (invoker, function_id)
        for function_id, invokers in invoked.items()
        for invoker in invokers
        if invoke_config_id(resources, function_id) not in created_after(resources, invoker)
    ]
    assert early == []

"""A function in a VPC can be created: its role lets Lambda manage the function's network interfaces.

Lambda creates and deletes a VPC function's network interfaces with the function's execution role, and
CreateFunction fails without ec2:CreateNetworkInterface, ec2:DescribeNetworkInterfaces and
ec2:DeleteNetworkInterface (Describe only works on "Resource": "*"):
https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions
CDK adds AWSLambdaVPCAccessExecutionRole only to a role it creates itself (`FunctionProps.role`):
https://docs.aws.amazon.com/cdk/api/v2/python/aws_cdk.aws_lambda/FunctionProps.html
"""

from __future__ import annotations

from tests.infra.conftest import SynthesizedStage
from tests.infra.iam_evaluation import MANAGED_POLICIES, allowed, as_list, managed_policy_name, resolve

ENI_ACTIONS = ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface")
ANY_ENI = "arn:aws:ec2:eu-west-1:123456789012:network-interface/eni-0123456789abcdef0"


def statements_in_force_at_create(stage: SynthesizedStage, function_id: str) -> list[dict]:
    """What the role allows when CloudFormation creates the function: its inline and managed policies, and the
    AWS::IAM::Policy resources the function waits for (DependsOn); a policy created later does not count."""
    resources = stage.resources
    function = resources[function_id]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    role = resources[role_id]["Properties"]
    statements = [s for p in role.get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])]
    statements += [s for arn in role.get("ManagedPolicyArns", []) for s in MANAGED_POLICIES[managed_policy_name(arn)]]
    for dependency in as_list(function.get("DependsOn", [])):
        policy = resources[dependency]
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    return [resolve(s, resources) for s in statements]


def test_every_vpc_function_can_manage_its_network_interfaces(stage: SynthesizedStage) -> None:
    # Given each function of the stage that runs in a VPC
    vpc_functions = [
        i for i, r in stage.resources.items() if r["Type"] == "AWS::Lambda::Function" and "VpcConfig" in r["Properties"]
    ]
    assert bool(vpc_functions) == stage.settings.in_vpc, "a VPC stage puts its database functions in the VPC"
    for function_id in vpc_functions:
        statements = statements_in_force_at_create(stage, function_id)
        # When Lambda creates, describes and deletes the function's network interfaces at CreateFunction
        # Then the role allows each of them, on any interface ("*": Describe has no resource-level permission)
        for action in ENI_ACTIONS:
            assert allowed(statements, action, ANY_ENI), f"{stage.settings.stage}: {function_id} lacks {action}"
            assert allowed(statements, action, "*"), f"{stage.settings.stage}: {function_id} lacks {action} on *"


def test_the_check_fails_for_a_role_without_the_policy(stages: dict[str, SynthesizedStage]) -> None:
    # Given the prod worker's statements without its managed policy (the state of a role CDK did not create)
    prod = stages["prod"]
    [worker_id] = [
        i
        for i, r in prod.resources.items()
        if r["Properties"].get("Handler") == "functions.worker.handler.lambda_handler"
    ]
    role_id = prod.resources[worker_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    inline = [
        resolve(s, prod.resources)
        for p in prod.resources.values()
        if p["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    # Then no ENI action is allowed: the check above is not vacuous
    assert not any(allowed(inline, action, ANY_ENI) for action in ENI_ACTIONS)

"""Reading a synthesized template as AWS evaluates it: intrinsic values resolved for one account and region,
and IAM's rules for matching actions, resources and conditions.

IAM's policy evaluation logic (an explicit Deny wins, else any Allow, else an implicit deny):
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
Wildcards in Action and Resource (`*` any run of characters, `?` exactly one):
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
Condition operators (StringEquals, StringLike, ArnLike, ArnEquals, Bool):
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

ACCOUNT, REGION, PARTITION = "123456789012", "eu-west-1", "aws"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": "amazonaws.com",
}

# AWS managed policies our roles carry, as AWS documents them (the policy reference pages named beside each).
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaVPCAccessExecutionRole.html
    "service-role/AWSLambdaVPCAccessExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "Resource": "*",
        }
    ],
    # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaBasicExecutionRole.html
    "service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonAPIGatewayPushToCloudWatchLogs.html
    "service-role/AmazonAPIGatewayPushToCloudWatchLogs": [
        {
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogGroups",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
                "logs:GetLogEvents",
                "logs:FilterLogEvents",
            ],
            "Resource": "*",
        }
    ],
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def stand_in_arn(resources: Mapping[str, dict[str, Any]], logical_id: str) -> str:
    """What `Fn::GetAtt [id, Arn]` would be in our account: one ARN per resource, stable for matching."""
    kind = resources[logical_id]["Type"]
    service = kind.split("::")[1].lower()
    if kind == "AWS::Lambda::Function":
        return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"
    if kind == "AWS::SNS::Topic":
        return f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{logical_id}"
    if kind == "AWS::CloudWatch::Alarm":
        return f"arn:{PARTITION}:cloudwatch:{REGION}:{ACCOUNT}:alarm:{logical_id}"
    if kind == "AWS::Logs::LogGroup":
        name = resources[logical_id]["Properties"].get("LogGroupName", logical_id)
        return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{resolve(name, resources)}:*"
    return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}:{logical_id}"


def stand_in_ref(resources: Mapping[str, dict[str, Any]], logical_id: str) -> str:
    """What `Ref` returns: an ARN for topics, a name for functions, log groups and the rest."""
    kind = resources[logical_id]["Type"]
    if kind == "AWS::SNS::Topic":
        return stand_in_arn(resources, logical_id)
    if kind == "AWS::Logs::LogGroup":
        return resolve(resources[logical_id]["Properties"].get("LogGroupName", logical_id), resources)
    return logical_id


def resolve(value: Any, resources: Mapping[str, dict[str, Any]]) -> Any:
    """`value` with Ref, Fn::GetAtt, Fn::Join and Fn::Sub replaced by what they are in ACCOUNT and REGION."""
    match value:
        case {"Ref": str(name)}:
            return PSEUDO[name] if name in PSEUDO else stand_in_ref(resources, name)
        case {"Fn::GetAtt": [str(logical_id), "Arn"]}:
            return stand_in_arn(resources, logical_id)
        case {"Fn::GetAtt": [str(logical_id), str(attribute)]}:
            return f"{logical_id}.{attribute}"
        case {"Fn::Join": [str(separator), list(parts)]}:
            return separator.join(str(resolve(part, resources)) for part in parts)
        case {"Fn::Sub": str(text)}:
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(resolve({"Ref": m.group(1)}, resources)), text)
        case list():
            return [resolve(item, resources) for item in value]
        case dict():
            return {key: resolve(item, resources) for key, item in value.items()}
    return value


def wildcard_matches(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM's `*` and `?` wildcards (Action names compare without case, Resource ARNs with case)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    """Every operator block holds; a key missing from the request fails all but the ...IfExists operators."""
    for operator, keys in condition.items():
        for key, expected in keys.items():
            actual = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if actual is None:
                return False
            options = [str(e) for e in as_list(expected)]
            if operator in ("StringEquals", "ArnEquals"):
                ok = actual in options
            elif operator in ("StringLike", "ArnLike"):
                ok = any(wildcard_matches(option, actual) for option in options)
            elif operator == "Bool":
                ok = actual.lower() in (o.lower() for o in options)
            else:
                raise AssertionError(f"condition operator {operator} is not modelled here")
            if not ok:
                return False
    return True


def statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str], principal: str | None = None
) -> bool:
    """Whether `statement` (already resolved) covers this request."""
    if principal is not None and "Principal" in statement:
        allowed = statement["Principal"]
        if allowed != "*" and allowed != {"AWS": "*"}:
            services = as_list(allowed.get("Service", [])) if isinstance(allowed, dict) else []
            if principal not in services:
                return False
    if not any(wildcard_matches(a, action, case_sensitive=False) for a in as_list(statement.get("Action", []))):
        return False
    if not any(wildcard_matches(r, resource) for r in as_list(statement.get("Resource", []))):
        return False
    return condition_holds(statement.get("Condition", {}), context)


def allowed(
    statements: list[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
    principal: str | None = None,
) -> bool:
    """IAM's decision over one set of statements: no Deny applies and some Allow does."""
    context = context or {}
    applying = [s for s in statements if statement_applies(s, action, resource, context, principal)]
    return not any(s["Effect"] == "Deny" for s in applying) and any(s["Effect"] == "Allow" for s in applying)


def managed_policy_name(arn: Any) -> str:
    text = resolve(arn, {}) if not isinstance(arn, str) else arn
    return text.split(":policy/", 1)[1]


def role_statements(resources: Mapping[str, dict[str, Any]], role_id: str) -> list[dict[str, Any]]:
    """Every statement that applies to the role: inline, attached AWS::IAM::Policy, and its managed policies."""
    role = resources[role_id]["Properties"]
    statements: list[dict[str, Any]] = []
    for inline in role.get("Policies", []):
        statements += as_list(inline["PolicyDocument"]["Statement"])
    for policy in resources.values():
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements += as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    for arn in role.get("ManagedPolicyArns", []):
        statements += MANAGED_POLICIES[managed_policy_name(arn)]
    return [resolve(s, resources) for s in statements]

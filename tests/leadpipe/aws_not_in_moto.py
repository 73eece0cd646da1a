"""AWS answers moto does not give (an operation it has not implemented, a state it never shows), for a moto-backed
client: everything else that client calls still goes to moto.

Each answer is checked against botocore's model of the operation's output, as botocore's Stubber checks its
responses, so a canned answer has the shape AWS documents (the test cites the API reference page it copies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.validate import validate_parameters


def answer(
    target: Any,
    operation: str,
    response: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]],
    service: str | None = None,
) -> list[dict[str, Any]]:
    """From now on, `operation` (e.g. "GetAccountSettings") gets `response` (or `response(params)`) on `target`: a
    client, or a boto3 Session with the `service` name (every client it creates afterwards).

    Returns the list of the calls' parameters, in order.
    """
    calls: list[dict[str, Any]] = []
    events = target.meta.events if service is None else target.events
    model = target.meta.service_model if service is None else target.client(service).meta.service_model
    output_shape = model.operation_model(operation).output_shape

    def remember(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    def short_circuit(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = response(calls[-1]) if callable(response) else response
        validate_parameters(body, output_shape)
        return AWSResponse("https://aws.invalid/", 200, {}, None), body

    service_id = model.service_id.hyphenize()
    events.register(f"before-parameter-build.{service_id}.{operation}", remember)
    events.register(f"before-call.{service_id}.{operation}", short_circuit)
    return calls


def account_limit(total: int, unreserved: int) -> dict[str, Any]:
    """Lambda GetAccountSettings' answer (https://docs.aws.amazon.com/lambda/latest/api/API_GetAccountSettings.html)."""
    return {
        "AccountLimit": {
            "TotalCodeSize": 80_530_636_800,
            "CodeSizeUnzipped": 262_144_000,
            "CodeSizeZipped": 52_428_800,
            "ConcurrentExecutions": total,
            "UnreservedConcurrentExecutions": unreserved,
        },
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
    }

"""The local runtime is never kinder than AWS: the local gateway answers the CORS preflight as API Gateway does.

In AWS the preflight never reaches the function: `default_cors_preflight_options` makes API Gateway answer it
from a mock integration with static headers (https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-cors.html).
A browser sends a header only if the preflight allowed it, so a local preflight allowing more (Powertools adds
Authorization, X-Api-Key, X-Amz-*) would let a page work against `make run` and fail in the cloud.
"""

from __future__ import annotations

import re

from aws_cdk.assertions import Template

from infra.config import PipelineSettings
from leadpipe.local.gateway import ApiGatewayApp
from tests.leadpipe.local.gateway_requests import ACCEPTED, RecordingFunction, request

HEADER = "method.response.header."


def test_the_local_preflight_is_the_stacks_mock_integration(prod: Template, prod_settings: PipelineSettings) -> None:
    # Given the stack's preflights (on / and /leads, the same mock integration), and the local gateway for the same
    # origins in front of a function that records its calls
    methods = prod.find_resources("AWS::ApiGateway::Method", {"Properties": {"HttpMethod": "OPTIONS"}}).values()
    assert methods, "no preflight method"
    function = RecordingFunction(ACCEPTED)
    app = ApiGatewayApp(function, "prod", "http://127.0.0.1:9", allowed_origins=tuple(prod_settings.allowed_origins))
    first = prod_settings.allowed_origins[0]
    for method in methods:
        [answer] = method["Properties"]["Integration"]["IntegrationResponses"]
        in_aws = {
            name.removeprefix(HEADER).lower(): value.strip("'") for name, value in answer["ResponseParameters"].items()
        }
        echoed = set(re.findall(r'\$origin == "([^"]+)"', answer["ResponseTemplates"]["application/json"]))
        for origin in [*prod_settings.allowed_origins, "https://evil.example"]:
            # When a browser on that origin asks whether it may POST with the captcha pass and an API key
            status, headers, body = request(
                app,
                "OPTIONS",
                "/leads",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type,leadpipe-captcha-pass,x-api-key",
                },
            )
            # Then it gets API Gateway's answer: same status, same headers, the origin echoed only where AWS echoes it
            local = {name: value for name, value in headers.items() if name != "content-length"}
            assert (status, body) == (int(answer["StatusCode"]), b"")
            assert local == {**in_aws, "access-control-allow-origin": origin if origin in echoed else first}, origin
    # And the function never saw a preflight
    assert function.events == []

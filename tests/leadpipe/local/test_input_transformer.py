"""The local input transformer renders what EventBridge documents
(https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_InputTransformer.html): outside quotes a
placeholder becomes the value as JSON, inside a JSON string its text."""

from __future__ import annotations

import json

from infra.destinations import BodyTemplate
from leadpipe.local.input_transformer import render, value_at

EVENT = {"detail": {"instance": "i-0123", "status": 'run"ning', "count": 3, "lead": {"email": "a@example.com"}}}


def test_the_documented_example_renders_as_documented() -> None:
    # AWS's own example: '{"myInstance": <instance>,"myStatus": "<instance> is in state \"<status>\""}'
    template = BodyTemplate(
        input_paths={"instance": "$.detail.instance", "status": "$.detail.status"},
        input_template='{"myInstance": <instance>,"myStatus": "<instance> is in state \\"<status>\\""}',
    )
    assert json.loads(render(template, EVENT)) == {
        "myInstance": "i-0123",
        "myStatus": 'i-0123 is in state "run"ning"',
    }


def test_values_outside_quotes_are_json_and_missing_ones_null() -> None:
    template = BodyTemplate(
        input_paths={"n": "$.detail.count", "e": "$.detail.lead.email", "x": "$.detail.nothing"},
        input_template='{"n": <n>, "e": <e>, "x": <x>}',
    )
    assert json.loads(render(template, EVENT)) == {"n": 3, "e": "a@example.com", "x": None}


def test_an_input_path_sends_that_part_of_the_event() -> None:
    assert json.loads(render(BodyTemplate(input_path="$.detail"), EVENT)) == EVENT["detail"]
    assert value_at(EVENT, "$.detail.lead.email") == "a@example.com" and value_at(EVENT, "$.nope.x") is None

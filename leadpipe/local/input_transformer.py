"""EventBridge's input path and input transformer, for the local API destinations.

As the InputTransformer reference documents it
(https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_InputTransformer.html): each
`<name>` of `InputPathsMap` in the template is replaced by the value at that JSON path; outside a
JSON string the value goes in as JSON (a string with its quotes), inside one as its text.
Paths are the dot notation EventBridge supports (`$.detail.lead.email`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from infra.destinations import BodyTemplate

PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


def value_at(event: dict[str, Any], path: str) -> Any:
    """The value at a `$.a.b` path, None when any step is missing."""
    value: Any = event
    for step in path.removeprefix("$").strip(".").split(".") if path not in ("$", "") else []:
        if not isinstance(value, dict) or step not in value:
            return None
        value = value[step]
    return value


def render(template: BodyTemplate, event: dict[str, Any]) -> str:
    """The body EventBridge would send for `event`."""
    if template.input_path is not None:
        return json.dumps(value_at(event, template.input_path))
    if template.input_template is None:
        return json.dumps(event)
    values = {name: value_at(event, path) for name, path in template.input_paths.items()}
    out: list[str] = []
    in_string = escaped = False
    index = 0
    text = template.input_template
    while index < len(text):
        char = text[index]
        match = PLACEHOLDER.match(text, index) if char == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if in_string:
                out.append(json.dumps(value if isinstance(value, str) else json.dumps(value))[1:-1])
            else:
                out.append(json.dumps(value))
            index = match.end()
            continue
        if in_string and char == "\\" and not escaped:
            escaped = True
        else:
            if char == '"' and not escaped:
                in_string = not in_string
            escaped = False
        out.append(char)
        index += 1
    return "".join(out)

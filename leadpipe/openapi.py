"""The ingest API's OpenAPI 3.1 document, generated from the code: the `Lead` model's own schema,
the control fields and every answer the ingest gives. `docs/openapi.json` is its checked-in copy
(a test fails when they drift apart)."""

from __future__ import annotations

import json
from copy import deepcopy
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from functions.contract import lead_json_schema
from functions.contract.lead import Touch
from functions.ingest.captcha import PASS_HEADER
from functions.ingest.logic import MAX_FORM_FIELDS, REDIRECT_FIELD
from functions.ingest.settings import IngestSettings

ERROR_CODES = {
    "400": (
        "malformed_body",
        "The body is not valid JSON, UTF-8 or form data, or the Idempotency-Key header is invalid.",
    ),
    "413": ("payload_too_large", "The body is over the byte limit."),
    "415": ("unsupported_media_type", "Only application/json and application/x-www-form-urlencoded are accepted."),
    "422": ("invalid_lead", "One or more fields are invalid; each is named in error.fields."),
    "503": (
        "queue_unavailable",
        "The lead could not be queued; retry after Retry-After seconds. Never a 2xx in that case.",
    ),
    # Answered by API Gateway or AWS WAF before the ingest runs (infra/gateway_responses.py), or by the captcha check.
    "403": (
        "captcha_invalid",
        (
            "The captcha token was refused (a stage with captcha_provider), or AWS WAF blocked the request "
            "(`forbidden`). "
            "`captcha_expired`: the token was already verified or is too old (siteverify's `timeout-or-duplicate`); "
            "send the "
            "same lead again, same Idempotency-Key, with the widget's next token."
        ),
    ),
    "429": ("throttled", "The stage throttle or the per-IP rate rule; retry after Retry-After seconds."),
    "502": ("upstream_error", "The function failed or outran its timeout; retry after Retry-After seconds."),
    "504": ("timeout", "API Gateway's 29 s integration timeout; retry after Retry-After seconds."),
}
RETRYABLE_STATUSES = ("429", "502", "503", "504")


SCHEMA_REF = "#/components/schemas/{model}"
FORM_CUSTOM_FIELD = r"^custom(\[[A-Za-z][A-Za-z0-9_]{0,63}\]|\.[A-Za-z][A-Za-z0-9_]{0,63})$"
IDEMPOTENCY_KEY_HELP = (
    "A retry with the same key and the same lead gets the same lead_id (one row). The same key with a different "
    "lead gets a lead_id of its own: both are stored, never merged. Without a key, the same lead submitted again "
    "on the same UTC day gets the same lead_id."
)
CAPTCHA_PASS_HELP = (
    "Stages with a captcha: the pass a 503 gave for this lead. While valid it stands in for the captcha token; one "
    "for another lead, expired, tampered with or over 64 characters is ignored (the lead is not refused for it)."
)
CAPTCHA_PASS_ANSWER_HELP = (
    "Only after the captcha passed and the lead could not be queued: send it back on the retry of this same lead "
    "(same Idempotency-Key, same content) instead of re-verifying the single-use token. Valid 24 h."
)
API_DESCRIPTION = (
    "POST a lead from a landing-page form. Every text value, custom keys and values included, may hold only "
    "characters SQS can carry and PostgreSQL can store (tab, LF, CR, U+0020-U+D7FF, U+E000-U+FFFD, "
    "U+10000-U+10FFFF): any other (NUL, a lone surrogate, U+FFFE, U+FFFF) gets a 422 naming the field."
)


class Queued(BaseModel):
    """The 202 answer: SQS has the lead."""

    lead_id: UUID
    status: Literal["queued"]


class FieldProblem(BaseModel):
    field: str = Field(description="A dotted path such as `custom.size`.")
    code: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str = Field(description="Safe to show to the visitor.")
    fields: list[FieldProblem]


class Error(BaseModel):
    """Every error answer, the ingest's and API Gateway's alike."""

    error: ErrorDetail


def openapi_document(server_url: str = "/") -> dict[str, Any]:
    """The document `docs/openapi.json` holds: request bodies from `Lead`, answers from the models above."""
    lead = lead_json_schema()
    definitions = lead.pop("$defs", {})
    return {
        "openapi": "3.1.0",
        "info": {"title": "Leadpipe ingest", "version": "1", "description": API_DESCRIPTION},
        "servers": [{"url": server_url}],
        "paths": {
            "/leads": {
                "post": {
                    "operationId": "submitLead",
                    "summary": "Submit one lead",
                    "parameters": [
                        _header("Idempotency-Key", IDEMPOTENCY_KEY_HELP, minLength=1, maxLength=255),
                        _header(PASS_HEADER, CAPTCHA_PASS_HELP),
                    ],
                    "requestBody": {"required": True, "content": _request_bodies(lead)},
                    "responses": _responses(),
                }
            }
        },
        "components": {"schemas": {**_model_schemas(Queued, Error), **definitions}},
    }


def _header(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


def _request_bodies(lead: dict[str, Any]) -> dict[str, Any]:
    """The lead as JSON (no `_redirect`: fetch() follows no thank-you page) and as a plain form."""
    control = {
        REDIRECT_FIELD: {
            "type": "string",
            "maxLength": 2048,
            "description": "Form posts only: a thank-you page on an allowed origin (answer 303).",
        },
        IngestSettings(LEADS_QUEUE_URL="-").honeypot_field: {
            "type": "string",
            "description": "Honeypot: leave empty. When filled the answer is the usual one and the lead is dropped.",
        },
    }
    json_body = deepcopy(lead)
    json_body["properties"] = {**json_body["properties"], **control}
    json_body["properties"].pop(REDIRECT_FIELD)
    form_body = deepcopy(lead)
    form_body["properties"] = {**form_body["properties"], **control}
    form_body["properties"].pop("custom")  # a form sends custom[size]=XL
    form_body["patternProperties"] = {FORM_CUSTOM_FIELD: {"type": "string", "maxLength": 500}}
    # A form sends a touch as `first_touch[utm_source]=...`, one field per key the Touch object has.
    touch_keys = "|".join(Touch.model_fields)
    for touch in ("first_touch", "last_touch"):
        form_body["properties"].pop(touch)
        form_body["patternProperties"][rf"^{touch}(\[({touch_keys})\]|\.({touch_keys}))$"] = {
            "type": "string",
            "maxLength": 2048,
        }
    form_body["maxProperties"] = MAX_FORM_FIELDS
    return {"application/json": {"schema": json_body}, "application/x-www-form-urlencoded": {"schema": form_body}}


def _responses() -> dict[str, Any]:
    responses: dict[str, Any] = {
        "202": {"description": "SQS has the lead.", "content": _json_of(Queued)},
        "303": {
            "description": (
                "Form post with an allowed _redirect: SQS has the lead; the browser goes to the thank-you page."
            ),
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
    }
    for status, (code, description) in ERROR_CODES.items():
        responses[status] = {"description": f"`{code}`: {description}", "content": _json_of(Error)}
    for status in RETRYABLE_STATUSES:
        responses[status]["headers"] = {"Retry-After": {"schema": {"type": "string"}, "required": True}}
    responses["503"]["headers"][PASS_HEADER] = {
        "schema": {"type": "string"},
        "required": False,
        "description": CAPTCHA_PASS_ANSWER_HELP,
    }
    return responses


def _json_of(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": SCHEMA_REF.format(model=model.__name__)}}}


def _model_schemas(*models: type[BaseModel]) -> dict[str, Any]:
    """Each model's JSON Schema, and the models it nests, as OpenAPI components."""
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=SCHEMA_REF, mode="serialization")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def openapi_json() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"

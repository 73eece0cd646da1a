"""Before a campaign: `leadpipe plan`, and the API contract forms are built against (`leadpipe openapi`)."""

from __future__ import annotations

import json
from datetime import datetime

import click

from infra.config import settings_from_file
from leadpipe.cli.errors import CliError
from leadpipe.cli.options import NON_NEGATIVE, IsoDateTime, json_output


@click.command()
@click.option("--campaign", required=True, help="The campaign's name or code.")
@click.option("--launch", type=IsoDateTime(), help="Launch date and time, ISO 8601 (e.g. 2026-12-01T09:00).")
@click.option("--leads", type=NON_NEGATIVE, help="Expected leads in total.")
@click.option("--audience", type=NON_NEGATIVE, help="Audience size (with --conversion).")
@click.option("--conversion", type=float, help="Expected conversion, in percent of the audience.")
@click.option("--within-minutes", type=float, help="All leads arrive within this many minutes.")
@click.option("--peak-hour-share", type=float, help="The share (0-1] of leads arriving in the busiest hour.")
@click.option("--endpoint", help="The URL the campaign's forms post to.")
@click.option("--new-field", multiple=True, help="A field the campaign collects (repeatable).")
@click.option(
    "--store-ms-per-batch",
    type=float,
    default=50.0,
    show_default=True,
    help="Measured store time per batch (make bench).",
)
@click.option(
    "--event-source-ms-per-batch",
    type=float,
    help="What the SQS event source adds per batch (default: Lambda's hand-off, 20 ms).",
)
@click.option("--stage", default="dev", show_default=True, help="Whose settings from cdk.json to check.")
@json_output
def plan(
    campaign: str,
    launch: datetime | None,
    leads: float | None,
    audience: float | None,
    conversion: float | None,
    within_minutes: float | None,
    peak_hour_share: float | None,
    endpoint: str | None,
    new_field: tuple[str, ...],
    store_ms_per_batch: float,
    event_source_ms_per_batch: float | None,
    stage: str,
    as_json: bool,
) -> int:
    """Campaign launch review: capacity, lag, alarms and cost.

    The launch review, as markdown for the launch ticket (or --json): throttling, backlog, drain
    time and alarms for the stage's settings; the AWS quotas the campaign meets and what to ask
    AWS for; the recommended settings and the same campaign again with them; the cost by what
    reaches each service, per million leads, and the fixed monthly costs. Prices and quotas:
    leadpipe/prices/, with their as-of dates.
    """
    from leadpipe.plan import (
        LAMBDA_INVOKE_OVERHEAD_SECONDS,
        LaunchTicket,
        PlanError,
        load_price_table,
        plan_launch,
        to_markdown,
    )

    if event_source_ms_per_batch is None:
        event_source_ms_per_batch = LAMBDA_INVOKE_OVERHEAD_SECONDS * 1000
    try:
        ticket = LaunchTicket.from_inputs(
            campaign=campaign,
            leads=leads,
            audience=audience,
            conversion_percent=conversion,
            within_minutes=within_minutes,
            peak_hour_share=peak_hour_share,
            launch=launch,
            endpoint=endpoint,
            new_fields=new_field,
            store_seconds_per_batch=store_ms_per_batch / 1000,
            event_source_seconds_per_batch=event_source_ms_per_batch / 1000,
        )
        review = plan_launch(ticket, settings_from_file(stage), load_price_table())
    except PlanError as error:
        raise CliError(str(error)) from None
    print(json.dumps(review.as_dict(), indent=2) if as_json else to_markdown(review))
    return 0


@click.command()
def openapi() -> int:
    """Print the ingest API's OpenAPI 3.1 document (docs/openapi.json)."""
    from leadpipe.openapi import openapi_json

    print(openapi_json(), end="")
    return 0

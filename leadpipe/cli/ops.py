"""On-call's commands: `status`, `dlq list | redrive | purge`, `drain pause | resume | status`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from leadpipe.cli.errors import CliError
from leadpipe.cli.event_dlq import EventsQueueChoice, events_queue_options, list_events, purge_events, redrive_events
from leadpipe.cli.options import POSITIVE, TargetChoice, json_output, operating_system_user, target_options

if TYPE_CHECKING:
    from leadpipe.drain import DrainControl


@click.command()
@target_options
@json_output
def status(target: TargetChoice, as_json: bool) -> int:
    """Queue depth, in flight, DLQ, oldest message age and leads stored."""
    import psycopg

    from leadpipe.status import PipelineStatus, database_status, oldest_message_age_from_cloudwatch, queue_status

    pipeline = target.resolve()
    counts = queue_status(pipeline.sqs, pipeline.leads_queue_url, pipeline.dead_letter_queue_url)
    age = None
    if pipeline.cloudwatch is not None:
        age = oldest_message_age_from_cloudwatch(pipeline.cloudwatch, pipeline.leads_queue_url.rsplit("/", 1)[-1])
    report = PipelineStatus(source=pipeline.description, oldest_message_age_seconds=age, **counts)
    if pipeline.drain is not None:
        report.drain = pipeline.drain.status().as_dict()
    if pipeline.governor is not None:
        report.governor = pipeline.governor()
    if pipeline.database_url:
        try:
            for key, value in database_status(pipeline.database_url, pipeline.leads_table).items():
                setattr(report, key, value)
        except psycopg.OperationalError as error:  # during an outage is exactly when ops ask for status
            report.database_error = str(error).strip().splitlines()[0]
    print(json.dumps(report.as_dict(), indent=2) if as_json else report.as_text())
    return 0


@click.group()
def dlq() -> None:
    """Inspect, redrive or purge the dead-letter queue."""


@dlq.command("list")
@target_options
@click.option("--limit", type=POSITIVE, default=100, show_default=True, help="Show at most this many.")
@json_output
@events_queue_options
def dlq_list(target: TargetChoice, limit: int, as_json: bool, events_queue: EventsQueueChoice | None) -> int:
    """What is in the DLQ: age, receives, reason, masked lead."""
    if events_queue:
        return list_events(target, events_queue, limit, as_json)
    from leadpipe import dlq as dead_letters
    from leadpipe.status import queue_depth

    pipeline = target.resolve()
    total = queue_depth(pipeline.sqs, pipeline.dead_letter_queue_url)
    letters = dead_letters.peek(pipeline.sqs, pipeline.dead_letter_queue_url, limit)
    if as_json:
        print(json.dumps({"count": total, "messages": [letter.as_dict() for letter in letters]}, indent=2))
        return 0
    print(f"{total} message(s) in the DLQ of {pipeline.description}")
    for letter in letters:
        print(
            f"- {letter.message_id}  age {letter.age_seconds:.0f} s  received {letter.receive_count}x  "
            f"lead {letter.lead_id or '?'}  campaign {letter.campaign or '-'}  email {letter.email or '?'}\n"
            f"  reason: {letter.reason}"
        )
    return 0


@dlq.command()
@target_options
@click.option("--max-per-second", type=POSITIVE, help="Rate limit of the AWS message-move task.")
@click.option("--limit", type=POSITIVE, help="Locally: move at most this many.")
@events_queue_options
def redrive(
    target: TargetChoice, max_per_second: int | None, limit: int | None, events_queue: EventsQueueChoice | None
) -> int:
    """Move DLQ messages back to the leads queue (or events back to their destination or hand-off queue)."""
    if events_queue:
        return redrive_events(target, events_queue, limit, max_per_second)
    from leadpipe import dlq as dead_letters

    pipeline = target.resolve()
    queues = (pipeline.sqs, pipeline.dead_letter_queue_url, pipeline.leads_queue_url)
    if pipeline.in_aws:
        task = dead_letters.start_move_task(*queues, max_per_second)
        print(f"started an SQS message-move task to the leads queue: {task}")
    else:
        print(f"moved {dead_letters.move_messages(*queues, limit)} message(s) back to the leads queue")
    return 0


@dlq.command()
@target_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@events_queue_options
def purge(target: TargetChoice, yes: bool, events_queue: EventsQueueChoice | None) -> int:
    """Delete every message in the DLQ (asks first)."""
    if events_queue:
        return purge_events(target, events_queue, yes)
    from leadpipe import dlq as dead_letters
    from leadpipe.status import queue_depth

    pipeline = target.resolve()
    total = queue_depth(pipeline.sqs, pipeline.dead_letter_queue_url)
    if not yes:
        if not sys.stdin.isatty():
            raise CliError("purge deletes leads for good: confirm with --yes when not at a terminal")
        if not click.confirm(f"Delete all {total} message(s) in the DLQ of {pipeline.description}?"):
            print("nothing deleted")
            return 1
    dead_letters.purge(pipeline.sqs, pipeline.dead_letter_queue_url)
    print(f"purged {total} message(s)")
    return 0


@click.group()
def drain() -> None:
    """Pause, resume or show the worker's drain (the DB owner's maintenance window).

    The worker's drain is the queue's event source. `pause` stops receiving (a batch in hand is
    finished) and records who and why; `resume` hands it back to the drain breaker, which resumes
    once the database answers. In AWS this is the event source mapping's Enabled flag; locally, the
    poller.
    """


@drain.command()
@target_options
@click.option(
    "--who",
    default=operating_system_user,
    show_default="$USER, else the operating system's login name",
    help="Who is pausing.",
)
@click.option("--why", required=True, help="Why, e.g. 'DB maintenance until 02:00, ticket OPS-42'.")
def pause(target: TargetChoice, who: str, why: str) -> int:
    """Stop the drain until `leadpipe drain resume`; the breaker never resumes it."""
    from functions.worker.drain import OperatorPause, PauseRecordError
    from leadpipe.drain import DrainControlError

    try:
        record = OperatorPause.now(who, why)  # checked before any pipeline is looked for
        drain_status = _drain_control(target).pause(record)
    except (PauseRecordError, DrainControlError) as error:
        raise CliError(str(error)) from None
    print(f"drain {drain_status.as_text()}")
    return 0


@drain.command()
@target_options
def resume(target: TargetChoice) -> int:
    """End the operator's pause; the drain runs if the database answers, else the breaker holds it."""
    from leadpipe.drain import DrainControlError

    try:
        drain_status = _drain_control(target).resume()
    except DrainControlError as error:
        raise CliError(str(error)) from None
    print(f"drain {drain_status.as_text()}")
    return 0


@drain.command("status")
@target_options
@json_output
def drain_status(target: TargetChoice, as_json: bool) -> int:
    """Whether the drain is running, paused by an operator (who, why, since) or held by the breaker."""
    current = _drain_control(target).status()
    print(json.dumps(current.as_dict(), indent=2) if as_json else f"drain {current.as_text()}")
    return 0


def _drain_control(target: TargetChoice) -> DrainControl:
    pipeline = target.resolve()
    if pipeline.drain is None:
        raise CliError(
            f"{pipeline.description} has no drain breaker (it is deployed only with a database: set db_secret_arn)"
        )
    return pipeline.drain

"""`leadpipe db migrate | erase`: the leads database."""

from __future__ import annotations

import click

from leadpipe.cli.errors import CliError
from leadpipe.cli.options import DatabaseChoice, database_options


@click.group()
def db() -> None:
    """The leads database: migrations, and erasing one person's leads."""


@db.command()
@database_options()
def migrate(database: DatabaseChoice) -> int:
    """Apply the SQL migrations (what the deploy trigger runs)."""
    import psycopg

    from functions.worker.migrate import apply_migrations

    database_url, table = database.resolve()
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as connection:
            applied = apply_migrations(connection, table)
    except psycopg.OperationalError as error:
        raise CliError(f"cannot reach the database: {str(error).strip().splitlines()[0]}") from None
    print(f"applied to {table}: {', '.join(applied)}" if applied else f"{table} is up to date; nothing applied")
    return 0


@db.command()
@click.option("--email", required=True, help="The person's e-mail address (any case).")
@database_options(stage_required=True)
@click.option("--stack", help="The deployed stack whose DLQ to search (default: the local runtime's).")
def erase(email: str, database: DatabaseChoice, stack: str | None) -> int:
    """Delete every lead of one person (right to erasure), and their messages in the DLQ."""
    import psycopg

    from leadpipe.erasure import erase_from_dead_letters, erase_person, normalised_address
    from leadpipe.event_dead_letters import erase_from_events_lane
    from leadpipe.local.runtime import DEFAULT_DATA_DIR
    from leadpipe.targets import TargetNotFound, resolve_target

    try:
        normalised_address(email)
    except ValueError as error:
        raise CliError(str(error)) from None
    database_url, table = database.resolve()
    try:
        erased = erase_person(database_url, table, email)
    except psycopg.OperationalError as error:
        raise CliError(f"cannot reach the database: {str(error).strip().splitlines()[0]}") from None
    print(f"erased {erased} row(s) from {table}; a tombstone stops the person's leads still queued or redriven")
    try:
        target = resolve_target(stack, database.data_dir or DEFAULT_DATA_DIR, database_url, table)
    except TargetNotFound as error:
        # The tombstone already stops a redrive; the DLQ copy would only wait out its 14 days.
        print(f"DLQ not searched ({error}): run again with --stack NAME to delete the person's dead letters")
        return 0
    removed = erase_from_dead_letters(target.sqs, target.dead_letter_queue_url, email)
    print(f"deleted {removed} message(s) of that person from the DLQ of {target.description}")
    print(erase_from_events_lane(stack, database.data_dir or DEFAULT_DATA_DIR, email))
    return 0

"""`leadpipe run`: the whole pipeline on this machine."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from infra.config import settings_from_file
from leadpipe.cli.errors import CliError
from leadpipe.cli.options import PATH

if TYPE_CHECKING:
    from infra.config import PipelineSettings
    from leadpipe.local.runtime import RuntimeInfo


@click.command()
@click.option("--stage", default="dev", show_default=True, help="Whose settings from cdk.json to mirror.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=lambda: int(os.environ.get("PORT", "8080")),
    show_default="$PORT, else 8080",
    help="HTTP port.",
)
@click.option("--data-dir", type=PATH, default=None, help="Where PostgreSQL data and logs live.")
@click.option(
    "--events/--no-events", default=True, show_default=True, help="Run the stage's events lane (if events_enabled)."
)
@click.option("--events-to", metavar="URL", help="Deliver every destination's events here (default: a local receiver).")
def run(stage: str, port: int, data_dir: Path | None, events: bool, events_to: str | None) -> int:
    """Start the whole pipeline on this machine (Ctrl-C stops it)."""
    from leadpipe.local.runtime import DEFAULT_DATA_DIR, LocalPipeline, LocalPipelineOptions

    options = LocalPipelineOptions(
        settings=settings_from_file(stage),
        data_dir=data_dir or DEFAULT_DATA_DIR,
        port=port,
        database_url=os.environ.get("DATABASE_URL") or None,
        events=events,
        events_to=events_to,
        events_echo=sys.stdout,
    )
    pipeline = LocalPipeline(options)
    print("Starting Leadpipe locally: PostgreSQL, SQS (moto), ingest and worker ...", flush=True)
    try:
        info = pipeline.start()
    except OSError as error:
        pipeline.stop(drain_seconds=0)
        raise CliError(f"could not start: {error} (is port {port} free? try `make run PORT=8081`)") from None
    print(_started_text(info, options.settings), flush=True)
    wait_for_ctrl_c()
    print("\nStopping: no new leads; letting the worker drain the queue ...", flush=True)
    saved = pipeline.stop()
    where = info.postgres_data_dir or "the DATABASE_URL database"
    print(f"Stopped. Stored leads are kept in {where}.", flush=True)
    if saved:
        print(f"{saved} queued message(s) saved to {info.data_dir}; they are re-queued on the next `make run`.")
    return 0


def _events_text(info: RuntimeInfo, settings: PipelineSettings) -> str:
    if not info.events:
        return ""
    receiver = info.events["receiver_url"] or "--events-to"
    lines = [f"\n  events        LeadStored on a local EventBridge (moto), delivered to {receiver}, never faster than:"]
    lines += [f"                  {d.name}: {d.invocation_rate_per_second}/s" for d in settings.event_destinations]
    return "\n".join(lines)


def _started_text(info: RuntimeInfo, settings: PipelineSettings) -> str:
    database = "embedded, data in " + info.postgres_data_dir if info.postgres_data_dir else "DATABASE_URL"
    lead = '{"email": "jane@example.com", "campaign": "summersale20"}'
    return f"""
Leadpipe is running (stage {info.stage}).
  landing page  {info.landing_page_url}
  API           POST {info.api_url}
  SQS (moto)    {info.sqs_endpoint_url}  queue + DLQ, redrive after {settings.max_receive_count} receives
  PostgreSQL    {database}  table {info.leads_table}
  worker        at most {settings.max_concurrency} concurrent batches of {settings.batch_size}, \
window {settings.max_batching_window_seconds} s
  logs          {info.data_dir}/logs/{_events_text(info, settings)}

Submit a lead:
  curl -si -X POST {info.api_url} -H 'Content-Type: application/json' -d '{lead}'
See it stored:
  .venv/bin/leadpipe status

Ctrl-C stops everything."""


def wait_for_ctrl_c() -> None:
    """Block until SIGINT or SIGTERM. (Setting an Event from a signal handler can deadlock.)"""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abort the drain
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

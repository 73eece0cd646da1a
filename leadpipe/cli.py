"""`leadpipe`: run the pipeline locally and look after it, locally or in AWS."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from infra.config import SettingsError, settings_from_file


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            status = args.command(args)
        except (CliError, SettingsError) as error:
            print(f"leadpipe: {error}", file=sys.stderr)
            return 2
        except (BotoCoreError, ClientError) as error:
            print(f"leadpipe: AWS said: {error}", file=sys.stderr)
            return 2
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return status
    except BrokenPipeError:
        # The reader (`| head`) has gone: stop quietly, and keep Python's exit-time flush from complaining.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage mistakes are one line on stderr and exit 2, like every other error of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _describe_commands(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every subcommand's `--help` a description: its one-line help, unless it has its own."""
    for action in parser._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                if subparser.description is None and helps.get(name):
                    subparser.description = helps[name][0].upper() + helps[name][1:] + "."
                _describe_commands(subparser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="leadpipe", description=__doc__)
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="start the whole pipeline on this machine (Ctrl-C stops it)")
    run.add_argument("--stage", default="dev", help="whose settings from cdk.json to mirror (default: dev)")
    run.add_argument("--port", type=_port, default=int(os.environ.get("PORT", "8080")), help="HTTP port (default 8080)")
    run.add_argument("--data-dir", type=Path, default=None, help="where PostgreSQL data and logs live")
    run.set_defaults(command=command_run)

    status = commands.add_parser("status", help="queue depth, in flight, DLQ, leads stored")
    _target_arguments(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(command=command_status)

    drain = commands.add_parser(
        "drain",
        help="pause, resume or show the worker's drain (the DB owner's maintenance window)",
        description="The worker's drain: the queue's event source. `pause` stops receiving (a batch in hand is "
        "finished) and records who and why; `resume` hands it back to the drain breaker, which resumes once the "
        "database answers. In AWS this is the event source mapping's Enabled flag; locally, the poller.",
    )
    drain_commands = drain.add_subparsers(title="drain commands", required=True, metavar="ACTION")
    drain_pause = drain_commands.add_parser(
        "pause",
        help="stop receiving, recording who and why",
        description="Stop the drain until `leadpipe drain resume`; the breaker never resumes it.",
    )
    drain_pause.add_argument("--who", default=os.environ.get("USER"), help="who is pausing (default: $USER)")
    drain_pause.add_argument("--why", required=True, help="why, e.g. 'DB maintenance until 02:00, ticket OPS-42'")
    drain_resume = drain_commands.add_parser(
        "resume",
        help="end an operator's pause",
        description="End the operator's pause; the drain runs if the database answers, else the breaker holds it.",
    )
    drain_status = drain_commands.add_parser(
        "status",
        help="running, paused by an operator, or held by the breaker",
        description="Whether the drain is running, paused by an operator (who, why, since) or held by the breaker.",
    )
    drain_status.add_argument("--json", action="store_true", help="machine-readable output")
    for action, handler in (
        (drain_pause, command_drain_pause),
        (drain_resume, command_drain_resume),
        (drain_status, command_drain_status),
    ):
        _target_arguments(action)
        action.set_defaults(command=handler)

    dlq = commands.add_parser("dlq", help="inspect, redrive or purge the dead-letter queue")
    dlq_commands = dlq.add_subparsers(title="dlq commands", required=True, metavar="ACTION")
    dlq_list = dlq_commands.add_parser("list", help="what is in the DLQ: age, receives, reason, masked lead")
    _target_arguments(dlq_list)
    dlq_list.add_argument("--limit", type=_positive, default=100, help="show at most this many (default 100)")
    dlq_list.add_argument("--json", action="store_true", help="machine-readable output")
    dlq_list.set_defaults(command=command_dlq_list)
    redrive = dlq_commands.add_parser("redrive", help="move DLQ messages back to the leads queue")
    _target_arguments(redrive)
    redrive.add_argument("--max-per-second", type=_positive, help="rate limit of the AWS message-move task")
    redrive.add_argument("--limit", type=_positive, help="locally: move at most this many")
    redrive.set_defaults(command=command_dlq_redrive)
    purge = dlq_commands.add_parser("purge", help="delete every message in the DLQ (asks first)")
    _target_arguments(purge)
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(command=command_dlq_purge)

    plan = commands.add_parser(
        "plan",
        help="campaign launch review: capacity, lag, alarms and cost",
        description="The campaign launch review, as markdown for the launch ticket (or --json): throttling, backlog, drain time "
        "and alarms for the stage's settings; the AWS quotas the campaign meets and what to ask AWS for; the recommended "
        "settings and the same campaign again with them; the cost by what reaches each service, per million leads, and the "
        "fixed monthly costs. Prices and quotas: leadpipe/prices/, with their as-of dates.",
    )
    plan.add_argument("--campaign", required=True, help="the campaign's name or code")
    plan.add_argument("--launch", type=_datetime, help="launch date and time, ISO 8601 (e.g. 2026-12-01T09:00)")
    plan.add_argument("--leads", type=_non_negative, help="expected leads in total")
    plan.add_argument("--audience", type=_non_negative, help="audience size (with --conversion)")
    plan.add_argument("--conversion", type=float, help="expected conversion, in percent of the audience")
    plan.add_argument("--within-minutes", type=float, help="all leads arrive within this many minutes")
    plan.add_argument("--peak-hour-share", type=float, help="the share (0-1] of leads arriving in the busiest hour")
    plan.add_argument("--endpoint", help="the URL the campaign's forms post to")
    plan.add_argument("--new-field", action="append", default=[], help="a field the campaign collects (repeatable)")
    plan.add_argument(
        "--store-ms-per-batch", type=float, default=50.0, help="measured store time per batch (make bench)"
    )
    plan.add_argument(
        "--event-source-ms-per-batch",
        type=float,
        help="what the SQS event source adds per batch (default: Lambda's hand-off, 20 ms)",
    )
    plan.add_argument("--stage", default="dev", help="whose settings from cdk.json to check")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.set_defaults(command=command_plan)

    spike = commands.add_parser(
        "spike",
        help="send a burst of realistic leads and check every one was stored once",
        description="Send a bounded burst of realistic leads (the local runtime by default; a deployed API only with --url), "
        "then verify every accepted lead was stored exactly once. Locally, --db-outage-after stalls the embedded "
        "PostgreSQL for part of the burst; --report draws the API, the queue against the planner, the database writes "
        "and the writers.",
    )
    spike.add_argument("--url", help="the API to load; default: the local runtime. Required for anything else")
    spike.add_argument("--total", type=_positive, default=2_000, help="how many leads (at most 100,000; default 2,000)")
    spike.add_argument("--rate", type=float, help="leads per second (default: as fast as the connections go)")
    spike.add_argument("--concurrency", type=_positive, default=16, help="parallel connections (default 16)")
    spike.add_argument("--campaign", help="campaign code for the generated leads (default SPIKE<time>)")
    spike.add_argument("--timeout", type=float, default=600, help="stop sending after this many seconds (default 600)")
    spike.add_argument("--no-wait", action="store_true", help="do not wait for the queue to drain and verify")
    spike.add_argument("--report", type=Path, help="write a PNG time series here (and a CSV beside it)")
    spike.add_argument("--data-dir", type=Path, default=None, help="the local runtime's data folder")
    spike.add_argument("--stack", help="refused without --url: a deployed API is loaded only when named explicitly")
    spike.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="verify against this database")
    spike.add_argument("--json", action="store_true", help="machine-readable summary")
    spike.add_argument(
        "--db-outage-after",
        type=float,
        metavar="SECONDS",
        help="local only: stall the embedded PostgreSQL this many seconds into the burst",
    )
    spike.add_argument(
        "--db-outage-seconds", type=float, default=20.0, help="how long the database stays stalled (default 20)"
    )
    spike.add_argument(
        "--store-ms-per-batch",
        type=float,
        default=11.0,
        help="the planner's store time per batch for the picture (default: make bench's local handler, 11 ms)",
    )
    spike.add_argument(
        "--event-source-ms-per-batch",
        type=float,
        default=168.0,
        help="the planner's event-source cost per batch (default: make bench's local poller, 168 ms)",
    )
    spike.add_argument(
        "--calibrate",
        action="store_true",
        help="measure the local event source's cost per batch just before the burst, for the planner's line",
    )
    spike.set_defaults(command=command_spike)

    preflight = commands.add_parser(
        "preflight",
        help="before a deploy: check the target account can take the stage (read-only)",
        description="Read-only checks of the account and Region in your shell's credentials: Lambda concurrency, the "
        "API Gateway quota, the VPC's routes to the AWS APIs, the database secret and its key, the RDS Proxy, the "
        "alarm e-mail. One line per check; exit 2 if any fails. Step by step: docs/deploy.md.",
    )
    preflight.add_argument("--stage", required=True, help="whose settings from cdk.json to check")
    preflight.set_defaults(command=command_preflight)
    verify = commands.add_parser(
        "verify",
        help="after a deploy: prove the stack works end to end (a canary lead, every alarm's notification)",
        description="Prove a deployed stack works: the DLQ is empty, the drain runs, the drain probe's last run "
        "succeeded; a canary lead (under leadpipe-canary.example) posted to LeadsEndpoint is stored, then erased, "
        "checked from inside the VPC; each alarm is set to ALARM (OK if in ALARM) and its history must show the SNS "
        "action, then it is put back. On-call receives those notifications. One line per check; exit 2 if any fails.",
    )
    verify.add_argument("--stack", required=True, help="the deployed stack's name, e.g. Leadpipe-prod")
    verify.add_argument(
        "--stage", help="whose cdk.json settings (its captcha) apply; default: the name after 'Leadpipe-'"
    )
    verify.set_defaults(command=command_verify)
    openapi = commands.add_parser("openapi", help="print the ingest API's OpenAPI 3.1 document (docs/openapi.json)")
    openapi.set_defaults(command=lambda _: print(__import__("leadpipe.openapi").openapi.openapi_json(), end="") or 0)

    db = commands.add_parser("db", help="the leads database")
    db_commands = db.add_subparsers(title="db commands", required=True, metavar="ACTION")
    migrate = db_commands.add_parser("migrate", help="apply the SQL migrations (what the deploy trigger runs)")
    _database_arguments(migrate)
    migrate.set_defaults(command=command_db_migrate)
    erase = db_commands.add_parser("erase", help="delete every lead of one person (right to erasure)")
    erase.add_argument("--email", required=True, help="the person's e-mail address (any case)")
    erase.add_argument("--stage", required=True, help="whose leads table (from cdk.json) to erase from")
    erase.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="default: $DATABASE_URL, else the local runtime's",
    )
    erase.add_argument("--data-dir", type=Path, default=None, help="the local runtime's data folder")
    erase.add_argument("--table", default=None, help="schema.table (default: the stage's leads_table)")
    erase.add_argument("--stack", help="the deployed stack whose DLQ to search (default: the local runtime's)")
    erase.set_defaults(command=command_db_erase)
    return _describe_commands(parser)


def _database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="default: $DATABASE_URL, else the local runtime's",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="the local runtime's data folder")
    parser.add_argument("--table", default=None, help="schema.table (default: the stage's leads_table)")
    parser.add_argument("--stage", default="dev", help="whose settings to read the table name from")


def _target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", help="a deployed stack's name (default: the local runtime)")
    parser.add_argument("--data-dir", type=Path, default=None, help="the local runtime's data folder")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="read the leads table here")


def _datetime(value: str):  # noqa: ANN202 - a datetime
    from datetime import datetime

    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 date and time, e.g. 2026-12-01T09:00") from None


def _non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return number


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return number


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
    return port


def command_run(args: argparse.Namespace) -> int:
    from leadpipe.local.runtime import DEFAULT_DATA_DIR, LocalPipeline, LocalPipelineOptions

    options = LocalPipelineOptions(
        settings=settings_from_file(args.stage),
        data_dir=args.data_dir or DEFAULT_DATA_DIR,
        port=args.port,
        database_url=os.environ.get("DATABASE_URL") or None,
    )
    pipeline = LocalPipeline(options)
    print("Starting Leadpipe locally: PostgreSQL, SQS (moto), ingest and worker ...", flush=True)
    try:
        info = pipeline.start()
    except OSError as error:
        pipeline.stop(drain_seconds=0)
        raise CliError(f"could not start: {error} (is port {args.port} free? try `make run PORT=8081`)") from None

    settings = options.settings
    print(
        f"""
Leadpipe is running (stage {info.stage}).
  landing page  {info.landing_page_url}
  API           POST {info.api_url}
  SQS (moto)    {info.sqs_endpoint_url}  queue + DLQ, redrive after {settings.max_receive_count} receives
  PostgreSQL    {"embedded, data in " + info.postgres_data_dir if info.postgres_data_dir else "DATABASE_URL"}  table {info.leads_table}
  worker        at most {settings.max_concurrency} concurrent batches of {settings.batch_size}, window {settings.max_batching_window_seconds} s
  logs          {info.data_dir}/logs/

Submit a lead:
  curl -si -X POST {info.api_url} -H 'Content-Type: application/json' -d '{{"email": "jane@example.com", "campaign": "summersale20"}}'
See it stored:
  .venv/bin/leadpipe status

Ctrl-C stops everything.""",
        flush=True,
    )
    wait_for_ctrl_c()
    print("\nStopping: no new leads; letting the worker drain the queue ...", flush=True)
    saved = pipeline.stop()
    where = info.postgres_data_dir or "the DATABASE_URL database"
    print(f"Stopped. Stored leads are kept in {where}.", flush=True)
    if saved:
        print(f"{saved} queued message(s) saved to {info.data_dir}; they are re-queued on the next `make run`.")
    return 0


def _resolve(args: argparse.Namespace):  # noqa: ANN202 - a PipelineTarget
    from leadpipe.local.runtime import DEFAULT_DATA_DIR
    from leadpipe.targets import TargetNotFound, resolve_target

    try:
        return resolve_target(args.stack, args.data_dir or DEFAULT_DATA_DIR, args.database_url)
    except TargetNotFound as error:
        raise CliError(str(error)) from None


def command_dlq_list(args: argparse.Namespace) -> int:
    from leadpipe import dlq
    from leadpipe.status import queue_depth

    target = _resolve(args)
    total = queue_depth(target.sqs, target.dead_letter_queue_url)
    letters = dlq.peek(target.sqs, target.dead_letter_queue_url, args.limit)
    if args.json:
        print(json.dumps({"count": total, "messages": [letter.as_dict() for letter in letters]}, indent=2))
        return 0
    print(f"{total} message(s) in the DLQ of {target.description}")
    for letter in letters:
        print(
            f"- {letter.message_id}  age {letter.age_seconds:.0f} s  received {letter.receive_count}x  "
            f"lead {letter.lead_id or '?'}  campaign {letter.campaign or '-'}  email {letter.email or '?'}\n"
            f"  reason: {letter.reason}"
        )
    return 0


def command_dlq_redrive(args: argparse.Namespace) -> int:
    from leadpipe import dlq

    target = _resolve(args)
    if target.in_aws:
        task = dlq.start_move_task(
            target.sqs, target.dead_letter_queue_url, target.leads_queue_url, args.max_per_second
        )
        print(f"started an SQS message-move task to the leads queue: {task}")
    else:
        moved = dlq.move_messages(target.sqs, target.dead_letter_queue_url, target.leads_queue_url, args.limit)
        print(f"moved {moved} message(s) back to the leads queue")
    return 0


def command_dlq_purge(args: argparse.Namespace) -> int:
    from leadpipe import dlq
    from leadpipe.status import queue_depth

    target = _resolve(args)
    total = queue_depth(target.sqs, target.dead_letter_queue_url)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("purge deletes leads for good: confirm with --yes when not at a terminal")
        answer = input(f"Delete all {total} message(s) in the DLQ of {target.description}? Type 'purge' to confirm: ")
        if answer.strip() != "purge":
            print("nothing deleted")
            return 1
    dlq.purge(target.sqs, target.dead_letter_queue_url)
    print(f"purged {total} message(s)")
    return 0


def command_plan(args: argparse.Namespace) -> int:
    from leadpipe.plan import (
        LAMBDA_INVOKE_OVERHEAD_SECONDS,
        LaunchTicket,
        PlanError,
        load_price_table,
        plan_launch,
        to_markdown,
    )

    event_source_ms = (
        LAMBDA_INVOKE_OVERHEAD_SECONDS * 1000
        if args.event_source_ms_per_batch is None
        else args.event_source_ms_per_batch
    )
    try:
        ticket = LaunchTicket.from_inputs(
            campaign=args.campaign,
            leads=args.leads,
            audience=args.audience,
            conversion_percent=args.conversion,
            within_minutes=args.within_minutes,
            peak_hour_share=args.peak_hour_share,
            launch=args.launch,
            endpoint=args.endpoint,
            new_fields=tuple(args.new_field),
            store_seconds_per_batch=args.store_ms_per_batch / 1000,
            event_source_seconds_per_batch=event_source_ms / 1000,
        )
        plan = plan_launch(ticket, settings_from_file(args.stage), load_price_table())
    except PlanError as error:
        raise CliError(str(error)) from None
    print(json.dumps(plan.as_dict(), indent=2) if args.json else to_markdown(plan))
    return 0


def command_spike(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from leadpipe import spike
    from leadpipe.local.runtime import DEFAULT_DATA_DIR, RuntimeInfo, local_sqs_client

    info = None
    if args.url is None:
        if args.stack:
            raise CliError("a deployed stack is loaded only with its URL given explicitly: add --url <LeadsEndpoint>")
        try:
            info = RuntimeInfo.load(args.data_dir or DEFAULT_DATA_DIR)
        except FileNotFoundError as error:
            raise CliError(str(error)) from None
    url = args.url or info.api_url
    outage = None
    if args.db_outage_after is not None:
        if info is None:
            raise CliError(
                "--db-outage-after stalls the local runtime's own database: it is refused with --url (a deployed or foreign API)"
            )
        try:
            outage = spike.DatabaseOutage.for_local_runtime(
                info.postgres_data_dir, args.db_outage_after, args.db_outage_seconds
            )
        except spike.SpikeRefused as error:
            raise CliError(str(error)) from None
    campaign = (args.campaign or f"SPIKE{int(time.time())}").strip().upper()
    options = spike.SpikeOptions(
        url=url,
        total=args.total,
        concurrency=args.concurrency,
        campaign=campaign,
        rate_per_second=args.rate,
        timeout_seconds=args.timeout,
    )
    try:
        options.check()
    except spike.SpikeRefused as error:
        raise CliError(str(error)) from None

    database_url = args.database_url or (info.database_url if info else None)
    leads_table = info.leads_table if info else settings_from_file("dev").leads_table
    sqs = local_sqs_client(info.sqs_endpoint_url) if info else None
    stage_settings = settings_from_file(info.stage) if info else None
    event_source_ms = args.event_source_ms_per_batch
    if args.calibrate and stage_settings:
        event_source_ms = 1000 * spike.calibrate_local_event_source(
            sqs, stage_settings.batch_size, stage_settings.max_concurrency, stage_settings.max_batching_window_seconds
        )
        print(f"local event source, calibrated now: {event_source_ms:.0f} ms per batch", file=sys.stderr)
    sampler = spike.PipelineSampler(
        sqs, info.leads_queue_url if info else None, database_url, leads_table, campaign, outage=outage
    )
    begin = time.perf_counter()
    sampler.start(begin)
    quiet = args.json or not sys.stderr.isatty()
    try:
        if outage:
            outage.start(begin)
        with Progress(disable=quiet, transient=True) as progress:
            task = progress.add_task(f"POST {url}", total=options.total)
            requests, seconds = spike.send_spike(options, on_answer=lambda: progress.advance(task), begin=begin)
        if outage:
            outage.wait()  # the whole window, even when the burst ends first
    finally:
        if outage:
            outage.finish()
    summary = spike.summarise(requests, seconds)
    if not args.no_wait and database_url:
        summary.drained = _wait_for_drain(sampler, expected=summary.accepted, timeout=args.timeout)
        accepted_ids = {r.lead_id for r in requests if r.lead_id}
        summary.lost, summary.duplicates = spike.verify_stored(database_url, leads_table, campaign, accepted_ids)
    sampler.stop()
    if stage_settings:
        from leadpipe.plan import drain_rate_per_s

        summary.predicted_drain_per_s = round(
            drain_rate_per_s(stage_settings, args.store_ms_per_batch / 1000, event_source_ms / 1000), 1
        )
        summary.planner_event_source_ms_per_batch = round(event_source_ms, 1)
    summary.db_outage = outage.window if outage else None
    queued = [s.queued for s in sampler.samples if s.queued is not None]
    summary.max_queued = max(queued) if queued else None
    if summary.predicted_drain_per_s:
        summary.predicted_max_queued = round(
            max(
                spike.predicted_backlog(requests, sampler.samples, summary.predicted_drain_per_s, summary.db_outage)
                or [0]
            )
        )
    if summary.db_outage:
        summary.observed_drain_per_s = spike.observed_drain_after(sampler.samples, summary.db_outage[1])
    writers = [s for s in sampler.samples if s.worker_connections is not None]
    if writers:
        summary.max_worker_connections = max(s.worker_connections for s in writers)
        summary.max_active_writers = max(s.active_writers for s in writers)
    if args.report:
        cap = stage_settings.max_concurrency if stage_settings else None
        csv_path = spike.write_report(
            requests,
            sampler.samples,
            args.report,
            writer_cap=cap,
            predicted_drain_per_s=summary.predicted_drain_per_s,
            outage=summary.db_outage,
        )
        print(f"report: {args.report} and {csv_path}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        latency = summary.latency_ms
        print(
            f"sent {summary.sent} in {summary.seconds} s ({summary.rate_per_s}/s): accepted {summary.accepted}, "
            f"rejected {summary.rejected}, throttled {summary.throttled} (each retried after Retry-After), errors {summary.errors}\n"
            f"latency p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms\n"
            + (f"lost = {summary.lost}, duplicates = {summary.duplicates}\n" if summary.lost is not None else "")
            + (f"most worker DB connections seen: {summary.max_worker_connections}\n" if writers else "")
            + (
                f"database stalled from {summary.db_outage[0]} s to {summary.db_outage[1]} s; queue peaked at {summary.max_queued} "
                f"(planner {summary.predicted_max_queued}); drained afterwards at {summary.observed_drain_per_s}/s "
                f"(planner {summary.predicted_drain_per_s}/s)"
                if summary.db_outage
                else ""
            )
        )
    return 0 if not summary.lost and not summary.duplicates else 1


def _wait_for_drain(sampler, expected: int, timeout: float) -> bool:  # noqa: ANN001
    """Until every accepted lead of this campaign is stored (or the queue is empty and stays so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = sampler.latest()
        if latest and latest.stored is not None and latest.stored >= expected:
            return True
        time.sleep(0.5)
    return False


def _database(args: argparse.Namespace) -> tuple[str, str]:
    """(database URL, leads table) from the options, $DATABASE_URL, or the running local runtime."""
    from leadpipe.local.runtime import DEFAULT_DATA_DIR, RuntimeInfo

    table = args.table or settings_from_file(args.stage).leads_table
    if args.database_url:
        return args.database_url, table
    try:
        return RuntimeInfo.load(args.data_dir or DEFAULT_DATA_DIR).database_url, table
    except FileNotFoundError:
        raise CliError("no database: set DATABASE_URL (or --database-url), or start the local runtime") from None


def command_db_erase(args: argparse.Namespace) -> int:
    import psycopg

    from leadpipe.erasure import erase_from_dead_letters, erase_person, normalised_address
    from leadpipe.local.runtime import DEFAULT_DATA_DIR
    from leadpipe.targets import TargetNotFound, resolve_target

    try:
        normalised_address(args.email)
    except ValueError as error:
        raise CliError(str(error)) from None
    database_url, table = _database(args)
    try:
        erased = erase_person(database_url, table, args.email)
    except psycopg.OperationalError as error:
        raise CliError(f"cannot reach the database: {str(error).strip().splitlines()[0]}") from None
    print(f"erased {erased} row(s) from {table}; a tombstone stops the person's leads still queued or redriven")
    try:
        target = resolve_target(args.stack, args.data_dir or DEFAULT_DATA_DIR, database_url, table)
    except TargetNotFound as error:
        # The tombstone already stops a redrive; the DLQ copy would only wait out its 14 days.
        print(f"DLQ not searched ({error}): run again with --stack NAME to delete the person's dead letters")
        return 0
    removed = erase_from_dead_letters(target.sqs, target.dead_letter_queue_url, args.email)
    print(f"deleted {removed} message(s) of that person from the DLQ of {target.description}")
    return 0


def command_db_migrate(args: argparse.Namespace) -> int:
    import psycopg

    from functions.worker.migrate import apply_migrations

    database_url, table = _database(args)
    try:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as connection:
            applied = apply_migrations(connection, table)
    except psycopg.OperationalError as error:
        raise CliError(f"cannot reach the database: {str(error).strip().splitlines()[0]}") from None
    print(f"applied to {table}: {', '.join(applied)}" if applied else f"{table} is up to date; nothing applied")
    return 0


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


def _drain_control(args: argparse.Namespace):  # noqa: ANN202 - a DrainControl
    target = _resolve(args)
    if target.drain is None:
        raise CliError(
            f"{target.description} has no drain breaker (it is deployed only with a database: set db_secret_arn)"
        )
    return target.drain


def command_drain_pause(args: argparse.Namespace) -> int:
    from functions.worker.drain import OperatorPause, PauseRecordError
    from leadpipe.drain import DrainControlError

    try:
        pause = OperatorPause.now(args.who or "", args.why)  # checked before any pipeline is looked for
        status = _drain_control(args).pause(pause)
    except (PauseRecordError, DrainControlError) as error:
        raise CliError(str(error)) from None
    print(f"drain {status.as_text()}")
    return 0


def command_drain_resume(args: argparse.Namespace) -> int:
    from leadpipe.drain import DrainControlError

    try:
        status = _drain_control(args).resume()
    except DrainControlError as error:
        raise CliError(str(error)) from None
    print(f"drain {status.as_text()}")
    return 0


def command_drain_status(args: argparse.Namespace) -> int:
    status = _drain_control(args).status()
    print(json.dumps(status.as_dict(), indent=2) if args.json else f"drain {status.as_text()}")
    return 0


def command_status(args: argparse.Namespace) -> int:
    from leadpipe.status import PipelineStatus, database_status, oldest_message_age_from_cloudwatch, queue_status

    target = _resolve(args)
    counts = queue_status(target.sqs, target.leads_queue_url, target.dead_letter_queue_url)
    age = None
    if target.cloudwatch is not None:
        age = oldest_message_age_from_cloudwatch(target.cloudwatch, target.leads_queue_url.rsplit("/", 1)[-1])
    status = PipelineStatus(source=target.description, oldest_message_age_seconds=age, **counts)
    if target.drain is not None:
        status.drain = target.drain.status().as_dict()
    if target.database_url:
        import psycopg

        try:
            for key, value in database_status(target.database_url, target.leads_table).items():
                setattr(status, key, value)
        except psycopg.OperationalError as error:  # during an outage is exactly when ops ask for status
            status.database_error = str(error).strip().splitlines()[0]
    print(json.dumps(status.as_dict(), indent=2) if args.json else status.as_text())
    return 0


def command_preflight(args: argparse.Namespace) -> int:
    import boto3

    from leadpipe.preflight import AccountClients, run_preflight

    names = ("lambda", "apigateway", "ec2", "secretsmanager", "kms", "rds", "sns", "cloudformation")
    clients = AccountClients(*(boto3.client(name) for name in names))
    checks = run_preflight(settings_from_file(args.stage), clients, f"Leadpipe-{args.stage}")
    print("\n".join(check.line() for check in checks))
    return 0 if all(check.ok for check in checks) else 2


def command_verify(args: argparse.Namespace) -> int:
    import boto3

    from leadpipe.targets import TargetNotFound
    from leadpipe.verify import StackClients, http_post, verify_stack

    clients = StackClients(*(boto3.client(name) for name in ("cloudformation", "cloudwatch", "lambda", "sqs")))
    try:
        settings = settings_from_file(args.stage or args.stack.removeprefix("Leadpipe-"))
    except SettingsError:
        if args.stage:
            raise
        settings = None  # a stack named otherwise: no captcha secret to sign the canary's pass with
    captcha_secret = None
    if settings and settings.captcha_provider and settings.captcha_secret_arn:
        arn = settings.captcha_secret_arn
        captcha_secret = lambda: boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]  # noqa: E731
    try:
        checks = verify_stack(args.stack, clients, http_post, captcha_secret=captcha_secret)
    except TargetNotFound as error:
        raise CliError(str(error)) from None
    print("\n".join(check.line() for check in checks))
    return 0 if all(check.ok for check in checks) else 2


if __name__ == "__main__":
    sys.exit(main())

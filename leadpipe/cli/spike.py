"""`leadpipe spike`: a bounded burst of realistic leads, then proof that each was stored once."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from infra.config import PipelineSettings, settings_from_file
from leadpipe.cli.errors import CliError
from leadpipe.cli.options import PATH, POSITIVE, database_url_option, json_output

if TYPE_CHECKING:
    from leadpipe.spike import DatabaseOutage, PipelineSampler, Request, Sample, SpikeOptions, SpikeSummary


@dataclass(frozen=True)
class SpikeTarget:
    """Where the burst goes, and what the sampler and the check read."""

    url: str
    database_url: str | None
    leads_table: str | None  # None: an API given by --url without its --stage
    sqs: Any | None = None  # the local runtime's SQS client; None for a deployed or foreign API
    leads_queue_url: str | None = None
    postgres_data_dir: str | None = None
    settings: PipelineSettings | None = None  # the local runtime's stage
    data_dir: str | None = None  # the local runtime's data folder (its governor's state)


@click.command()
@click.option("--url", help="The API to load; default: the local runtime. Required for anything else.")
@click.option("--total", type=POSITIVE, default=2_000, show_default=True, help="How many leads (at most 100,000).")
@click.option("--rate", type=float, help="Leads per second (default: as fast as the connections go).")
@click.option("--concurrency", type=POSITIVE, default=16, show_default=True, help="Parallel connections.")
@click.option("--campaign", help="Campaign code for the generated leads (default SPIKE<time>).")
@click.option("--timeout", type=float, default=600, show_default=True, help="Stop sending after this many seconds.")
@click.option("--no-wait", is_flag=True, help="Do not wait for the queue to drain and verify.")
@click.option("--report", type=PATH, help="Write a PNG time series here (and a CSV beside it).")
@click.option("--data-dir", type=PATH, default=None, help="The local runtime's data folder.")
@click.option("--stack", help="Refused without --url: a deployed API is loaded only when named explicitly.")
@click.option("--stage", help="With --url: the stage in cdk.json whose leads table to verify.")
@database_url_option
@json_output
@click.option(
    "--db-outage-after",
    type=float,
    metavar="SECONDS",
    help="Local only: stall the embedded PostgreSQL this many seconds into the burst.",
)
@click.option(
    "--db-outage-seconds", type=float, default=20.0, show_default=True, help="How long the database stays stalled."
)
@click.option(
    "--store-ms-per-batch",
    type=float,
    default=11.0,
    show_default=True,
    help="The planner's store time per batch for the picture (make bench's local handler).",
)
@click.option(
    "--event-source-ms-per-batch",
    type=float,
    default=168.0,
    show_default=True,
    help="The planner's event-source cost per batch (make bench's local poller).",
)
@click.option(
    "--calibrate",
    is_flag=True,
    help="Measure the local event source's cost per batch just before the burst, for the planner's line.",
)
@click.option(
    "--main-app-clients",
    type=int,
    default=0,
    show_default=True,
    help="Local only: run the main application's stand-in (pgbench, N sessions) on the database beside the burst.",
)
@click.option(
    "--main-app-seconds",
    type=float,
    default=60.0,
    show_default=True,
    help="How long the main application's stand-in runs, from the burst's start.",
)
def spike(**options: Any) -> int:
    """Send a burst of realistic leads and check every one was stored once.

    Sends a bounded burst of realistic leads (the local runtime by default; a deployed API only
    with --url), then verifies every accepted lead was stored exactly once. Locally,
    --db-outage-after stalls the embedded PostgreSQL for part of the burst; --report draws the API,
    the queue against the planner, the database writes and the writers. --main-app-clients runs
    pgbench beside the burst, and the report gains its p99 with the drain governor's writers.
    """
    from leadpipe import spike as burst

    target = spike_target(options)
    outage = _database_outage(target, options)
    campaign = (options["campaign"] or f"SPIKE{int(time.time())}").strip().upper()
    spike_options = burst.SpikeOptions(
        url=target.url,
        total=options["total"],
        concurrency=options["concurrency"],
        campaign=campaign,
        rate_per_second=options["rate"],
        timeout_seconds=options["timeout"],
    )
    try:
        spike_options.check()
    except burst.SpikeRefused as error:
        raise CliError(str(error)) from None
    if target.database_url and target.leads_table is None:
        raise CliError("with --url, name the stage whose leads table to verify (--stage)")
    event_source_ms = _event_source_ms_per_batch(target, options)
    sampler = burst.PipelineSampler(
        target.sqs,
        target.leads_queue_url,
        target.database_url,
        target.leads_table,
        campaign,
        outage=outage,
        governor_writers=_governor_writers(target),
    )
    main_app = _main_app(target, options)
    requests, seconds = _send(spike_options, sampler, outage, quiet=options["as_json"] or not sys.stderr.isatty())
    summary = burst.summarise(requests, seconds)
    if not options["no_wait"] and target.database_url:
        summary.drained = _wait_for_drain(sampler, expected=summary.accepted, timeout=options["timeout"])
        accepted_ids = {r.lead_id for r in requests if r.lead_id}
        summary.lost, summary.duplicates = burst.verify_stored(
            target.database_url, target.leads_table, campaign, accepted_ids
        )
    sampler.stop()
    main_app_latencies: list[tuple[float, float]] = []
    if main_app is not None:
        load, epoch_of_perf_zero = main_app
        load.wait()
        result = load.result()
        summary.main_app = result.as_dict()
        # pgbench logs wall-clock times; the samples count from the spike's start on the performance counter
        main_app_latencies = [(at - epoch_of_perf_zero - sampler.begin, ms) for at, ms in result.latencies_ms]
    _compare_with_planner(summary, requests, sampler.samples, target, outage, options, event_source_ms)
    if options["report"]:
        cap = target.settings.max_concurrency if target.settings else None
        csv_path = burst.write_report(
            requests,
            sampler.samples,
            options["report"],
            writer_cap=cap,
            predicted_drain_per_s=summary.predicted_drain_per_s,
            outage=summary.db_outage,
            main_app_latencies=main_app_latencies,
        )
        print(f"report: {options['report']} and {csv_path}", file=sys.stderr)
    print(json.dumps(summary.as_dict(), indent=2) if options["as_json"] else _summary_text(summary))
    return 0 if not summary.lost and not summary.duplicates else 1


def _governor_writers(target: SpikeTarget) -> Any:
    """The local drain governor's writers, read from its state file (None when it is off or not local)."""
    if target.data_dir is None:
        return None
    from pathlib import Path

    from leadpipe.local.drain_governor import read_local_governor_state

    def writers() -> float | None:
        state = read_local_governor_state(Path(target.data_dir))
        return None if state is None else state["writers"]

    return writers


def _main_app(target: SpikeTarget, options: dict[str, Any]) -> tuple[Any, float] | None:
    """pgbench on the local runtime's database, started now: (the load, the wall-clock time of perf_counter's 0)."""
    if not options["main_app_clients"]:
        return None
    if target.postgres_data_dir is None or target.database_url is None:
        raise CliError("--main-app-clients runs pgbench on the local runtime's own embedded database only")
    from leadpipe.main_app_load import MainAppLoad, initialise

    initialise(target.database_url)
    load = MainAppLoad(target.database_url, options["main_app_clients"], options["main_app_seconds"])
    return load, time.time() - time.perf_counter()


def spike_target(options: dict[str, Any]) -> SpikeTarget:
    """The local runtime, unless --url names another API (then its table is its --stage's)."""
    from leadpipe.local.runtime import DEFAULT_DATA_DIR, RuntimeInfo, local_sqs_client

    if options["url"] is not None:
        table = settings_from_file(options["stage"]).leads_table if options["stage"] else None
        return SpikeTarget(url=options["url"], database_url=options["database_url"], leads_table=table)
    if options["stack"]:
        raise CliError("a deployed stack is loaded only with its URL given explicitly: add --url <LeadsEndpoint>")
    try:
        info = RuntimeInfo.load(options["data_dir"] or DEFAULT_DATA_DIR)
    except FileNotFoundError as error:
        raise CliError(str(error)) from None
    return SpikeTarget(
        url=info.api_url,
        database_url=options["database_url"] or info.database_url,
        leads_table=info.leads_table,
        sqs=local_sqs_client(info.sqs_endpoint_url),
        leads_queue_url=info.leads_queue_url,
        postgres_data_dir=info.postgres_data_dir,
        settings=settings_from_file(info.stage),
        data_dir=info.data_dir,
    )


def _database_outage(target: SpikeTarget, options: dict[str, Any]) -> DatabaseOutage | None:
    from leadpipe import spike as burst

    if options["db_outage_after"] is None:
        return None
    if target.sqs is None:
        raise CliError(
            "--db-outage-after stalls the local runtime's own database: "
            "it is refused with --url (a deployed or foreign API)"
        )
    try:
        return burst.DatabaseOutage.for_local_runtime(
            target.postgres_data_dir, options["db_outage_after"], options["db_outage_seconds"]
        )
    except burst.SpikeRefused as error:
        raise CliError(str(error)) from None


def _event_source_ms_per_batch(target: SpikeTarget, options: dict[str, Any]) -> float:
    """The planner's event-source cost per batch: as given, or measured now on the local runtime."""
    from leadpipe import spike as burst

    if not (options["calibrate"] and target.settings):
        return options["event_source_ms_per_batch"]
    settings = target.settings
    milliseconds = 1000 * burst.calibrate_local_event_source(
        target.sqs, settings.batch_size, settings.max_concurrency, settings.max_batching_window_seconds
    )
    print(f"local event source, calibrated now: {milliseconds:.0f} ms per batch", file=sys.stderr)
    return milliseconds


def _send(
    spike_options: SpikeOptions, sampler: PipelineSampler, outage: DatabaseOutage | None, *, quiet: bool
) -> tuple[list[Request], float]:
    """The burst itself, with the sampler running and the outage (if any) over its whole window."""
    from rich.progress import Progress

    from leadpipe import spike as burst

    begin = time.perf_counter()
    sampler.start(begin)
    try:
        if outage:
            outage.start(begin)
        with Progress(disable=quiet, transient=True) as progress:
            task = progress.add_task(f"POST {spike_options.url}", total=spike_options.total)
            result = burst.send_spike(spike_options, on_answer=lambda: progress.advance(task), begin=begin)
        if outage:
            outage.wait()  # the whole window, even when the burst ends first
    finally:
        if outage:
            outage.finish()
    return result


def _compare_with_planner(
    summary: SpikeSummary,
    requests: list[Request],
    samples: list[Sample],
    target: SpikeTarget,
    outage: DatabaseOutage | None,
    options: dict[str, Any],
    event_source_ms: float,
) -> None:
    """Fill in what the planner predicted next to what the sampler saw (queue peak, drain rate, writers)."""
    from leadpipe import spike as burst

    if target.settings:
        from leadpipe.plan import drain_rate_per_s

        drain = drain_rate_per_s(target.settings, options["store_ms_per_batch"] / 1000, event_source_ms / 1000)
        summary.predicted_drain_per_s = round(drain, 1)
        summary.planner_event_source_ms_per_batch = round(event_source_ms, 1)
    summary.db_outage = outage.window if outage else None
    queued = [s.queued for s in samples if s.queued is not None]
    summary.max_queued = max(queued) if queued else None
    if summary.predicted_drain_per_s:
        backlog = burst.predicted_backlog(requests, samples, summary.predicted_drain_per_s, summary.db_outage)
        summary.predicted_max_queued = round(max(backlog or [0]))
    if summary.db_outage:
        summary.observed_drain_per_s = burst.observed_drain_after(samples, summary.db_outage[1])
    writers = [s for s in samples if s.worker_connections is not None]
    if writers:
        summary.max_worker_connections = max(s.worker_connections for s in writers)
        summary.max_active_writers = max(s.active_writers for s in writers)


def _summary_text(summary: SpikeSummary) -> str:
    latency = summary.latency_ms
    lines = [
        f"sent {summary.sent} in {summary.seconds} s ({summary.rate_per_s}/s): accepted {summary.accepted}, "
        f"rejected {summary.rejected}, throttled {summary.throttled} (each retried after Retry-After), "
        f"errors {summary.errors}",
        f"latency p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms",
    ]
    if summary.lost is not None:
        lines.append(f"lost = {summary.lost}, duplicates = {summary.duplicates}")
    if summary.max_worker_connections is not None:
        lines.append(f"most worker DB connections seen: {summary.max_worker_connections}")
    if summary.db_outage:
        lines.append(
            f"database stalled from {summary.db_outage[0]} s to {summary.db_outage[1]} s; queue peaked at "
            f"{summary.max_queued} (planner {summary.predicted_max_queued}); drained afterwards at "
            f"{summary.observed_drain_per_s}/s (planner {summary.predicted_drain_per_s}/s)"
        )
    return "\n".join(lines)


def _wait_for_drain(sampler: PipelineSampler, expected: int, timeout: float) -> bool:
    """Until every accepted lead of this campaign is stored (or the time is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = sampler.latest()
        if latest and latest.stored is not None and latest.stored >= expected:
            return True
        time.sleep(0.5)
    return False

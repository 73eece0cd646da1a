"""`make bench`: every figure is a ratio against a baseline measured side by side in this run.

Medians over repeated, interleaved rounds (the machines are noisy). Results go to
bench/results/latest.json with the machine's details. Never part of `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
import pydantic_core

from bench.main_app import cpu_seconds, main_app_under_drain, worker_conninfo
from functions.contract import Lead, LeadEnvelope, Source
from functions.ingest.publisher import message_attributes
from functions.worker.migrate import apply_migrations
from functions.worker.repository import LEAD_COLUMNS, ConnectionProvider, LeadRepository, connect, lead_row
from infra.config import REPO_ROOT, settings_from_file
from leadpipe.embedded_postgres import start_embedded_postgres
from leadpipe.local.lambda_pool import LocalLambdaContext, function_timeout_seconds

if TYPE_CHECKING:
    from leadpipe.local.runtime import RuntimeInfo
    from leadpipe.spike import PipelineSampler, SpikeSummary

RESULTS = REPO_ROOT / "bench" / "results" / "latest.json"
ROUNDS = 3
SECTIONS = ("store", "worker_handler", "main_app", "ingest", "sqs_client", "cold_start", "local_runtime", "moto_sqs")
STORE_ROWS = {10: 5_000, 100: 20_000, 1000: 40_000}
ERASED_PEOPLE = 100_000


def envelopes(count: int, tag: str) -> list[LeadEnvelope]:
    now = datetime.now(UTC)
    return [
        LeadEnvelope(
            lead_id=uuid.uuid4(),
            received_at=now,
            source=Source(user_agent="bench", origin="https://www.example.com"),
            lead=Lead(
                email=f"{tag}{i}@example.com",
                first_name="Ada",
                company="Analytical Engines",
                campaign="BENCH",
                consent=True,
                custom={"size": "XL"},
            ),
        )
        for i in range(count)
    ]


def row_values(envelope: LeadEnvelope) -> tuple[object, ...]:
    """The row the store path writes, as positional values for INSERT and COPY."""
    row = lead_row(envelope)
    return tuple(json.dumps(row[name]) if kind == "jsonb" else row[name] for name, kind in LEAD_COLUMNS)


def chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def bench_context(memory_limit_in_mb: int) -> LocalLambdaContext:
    """A fresh invocation's context, as the local runtime builds one: its time left counts down from the function's
    timeout."""
    return LocalLambdaContext(
        function_name="bench",
        aws_request_id="bench",
        memory_limit_in_mb=memory_limit_in_mb,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:bench",
        timeout_seconds=function_timeout_seconds(os.environ),
    )


# --- 1 and 2: the worker's store path -----------------------------------------------------------


def store_rates(uri: str, table: str, batch_size: int, rows: int) -> dict[str, float]:
    """rows/s of: the real store path, the same statement without the erasure check, one
    INSERT+COMMIT per row, and COPY per batch; and the database CPU per row of the store path and COPY
    (their backends' own CPU time, from /proc)."""
    columns = ", ".join(name for name, _ in LEAD_COLUMNS)
    placeholders = ", ".join(["%s"] * len(LEAD_COLUMNS))
    single_insert = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT (lead_id) DO NOTHING"
    # The store path's statement before tombstones (migration 0002): what the erasure check costs.
    definitions = ", ".join(f"{name} {kind}" for name, kind in LEAD_COLUMNS)
    unchecked_insert = (
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM json_to_recordset(%s::json) AS batch({definitions})"
        " ON CONFLICT (lead_id) DO NOTHING"
    )
    runs = {
        "store": lambda: _run_store(uri, table, batch_size, rows),
        "unchecked": lambda: _run_unchecked(uri, unchecked_insert, batch_size, rows),
        "naive": lambda: _run_naive(uri, single_insert, rows),
        "copy": lambda: _run_copy(uri, table, columns, batch_size, rows),
    }
    measured: dict[str, list[float]] = {"store": [], "unchecked": [], "naive": [], "copy": []}
    database_cpu: dict[str, list[float]] = {"store": [], "copy": []}  # the backend's CPU microseconds per row
    for _ in range(ROUNDS):
        for name, run in runs.items():
            rate, cpu_us_per_row = run()
            measured[name].append(rate)
            if cpu_us_per_row is not None:
                database_cpu[name].append(cpu_us_per_row)
            with psycopg.connect(uri, autocommit=True) as connection:
                connection.execute(f"TRUNCATE {table}")
    return {
        **{name: statistics.median(values) for name, values in measured.items()},
        **{f"{name}_db_cpu_us_per_lead": statistics.median(values) for name, values in database_cpu.items()},
    }


def _run_store(uri: str, table: str, batch_size: int, rows: int) -> tuple[float, float]:
    """(rows/s, the backend's CPU microseconds per row) of the worker's store path."""
    batches = chunks(envelopes(rows, "s"), batch_size)
    with connect(worker_conninfo(uri)) as connection:  # the worker's own, so its backend's CPU can be read
        store = LeadRepository(ConnectionProvider(lambda: connection), table)
        backend, started = connection.info.backend_pid, time.perf_counter()
        cpu_before = cpu_seconds(backend)
        for batch in batches:
            store.store_batch(batch)
        rate = rows / (time.perf_counter() - started)
        return rate, (cpu_seconds(backend) - cpu_before) / rows * 1e6


def _run_unchecked(uri: str, unchecked_insert: str, batch_size: int, rows: int) -> tuple[float, None]:
    batches = chunks(envelopes(rows, "u"), batch_size)
    with connect(uri) as connection:  # the worker's own: autocommit, prepared after five runs
        started = time.perf_counter()
        for batch in batches:  # encoded inside the timing, as the store path does
            connection.execute(unchecked_insert, (pydantic_core.to_json([lead_row(e) for e in batch]).decode(),))
        return rows / (time.perf_counter() - started), None


def _run_naive(uri: str, single_insert: str, rows: int) -> tuple[float, None]:
    naive_rows = min(rows, 2_000)
    values = [row_values(e) for e in envelopes(naive_rows, "n")]
    with psycopg.connect(uri, autocommit=True) as connection:
        started = time.perf_counter()
        for row in values:
            connection.execute(single_insert, row)  # autocommit: one transaction per row
        return naive_rows / (time.perf_counter() - started), None


def _run_copy(uri: str, table: str, columns: str, batch_size: int, rows: int) -> tuple[float, float]:
    """(rows/s, the backend's CPU microseconds per row) of COPY, one transaction per batch."""
    batches = [[row_values(e) for e in b] for b in chunks(envelopes(rows, "c"), batch_size)]
    with psycopg.connect(uri, autocommit=True) as connection:
        backend, started = connection.info.backend_pid, time.perf_counter()
        cpu_before = cpu_seconds(backend)
        for batch in batches:
            with connection.transaction(), connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
        rate = rows / (time.perf_counter() - started)
        return rate, (cpu_seconds(backend) - cpu_before) / rows * 1e6


def handler_vs_store(uri: str, table: str, rows: int = 5_000, batch_size: int = 100) -> dict[str, float]:
    """The worker Lambda end to end (SQS event in, batchItemFailures out) vs the bare store path."""
    # Set before the import: the handler's logger reads its level once, as in Lambda.
    os.environ.update(
        DATABASE_URL=uri, LEADS_TABLE=table, POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="WARNING"
    )
    from functions.worker import handler as worker
    from tests.events import sqs_event

    worker.reset_for_tests()
    repository = LeadRepository(ConnectionProvider(lambda: connect(uri)), table)

    def run_handler(event: dict[str, Any]) -> None:
        assert worker.lambda_handler(event, bench_context(memory_limit_in_mb=512)) == {"batchItemFailures": []}

    measured: dict[str, list[float]] = {"handler": [], "store": []}
    for _ in range(ROUNDS):
        events = [sqs_event([e.to_message_body() for e in batch]) for batch in chunks(envelopes(rows, "h"), batch_size)]
        batches = chunks(envelopes(rows, "b"), batch_size)
        seconds = {"handler": 0.0, "store": 0.0}
        # Batch by batch, taking turns to go first: both see the same machine and the same table.
        # Powertools still prints its EMF buffer when it fills, metrics disabled or not.
        with contextlib.redirect_stdout(io.StringIO()):
            for index, (event, batch) in enumerate(zip(events, batches, strict=True)):
                pair = (
                    ("handler", functools.partial(run_handler, event)),
                    ("store", functools.partial(repository.store_batch, batch)),
                )
                for name, run in pair if index % 2 else reversed(pair):
                    started = time.perf_counter()
                    run()
                    seconds[name] += time.perf_counter() - started
        for name, spent in seconds.items():
            measured[name].append(rows / spent)
        with psycopg.connect(uri, autocommit=True) as connection:
            connection.execute(f"TRUNCATE {table}")
    return {name: statistics.median(values) for name, values in measured.items()}


# --- 3: ingest cost per request ------------------------------------------------------------------


def ingest_cost(requests: int = 3_000) -> dict[str, float]:
    """Our ingest handler vs json.loads + send, both on an in-memory SQS stub: only our code is timed."""
    os.environ.update(
        LEADS_QUEUE_URL="https://sqs.invalid/q",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        ALLOWED_ORIGINS="https://www.example.com",
    )
    from functions.ingest import handler as ingest
    from tests.events import api_event

    class StubSqs:
        def send_message(self, **_: Any) -> dict[str, str]:
            return {"MessageId": "m"}

    stub = StubSqs()
    ingest.reset_for_tests()
    ingest.get_sqs_client = lambda: stub  # type: ignore[assignment]
    event = api_event(
        json.dumps({"email": "Jane.Doe@Example.com", "first_name": "Jane", "campaign": "summersale20", "consent": True})
    )

    def baseline(raw_event: dict[str, Any]) -> dict[str, Any]:
        body = json.loads(raw_event["body"])
        stub.send_message(QueueUrl="q", MessageBody=json.dumps(body))
        return {"statusCode": 202, "body": "{}"}

    def validating_baseline(raw_event: dict[str, Any]) -> dict[str, Any]:
        """The baseline plus the one step the mission requires of every ingest: the contract's
        pydantic validation (e-mail included). It shows how much of our cost that step is."""
        lead = Lead.model_validate(json.loads(raw_event["body"]))
        stub.send_message(QueueUrl="q", MessageBody=lead.model_dump_json())
        return {"statusCode": 202, "body": "{}"}

    timings: dict[str, list[float]] = {"ingest": [], "baseline": [], "validating_baseline": []}
    # A fresh context per call, as Lambda gives (its clock counts down); it costs microseconds of the ingest's hundreds.
    calls = (
        ("ingest", lambda: ingest.lambda_handler(event, bench_context(memory_limit_in_mb=256))),
        ("baseline", lambda: baseline(event)),
        ("validating_baseline", lambda: validating_baseline(event)),
    )
    with contextlib.redirect_stdout(io.StringIO()) as log_lines:  # the handlers' log lines are not the benchmark
        for _ in range(200):
            ingest.lambda_handler(event, bench_context(memory_limit_in_mb=256))
        for _ in range(requests):
            for name, call in calls:
                started = time.perf_counter()
                call()
                timings[name].append(time.perf_counter() - started)
            log_lines.seek(0)
            log_lines.truncate()
    return {
        "ingest_mean_ms": statistics.mean(timings["ingest"]) * 1000,
        "ingest_p99_ms": sorted(timings["ingest"])[int(requests * 0.99)] * 1000,
        "baseline_mean_ms": statistics.mean(timings["baseline"]) * 1000,
        "validating_baseline_mean_ms": statistics.mean(timings["validating_baseline"]) * 1000,
    }


def sqs_client_send_cpu(sends: int = 600) -> dict[str, float]:
    """botocore's own CPU per SendMessage: the ingest's client config vs the same with botocore's
    default user agent. SQS answers from a canned response, so no network or server is timed."""
    import boto3
    from botocore.awsrequest import AWSResponse
    from botocore.config import Config

    from functions.ingest.handler import sqs_client_config

    canned = b'{"MD5OfMessageBody":"%s","MessageId":"5fea7756-0ea4-451a-a703-a558b933e274"}'

    class CannedBody:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def stream(self, **_: Any) -> Any:
            yield self.data

        def read(self, *_: Any, **__: Any) -> bytes:
            return self.data

    def answer(request: Any, **_: Any) -> AWSResponse:
        digest = hashlib.md5(json.loads(request.body)["MessageBody"].encode()).hexdigest()
        headers = {"x-amzn-RequestId": "bench", "Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 200, headers, CannedBody(canned % digest.encode()))

    fixed = sqs_client_config(function_timeout_seconds=3)
    configs = {"fixed_user_agent": fixed, "default_user_agent": fixed.merge(Config(user_agent=None))}
    clients = {}
    for name, config in configs.items():
        clients[name] = boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url="https://sqs.invalid",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=config,
        )
        clients[name].meta.events.register("before-send.sqs.SendMessage", answer)
    envelope = envelopes(1, "sdk")[0]
    send = {
        "QueueUrl": "https://sqs.invalid/123456789012/leads",
        "MessageBody": envelope.to_message_body(),
        "MessageAttributes": message_attributes(envelope),
    }
    for client in clients.values():
        for _ in range(50):
            client.send_message(**send)
    seconds: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(ROUNDS * 3):
        for name, client in clients.items():
            started = time.process_time()
            for _ in range(sends):
                client.send_message(**send)
            seconds[name].append((time.process_time() - started) / sends)
    return {f"{name}_ms": statistics.median(values) * 1000 for name, values in seconds.items()}


# --- 4: cold start proxy -------------------------------------------------------------------------

TRIVIAL_MODEL = "import pydantic; pydantic.create_model('Trivial', x=(int, ...))"
COLD_START = {
    "baseline": "import boto3; boto3.client('sqs')",
    "ingest": "from functions.ingest import handler; handler.get_app()",
    "worker": "from functions.worker import handler; handler.get_processor()",
    # Where the ingest's time goes: the libraries it needs, each on top of the baseline. pydantic
    # loads most of itself only when the first model is built, so each line builds a trivial one.
    "baseline_and_pydantic_email": f"import boto3; boto3.client('sqs'); import email_validator; {TRIVIAL_MODEL}",
    "baseline_and_event_handler": "import boto3; boto3.client('sqs'); import aws_lambda_powertools.event_handler",
    "baseline_and_libraries": "import boto3; boto3.client('sqs'); import email_validator, "
    "aws_lambda_powertools.event_handler, aws_lambda_powertools.logging, aws_lambda_powertools.metrics; "
    f"{TRIVIAL_MODEL}",
}


def cold_starts(rounds: int = 15) -> dict[str, float]:  # a fresh interpreter is noisy: ±15% run to run, more on this VM
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "LEADS_QUEUE_URL": "https://sqs.invalid/q",
        "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
    }
    timings: dict[str, list[float]] = {name: [] for name in COLD_START}
    for _ in range(rounds):
        for name, code in COLD_START.items():
            timer = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
            out = subprocess.run(
                [sys.executable, "-c", timer], env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=True
            )
            timings[name].append(float(out.stdout.strip().splitlines()[-1]) * 1000)
    return {f"{name}_ms": statistics.median(values) for name, values in timings.items()}


# --- 5 and 6: decoupling and the cap, on the local runtime -----------------------------------------


def decoupling_and_cap(handler_seconds_per_batch: float, leads: int = 6_000) -> dict[str, Any]:
    from leadpipe.local.runtime import LocalPipeline, LocalPipelineOptions, local_sqs_client
    from leadpipe.plan import drain_rate_per_s

    # The stage throttle at its ceiling: the bench measures the pipeline, not dev's 100/s throttle.
    settings = settings_from_file("dev").model_copy(
        update={"throttle_rate_per_second": 10_000, "throttle_burst": 5_000}
    )
    data_dir = REPO_ROOT / ".leadpipe" / "bench" / "runtime"
    shutil.rmtree(data_dir, ignore_errors=True)
    pipeline = LocalPipeline(LocalPipelineOptions(settings=settings, data_dir=data_dir, port=0))
    info = pipeline.start()
    sqs = local_sqs_client(info.sqs_endpoint_url)
    try:
        healthy, healthy_writers = _healthy_run(sqs, info, leads)
        # Measured now that every process is warm, as it is when the stalled backlog drains, and
        # again right after that drain: this VM's speed drifts within minutes.
        event_source_samples = [local_event_source_seconds_per_batch(sqs, settings) for _ in range(ROUNDS)]
        stalled = _stalled_run(sqs, info, settings, leads)
        event_source_samples += [local_event_source_seconds_per_batch(sqs, settings) for _ in range(ROUNDS)]
        event_source_seconds = statistics.median(event_source_samples)
    finally:
        pipeline.stop(drain_seconds=5)
        shutil.rmtree(data_dir, ignore_errors=True)
    # The planner's drain model, given this platform's two measured costs per batch: the worker
    # handler's (bench 2) and the local event source's (its receives and deletes, measured above).
    predicted = drain_rate_per_s(settings, handler_seconds_per_batch, event_source_seconds)
    observed = (stalled.summary.accepted - 2 * stalled.in_flight) / stalled.full_queue_seconds
    return {
        "healthy": healthy.as_dict(),
        "stalled": stalled.summary.as_dict(),
        "p99_stalled_over_healthy": stalled.summary.latency_ms["p99"] / healthy.latency_ms["p99"],
        "lost_after_recovery": stalled.lost,
        "duplicates_after_recovery": stalled.duplicates,
        "max_worker_connections": max(healthy_writers, stalled.writers),
        "max_concurrency": settings.max_concurrency,
        "backlog_when_released": stalled.backlog,
        "handler_ms_per_batch": handler_seconds_per_batch * 1000,
        "local_event_source_ms_per_batch": event_source_seconds * 1000,
        "drain_rate_observed_per_s": observed,
        "drain_rate_predicted_per_s": predicted,
        "drain_observed_over_predicted": observed / predicted,
        "drain_predicted_for_lambda_per_s": drain_rate_per_s(settings, handler_seconds_per_batch),
    }


@dataclass(frozen=True)
class StalledRun:
    """The burst sent while the database was stalled, and how its backlog drained after."""

    summary: SpikeSummary
    backlog: int | None  # queued when the database came back
    in_flight: int  # the leads the writers hold at once: max_concurrency full batches
    full_queue_seconds: float  # from the batches held through the stall stored to the last partial batches left
    lost: int
    duplicates: int
    writers: int  # the most worker connections seen


def _healthy_run(sqs: Any, info: RuntimeInfo, leads: int) -> tuple[SpikeSummary, int]:
    """A burst with the database healthy, waited for until stored; (its summary, the most worker connections)."""
    healthy, sampler, _ = _burst(sqs, info, "BENCHHEALTHY", leads)
    _wait_stored(info, "BENCHHEALTHY", healthy.accepted)
    sampler.stop()
    return healthy, max(s.worker_connections or 0 for s in sampler.samples)


def _stalled_run(sqs: Any, info: RuntimeInfo, settings: Any, leads: int) -> StalledRun:
    from leadpipe import spike

    # The database stalls: a SHARE lock blocks every INSERT (reads still work) until released.
    lock = psycopg.connect(info.database_url)
    try:
        lock.execute(f"LOCK TABLE {info.leads_table} IN SHARE MODE")
        stalled, sampler, accepted_ids = _burst(sqs, info, "BENCHSTALLED", leads)
        backlog = sampler.latest().queued if sampler.latest() else None
    finally:
        lock.rollback()  # the database is back
        lock.close()
    # The drain rate with a full queue, as the planner models it: from when the batches held
    # through the stall are stored to when only the last partial batches (which wait out the
    # batching window, by design) remain.
    in_flight = settings.max_concurrency * settings.batch_size
    full_queue_start, full_queue_end, _ = _wait_stored(
        info, "BENCHSTALLED", in_flight, stalled.accepted - in_flight, stalled.accepted
    )
    sampler.stop()
    lost, duplicates = spike.verify_stored(info.database_url, info.leads_table, "BENCHSTALLED", accepted_ids)
    return StalledRun(
        summary=stalled,
        backlog=backlog,
        in_flight=in_flight,
        full_queue_seconds=full_queue_end - full_queue_start,
        lost=lost,
        duplicates=duplicates,
        writers=max(s.worker_connections or 0 for s in sampler.samples),
    )


def _burst(sqs: Any, info: RuntimeInfo, campaign: str, leads: int) -> tuple[SpikeSummary, PipelineSampler, set[str]]:
    """`leads` leads sent to the local runtime, sampled as they go: (the summary, the sampler, the accepted ids)."""
    from leadpipe import spike

    sampler = spike.PipelineSampler(
        sqs, info.leads_queue_url, info.database_url, info.leads_table, campaign, interval=0.25
    )
    sampler.start()
    requests, seconds = spike.send_spike(
        spike.SpikeOptions(url=info.api_url, total=leads, concurrency=16, campaign=campaign)
    )
    return spike.summarise(requests, seconds), sampler, {r.lead_id for r in requests if r.lead_id}


def _wait_stored(info: RuntimeInfo, campaign: str, *counts: int, timeout: float = 600) -> list[float]:
    """When (perf_counter) each count of the campaign's rows was reached, read every 20 ms."""
    query, reached = f"SELECT count(*) FROM {info.leads_table} WHERE campaign = %s", []
    started = time.perf_counter()
    with psycopg.connect(info.database_url, autocommit=True) as connection:
        for count in counts:
            while connection.execute(query, (campaign,)).fetchone()[0] < count:
                if time.perf_counter() - started > timeout:
                    raise RuntimeError("the queue did not drain")
                time.sleep(0.02)
            reached.append(time.perf_counter())
    return reached


def local_event_source_seconds_per_batch(sqs: Any, settings: Any, batches_per_poller: int = 10) -> float:
    """What the local event source itself costs per batch (leadpipe spike's calibration, larger): its
    poller at `max_concurrency` on a queue of its own, with a function that returns at once."""
    from leadpipe.spike import calibrate_local_event_source

    return calibrate_local_event_source(
        sqs, settings.batch_size, settings.max_concurrency, settings.max_batching_window_seconds, batches_per_poller
    )


def main(argv: list[str] | None = None) -> None:
    """Every section, or those named with `--only store,main_app` (their figures replace those of the
    same sections in latest.json; the other sections' stay as the last full run left them)."""
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--only", help=f"comma-separated sections of: {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    sections = SECTIONS if not args.only else tuple(args.only.split(","))
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    results = _run_header(sections)
    if args.only and RESULTS.is_file():  # keep the other sections of the last run
        results = {**json.loads(RESULTS.read_text()), **results}
    _database_sections(sections, results)
    _process_sections(sections, results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print_table(results)


def _run_header(sections: tuple[str, ...]) -> dict[str, Any]:
    """The machine and the run's parameters, written beside the figures."""
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "rounds": ROUNDS,
        "erased_people": ERASED_PEOPLE,
        "sections": list(sections),
    }


def _database_sections(sections: tuple[str, ...], results: dict[str, Any]) -> None:
    """The sections measured on an embedded PostgreSQL of their own (store, worker_handler, main_app)."""
    data_dir = REPO_ROOT / ".leadpipe" / "bench" / "postgres"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = start_embedded_postgres(data_dir)
    table = "bench.leads"
    try:
        with psycopg.connect(server.uri, autocommit=True) as connection:
            apply_migrations(connection, table)
            # Tombstones for the erasure check to look through, as after years of erasure requests.
            connection.execute(
                f"INSERT INTO {table}_erasures (email_sha256) SELECT sha256(('erased' || n)::bytea) FROM "
                "generate_series(1, %s) AS n",
                (ERASED_PEOPLE,),
            )
        if "store" in sections:
            results["store"] = _store_section(server.uri, table)
        if "worker_handler" in sections:
            rates = handler_vs_store(server.uri, table)
            results["worker_handler"] = {**rates, "handler_over_store": rates["handler"] / rates["store"]}
        if "main_app" in sections:  # last on this server: it pins the server to one core
            settings = settings_from_file("dev")
            results["main_app"] = main_app_under_drain(
                server.uri,
                table,
                server.data_dir,
                REPO_ROOT / ".leadpipe" / "bench",
                settings.governor_limits(),
                batch_size=settings.batch_size,
            )
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _store_section(uri: str, table: str) -> dict[str, Any]:
    # Enough rows for the backends' CPU clock (10 ms ticks) to resolve the store path against COPY.
    store = {size: store_rates(uri, table, size, rows=STORE_ROWS[size]) for size in (10, 100, 1000)}
    return {
        str(size): {
            **rates,
            "store_over_copy": rates["store"] / rates["copy"],
            "store_over_naive": rates["store"] / rates["naive"],
            "store_over_unchecked": rates["store"] / rates["unchecked"],
            "store_over_copy_db_cpu": rates["store_db_cpu_us_per_lead"] / rates["copy_db_cpu_us_per_lead"],
        }
        for size, rates in store.items()
    }


def _process_sections(sections: tuple[str, ...], results: dict[str, Any]) -> None:
    """The sections measured in this process or in interpreters and runtimes of their own."""
    if "ingest" in sections:
        ingest = ingest_cost()
        results["ingest"] = {
            **ingest,
            "ingest_over_baseline": ingest["ingest_mean_ms"] / ingest["baseline_mean_ms"],
            "ingest_over_validating_baseline": ingest["ingest_mean_ms"] / ingest["validating_baseline_mean_ms"],
        }
    if "sqs_client" in sections:
        sdk = sqs_client_send_cpu()
        results["sqs_client"] = {**sdk, "fixed_over_default": sdk["fixed_user_agent_ms"] / sdk["default_user_agent_ms"]}
    if "cold_start" in sections:
        cold = cold_starts()
        results["cold_start"] = {
            **cold,
            **{
                f"{name.removesuffix('_ms')}_over_baseline": value / cold["baseline_ms"]
                for name, value in cold.items()
                if name != "baseline_ms"
            },
        }
    if "local_runtime" in sections and "worker_handler" in results:
        results["local_runtime"] = decoupling_and_cap(
            handler_seconds_per_batch=100 / results["worker_handler"]["handler"]
        )
    if "moto_sqs" in sections:
        from bench.moto_sqs import main as moto_bench

        results["moto_sqs"] = moto_bench()


# (measure, figure, its format, target, met: None when there is no target)
Row = tuple[str, float, str, str, bool | None]


def print_table(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Leadpipe bench ({r['machine']['cpus']} CPUs, medians of {r['rounds']} rounds)")
    for column in ("measure", "figure", "target", "met"):
        table.add_column(column)
    for section, rows in TABLE_ROWS.items():
        if section not in r:
            continue
        for measure, value, fmt, target, met in rows(r[section]):
            table.add_row(measure, format(value, fmt), target, "" if met is None else ("yes" if met else "NO"))
    Console().print(table)
    print(f"written to {RESULTS.relative_to(REPO_ROOT)}")


def _store_rows(store: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for size in ("10", "100", "1000"):
        s = store[size]
        rows += [
            (f"store path rows/s, batch {size}", s["store"], ",.0f", "", None),
            (
                f"  store / same statement without the erasure check ({ERASED_PEOPLE:,} tombstones), batch {size}",
                s["store_over_unchecked"],
                ".2f",
                "",
                None,
            ),
            (
                f"  store / COPY, batch {size}",
                s["store_over_copy"],
                ".2f",
                ">= 0.45 at 100" if size == "100" else "",
                s["store_over_copy"] >= 0.45 if size == "100" else None,
            ),
            (
                f"  store / naive row-by-row, batch {size}",
                s["store_over_naive"],
                ".1f",
                ">= 5 at 10" if size == "10" else "",
                s["store_over_naive"] >= 5 if size == "10" else None,
            ),
            (
                f"  COPY / naive row-by-row, batch {size} (the ceiling of the line above)",
                s["copy"] / s["naive"],
                ".1f",
                "",
                None,
            ),
        ]
    for size in ("100", "1000"):
        s = store[size]
        if "store_over_copy_db_cpu" in s:
            rows.append(
                (
                    f"store path / COPY, database CPU per lead, batch {size}",
                    s["store_over_copy_db_cpu"],
                    ".2f",
                    "<= 1.5",
                    s["store_over_copy_db_cpu"] <= 1.5,
                )
            )
    return rows


def _worker_handler_rows(w: dict[str, Any]) -> list[Row]:
    return [
        (
            "worker handler / bare store, batch 100",
            w["handler_over_store"],
            ".2f",
            ">= 0.70",
            w["handler_over_store"] >= 0.70,
        )
    ]


def _main_app_rows(a: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for kind in ("alone", "fixed", "governed"):
        rows.append((f"main app p99 ms, {kind}", a[kind]["p99_ms"], ".1f", "", None))
        rows.append((f"main app TPS, {kind}", a[kind]["tps"], ",.0f", "", None))
    drains = ("fixed", "governed", "idle_fixed", "idle_governed")
    most = max(a[k]["most_writers"] for k in drains)
    lost = sum(a[k]["lost"] + a[k]["unaccounted"] for k in drains)
    return [
        *rows,
        ("main app p99, fixed-cap drain / alone", a["fixed_p99_over_alone"], ".2f", "", None),
        (
            "main app p99, governed drain / alone",
            a["governed_p99_over_alone"],
            ".2f",
            "<= 1.2",
            a["governed_p99_over_alone"] <= 1.2,
        ),
        (
            "  governed drain rows/s with the main app busy",
            a["governed"]["drain_rows_per_s"],
            ",.0f",
            "> 0",
            a["governed"]["drain_rows_per_s"] > 0,
        ),
        (
            "  governed drain's longest wait between batches, s",
            a["governed"]["longest_gap_seconds"],
            ".1f",
            "<= 60",
            a["governed"]["longest_gap_seconds"] <= 60,
        ),
        (
            "governed / fixed drain rows/s, main app idle",
            a["governed_idle_over_fixed_idle"],
            ".2f",
            ">= 0.9",
            a["governed_idle_over_fixed_idle"] >= 0.9,
        ),
        ("most drain writers at once", most, "d", f"<= {a['setup']['cap']}", most <= a["setup"]["cap"]),
        ("drain leads lost or unaccounted", lost, "d", "0", lost == 0),
        ("database CPU per lead, µs, fixed drain", a["idle_fixed"]["database_cpu_us_per_lead"], ".1f", "", None),
    ]


def _ingest_rows(i: dict[str, Any]) -> list[Row]:
    return [
        ("ingest handler / json.loads+send", i["ingest_over_baseline"], ".2f", "<= 3", i["ingest_over_baseline"] <= 3),
        (
            "  ingest handler / json.loads+pydantic validation+send",
            i["ingest_over_validating_baseline"],
            ".2f",
            "",
            None,
        ),
        ("ingest handler p99 (ms)", i["ingest_p99_ms"], ".2f", "< 2", i["ingest_p99_ms"] < 2),
    ]


def _sqs_client_rows(k: dict[str, Any]) -> list[Row]:
    return [
        ("ingest's SQS client CPU per send (ms), fixed user agent", k["fixed_user_agent_ms"], ".2f", "", None),
        ("  fixed / botocore's default user agent", k["fixed_over_default"], ".2f", "", None),
    ]


def _cold_start_rows(c: dict[str, Any]) -> list[Row]:
    return [
        (
            "cold start: ingest / boto3+client",
            c["ingest_over_baseline"],
            ".2f",
            "<= 1.5",
            c["ingest_over_baseline"] <= 1.5,
        ),
        (
            "  boto3+client+pydantic+email-validator / boto3+client",
            c["baseline_and_pydantic_email_over_baseline"],
            ".2f",
            "",
            None,
        ),
        (
            "  boto3+client+Powertools event handler / boto3+client",
            c["baseline_and_event_handler_over_baseline"],
            ".2f",
            "",
            None,
        ),
        (
            "  boto3+client+every library the ingest needs / boto3+client",
            c["baseline_and_libraries_over_baseline"],
            ".2f",
            "",
            None,
        ),
        ("cold start: worker / boto3+client", c["worker_over_baseline"], ".2f", "", None),
    ]


def _local_runtime_rows(d: dict[str, Any]) -> list[Row]:
    return [
        (
            "ingest p99, DB stalled / healthy",
            d["p99_stalled_over_healthy"],
            ".2f",
            "<= 1.2",
            d["p99_stalled_over_healthy"] <= 1.2,
        ),
        ("leads lost after the stall", d["lost_after_recovery"], "d", "0", d["lost_after_recovery"] == 0),
        (
            "max worker DB connections",
            d["max_worker_connections"],
            "d",
            f"<= {d['max_concurrency']}",
            d["max_worker_connections"] <= d["max_concurrency"],
        ),
        ("local event source, ms per batch (calibrated)", d["local_event_source_ms_per_batch"], ".0f", "", None),
        ("drain observed, leads/s (full queue)", d["drain_rate_observed_per_s"], ",.0f", "", None),
        (
            "drain observed / planner with the local event source",
            d["drain_observed_over_predicted"],
            ".2f",
            "0.8 - 1.2",
            0.8 <= d["drain_observed_over_predicted"] <= 1.2,
        ),
        (
            "  planner's drain for Lambda, same handler, leads/s",
            d["drain_predicted_for_lambda_per_s"],
            ",.0f",
            "",
            None,
        ),
    ]


def _moto_sqs_rows(m: dict[str, Any]) -> list[Row]:
    return [
        ("local SQS patched / stock, fill", m["ratio_fill_msgs_per_s"], ".0f", "", None),
        ("local SQS patched / stock, receive+delete", m["ratio_receive_delete_msgs_per_s"], ".0f", "", None),
    ]


# The table's sections, in its order: each turns its section of the results into rows.
TABLE_ROWS = {
    "store": _store_rows,
    "worker_handler": _worker_handler_rows,
    "main_app": _main_app_rows,
    "ingest": _ingest_rows,
    "sqs_client": _sqs_client_rows,
    "cold_start": _cold_start_rows,
    "local_runtime": _local_runtime_rows,
    "moto_sqs": _moto_sqs_rows,
}


if __name__ == "__main__":
    main()

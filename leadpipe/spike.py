"""`leadpipe spike`: send a burst of realistic leads and show that the database never felt it.

Bounded in count and time. While it runs, a sampler records the queue depth, the rows stored
and the worker's database connections; afterwards every accepted lead is checked against the
table (lost, duplicated), and `--report` draws the time series. Locally it can also take the
database away for part of the burst (`DatabaseOutage`), to show what the queue is for.
"""

from __future__ import annotations

import csv
import http.client
import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from functions.worker.repository import WORKER_APPLICATION_NAME, leads_table_identifier
from leadpipe.status import queue_depth

MAX_TOTAL = 100_000
MAX_OUTAGE_SECONDS = 120  # past the worker's 30 s timeout the story is retries, not buffering
FIRST_NAMES = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Tim",
    "Margaret",
    "Linus",
]
LAST_NAMES = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Perlman",
    "Berners-Lee",
]
COMPANIES = ["Analytical Engines", "Navy Labs", "Bletchley Systems", "Structured Ltd", "Abstract Data", "TeX Works"]
TITLES = ["CTO", "Head of Data", "Engineer", "Product Manager", "Marketing Lead", "Founder"]
SOURCES = [("newsletter", "email"), ("google", "cpc"), ("linkedin", "social"), ("partner", "referral")]


class SpikeRefused(ValueError):
    """The spike would go somewhere it must not, or beyond its bounds."""


def realistic_lead(index: int, campaign: str, run_id: str, rng: random.Random) -> dict[str, Any]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    source, medium = rng.choice(SOURCES)
    return {
        "email": f"{first}.{last}.{run_id}.{index}@example.com".lower(),
        "first_name": first,
        "last_name": last,
        "company": rng.choice(COMPANIES),
        "job_title": rng.choice(TITLES),
        "country": rng.choice(["DE", "FR", "GB", "US", "NL"]),
        "campaign": campaign,
        "landing_page": "https://www.example.com/summer",
        "utm_source": source,
        "utm_medium": medium,
        "consent": rng.random() < 0.7,
    }


@dataclass(frozen=True)
class SpikeOptions:
    url: str
    total: int
    concurrency: int
    campaign: str
    rate_per_second: float | None = None
    timeout_seconds: float = 600
    run_id: str = field(default_factory=lambda: f"{int(time.time())}")

    def check(self) -> None:
        if not 1 <= self.total <= MAX_TOTAL:
            raise SpikeRefused(f"--total must be 1 to {MAX_TOTAL}")
        if not 1 <= self.concurrency <= 256:
            raise SpikeRefused("--concurrency must be 1 to 256")
        if self.rate_per_second is not None and self.rate_per_second <= 0:
            raise SpikeRefused("--rate must be more than 0")
        if urlsplit(self.url).scheme not in ("http", "https"):
            raise SpikeRefused(f"{self.url!r} is not an http(s) URL")


@dataclass(frozen=True)
class Request:
    started: float  # seconds since the spike began
    latency: float
    status: int  # 0: no HTTP answer (connection error or timeout)
    lead_id: str | None


@dataclass(frozen=True)
class Sample:
    at: float
    queued: int | None
    stored: int | None
    worker_connections: int | None
    active_writers: int | None
    governor_writers: float | None = None  # the drain governor's writers at sample time (None: no governor)


@dataclass
class SpikeSummary:
    sent: int
    accepted: int
    rejected: int
    throttled: int
    errors: int
    seconds: float
    rate_per_s: float
    latency_ms: dict[str, float]
    drained: bool | None = None
    lost: int | None = None
    duplicates: int | None = None
    max_worker_connections: int | None = None
    max_active_writers: int | None = None
    db_outage: tuple[float, float] | None = None  # seconds since the spike began
    max_queued: int | None = None
    predicted_max_queued: float | None = None
    predicted_drain_per_s: float | None = None
    planner_event_source_ms_per_batch: float | None = None
    observed_drain_per_s: float | None = None  # from the outage's end until the queue emptied
    main_app: dict[str, float] | None = None  # pgbench beside the burst: its TPS, p50 and p99 over the run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DatabaseOutage:
    """Stalls the local runtime's embedded PostgreSQL for a window of the spike, then resumes it.

    SIGSTOP on the postmaster and every backend: connections stay open but nothing answers, as
    when a database host hangs. Only a server whose data folder the local runtime owns can be
    stalled; `for_local_runtime` refuses anything else.
    """

    def __init__(self, postgres_data_dir: Path, start_after: float, seconds: float) -> None:
        if start_after < 0 or not 0 < seconds <= MAX_OUTAGE_SECONDS:
            raise SpikeRefused(
                "the database outage must start at 0 s or later and last more than 0 and at most "
                f"{MAX_OUTAGE_SECONDS} s"
            )
        self.data_dir, self.start_after, self.seconds = postgres_data_dir, start_after, seconds
        self.gate = threading.Lock()  # held around each sampler query, so a stall never lands mid-query
        self.active = False
        self.window: tuple[float, float] | None = None  # seconds since the spike began
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leadpipe-db-outage", daemon=True)
        self._begin = 0.0

    @classmethod
    def for_local_runtime(cls, postgres_data_dir: str | None, start_after: float, seconds: float) -> DatabaseOutage:
        if postgres_data_dir is None:
            raise SpikeRefused(
                "the database outage needs the local runtime's embedded PostgreSQL; this runtime uses DATABASE_URL, "
                "which it does not own"
            )
        folder = Path(postgres_data_dir)
        if not (folder / "postmaster.pid").is_file():
            raise SpikeRefused(f"no PostgreSQL is running in {folder}")
        return cls(folder, start_after, seconds)

    def server_pids(self) -> list[int]:
        """The postmaster (first line of postmaster.pid) and its children, postmaster first."""
        postmaster = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    # the field after the parenthesised command name: state, then the parent's pid
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                        children.append(int(entry.name))
                except (OSError, IndexError, ValueError):
                    continue
        return [postmaster, *children]

    def start(self, begin: float) -> None:
        self._begin = begin
        self._thread.start()

    def stall(self) -> None:
        with self.gate:
            for pid in self.server_pids():  # the postmaster first, so it forks nothing new meanwhile
                os.kill(pid, signal.SIGSTOP)
            self.active = True

    def resume(self) -> None:
        with self.gate:
            for pid in reversed(self.server_pids()):
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    continue
            self.active = False

    def wait(self) -> None:
        """Until the outage has run its course (started, lasted its seconds, resumed)."""
        self._thread.join()

    def finish(self) -> None:
        """Ends the outage now if it is still on (Ctrl-C, an error): the database always comes back."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()  # its `finally` resumes the server

    def _run(self) -> None:
        if self._stop.wait(max(0.0, self._begin + self.start_after - time.perf_counter())):
            return
        self.stall()
        started = time.perf_counter() - self._begin
        try:
            self._stop.wait(self.seconds)
        finally:
            self.resume()
            self.window = (round(started, 2), round(time.perf_counter() - self._begin, 2))


THROTTLE_RETRY_SECONDS = 1.0  # when a 429 names no Retry-After


def _retry_after(value: str | None) -> float:
    try:
        return min(60.0, max(0.0, float(value))) if value else THROTTLE_RETRY_SECONDS
    except ValueError:
        return THROTTLE_RETRY_SECONDS


def send_spike(
    options: SpikeOptions, on_answer: Callable[[], None] = lambda: None, begin: float | None = None
) -> tuple[list[Request], float]:
    """POST `total` leads with `concurrency` keep-alive connections, at most `rate` per second;
    times count from `begin` (a `time.perf_counter()`, default now)."""
    options.check()
    parts = urlsplit(options.url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = parts.path or "/"
    requests: list[Request] = []
    lock = threading.Lock()
    begin = time.perf_counter() if begin is None else begin
    deadline = begin + options.timeout_seconds
    counter = iter(range(options.total))

    def next_index() -> int | None:
        with lock:
            return next(counter, None)

    def sender(seed: int) -> None:
        rng = random.Random(seed)
        connection = connection_class(parts.hostname, parts.port, timeout=30)
        while (index := next_index()) is not None and time.perf_counter() < deadline:
            if options.rate_per_second:  # a schedule, not a sleep per request: the rate holds under latency
                time.sleep(max(0.0, begin + index / options.rate_per_second - time.perf_counter()))
            body = json.dumps(realistic_lead(index, options.campaign, options.run_id, rng))
            # One key per lead, as leadpipe.js does: a retry after a throttle is the same lead, never a second row.
            headers = {"Content-Type": "application/json", "Idempotency-Key": f"{options.run_id}-{index}"}
            while True:
                started = time.perf_counter()
                status, lead_id, retry_after = 0, None, THROTTLE_RETRY_SECONDS
                try:
                    connection.request("POST", path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                    status = response.status
                    if status == 202:
                        lead_id = json.loads(payload)["lead_id"]
                    retry_after = _retry_after(response.getheader("Retry-After"))
                except (OSError, http.client.HTTPException, ValueError):
                    connection.close()
                    connection = connection_class(parts.hostname, parts.port, timeout=30)
                with lock:
                    requests.append(Request(started - begin, time.perf_counter() - started, status, lead_id))
                on_answer()
                # A throttled form post comes back after Retry-After, like a visitor's browser with leadpipe.js.
                if status != 429 or time.perf_counter() + retry_after >= deadline:
                    break
                time.sleep(retry_after)
        connection.close()

    threads = [threading.Thread(target=sender, args=(seed,), daemon=True) for seed in range(options.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return requests, time.perf_counter() - begin


def summarise(requests: list[Request], seconds: float) -> SpikeSummary:
    statuses = [r.status for r in requests]
    latencies = sorted(r.latency * 1000 for r in requests if r.status)

    def percentile(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))], 1) if latencies else 0.0

    return SpikeSummary(
        sent=len(requests),
        accepted=sum(1 for s in statuses if s in (202, 303)),
        rejected=sum(1 for s in statuses if 400 <= s < 500 and s != 429),
        throttled=sum(1 for s in statuses if s == 429),
        errors=sum(1 for s in statuses if s == 0 or s >= 500),
        seconds=round(seconds, 2),
        rate_per_s=round(len(requests) / seconds, 1) if seconds else 0.0,
        latency_ms={
            "p50": percentile(0.50),
            "p95": percentile(0.95),
            "p99": percentile(0.99),
            "max": latencies[-1] if latencies else 0.0,
        },
    )


class PipelineSampler:
    """Every `interval` seconds: queue depth, rows of this campaign stored, worker connections."""

    def __init__(
        self,
        sqs: Any | None,
        queue_url: str | None,
        database_url: str | None,
        leads_table: str,
        campaign: str,
        interval: float = 0.5,
        outage: DatabaseOutage | None = None,
        governor_writers: Callable[[], float | None] | None = None,
    ) -> None:
        self._sqs, self._queue_url, self._outage = sqs, queue_url, outage
        self._governor_writers = governor_writers
        self._database_url, self._campaign, self._interval = database_url, campaign, interval
        self._count = sql.SQL("SELECT count(*) FROM {} WHERE campaign = %s").format(leads_table_identifier(leads_table))
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leadpipe-sampler", daemon=True)
        self._begin = time.perf_counter()

    def start(self, begin: float | None = None) -> None:
        self._begin = time.perf_counter() if begin is None else begin
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    @property
    def begin(self) -> float:
        """The performance-counter time the samples count from."""
        return self._begin

    def _run(self) -> None:
        connection = None
        if self._database_url:
            # A stalled database must not stall the sampler: give up on a sample instead.
            connection = psycopg.connect(
                self._database_url, autocommit=True, options="-c lock_timeout=200 -c statement_timeout=2000"
            )
        try:
            while not self._stop.is_set():
                self.samples.append(self._sample(connection))
                self._stop.wait(self._interval)
            self.samples.append(self._sample(connection))
        finally:
            if connection:
                connection.close()

    def _sample(self, connection: psycopg.Connection | None) -> Sample:
        queued = stored = connections = active = None
        if self._sqs is not None:
            queued = queue_depth(self._sqs, self._queue_url)
        if connection is not None and self._outage is not None:
            with self._outage.gate:  # a stalled server would hang the query: while it is away, the table is unknown
                if not self._outage.active:
                    connections, active, stored = self._database_sample(connection)
        elif connection is not None:
            connections, active, stored = self._database_sample(connection)
        writers = self._governor_writers() if self._governor_writers is not None else None
        return Sample(round(time.perf_counter() - self._begin, 2), queued, stored, connections, active, writers)

    def _database_sample(self, connection: psycopg.Connection) -> tuple[int, int, int | None]:
        connections, active = connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity WHERE application_name = "
            "%s",
            (WORKER_APPLICATION_NAME,),
        ).fetchone()
        try:
            stored = connection.execute(self._count, (self._campaign,)).fetchone()[0]
        except psycopg.errors.QueryCanceled:  # lock or statement timeout
            stored = None
        return connections, active, stored


def verify_stored(database_url: str, leads_table: str, campaign: str, accepted_ids: set[str]) -> tuple[int, int]:
    """(lost, duplicates): accepted leads missing from the table, and extra rows for one person."""
    target = leads_table_identifier(leads_table)
    with psycopg.connect(database_url, autocommit=True) as connection:
        stored = {
            str(r[0])
            for r in connection.execute(
                sql.SQL("SELECT lead_id FROM {} WHERE campaign = %s").format(target), (campaign,)
            )
        }
        duplicates = connection.execute(
            sql.SQL(
                "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {} WHERE campaign = %s GROUP BY "
                "email) AS per_email"
            ).format(target),
            (campaign,),
        ).fetchone()[0]
    return len(accepted_ids - stored), int(duplicates)


def calibrate_local_event_source(
    sqs: Any, batch_size: int, max_concurrency: int, batching_window_seconds: int, batches_per_poller: int = 5
) -> float:
    """Seconds per batch the local event source itself costs on this machine now: `make bench`'s
    calibration, smaller. Its poller drains a queue of its own into a function that returns at
    once, so only the receives, the deletes and the event building are timed."""
    from leadpipe.local.poller import EventSourceSettings, SqsEventSourcePoller
    from leadpipe.local.sqs_server import LOCAL_REGION

    url = sqs.create_queue(QueueName=f"leadpipe-spike-calibration-{os.getpid()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    in_flight = max_concurrency * batch_size
    total = in_flight * batches_per_poller
    rng = random.Random(0)
    # more than is timed, so no batch is left short waiting out the batching window
    bodies = [
        json.dumps({"v": 1, "lead": realistic_lead(i, "CALIBRATION", "0", rng)}) for i in range(total + 2 * in_flight)
    ]
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies[start : start + 10])]
        )
    poller = SqsEventSourcePoller(
        sqs,
        EventSourceSettings(
            queue_url=url,
            queue_arn=arn,
            region=LOCAL_REGION,
            batch_size=batch_size,
            max_batching_window_seconds=batching_window_seconds,
            max_concurrency=max_concurrency,
        ),
        invoke=lambda event: {"batchItemFailures": []},
    )
    started = time.perf_counter()
    poller.start()
    try:
        while poller.stats.snapshot()["records_deleted"] < total:
            time.sleep(0.005)
        seconds = time.perf_counter() - started
    finally:
        poller.stop()
        sqs.delete_queue(QueueUrl=url)
    return seconds * in_flight / total


def smoothed_write_rate(samples: list[Sample], window_seconds: float = 3.0) -> list[float | None]:
    """Rows stored per second over the `window_seconds` before each sample (None while unknown).

    Sample to sample, the count jumps by whole batches (0 or 200 rows in half a second);
    over a few seconds it reads as the rate the database actually sees."""
    known = [(s.at, s.stored) for s in samples if s.stored is not None]
    rates: list[float | None] = []
    for sample in samples:
        if sample.stored is None:
            rates.append(None)
            continue
        earlier = [(t, n) for t, n in known if t <= sample.at - window_seconds]
        if not earlier:
            rates.append(None)
            continue
        t0, n0 = earlier[-1]
        rates.append(max(0, sample.stored - n0) / (sample.at - t0))
    return rates


def predicted_backlog(
    requests: list[Request], samples: list[Sample], drain_rate: float, outage: tuple[float, float] | None
) -> list[float]:
    """The planner's queue depth at each sample: the leads actually accepted by then, drained
    at the planner's rate except while the database was away."""
    from leadpipe.plan import backlog_curve

    # a lead is on the queue once its 202 is sent
    answered = sorted(r.started + r.latency for r in requests if r.status in (202, 303))
    times = [s.at for s in samples]
    arrived, index = [], 0
    for t in times:
        while index < len(answered) and answered[index] <= t:
            index += 1
        arrived.append(float(index))
    return backlog_curve(times, arrived, drain_rate, outage)


def observed_drain_after(samples: list[Sample], since: float) -> float | None:
    """Rows stored per second from `since` until the queue is down to a tenth of its peak after
    it (new leads keep arriving, so it seldom reaches 0); None if nothing queued."""
    after = [s for s in samples if s.at >= since and s.stored is not None and s.queued is not None]
    if len(after) < 2 or max(s.queued for s in after) == 0:
        return None
    low = max(s.queued for s in after) / 10
    first = after[0]
    drained = next((s for s in after[1:] if s.queued <= low), after[-1])
    return round((drained.stored - first.stored) / (drained.at - first.at), 1)


def write_report(
    requests: list[Request],
    samples: list[Sample],
    png_path: Path,
    writer_cap: int | None = None,
    predicted_drain_per_s: float | None = None,
    outage: tuple[float, float] | None = None,
    bucket_seconds: float = 1.0,
    main_app_latencies: Sequence[tuple[float, float]] = (),
) -> Path:
    """A CSV (beside the PNG) and a picture: the API answers steadily, the queue takes what the
    database cannot, and the database sees a smoothed load at the cap, never above it. With
    `main_app_latencies` ((seconds since the spike began, ms) of each pgbench transaction), a fifth
    panel: the main application's p99 per second, with the drain governor's writers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    write_rate = smoothed_write_rate(samples)
    predicted = predicted_backlog(requests, samples, predicted_drain_per_s, outage) if predicted_drain_per_s else None
    csv_path = png_path.with_suffix(".csv")
    _write_csv(csv_path, samples, write_rate, predicted)

    panels = 5 if main_app_latencies else 4
    figure, axes = plt.subplots(panels, 1, figsize=(10, 2.6 * panels + 0.1), sharex=True)
    times = [s.at for s in samples]
    _draw_answers(axes[0], requests, samples, bucket_seconds)
    axes[0].set_title(_report_title(writer_cap, outage))
    axes[1].plot(times, [s.queued or 0 for s in samples], color="#f0ad4e", label="queue depth, observed")
    if predicted is not None:
        axes[1].plot(
            times, predicted, color="#8a6d3b", linestyle="--", label=f"planner: drain {predicted_drain_per_s:,.0f}/s"
        )
    axes[1].set_ylabel("queued leads")
    _draw_writes(axes[2], times, write_rate, writer_cap, predicted_drain_per_s)
    _draw_writers(axes[3], samples, writer_cap)
    if main_app_latencies:
        axes[3].set_xlabel("")
        _draw_main_app(axes[4], main_app_latencies, samples, writer_cap, bucket_seconds)
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(loc="upper right")
        if outage:
            axis.axvspan(*outage, color="#777777", alpha=0.15, label=None)
    if outage:
        axes[1].text(outage[0], axes[1].get_ylim()[1] * 0.9, " database stalled", fontsize=9, va="top")
    figure.tight_layout()
    figure.savefig(png_path, dpi=110)
    plt.close(figure)
    return csv_path


def _write_csv(
    path: Path, samples: list[Sample], write_rate: list[float | None], predicted: list[float] | None
) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        # db_write_rate_per_s: over the 3 s before the sample; predicted_queued: the planner's
        columns = ["seconds", "queued", "stored", "db_write_rate_per_s", "worker_connections", "active_writers"]
        writer.writerow([*columns, "predicted_queued", "governor_writers"])
        for i, sample in enumerate(samples):
            rate = write_rate[i]
            writer.writerow(
                [
                    sample.at,
                    sample.queued,
                    sample.stored,
                    None if rate is None else round(rate, 1),
                    sample.worker_connections,
                    sample.active_writers,
                    None if predicted is None else round(predicted[i]),
                    sample.governor_writers,
                ]
            )


def _report_title(writer_cap: int | None, outage: tuple[float, float] | None) -> str:
    title = "Leadpipe spike: the API keeps answering"
    if outage:
        stalled_seconds = outage[1] - outage[0]
        title += (
            f", the queue holds the leads while the database is stalled ({stalled_seconds:.0f} s),"
            "\nthen the worker drains them"
        )
    return title + (f" with at most {writer_cap} database writers (max_concurrency)" if writer_cap else "")


def _draw_answers(axis: Any, requests: list[Request], samples: list[Sample], bucket_seconds: float) -> None:
    """The API's answers per second: accepted, and (stacked on top) anything else."""
    horizon = max([s.at for s in samples] + [r.started for r in requests] + [1.0])
    buckets = int(horizon // bucket_seconds) + 1
    ingest, refused = [0] * buckets, [0] * buckets
    for request in requests:
        (ingest if request.status in (202, 303) else refused)[int(request.started // bucket_seconds)] += 1
    starts = [i * bucket_seconds for i in range(buckets)]
    accepted_rate = [v / bucket_seconds for v in ingest]
    axis.bar(starts, accepted_rate, width=bucket_seconds, color="#d9534f", label="202 accepted")
    if any(refused):
        refused_rate = [v / bucket_seconds for v in refused]
        axis.bar(
            starts, refused_rate, width=bucket_seconds, bottom=accepted_rate, color="#999999", label="not accepted"
        )
    axis.set_ylabel("API answers (leads/s)")


def _draw_writes(
    axis: Any, times: list[float], write_rate: list[float | None], writer_cap: int | None, drain_per_s: float | None
) -> None:
    rates = [r if r is not None else float("nan") for r in write_rate]
    axis.plot(times, rates, color="#5cb85c", label="rows stored/s (3 s average)")
    if drain_per_s:
        label = f"writer cap: {writer_cap} writers = {drain_per_s:,.0f} rows/s (planner)"
        axis.axhline(drain_per_s, color="#d9534f", linestyle="--", label=label)
    axis.set_ylabel("DB writes (rows/s)")


def _draw_writers(axis: Any, samples: list[Sample], writer_cap: int | None) -> None:
    times = [s.at for s in samples]
    unknown = float("nan")  # while the database is stalled nobody can ask it
    connections = [unknown if s.worker_connections is None else s.worker_connections for s in samples]
    busy = [unknown if s.active_writers is None else s.active_writers for s in samples]
    axis.step(times, connections, where="post", label="worker connections", color="#337ab7")
    axis.step(times, busy, where="post", label="busy at sample time", color="#5bc0de")
    if any(s.governor_writers is not None for s in samples):
        governed = [unknown if s.governor_writers is None else s.governor_writers for s in samples]
        axis.step(times, governed, where="post", label="governor's writers", color="#6f42c1")
    if writer_cap:
        axis.axhline(writer_cap, color="#d9534f", linestyle="--", label=f"max_concurrency = {writer_cap}")
        axis.set_ylim(0, writer_cap + 1)
    axis.set_ylabel("DB writers")
    axis.set_xlabel("seconds since the spike began")


def _draw_main_app(
    axis: Any,
    latencies: Sequence[tuple[float, float]],
    samples: list[Sample],
    writer_cap: int | None,
    bucket_seconds: float,
) -> None:
    """The main application's p99 per bucket (left axis) and the drain governor's writers (right axis)."""
    by_bucket: dict[int, list[float]] = {}
    for at, latency in latencies:
        by_bucket.setdefault(int(at // bucket_seconds), []).append(latency)
    buckets = sorted(by_bucket)
    p99 = [sorted(by_bucket[b])[min(len(by_bucket[b]) - 1, int(len(by_bucket[b]) * 0.99))] for b in buckets]
    axis.plot([b * bucket_seconds for b in buckets], p99, color="#d9534f", label="main app p99 (ms, per second)")
    axis.set_ylabel("main app p99 (ms)")
    axis.set_xlabel("seconds since the spike began")
    right = axis.twinx()
    writers = [float("nan") if s.governor_writers is None else s.governor_writers for s in samples]
    right.step([s.at for s in samples], writers, where="post", color="#6f42c1", label="drain writers (governor)")
    if writer_cap:
        right.set_ylim(0, writer_cap + 1)
    right.set_ylabel("drain writers")
    right.legend(loc="upper left")

